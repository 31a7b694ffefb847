//! `ThreadCache<B>`: the per-thread front of a batch allocator.
//!
//! Fast path of `allocate` (and, mirrored, of `deallocate`):
//! size → class (`B::class_of`, sized), this thread's slot (one TLS load), this cache's
//! magazine for the slot (one load; a thread without one gets the shared empty magazine), pop
//! (one load of the block, two stores). Everything else — first use by a thread, an empty or
//! full bin, a class that is not cached, a thread without a slot — is one `#[cold]` call away.
//!
//! A magazine in memory (the table's pointer is to the first bin):
//!
//! ```text
//!   [ direct table: 64 bin pointers ][ header ][ bin 0 | bin 1 | … | bin n-1 | uncached bin ]
//!     by size step, for C's malloc               one per class           limit 0, always empty
//! ```

use crate::bin::{self, Bin, BinState, BATCH_BLOCKS_MAX, BIN_TARGET_BYTES};
use crate::depot::{Depot, DEPOT_ENTRIES};
use crate::handover;
use crate::slot::{self, SLOT_COUNT, TABLE_LEN, UNASSIGNED};
use crate::sync::{AtomicPtr, Ordering};
use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};
use core::sync::atomic::AtomicUsize;
use heapkit_core::{AllocError, Allocator, BatchAllocator, Introspect, InvariantError, Stats};

/// The most classes a backend may have for its blocks to be cached (a limit on the magazine's
/// size). A backend with more is served without caching.
pub const CLASS_COUNT_MAX: usize = 128;

/// A magazine is aligned to a cache line so that two threads' magazines never share one.
const MAGAZINE_ALIGN_BYTES: usize = 64;

/// Every this many refills, a thread returns the blocks of magazines whose threads have exited
/// (see [`ThreadCache::reclaim_idle`]). A power of two: the test is a mask.
const RECLAIM_EVERY_REFILLS: u32 = 1024;

const _: () = assert!(RECLAIM_EVERY_REFILLS.is_power_of_two());
const _: () = assert!(core::mem::size_of::<Header>() == core::mem::size_of::<Bin>());
const _: () = assert!(MAGAZINE_ALIGN_BYTES % core::mem::align_of::<Bin>() == 0);

/// Bins in a magazine for `class_count` classes: one per class, and the *uncached bin* after
/// them, at index `class_count`, whose limit stays 0 (see `BatchAllocator::bin_of_block`): an
/// unsized free of a block with no class lands there, finds no room and takes the slow path,
/// with no test for "no class" on the fast one.
const fn magazine_bins(class_count: usize) -> usize {
    class_count + 1
}

/// The size-indexed shortcut before each magazine's header (mimalloc's `pages_free_direct`):
/// for requests of `1..=DIRECT_MAX_BYTES` bytes aligned to [`DIRECT_STEP_BYTES`], entry
/// `(size - 1) / DIRECT_STEP_BYTES` is the bin of that size's class. One load instead of the
/// backend's class lookup and the bin's address arithmetic, on C's every `malloc`.
pub const DIRECT_MAX_BYTES: usize = 1024;

/// The width of a size step in the direct table, and the alignment its requests get: C's
/// `max_align_t`.
pub const DIRECT_STEP_BYTES: usize = heapkit_core::MAX_ALIGN_BYTES;

/// Entries in the direct table.
const DIRECT_LEN: usize = DIRECT_MAX_BYTES / DIRECT_STEP_BYTES;

const _: () = assert!(DIRECT_MAX_BYTES % DIRECT_STEP_BYTES == 0);
const _: () = assert!(
    (DIRECT_LEN * core::mem::size_of::<*mut Bin>()) % core::mem::size_of::<Bin>() == 0,
    "the header and bins after the table stay aligned"
);

/// The word before a magazine's first bin.
#[repr(C)]
struct Header {
    /// Refills this magazine has done (wrapping): paces `reclaim_idle`.
    refills: u32,
    /// Bins that follow (the backend's class count when the magazine was made).
    class_count: u32,
    _reserved: u64,
}

/// The magazine of every thread that has none: a bin for each of `CLASS_COUNT_MAX` classes and
/// the uncached bin, each empty with limit 0.
///
/// Table entries point here instead of holding null, so the fast paths need no null test: a
/// pop finds no block and a push finds no room, and both fall through to the slow path, which
/// knows this magazine by its address. Nothing ever writes to it (a bin with limit 0 is never
/// pushed to, an empty one never popped from), which is why a shared `static` can stand behind
/// the `*mut Bin` the table holds.
#[repr(C, align(64))]
struct EmptyMagazine {
    /// Every entry is the uncached bin: empty, so every lookup misses.
    direct: [*mut Bin; DIRECT_LEN],
    header: Header,
    bins: [Bin; magazine_bins(CLASS_COUNT_MAX)],
}

