//! `ThreadCache<B>`: the per-thread front of a batch allocator, and its flow — allocation,
//! free, refill (from the depot, then the backend), flush (to the depot, then the backend), and
//! giving magazines back.
//!
//! Fast path of `allocate` (and, mirrored, of `deallocate`):
//! size → class (`B::class_of`, sized), this thread's slot (one TLS load), this cache's
//! magazine for the slot (one load; a thread without one gets the shared empty magazine), pop
//! (one load of the block, two stores). Everything else — first use by a thread, an empty or
//! full bin, a class that is not cached, a thread without a slot — is one `#[cold]` call away.
//!
//! The magazine's layout is in `magazine.rs`, the C library's primary-word entry points in
//! `primary.rs`, the checks in `introspect.rs`, the trait impls in `traits.rs`, the `hardened`
//! free through the quarantine in `quarantine.rs`.

use crate::bin::{self, Bin, BATCH_BLOCKS_MAX, BIN_TARGET_BYTES};
use crate::depot::{Depot, DEPOT_ENTRIES};
use crate::handover;
use crate::magazine::{empty_magazine, header, CLASS_COUNT_MAX};
use crate::slot::{self, SLOT_COUNT, TABLE_LEN, UNASSIGNED};
use crate::sync::{AtomicPtr, Ordering};
use core::alloc::Layout;
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};
use core::sync::atomic::AtomicUsize;
use heapkit_core::{AllocError, BatchAllocator, SpinLock};

/// Every this many refills, a thread returns the blocks of magazines whose threads have exited
/// (see [`ThreadCache::reclaim_idle`]). A power of two: the test is a mask.
const RECLAIM_EVERY_REFILLS: u32 = 1024;

const _: () = assert!(RECLAIM_EVERY_REFILLS.is_power_of_two());

/// A thread cache in front of the batch allocator `B`.
///
/// Each thread that uses the cache gets a *magazine*: one bounded bin of free blocks per size
/// class. Allocation pops from the thread's bin, deallocation pushes to it; an empty bin refills
/// through [`BatchAllocator::allocate_batch`] (batches grow from 8 blocks to half the bin) and a
/// full one flushes through [`BatchAllocator::deallocate_batch`]; bin limits adapt (see the
/// crate docs). Layouts with no class (large blocks) go straight to `B`.
///
/// Frees are *sized*: the class comes from the `Layout`, never from the pointer, so a block must
/// be freed with a layout whose class is the one it was allocated in (any layout that fits the
/// block does). [`UnsizedAllocator::deallocate_unsized`](heapkit_core::UnsizedAllocator) asks
/// the backend for the class instead.
///
/// The magazines belong to the cache value, not to the threads: moving or dropping a
/// `ThreadCache` is always sound, and dropping it returns every cached block. A thread that
/// exits frees its slot and counts its exit; the next refill of any thread in this cache sees
/// the count move and gives the exited threads' magazines back (see
/// [`reclaim_exited`](Self::reclaim_exited)), so after threads exit the cache holds at most
/// the live threads' magazines and the shelves.
pub struct ThreadCache<B: BatchAllocator> {
    pub(crate) backend: B,
    /// Magazine (pointer to its first bin) per thread slot, or the shared empty magazine; the
    /// sentinel slots keep the empty one forever.
    pub(crate) magazines: [AtomicPtr<Bin>; TABLE_LEN],
    /// Per class, the shelf of whole batches that a thread's flush leaves for another
    /// thread's refill (see `depot.rs`).
    pub(crate) depots: [Depot; CLASS_COUNT_MAX],
    /// With `secure`: a copy of the process key (`heapkit_core::secure::key`), stored by every
    /// `make_magazine` before the magazine is published, so that a thread with a magazine
    /// sees it; 0 before the first magazine. See [`fast_secrets`](Self::fast_secrets).
    #[cfg(feature = "secure")]
    pub(crate) key_copy: AtomicUsize,
    /// The process's thread-exit count (`slot::exits`) when this cache last reclaimed idle
    /// magazines: a refill that finds it behind reclaims.
    pub(crate) exits_seen: AtomicUsize,
    /// Held while this cache frees idle magazines ([`reclaim_idle`](Self::reclaim_idle)) and
    /// while [`for_each_cached`](Self::for_each_cached) reads the magazines of slots other
    /// threads hold: a slot's holder may be a reclaimer, not its thread, and without this lock
    /// it could free the magazine being read. Reclaimers only *try* it (an inspection's visitor
    /// may allocate, and its refill may reclaim): a reclaim that finds an inspection running
    /// is left for the next refill.
    pub(crate) magazine_frees: SpinLock,
}