/// `Bin` holds a raw pointer, so the static needs the promise that sharing it is sound.
#[repr(transparent)]
pub(crate) struct SharedEmptyMagazine(EmptyMagazine);

// SAFETY: the magazine is never written (see `EmptyMagazine`); reads from any thread are fine.
unsafe impl Sync for SharedEmptyMagazine {}

pub(crate) static EMPTY_MAGAZINE: SharedEmptyMagazine = SharedEmptyMagazine(EmptyMagazine {
    direct: [(&raw const EMPTY_MAGAZINE.0.bins[CLASS_COUNT_MAX]).cast_mut(); DIRECT_LEN],
    header: Header {
        refills: 0,
        class_count: 0,
        _reserved: 0,
    },
    bins: [const { Bin::new(0) }; magazine_bins(CLASS_COUNT_MAX)],
});

const _: () = assert!(
    Bin::new(0).limit == 0,
    "the empty magazine's bins refuse pushes"
);

/// The shared empty magazine's first bin (compare with it; never write through it). A `const
/// fn`, so that it can also be the primary magazine word's initial value.
#[inline(always)]
pub(crate) const fn empty_magazine() -> *mut Bin {
    (&raw const EMPTY_MAGAZINE.0.bins).cast::<Bin>().cast_mut()
}

/// Where the empty magazine's first bin lies in its static, for the initial value of the
/// primary magazine word that slot.rs declares in assembly.
#[cfg_attr(
    not(all(
        target_arch = "x86_64",
        target_os = "linux",
        target_env = "gnu",
        not(miri)
    )),
    allow(dead_code)
)]
pub(crate) const EMPTY_BINS_OFFSET_BYTES: usize = core::mem::offset_of!(EmptyMagazine, bins);

/// The address of the cache that has claimed this thread-local word (0: none yet). See
/// [`ThreadCache::claim_primary`].
static PRIMARY_CACHE: AtomicUsize = AtomicUsize::new(0);

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
/// exits leaves its magazine for the next thread that takes its slot (see
/// [`reclaim_idle`](Self::reclaim_idle) for giving it back sooner).
pub struct ThreadCache<B: BatchAllocator> {
    backend: B,
    /// Magazine (pointer to its first bin) per thread slot, or the shared empty magazine; the
    /// sentinel slots keep the empty one forever.
    magazines: [AtomicPtr<Bin>; TABLE_LEN],
    /// Per class, the shelf of whole batches that a thread's flush leaves for another
    /// thread's refill (see `depot.rs`).
    depots: [Depot; CLASS_COUNT_MAX],
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
        }
    }

    /// The allocator behind the cache.
    pub const fn backend(&self) -> &B {
        &self.backend
    }

    /// This thread's magazine in this cache, or the empty magazine (one TLS load and one
    /// load; never null).
    #[inline(always)]
    fn current_magazine(&self) -> *mut Bin {
        let slot = slot::current();
        // SAFETY: `slot::current` is always below TABLE_LEN (asserted there).
        unsafe { self.magazines.get_unchecked(slot) }.load(Ordering::Relaxed)
    }

    /// This thread's magazine as a fast path reads it: from the primary magazine word (one TLS
    /// load) when `PRIMARY`, which only the primary cache's methods pass, else from the table.
    #[inline(always)]
    fn fast_magazine<const PRIMARY: bool>(&self) -> *mut Bin {
        if PRIMARY {
            slot::primary_magazine()
        } else {
            self.current_magazine()
        }
    }

    /// Whether this cache holds the primary magazine word.
    fn is_primary(&self) -> bool {
        PRIMARY_CACHE.load(Ordering::Relaxed) == self as *const Self as usize
    }
}

/// The *primary* cache: one cache in the process may have each thread's magazine in a
/// thread-local word of its own, so that its fast paths read the magazine with one TLS load
/// instead of the slot and the table (two instructions fewer per call: mimalloc's heap pointer
/// in TLS). The C library's heap claims it; every other cache uses the table.
///
/// The word is kept equal to the table's entry for the thread's slot, or the empty magazine:
/// set whenever the primary cache attaches a thread's magazine (every slow path does), reset at
/// thread exit before the slot is given back. So a stale word can only make a fast path miss.
impl<B: BatchAllocator> ThreadCache<B> {
    /// Makes this cache the primary one if no cache is yet; returns whether it is (now or
    /// already). Only a `'static` cache may be primary: the word must never outlive it.
    pub fn claim_primary(&'static self) -> bool {
        let me = self as *const Self as usize;
        if PRIMARY_CACHE.load(Ordering::Relaxed) == me {
            return true;
        }
        match PRIMARY_CACHE.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(holder) => holder == me,
        }
    }

    /// Claims the primary word if it is free, and points this thread's word at its magazine
    /// here: for the miss paths of callers of the `_primary` methods (the C `malloc`'s cold
    /// path), so that a thread's next call hits.
    #[cold]
    pub fn sync_primary(&'static self) {
        if self.claim_primary() {
            slot::set_primary_magazine(self.current_magazine());
        }
    }

    /// [`allocate_cached`](Self::allocate_cached) for C's `malloc`: a block of `size_bytes`
    /// (`1..=DIRECT_MAX_BYTES`) aligned to [`DIRECT_STEP_BYTES`], from the magazine the
    /// primary word names, through its direct table (no class lookup); or null when only an
    /// allocating method can serve it.
    ///
    /// # Safety
    /// No other cache has claimed the primary word (`claim_primary` would return true for this
    /// one); otherwise the word may hold another cache's magazine.
    #[inline(always)]
    pub unsafe fn allocate_cached_small_primary(&'static self, size_bytes: usize) -> *mut u8 {
        debug_assert!((1..=DIRECT_MAX_BYTES).contains(&size_bytes));
        let bins = slot::primary_magazine();
        // SAFETY: every magazine, the empty one included, has a full direct table before its
        // header, and the index is below DIRECT_LEN for the sizes this method takes. The bin
        // is this thread's (or an empty one, which a pop never writes): see `allocate_in_class`.
        unsafe {
            let entry = direct_table(bins).add((size_bytes - 1) / DIRECT_STEP_BYTES);
            bin::pop(entry.read())
        }
    }

    /// [`deallocate_unsized`](heapkit_core::UnsizedAllocator::deallocate_unsized) through the
    /// primary word.
    ///
    /// # Safety
    /// As for `deallocate_unsized`, and as for
    /// [`allocate_cached_small_primary`](Self::allocate_cached_small_primary).
    #[inline(always)]
    pub unsafe fn deallocate_unsized_primary(&'static self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.deallocate_unsized_in::<true>(ptr) }
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
        unsafe { bin::pop(bin::at(bins, class)) }
    }

    /// Allocates a block of a layout with a class (the address only; `allocate_nonzero` adds
    /// the length). Null when out of memory.
    #[inline(always)]
    fn allocate_in_class(&self, class: usize, layout: Layout) -> *mut u8 {
        let bins = self.current_magazine();
        // SAFETY: `class < class_count` (the backend's contract) and the magazine has
        // `class_count` bins (the empty one `CLASS_COUNT_MAX`); this thread holds the slot, so
        // the bin is ours alone (or the empty magazine's, which a pop never writes).
        let block = unsafe { bin::pop(bin::at(bins, class)) };
        if !block.is_null() {
            return block;
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
    unsafe fn deallocate_in_class(&self, ptr: *mut u8, class: usize) {
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
        let bins = self.fast_magazine::<PRIMARY>();
        #[cfg(feature = "checked")]
        // SAFETY: forwarded from the caller.
        unsafe {
            self.check_free(bins, ptr, class)
        };
        let secrets = bin::secrets();
        // SAFETY: the caller promises a live block of a cached class: two words long.
        if unsafe { bin::is_marked_free(ptr, secrets) } {
            // SAFETY: forwarded from the caller.
            return unsafe { self.deallocate_marked(bins, ptr, class) };
        }
        // SAFETY: as in `allocate_in_class` (a push to the empty magazine finds limit 0 and
        // writes nothing); the caller gives up a live block of the class.
        if unsafe { bin::push_with(bin::at(bins, class), ptr, secrets) } {
            return;
        }
        // SAFETY: forwarded from the caller.
        unsafe { Self::deallocate_slow(ptr, class, self) }
    }

    /// The empty-bin path: make this thread's magazine if needed, refill the bin, or fall back
    /// to the backend.
    #[cold]
    #[inline(never)]
    fn allocate_slow(&self, class: usize, layout: Layout) -> *mut u8 {
        let bins = self.attach_magazine();
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
    fn allocate_uncached(&self, layout: Layout) -> *mut u8 {
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
    #[cold]
    #[inline(never)]
    unsafe fn deallocate_uncached_unsized(ptr: NonNull<u8>, cache: &Self) {
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
        let mut batch = [ptr::null_mut::<u8>(); BATCH_BLOCKS_MAX];
        let first = self
            .backend
            .allocate_batch(class, &mut batch[..want.min(BATCH_BLOCKS_MAX)]);
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
            let n = self
                .backend
                .allocate_batch(class, &mut batch[..(want - got).min(BATCH_BLOCKS_MAX)]);
            if n == 0 {
                break;
            }
            // SAFETY: as above; the bin holds `got - 1` blocks and `got - 1 + n < want`.
            unsafe { bin::put(bin, &batch[..n]) };
            got += n;
        }
        block
    }

    /// With `secure`: a freed block carries the free mark, so it is probably free already.
    /// If it is in this thread's bin, that is a double free: stop. Otherwise hand it to the
    /// backend, whose exact check (the slab's live bitmap) decides — it stops on a double free
    /// and takes the block back if the mark was only the program's data.
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
    /// # Safety
    /// As for `deallocate_in_class`.
    #[cold]
    #[inline(never)]
    unsafe fn deallocate_slow(ptr: *mut u8, class: usize, cache: &Self) {
        if class >= cache.backend.class_count() {
            // SAFETY: forwarded from the caller: a block of no class, from the uncached bin.
            return unsafe {
                Self::deallocate_uncached_unsized(NonNull::new_unchecked(ptr), cache)
            };
        }
        let bins = cache.attach_magazine();
        // SAFETY: a non-null magazine has a bin per class and belongs to this thread's slot.
        if bins.is_null() || unsafe { (*bins.add(class)).limit } == 0 {
            // SAFETY: forwarded from the caller: a live block of `class`.
            unsafe { cache.backend.deallocate_batch(class, &[ptr]) };
            return;
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
        let Some(depot) = self.depots.get(class) else {
            return 0;
        };
        let (batch_blocks, room) = self.depot_shape(class);
        let mut shelved = 0;
        while blocks - shelved >= batch_blocks {
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

    /// Empties every class's shelf into the backend; returns how many blocks went. For a
    /// program that wants its memory back now (heapkit-malloc's `malloc_trim`, tests), and for
    /// `Drop`. Batches shelved meanwhile by other threads stay.
    pub fn drain_depots(&self) -> usize {
        let mut blocks = 0;
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
    unsafe fn flush_magazine(&self, bins: *mut Bin) -> usize {
        // SAFETY: the header precedes the bins; the caller owns the magazine.
        let class_count = unsafe { (*header(bins)).class_count } as usize;
        (0..class_count)
            .map(|class| {
                // SAFETY: `class < class_count`; forwarded from the caller.
                unsafe { self.flush_bin(bins.add(class), class, usize::MAX) }
            })
            .sum()
    }

    /// This thread's magazine, made on first use; null when the thread has no slot or the
    /// magazine cannot be made (caching off for this call, not an error).
    fn attach_magazine(&self) -> *mut Bin {
        let mut slot = slot::current();
        if slot == UNASSIGNED {
            slot = slot::attach();
        }
        if slot >= SLOT_COUNT {
            return ptr::null_mut();
        }
        let bins = handover::magazine_or_install(&self.magazines[slot], empty_magazine(), || {
            self.make_magazine()
        });
        if !bins.is_null() && self.is_primary() {
            slot::set_primary_magazine(bins);
        }
        bins
    }

    fn magazine_layout(class_count: usize) -> Option<Layout> {
        // The direct table, the header, then the bins.
        let bytes = magazine_bins(class_count)
            .checked_add(1)?
            .checked_mul(core::mem::size_of::<Bin>())?
            .checked_add(DIRECT_TABLE_BYTES)?;
        Layout::from_size_align(bytes, MAGAZINE_ALIGN_BYTES).ok()
    }

    /// Allocates a magazine from the backend and sets every bin's limit from its class size.
    fn make_magazine(&self) -> *mut Bin {
        if bin::SECURE {
            // Drawn before the first link of this magazine is encoded (see
            // heapkit_core::secure).
            heapkit_core::secure::key();
        }
        let class_count = self.backend.class_count();
        if class_count == 0 || class_count > CLASS_COUNT_MAX {
            return ptr::null_mut();
        }
        let Some(layout) = Self::magazine_layout(class_count) else {
            return ptr::null_mut();
        };
        let Ok(block) = self.backend.allocate_nonzero(layout) else {
            return ptr::null_mut();
        };
        // SAFETY: the block holds the direct table, a header and `magazine_bins(class_count)`
        // bins, aligned for all three.
        unsafe {
            let base = block
                .cast::<u8>()
                .as_ptr()
                .add(DIRECT_TABLE_BYTES)
                .cast::<Header>();
            base.write(Header {
                refills: 0,
                class_count: class_count as u32,
                _reserved: 0,
            });
            let bins = base.add(1).cast::<Bin>();
            for class in 0..class_count {
                bins.add(class)
                    .write(Bin::new(self.backend.class_size(class)));
            }
            bins.add(class_count).write(Bin::new(0));
            for (index, bin) in self.direct_bins(bins, class_count).enumerate() {
                direct_table(bins).add(index).write(bin);
            }
            bins
        }
    }

    /// The direct table's entries for a magazine: for each size step, the bin of the class
    /// that serves every size of the step with `DIRECT_STEP_BYTES` alignment, or the uncached
    /// bin when the step's sizes do not share one cached class (the lookup then misses and
    /// the caller takes the full path).
    fn direct_bins(
        &self,
        bins: *mut Bin,
        class_count: usize,
    ) -> impl Iterator<Item = *mut Bin> + '_ {
        let class_of_size = |size_bytes: usize| {
            Layout::from_size_align(size_bytes, DIRECT_STEP_BYTES)
                .ok()
                .and_then(|layout| self.backend.class_of(layout))
        };
        (0..DIRECT_LEN).map(move |index| {
            let smallest = class_of_size(index * DIRECT_STEP_BYTES + 1);
            let largest = class_of_size((index + 1) * DIRECT_STEP_BYTES);
            let class = match (smallest, largest) {
                (Some(a), Some(b)) if a == b && a < class_count => a,
                _ => class_count,
            };
            bins.wrapping_add(class)
        })
    }

    /// Counts a refill and every `RECLAIM_EVERY_REFILLS` gives idle magazines back.
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

    /// Returns the cached blocks of threads that have exited (their slots are free) to the
    /// backend and frees their magazines; returns how many blocks.
    ///
    /// A thread's exit cannot do this itself (thread-local storage is not generic, so the exit
    /// hook does not know which caches the thread used); it only frees its slot. The next
    /// thread that takes the slot inherits the magazine, and every thread runs this every
    /// `RECLAIM_EVERY_REFILLS` refills, so idle memory stays bounded by the live threads'.
    pub fn reclaim_idle(&self) -> usize {
        let owners = slot::owners();
        let mut blocks = 0;
        for (slot, entry) in self.magazines[..SLOT_COUNT].iter().enumerate() {
            blocks += handover::reclaim(owners, slot, entry, empty_magazine(), |bins| {
                // SAFETY: `reclaim` holds the slot and has detached the magazine from the
                // table: no thread uses it, and no entry points to it.
                unsafe {
                    let flushed = self.flush_magazine(bins);
                    self.free_magazine(bins);
                    flushed
                }
            });
        }
        blocks
    }

    /// The calling thread's bin of class `class` in this cache: its count, limit and next
    /// refill, in blocks. `None` when the thread has no magazine here yet (or no slot) or
    /// `class` is not one of the backend's classes. Allocates nothing, changes nothing.
    pub fn bin_state(&self, class: usize) -> Option<BinState> {
        let bins = self.current_magazine();
        if bins == empty_magazine() {
            return None;
        }
        // SAFETY: this thread's magazine: its header precedes the bins, and only this thread
        // writes them.
        unsafe {
            if class >= (*header(bins)).class_count as usize {
                return None;
            }
            Some(BinState::of(&*bins.add(class)))
        }
    }

    /// Frees an emptied magazine.
    ///
    /// # Safety
    /// The caller owns the magazine, it holds no blocks, and no table entry points to it.
    unsafe fn free_magazine(&self, bins: *mut Bin) {
        // SAFETY: forwarded; the header precedes the bins and records the class count the
        // magazine was allocated with.
        unsafe {
            let layout = Self::magazine_layout((*header(bins)).class_count as usize);
            debug_assert!(layout.is_some());
            if let Some(layout) = layout {
                let base = direct_table(bins).cast::<u8>();
                self.backend
                    .deallocate_nonzero(NonNull::new_unchecked(base), layout);
            }
        }
    }

    /// The `checked` feature's double-free and wrong-class tests.
    ///
    /// # Safety
    /// `ptr` is claimed to be a live block of class `class`; `bins` is this thread's magazine or
    /// the empty one.
    #[cfg(feature = "checked")]
    unsafe fn check_free(&self, bins: *mut Bin, ptr: *mut u8, class: usize) {
        // SAFETY: the caller claims `ptr` is live; the magazine is ours.
        unsafe {
            let found = self.backend.class_of_block(NonNull::new_unchecked(ptr));
            if found.is_some() && found != Some(class) {
                heapkit_core::fatal(
                    "heapkit-tcache",
                    "block freed with a layout of another size class",
                    ptr as usize,
                );
            }
            if bin::contains(bins.add(class), ptr) {
                heapkit_core::fatal(
                    "heapkit-tcache",
                    "double free: block is already in the thread cache",
                    ptr as usize,
                );
            }
        }
    }

    /// Checks this thread's magazine: counts match the lists, limits hold, blocks are aligned
    /// and (where the backend can tell) of the bin's class.
    fn check_current_magazine(&self) -> Result<(), InvariantError> {
        let bins = self.current_magazine();
        let word = slot::primary_magazine();
        if self.is_primary() && word != bins && word != empty_magazine() {
            return Err(InvariantError::new(
                "the primary magazine word names another magazine than the table",
                word as usize,
            ));
        }
        if bins == empty_magazine() {
            return Ok(());
        }
        // SAFETY: this thread's magazine; its header precedes the bins.
        let class_count = unsafe { (*header(bins)).class_count } as usize;
        if class_count != self.backend.class_count() {
            return Err(InvariantError::new(
                "magazine class count differs from backend",
                bins as usize,
            ));
        }
        for class in 0..class_count {
            // SAFETY: `class < class_count`; the bin is ours.
            unsafe { self.check_bin(bins.add(class), class)? };
        }
        // SAFETY: the uncached bin follows the class bins.
        let uncached = unsafe { &*bins.add(class_count) };
        if uncached.limit != 0 || uncached.count != 0 || !uncached.head.is_null() {
            return Err(InvariantError::new(
                "the uncached bin holds blocks or has a limit",
                bins as usize,
            ));
        }
        for (index, expected) in self.direct_bins(bins, class_count).enumerate() {
            // SAFETY: the magazine's direct table has DIRECT_LEN entries.
            let entry = unsafe { direct_table(bins).add(index).read() };
            if entry != expected {
                return Err(InvariantError::new(
                    "direct table entry is not its size's bin",
                    entry as usize,
                ));
            }
        }
        Ok(())
    }

    /// How many blocks wait on the shelves for another thread's refill (a snapshot: other
    /// threads push and take meanwhile). They count as live in the backend's figures.
    pub fn shelved_blocks(&self) -> usize {
        let mut blocks = 0;
        for depot in &self.depots {
            depot.for_each(|_, batch_blocks| blocks += batch_blocks);
        }
        blocks
    }

    /// Walks every batch on the shelves: each is a chain of exactly its length, of blocks the
    /// backend places in its class. `&mut self` proves that no thread pushes or takes
    /// meanwhile (a walk racing a refill would read blocks being handed out).
    pub fn check_depots(&mut self) -> Result<(), InvariantError> {
        for (class, depot) in self.depots.iter().enumerate() {
            let mut result = Ok(());
            depot.for_each(|first, blocks| {
                if result.is_ok() {
                    result = self.check_batch(class, first, blocks);
                }
            });
            result?;
        }
        Ok(())
    }

    fn check_batch(
        &self,
        class: usize,
        first: *mut u8,
        blocks: usize,
    ) -> Result<(), InvariantError> {
        // SAFETY: a shelved chain, which nobody changes while the caller holds `&mut self`.
        if !unsafe { bin::chain_has_length(first, blocks) } {
            return Err(InvariantError::new(
                "a shelved batch's chain is not as long as its entry says",
                first as usize,
            ));
        }
        let mut cursor = first;
        while !cursor.is_null() {
            // SAFETY: a block of the chain (just walked): live in the backend, cached here.
            let found = unsafe { self.backend.class_of_block(NonNull::new_unchecked(cursor)) };
            if found != Some(class) {
                return Err(InvariantError::new(
                    "a shelved block is not of its shelf's class",
                    cursor as usize,
                ));
            }
            // SAFETY: as above.
            cursor = unsafe { bin::next_of(cursor) };
        }
        Ok(())
    }

    /// # Safety
    /// `bin` is a bin of this thread's magazine, of class `class`.
    unsafe fn check_bin(&self, bin: *mut Bin, class: usize) -> Result<(), InvariantError> {
        // SAFETY: the caller owns the bin; every link is a cached (live) block.
        unsafe {
            let (count, limit) = ((*bin).count, (*bin).limit);
            if count > limit as u32 || limit as u32 > bin::BIN_BLOCKS_MAX {
                return Err(InvariantError::new(
                    "bin holds more blocks than its limit",
                    bin as usize,
                ));
            }
            let class_size = self.backend.class_size(class);
            let mut cursor = (*bin).head;
            let mut seen = 0u32;
            while !cursor.is_null() {
                if seen == count {
                    return Err(InvariantError::new(
                        "bin list longer than its count",
                        cursor as usize,
                    ));
                }
                if cursor as usize % heapkit_core::WORD_BYTES != 0 {
                    return Err(InvariantError::new(
                        "cached block misaligned",
                        cursor as usize,
                    ));
                }
                let owner = self.backend.class_of_block(NonNull::new_unchecked(cursor));
                if owner.is_some() && owner != Some(class) {
                    return Err(InvariantError::new(
                        "cached block in the bin of another class",
                        cursor as usize,
                    ));
                }
                if self.backend.usable_size(NonNull::new_unchecked(cursor)) < class_size {
                    return Err(InvariantError::new(
                        "cached block smaller than its class",
                        cursor as usize,
                    ));
                }
                // With `secure`, a mark that does not fit is reported here, before `next_of`
                // would stop the process on it.
                if bin::SECURE && !bin::is_marked_free(cursor, bin::secrets()) {
                    return Err(InvariantError::new(
                        "cached block's free mark does not fit its link (overwritten)",
                        cursor as usize,
                    ));
                }
                cursor = bin::next_of(cursor);
                seen += 1;
            }
            if seen != count {
                return Err(InvariantError::new(
                    "bin list shorter than its count",
                    bin as usize,
                ));
            }
        }
        Ok(())
    }

    /// Resizes in place when both layouts map to the same class, through the backend when both
    /// are large, and by moving otherwise.
    ///
    /// # Safety
    /// `ptr` is live with `old_layout`; both sizes are non-zero.
    unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
        grow: bool,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let old_class = self.backend.class_of(old_layout);
        let new_class = self.backend.class_of(new_layout);
        match (old_class, new_class) {
            // The class serves the new layout's size and alignment, and a later free with
            // `new_layout` finds the same class: the block can stay.
            (Some(a), Some(b)) if a == b => Ok(NonNull::slice_from_raw_parts(
                ptr,
                self.backend.class_size(a),
            )),
            // SAFETY: a large block of the backend, forwarded with the caller's promise.
            (None, None) => unsafe {
                if grow {
                    self.backend.grow_nonzero(ptr, old_layout, new_layout)
                } else {
                    self.backend.shrink_nonzero(ptr, old_layout, new_layout)
                }
            },
            // Growing out of the cached classes: the result is a block the cache never holds,
            // so the backend may grow it in place (heapkit-bins into a free neighbour or the
            // top, as glibc's realloc does) instead of the cache moving it. Not the other way:
            // a block shrunk into a class must really be one of that class's blocks before a
            // free can cache it, so shrinking into the classes relocates (below).
            // SAFETY: a live block of the backend (cached classes are the backend's blocks),
            // forwarded with the caller's promise.
            (Some(_), None) if grow => unsafe {
                self.backend.grow_nonzero(ptr, old_layout, new_layout)
            },
            // SAFETY: forwarded from the caller.
            _ => unsafe { heapkit_core::relocate(self, ptr, old_layout, new_layout) },
        }
    }
}

/// The header of the magazine whose first bin is `bins`.
fn header(bins: *mut Bin) -> *mut Header {
    bins.cast::<Header>().wrapping_sub(1)
}

/// The bytes of a magazine's direct table.
const DIRECT_TABLE_BYTES: usize = DIRECT_LEN * core::mem::size_of::<*mut Bin>();

/// The first entry of the direct table before a magazine's header (the magazine's first byte).
#[inline(always)]
fn direct_table(bins: *mut Bin) -> *mut *mut Bin {
    header(bins).cast::<*mut Bin>().wrapping_sub(DIRECT_LEN)
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

// SAFETY: the block contract holds because every block comes from the backend, unchanged: the
// cache only keeps freed blocks for a while (it never hands one out twice: a block is either on
// one bin's list or live), and in-place resizing keeps a block in its class, which serves the
// new layout's size and alignment (the backend's contract).
unsafe impl<B: BatchAllocator> Allocator for ThreadCache<B> {
    #[inline(always)]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let Some(class) = self.backend.class_of(layout) else {
            return self.backend.allocate_nonzero(layout);
        };
        let block = NonNull::new(self.allocate_in_class(class, layout)).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(
            block,
            self.backend.class_size(class),
        ))
    }

    #[inline(always)]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        match self.backend.class_of(layout) {
            // SAFETY: forwarded from the caller; the layout fits the block, so its class is the
            // block's.
            Some(class) => unsafe {
                debug_assert!(
                    ptr.as_ptr() as usize % layout.align() == 0,
                    "misaligned free"
                );
                self.deallocate_in_class(ptr.as_ptr(), class)
            },
            // SAFETY: forwarded from the caller: a large block of the backend.
            None => unsafe { self.backend.deallocate_nonzero(ptr, layout) },
        }
    }

    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if self.backend.class_of(layout).is_none() {
            return self.backend.allocate_zeroed_nonzero(layout);
        }
        let block = self.allocate_nonzero(layout)?;
        // SAFETY: a fresh block of `block.len()` writable bytes.
        unsafe { ptr::write_bytes(block.cast::<u8>().as_ptr(), 0, block.len()) };
        Ok(block)
    }

    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(new_layout.size() >= old_layout.size());
        // SAFETY: forwarded from the caller.
        unsafe { self.resize(ptr, old_layout, new_layout, true) }
    }

    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(new_layout.size() <= old_layout.size());
        // SAFETY: forwarded from the caller.
        unsafe { self.resize(ptr, old_layout, new_layout, false) }
    }
}