/// The most blocks one depot batch carries: a consumer's bin at its floor flushes one batch.
const DEPOT_BATCH_BLOCKS: usize = bin::SHRINK_FLOOR_BLOCKS as usize;

/// The most bytes of blocks one class keeps on its shelf (a limit on everything: blocks on the
/// shelf stay live in the backend, which cannot return their pages).
const DEPOT_CLASS_BYTES_MAX: usize = BIN_TARGET_BYTES;

const _: () = assert!(DEPOT_BATCH_BLOCKS <= crate::depot::DEPOT_BATCH_BLOCKS_MAX);
const _: () = assert!(
    DEPOT_BATCH_BLOCKS <= BATCH_BLOCKS_MAX,
    "a batch fits a flush buffer"
);

impl<B: BatchAllocator> ThreadCache<B> {
    /// A cache in front of `backend`. No thread has a magazine yet; `const`, so a cache can be
    /// a `static` (and a `#[global_allocator]`).
    pub const fn new(backend: B) -> Self {
        ThreadCache {
            backend,
            magazines: [const { AtomicPtr::new(empty_magazine()) }; TABLE_LEN],
            depots: [const { Depot::new() }; CLASS_COUNT_MAX],
            #[cfg(feature = "secure")]
            key_copy: AtomicUsize::new(0),
            exits_seen: AtomicUsize::new(0),
            magazine_frees: SpinLock::new(),
        }
    }

    /// The allocator behind the cache.
    pub const fn backend(&self) -> &B {
        &self.backend
    }

    /// This thread's magazine in this cache, or the empty magazine (one TLS load and one
    /// load; never null).
    #[inline(always)]
    pub(crate) fn current_magazine(&self) -> *mut Bin {
        let slot = slot::current();
        // SAFETY: `slot::current` is always below TABLE_LEN (asserted there).
        unsafe { self.magazines.get_unchecked(slot) }.load(Ordering::Relaxed)
    }

    /// The process secrets for a fast path's pop or push on a bin of this thread's magazine
    /// (`None` without `secure`): the cache's copy of the key, one load (for the C library's
    /// cache, a static: `mov key(%rip)`), where the key's own static in heapkit-core sits
    /// behind the GOT (two). A copy in the cache, not in the magazine: a heap overflow into a
    /// magazine must not be able to choose the key that its bins' links are checked with.
    ///
    /// Reads 0 only before this cache made its first magazine, when every thread's magazine
    /// is the empty one, whose bins never encode or decode a link.
    #[inline(always)]
    pub(crate) fn fast_secrets(&self) -> Option<heapkit_core::secure::Secrets> {
        #[cfg(feature = "secure")]
        return Some(heapkit_core::secure::Secrets::of_copy(
            self.key_copy.load(Ordering::Relaxed),
        ));
        #[cfg(not(feature = "secure"))]
        None
    }

    /// This thread's magazine as a fast path reads it: from the primary magazine word (one TLS
    /// load) when `PRIMARY`, which only the primary cache's methods pass, else from the table.
    #[inline(always)]
    pub(crate) fn fast_magazine<const PRIMARY: bool>(&self) -> *mut Bin {
        if PRIMARY {
            slot::primary_magazine()
        } else {
            self.current_magazine()
        }
    }
}

impl<B: BatchAllocator> ThreadCache<B> {
    /// The cached fast path alone: a block for `layout` from this thread's bin, or null when
    /// that path cannot serve it (no class, no magazine yet, an empty bin) — then call an
    /// allocating method, which takes the slow path. Never touches the backend.
    ///
    /// For callers that want the hit inlined and everything else out of line with nothing
    /// live across the call, such as the C `malloc`: `allocate_cached(l)` then, on null,
    /// a `#[cold]` function that calls `alloc(l)`.
    #[inline(always)]
    pub fn allocate_cached(&self, layout: Layout) -> *mut u8 {
        let Some(class) = self.backend.class_of(layout) else {
            return ptr::null_mut();
        };
        let bins = self.current_magazine();
        // SAFETY: as in `allocate_in_class`.
        self.hand_out(unsafe { bin::pop_with(bin::at(bins, class), self.fast_secrets()) })
    }

    /// Allocates a block of a layout with a class (the address only; `allocate_nonzero` adds
    /// the length). Null when out of memory.
    #[inline(always)]
    pub(crate) fn allocate_in_class(&self, class: usize, layout: Layout) -> *mut u8 {
        let bins = self.current_magazine();
        // SAFETY: `class < class_count` (the backend's contract) and the magazine has
        // `class_count` bins (the empty one `CLASS_COUNT_MAX`); this thread holds the slot, so
        // the bin is ours alone (or the empty magazine's, which a pop never writes).
        let block = unsafe { bin::pop_with(bin::at(bins, class), self.fast_secrets()) };
        if !block.is_null() {
            return self.hand_out(block);
        }
        self.allocate_slow(class, layout)
    }

    /// Frees a block of class `class` (the address only).
    ///
    /// `class` may also be the backend's `class_count()` for a block of no class, when neither
    /// `secure` nor `checked` is on: the uncached bin never has room, so the block goes on to
    /// `deallocate_slow`, which hands it to the backend.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator whose class is `class` (or, as above, one of no
    /// class with `class == class_count()`).
    #[inline(always)]
    pub(crate) unsafe fn deallocate_in_class(&self, ptr: *mut u8, class: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.deallocate_in_class_in::<false>(ptr, class) }
    }

    /// [`deallocate_in_class`](Self::deallocate_in_class) with the magazine read as
    /// [`fast_magazine`](Self::fast_magazine) says.
    ///
    /// # Safety
    /// As for `deallocate_in_class`.
    #[inline(always)]
    unsafe fn deallocate_in_class_in<const PRIMARY: bool>(&self, ptr: *mut u8, class: usize) {
        // With `hardened` the block waits in the quarantine (over a backend that keeps the
        // record: a quarantined block carries no free mark, so without the record a second
        // free of it would not be noticed).
        #[cfg(feature = "hardened")]
        if B::RECORDS_HANDED_OUT {
            // SAFETY: forwarded from the caller.
            return unsafe { self.deallocate_quarantined::<PRIMARY>(ptr, class) };
        }
        let bins = self.fast_magazine::<PRIMARY>();
        #[cfg(feature = "checked")]
        // SAFETY: forwarded from the caller.
        unsafe {
            self.check_free(bins, ptr, class)
        };
        // Over a backend that keeps the record, the secrets only encode the pushed link: the
        // cache's copy of the key will do (one load). Without the record they also test the
        // free mark, which must see the process key even before this cache has a magazine.
        let secrets = if B::RECORDS_HANDED_OUT {
            self.fast_secrets()
        } else {
            bin::secrets()
        };
        if bin::SECURE && B::RECORDS_HANDED_OUT {
            // With `secure`, a block the program does not own stops here, before any bin
            // sees it (live.rs).
            // SAFETY: forwarded from the caller: a block start of a class.
            unsafe { self.take_back(ptr) };
        // SAFETY: the caller promises a live block of a cached class: two words long.
        } else if unsafe { bin::is_marked_free(ptr, secrets) } {
            // A backend without the record: the free mark makes a double free likely.
            // SAFETY: forwarded from the caller.
            return unsafe { self.deallocate_marked(bins, ptr, class) };
        }
        // SAFETY: as in `allocate_in_class` (a push to the empty magazine finds limit 0 and
        // writes nothing); the caller gives up a live block of the class.
        if unsafe { bin::push_with(bin::at(bins, class), ptr, secrets) } {
            return;
        }
        // SAFETY: forwarded from the caller; `bins` is the magazine the fast path read.
        unsafe { Self::deallocate_slow::<PRIMARY>(ptr, class, self, bins) }
    }

    /// The empty-bin path: make this thread's magazine if needed, refill the bin, or fall back
    /// to the backend.
    #[cold]
    #[inline(never)]
    fn allocate_slow(&self, class: usize, layout: Layout) -> *mut u8 {
        let bins = self.attach_magazine();
        // SAFETY: `attach_magazine` returns this thread's magazine or null.
        self.hand_out(unsafe { self.allocate_attached(bins, class, layout) })
    }

    /// The empty-bin path once the thread's magazine is attached: pop the class's bin (the
    /// fast path may have read another magazine), else refill it from the class's shelf, then
    /// from the backend; or serve `layout` from the backend when there is no magazine (`bins`
    /// null) or the class is not cached. Shared by [`allocate_slow`](Self::allocate_slow) and
    /// the primary cache's miss path (`allocate_small_primary_slow`, primary.rs).
    ///
    /// # Safety
    /// `bins` is null or this thread's magazine in this cache (the table's entry for its
    /// slot); `class` is one of the backend's classes, and one that serves `layout`.
    #[inline(always)]
    pub(crate) unsafe fn allocate_attached(
        &self,
        bins: *mut Bin,
        class: usize,
        layout: Layout,
    ) -> *mut u8 {
        // SAFETY: a non-null magazine has a bin per class and belongs to this thread's slot.
        if bins.is_null() || unsafe { (*bins.add(class)).limit } == 0 {
            return self.allocate_uncached(layout);
        }
        // SAFETY: as above.
        let bin = unsafe { bins.add(class) };
        // The fast path may have seen no magazine (first call on this thread) while the slot's
        // magazine, inherited from an exited thread, has blocks.
        // SAFETY: the bin is ours (see above).
        let block = unsafe { bin::pop(bin) };
        if !block.is_null() {
            return block;
        }
        let cap = bin::limit_for(self.backend.class_size(class));
        // SAFETY: the bin is ours (see above).
        let want = unsafe { (*bin).next_refill(cap) };
        // SAFETY: the bin is ours and empty; a batch on the class's shelf and the backend's
        // blocks are live blocks of the class.
        let block = unsafe {
            let shelved = self.refill_from_depot(bin, class);
            if shelved.is_null() {
                self.refill_bin(bin, class, want)
            } else {
                shelved
            }
        };
        if !block.is_null() {
            // SAFETY: `bins` is this thread's magazine.
            unsafe { self.after_refill(bins) };
        }
        block
    }

    /// A block for a layout without a class, straight from the backend; null when out of
    /// memory. Out of line so that the cached fast path needs no stack frame: everything it
    /// would keep alive across a backend call stays here.
    #[cold]
    #[inline(never)]
    pub(crate) fn allocate_uncached(&self, layout: Layout) -> *mut u8 {
        match self.backend.allocate_nonzero(layout) {
            Ok(block) => block.cast::<u8>().as_ptr(),
            Err(AllocError) => ptr::null_mut(),
        }
    }

    /// Frees a block the backend says has no class (a large block), out of line for the same
    /// reason as [`allocate_uncached`](Self::allocate_uncached).
    ///
    /// The block is the first argument and the cache the last (here and in
    /// [`deallocate_slow`](Self::deallocate_slow)): the unsized free's fast path tail-calls
    /// these with the pointer still in the register it arrived in, so it copies nothing.
    ///
    /// # Safety
    /// `ptr` is a live block of the backend.
    ///
    /// `PRIMARY`: the block came through a primary entry point, whose frees all come here or
    /// to [`deallocate_slow`](Self::deallocate_slow) while diverted: the divert's observer
    /// hears of it (`divert.rs`).
    #[cold]
    #[inline(never)]
    unsafe fn deallocate_uncached_unsized<const PRIMARY: bool>(ptr: NonNull<u8>, cache: &Self) {
        if PRIMARY {
            crate::divert::observe(ptr);
        }
        crate::free_hook::run(ptr);
        // SAFETY: forwarded from the caller.
        unsafe { cache.backend.deallocate_unsized(ptr) }
    }

    /// Fills an empty bin with up to `want` blocks from the backend, in calls of at most
    /// `BATCH_BLOCKS_MAX`; returns one of them for the caller (null when the backend has none).
    ///
    /// # Safety
    /// `bin` is an empty bin of class `class` in a magazine the caller has exclusive use of,
    /// and `want < limit`.
    unsafe fn refill_bin(&self, bin: *mut Bin, class: usize, want: usize) -> *mut u8 {
        // Uninitialised: only the entries the calls below pass are nulled, once (a first
        // refill of 8 blocks writes 64 bytes, not the buffer's 1 KiB).
        let mut buffer = [MaybeUninit::<*mut u8>::uninit(); BATCH_BLOCKS_MAX];
        let batch = nulled(&mut buffer, want);
        let first = self.backend.allocate_batch(class, batch);
        if first == 0 {
            return ptr::null_mut();
        }
        // SAFETY: the bin was empty and `first - 1 < limit`; fresh live blocks of the class,
        // word-aligned because the class is cached (limit > 0).
        unsafe {
            debug_assert!((*bin).head.is_null());
            bin::put(bin, &batch[1..first]);
        }
        // Kept aside: the loop below reuses the buffer.
        let block = batch[0];
        let mut got = first;
        while got < want {
            let wanted = (want - got).min(batch.len());
            let n = self.backend.allocate_batch(class, &mut batch[..wanted]);
            if n == 0 {
                break;
            }
            // SAFETY: as above; the bin holds `got - 1` blocks and `got - 1 + n < want`.
            unsafe { bin::put(bin, &batch[..n]) };
            got += n;
        }
        block
    }

    /// With `secure` over a backend that keeps no record of handed-out blocks: a freed block
    /// carries the free mark, so it is probably free already. If it is in this thread's bin,
    /// that is a double free: stop. Otherwise hand it to the backend, whose own check decides
    /// (heapkit-slab's live bitmap: it stops on a double free and takes the block back if the
    /// mark was only the program's data).
    ///
    /// # Safety
    /// As for `deallocate_in_class`.
    #[cold]
    #[inline(never)]
    unsafe fn deallocate_marked(&self, bins: *mut Bin, ptr: *mut u8, class: usize) {
        // SAFETY: this thread's magazine (or the empty one); `class` is in range.
        if unsafe { bin::contains(bins.add(class), ptr) } {
            heapkit_core::fatal(
                "heapkit-tcache",
                "double free: block is already in the thread cache",
                ptr as usize,
            );
        }
        // SAFETY: forwarded from the caller; the backend validates the block itself.
        unsafe { self.backend.deallocate_batch(class, &[ptr]) };
    }

    /// The full-bin path: flush part of the bin, then keep the block; or hand it to the backend
    /// when this thread has no magazine or the class is not cached.
    ///
    /// `seen` is the magazine the fast path read (this thread's, or the empty one): a real one
    /// is used as it is, which spares the flush of a full bin — the common way here — the
    /// slot and table look-ups of [`attach_magazine`](Self::attach_magazine) (about 35
    /// instructions a flush, 1.5 M of the python3 workload's; the book, chapter 5).
    ///
    /// # Safety
    /// As for `deallocate_in_class`; `seen` is the empty magazine or this thread's magazine in
    /// this cache.
    ///
    /// `PRIMARY` as for [`deallocate_uncached_unsized`](Self::deallocate_uncached_unsized): the
    /// divert's observer hears of the block first.
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn deallocate_slow<const PRIMARY: bool>(
        ptr: *mut u8,
        class: usize,
        cache: &Self,
        seen: *mut Bin,
    ) {
        if PRIMARY {
            // SAFETY: the caller passes a live block: not null.
            crate::divert::observe(unsafe { NonNull::new_unchecked(ptr) });
        }
        if class >= cache.backend.class_count() {
            // SAFETY: forwarded from the caller: a block of no class, from the uncached bin
            // (already observed above).
            return unsafe {
                Self::deallocate_uncached_unsized::<false>(NonNull::new_unchecked(ptr), cache)
            };
        }
        // One test for the common case: the empty magazine's bins all have limit 0, so a bin of
        // `seen` that caches the class is a bin of this thread's magazine.
        let mut bins = seen;
        // SAFETY: `seen` has a bin per class (the empty magazine one per `CLASS_COUNT_MAX`).
        if unsafe { (*seen.add(class)).limit } == 0 {
            bins = cache.attach_magazine();
            // SAFETY: a non-null magazine has a bin per class and belongs to this thread's slot.
            if bins.is_null() || unsafe { (*bins.add(class)).limit } == 0 {
                // SAFETY: forwarded from the caller: a live block of `class`.
                unsafe { cache.backend.deallocate_batch(class, &[ptr]) };
                return;
            }
        }
        // SAFETY: as above; after the flush the bin has room, so the push succeeds.
        unsafe {
            let bin = bins.add(class);
            if bin::push(bin, ptr) {
                return; // the fast path saw no magazine, but the bin had room
            }
            let blocks = (*bin).next_flush();
            let shelved = cache.shelve(bin, class, blocks);
            cache.flush_bin(bin, class, blocks - shelved);
            let kept = bin::push(bin, ptr);
            debug_assert!(kept);
        }
    }

    /// Makes the empty bin a batch from the class's shelf (another thread's flush) and takes
    /// one block of it; null when the shelf has none that fits the bin.
    ///
    /// # Safety
    /// `bin` is the empty bin of class `class` in a magazine the caller has exclusive use of.
    unsafe fn refill_from_depot(&self, bin: *mut Bin, class: usize) -> *mut u8 {
        let Some((first, blocks)) = self.depots.get(class).and_then(Depot::take) else {
            return ptr::null_mut();
        };
        // SAFETY: the batch is ours (taken off the shelf); the bin is ours and empty.
        unsafe {
            if blocks > (*bin).limit as usize {
                // Shelved by a bin allowed more than this one (it cannot happen with the
                // batch sizes `shelve` uses, but a limit is a promise): to the backend.
                self.release_chain(class, first, blocks);
                return ptr::null_mut();
            }
            bin::adopt(bin, first, blocks);
            bin::pop(bin)
        }
    }

    /// Shelves whole batches of the bin's most recent blocks, up to `blocks` blocks, for
    /// another thread's refill; returns how many blocks went. The rest of a flush goes to the
    /// backend.
    ///
    /// # Safety
    /// The bin belongs to a magazine of this cache that the caller has exclusive use of, and
    /// holds at least `blocks` blocks of class `class`.
    unsafe fn shelve(&self, bin: *mut Bin, class: usize, blocks: usize) -> usize {
        // The shelf hands blocks between threads; a process with one thread has nobody to hand
        // them to, and would only pay for the scans and the walks (glibc's `SINGLE_THREAD_P`
        // idea again: the python3 workload ran 0.2% more instructions shelving).
        if heapkit_core::process_is_single_threaded() {
            return 0;
        }
        let Some(depot) = self.depots.get(class) else {
            return 0;
        };
        let (batch_blocks, room) = self.depot_shape(class);
        let mut shelved = 0;
        // The room test before each split spares a split's walk when the shelf is full (the
        // push can still lose a race for the last entry: then the chain goes to the backend).
        while blocks - shelved >= batch_blocks && depot.has_room(room) {
            // SAFETY: forwarded from the caller; the bin still holds `blocks - shelved`.
            let first = unsafe { bin::split(bin, batch_blocks) };
            shelved += batch_blocks;
            if !depot.push(first, batch_blocks, room) {
                // The shelf is full: this batch, and the rest of the flush, go to the backend.
                // SAFETY: the chain was just split off the bin: ours, `batch_blocks` long.
                unsafe { self.release_chain(class, first, batch_blocks) };
                break;
            }
        }
        shelved
    }

    /// A batch's length for class `class` and how many of the shelf's entries the class may
    /// fill, so that a shelf keeps at most `DEPOT_CLASS_BYTES_MAX` (one entry at least).
    fn depot_shape(&self, class: usize) -> (usize, usize) {
        let class_bytes = self.backend.class_size(class).max(1);
        let cap = bin::limit_for(class_bytes) as usize;
        let batch_blocks = DEPOT_BATCH_BLOCKS.min(cap / 2).max(1);
        let room = (DEPOT_CLASS_BYTES_MAX / (batch_blocks * class_bytes)).clamp(1, DEPOT_ENTRIES);
        (batch_blocks, room)
    }

    /// Gives a chain split off a bin back to the backend.
    ///
    /// # Safety
    /// The caller owns the chain: `blocks` (at most `BATCH_BLOCKS_MAX`) free blocks of class
    /// `class` linked by `bin::split`.
    unsafe fn release_chain(&self, class: usize, first: *mut u8, blocks: usize) {
        let mut batch = [MaybeUninit::<*mut u8>::uninit(); BATCH_BLOCKS_MAX];
        // SAFETY: forwarded from the caller; a batch is never longer than a flush buffer
        // (`DEPOT_BATCH_BLOCKS <= BATCH_BLOCKS_MAX`, asserted).
        unsafe {
            let blocks = bin::unchain(first, blocks, &mut batch);
            self.backend.deallocate_batch(class, blocks);
        }
    }

    /// Empties every class's shelf (and, with `hardened`, the quarantine) into the backend;
    /// returns how many blocks went. For a program that wants its memory back now
    /// (heapkit-malloc's `malloc_trim`, tests), and for `Drop`. Batches shelved meanwhile by
    /// other threads stay.
    pub fn drain_depots(&self) -> usize {
        let mut blocks = 0;
        #[cfg(feature = "hardened")]
        {
            // Only the calling thread's quarantine: the others' are their threads' alone.
            let bins = self.current_magazine();
            if bins != empty_magazine() {
                // SAFETY: the magazine of this thread's slot is this thread's alone.
                blocks += unsafe { self.release_quarantine(bins) };
            }
        }
        for (class, depot) in self.depots.iter().enumerate() {
            while let Some((first, batch_blocks)) = depot.take() {
                // SAFETY: taken off the shelf, so ours: a chain of `batch_blocks` free
                // blocks of `class`.
                unsafe { self.release_chain(class, first, batch_blocks) };
                blocks += batch_blocks;
            }
        }
        blocks
    }

    /// Gives up to `blocks` of the bin's blocks back to the backend, in batches.
    ///
    /// # Safety
    /// The bin belongs to a magazine of this cache that the caller has exclusive use of.
    unsafe fn flush_bin(&self, bin: *mut Bin, class: usize, blocks: usize) -> usize {
        let mut batch = [MaybeUninit::<*mut u8>::uninit(); BATCH_BLOCKS_MAX];
        let mut flushed = 0;
        while flushed < blocks {
            let want = (blocks - flushed).min(BATCH_BLOCKS_MAX);
            // SAFETY: forwarded from the caller.
            let taken = unsafe { bin::take(bin, &mut batch[..want]) };
            if taken.is_empty() {
                break;
            }
            // SAFETY: cached blocks are live blocks of `class`, each on the list once.
            unsafe { self.backend.deallocate_batch(class, taken) };
            flushed += taken.len();
        }
        flushed
    }

    /// Gives every block of a magazine back; returns how many.
    ///
    /// # Safety
    /// The caller has exclusive use of the magazine (holds its slot, or `&mut self`).
    pub(crate) unsafe fn flush_magazine(&self, bins: *mut Bin) -> usize {
        // SAFETY: the header precedes the bins; the caller owns the magazine.
        let class_count = unsafe { (*header(bins)).class_count } as usize;
        #[cfg(feature = "hardened")]
        // SAFETY: forwarded from the caller.
        let quarantined = unsafe { self.release_quarantine(bins) };
        #[cfg(not(feature = "hardened"))]
        let quarantined = 0;
        quarantined
            + (0..class_count)
                .map(|class| {
                    // SAFETY: `class < class_count`; forwarded from the caller.
                    unsafe { self.flush_bin(bins.add(class), class, usize::MAX) }
                })
                .sum::<usize>()
    }

    /// This thread's magazine, made on first use; null when the thread has no slot or the
    /// magazine cannot be made (caching off for this call, not an error). Points the primary
    /// word at it when this is the primary cache.
    pub(crate) fn attach_magazine(&self) -> *mut Bin {
        let bins = self.attach_table_magazine();
        if !bins.is_null() && self.is_primary() {
            slot::set_primary_magazine(bins);
        }
        bins
    }

    /// [`attach_magazine`](Self::attach_magazine) without the primary word: the table's
    /// magazine for this thread's slot (taking a slot and making the magazine if need be), or
    /// null.
    pub(crate) fn attach_table_magazine(&self) -> *mut Bin {
        let mut slot = slot::current();
        if slot == UNASSIGNED {
            slot = slot::attach();
        }
        if slot >= SLOT_COUNT {
            return ptr::null_mut();
        }
        handover::magazine_or_install(&self.magazines[slot], empty_magazine(), || {
            self.make_magazine()
        })
    }

    /// Counts a refill; gives idle magazines back when a thread has exited since the last time
    /// (and, as a backstop, every `RECLAIM_EVERY_REFILLS` refills).
    ///
    /// # Safety
    /// `bins` is this thread's magazine.
    unsafe fn after_refill(&self, bins: *mut Bin) {
        // SAFETY: the caller owns the magazine; the header precedes the bins.
        let refills = unsafe {
            let h = header(bins);
            (*h).refills = (*h).refills.wrapping_add(1);
            (*h).refills
        };
        if refills & (RECLAIM_EVERY_REFILLS - 1) == 0 {
            self.reclaim_idle();
        } else {
            self.reclaim_exited();
        }
    }

    /// Returns this thread's cached blocks (in this cache) to the backend; returns how many.
    ///
    /// Call it before a thread goes idle for long, or in tests, to see the backend's figures
    /// without the cache's share.
    pub fn flush_thread(&self) -> usize {
        let bins = self.current_magazine();
        if bins == empty_magazine() {
            return 0;
        }
        // SAFETY: the magazine of this thread's slot is this thread's alone.
        unsafe { self.flush_magazine(bins) }
    }

    /// `deallocate_unsized` with the magazine read as [`fast_magazine`](Self::fast_magazine)
    /// says.
    ///
    /// # Safety
    /// As for `deallocate_unsized`.
    #[inline(always)]
    pub(crate) unsafe fn deallocate_unsized_in<const PRIMARY: bool>(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        let Some(bin) = (unsafe { self.backend.bin_of_block(ptr) }) else {
            // SAFETY: forwarded from the caller: a block of the backend with no class.
            return unsafe { Self::deallocate_uncached_unsized::<PRIMARY>(ptr, self) };
        };
        // Without hardening, a block of no class found through its slot goes to the uncached
        // bin, which sends it on to `deallocate_slow`: no branch here. The hardened paths look
        // at the block (its free mark, the bin's list) before the push, so they must know it has
        // a class first.
        if (bin::SECURE || cfg!(feature = "checked")) && bin >= self.backend.class_count() {
            // SAFETY: forwarded from the caller: a large block of the backend.
            return unsafe { Self::deallocate_uncached_unsized::<PRIMARY>(ptr, self) };
        }
        // SAFETY: forwarded from the caller; the bin is the block's class, or the uncached bin
        // (see `deallocate_in_class`).
        unsafe { self.deallocate_in_class_in::<PRIMARY>(ptr.as_ptr(), bin) }
    }
}