// SAFETY: sizes and classes come from the backend, which knows every block; an unsized free of
// a small block lands in the bin of the block's own class.
unsafe impl<B: BatchAllocator> heapkit_core::UnsizedAllocator for ThreadCache<B> {
    unsafe fn usable_size(&self, ptr: NonNull<u8>) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { self.backend.usable_size(ptr) }
    }

    #[inline(always)]
    unsafe fn deallocate_unsized(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.deallocate_unsized_in::<false>(ptr) }
    }
}

impl<B: BatchAllocator> ThreadCache<B> {
    /// `deallocate_unsized` with the magazine read as [`fast_magazine`](Self::fast_magazine)
    /// says.
    ///
    /// # Safety
    /// As for `deallocate_unsized`.
    #[inline(always)]
    unsafe fn deallocate_unsized_in<const PRIMARY: bool>(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        let Some(bin) = (unsafe { self.backend.bin_of_block(ptr) }) else {
            // SAFETY: forwarded from the caller: a block of the backend with no class.
            return unsafe { Self::deallocate_uncached_unsized(ptr, self) };
        };
        // Without hardening, a block of no class found through its slot goes to the uncached
        // bin, which sends it on to `deallocate_slow`: no branch here. The hardened paths look
        // at the block (its free mark, the bin's list) before the push, so they must know it has
        // a class first.
        if (bin::SECURE || cfg!(feature = "checked")) && bin >= self.backend.class_count() {
            // SAFETY: forwarded from the caller: a large block of the backend.
            return unsafe { Self::deallocate_uncached_unsized(ptr, self) };
        }
        // SAFETY: forwarded from the caller; the bin is the block's class, or the uncached bin
        // (see `deallocate_in_class`).
        unsafe { self.deallocate_in_class_in::<PRIMARY>(ptr.as_ptr(), bin) }
    }
}