/// The first `blocks` entries of `buffer` (at most all of it), each set to null: the slice a
/// batch refill passes to `allocate_batch`.
#[inline(always)]
fn nulled(buffer: &mut [MaybeUninit<*mut u8>; BATCH_BLOCKS_MAX], blocks: usize) -> &mut [*mut u8] {
    let entries = &mut buffer[..blocks.min(BATCH_BLOCKS_MAX)];
    for entry in entries.iter_mut() {
        entry.write(ptr::null_mut());
    }
    // SAFETY: every entry of `entries` was just initialised; `MaybeUninit<T>` has `T`'s layout.
    unsafe {
        core::slice::from_raw_parts_mut(entries.as_mut_ptr().cast::<*mut u8>(), entries.len())
    }
}

impl<B: BatchAllocator> Drop for ThreadCache<B> {
    /// Returns every magazine's blocks to the backend and frees the magazines. `&mut self`
    /// proves that no thread is inside a call on this cache, so every magazine is ours.
    fn drop(&mut self) {
        self.drain_depots();
        for entry in &self.magazines[..SLOT_COUNT] {
            let bins = entry.swap(empty_magazine(), Ordering::Relaxed);
            if bins != empty_magazine() {
                // SAFETY: exclusive access (see above); the entry no longer points to it.
                unsafe {
                    self.flush_magazine(bins);
                    self.free_magazine(bins);
                }
            }
        }
    }
}