// SAFETY: as for the `Allocator` impl; null stands for `AllocError`, and `realloc` keeps the
// old block on failure because `grow`/`shrink` do.
unsafe impl<B: BatchAllocator> GlobalAlloc for ThreadCache<B> {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.backend.class_of(layout) {
            Some(class) => self.allocate_in_class(class, layout),
            None => self.allocate_uncached(layout),
        }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `GlobalAlloc` callers pass a live, non-null block and its layout.
        unsafe { self.deallocate_nonzero(NonNull::new_unchecked(ptr), layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.allocate_zeroed_nonzero(layout) {
            Ok(block) => block.cast::<u8>().as_ptr(),
            Err(AllocError) => ptr::null_mut(),
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `GlobalAlloc::realloc` callers promise a non-zero `new_size` that, rounded up
        // to the alignment, does not overflow `isize`, and a live non-null block.
        let result = unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let ptr = NonNull::new_unchecked(ptr);
            if new_size >= layout.size() {
                self.grow_nonzero(ptr, layout, new_layout)
            } else {
                self.shrink_nonzero(ptr, layout, new_layout)
            }
        };
        match result {
            Ok(block) => block.cast::<u8>().as_ptr(),
            Err(AllocError) => ptr::null_mut(),
        }
    }
}

impl<B: BatchAllocator + Introspect> Introspect for ThreadCache<B> {
    /// The backend's check, then this thread's magazine (other threads' magazines may be
    /// changing under us, so they are not walked).
    fn check(&self) -> Result<(), InvariantError> {
        self.backend.check()?;
        self.check_current_magazine()
    }

    /// The backend's figures. Blocks cached in magazines count as live there: call
    /// [`flush_thread`](ThreadCache::flush_thread) first for figures without them.
    fn stats(&self) -> Option<Stats> {
        self.backend.stats()
    }
}
