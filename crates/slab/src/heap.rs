//! `Slab<P>`: the allocator value — one lock per size class, one for chunks — and the
//! lock-free pointer lookup every free starts with.

use crate::bad_input::report;
use crate::chunk::{
    block_header, header_of, ident, kind, slot_of, slot_start, small_tag, Chunk, Chunks,
    PurgePolicy, CHUNK_MAGIC, HUGE_MAGIC, NO_SMALL_TAG,
};
use crate::classes::{class_of_layout, class_usable_bytes, is_block_offset, CLASS_COUNT};
use crate::geometry::{
    DEFAULT_PURGE_DELAY_MS, DEFAULT_PURGE_THRESHOLD_BYTES, RETAINED_EMPTY_CHUNKS, SLOT_BYTES,
};
use crate::guard::Guarded;
use crate::huge::Huge;
use crate::peak::{LiveBytes, PeakMarks};
use crate::slab_meta::{SlabMeta, SECURE};
use crate::sync::{AtomicU64, AtomicUsize};
use core::alloc::Layout;
use core::ptr::{self, addr_of, NonNull};
use core::sync::atomic::Ordering;
use heapkit_core::{AllocError, PageSource};

/// A size-class slab allocator over a [`PageSource`]. See the crate docs for the design.
///
/// `Slab<P>` is `Sync` when `P` is: each size class has its own lock, chunks and large objects
/// share one more, and finding a block's metadata from its address takes no lock.
pub struct Slab<P: PageSource> {
    pub(crate) classes: [Guarded<ClassList>; CLASS_COUNT],
    pub(crate) chunks: Guarded<Chunks>,
    /// This slab's id in its chunk headers (0 until the first mapping).
    pub(crate) owner: AtomicUsize,
    /// `small_tag(owner)` once the owner is set, `NO_SMALL_TAG` before: what the unsized-free
    /// fast path compares a chunk header's `small_tag` with.
    pub(crate) small_tag: AtomicUsize,
    pub(crate) purge_threshold_bytes: AtomicUsize,
    pub(crate) purge_delay_ms: AtomicU64,
    pub(crate) reallocations: AtomicUsize,
    /// Live bytes (folded per class, exact for large and huge blocks) and their peak.
    pub(crate) live: LiveBytes,
    pub(crate) pages: P,
}

// SAFETY: all shared state is behind the class locks and the chunk lock (`Guarded`), or atomic;
// chunk memory is owned by the slab and reached only under those locks, except the idents and
// magic words, which are written before any block they describe is handed out. `P: Sync`
// makes the shared page source usable from every thread.
unsafe impl<P: PageSource + Sync> Sync for Slab<P> {}
// SAFETY: the slab owns its chunks (raw pointers into memory from `P`); moving it to another
// thread moves that ownership along with `P`.
unsafe impl<P: PageSource + Send> Send for Slab<P> {}
static_assertions::assert_impl_all!(Slab<heapkit_pages::MmapPages>: Send, Sync);

/// The blocks of one size class: the slabs with room, and the class's counters.
///
/// `repr(C)` because the order matters for speed: `live_blocks` (changed by every call) and
/// `deallocations` (changed by every free) must not be neighbours. Adjacent counters bumped
/// together get fused by the compiler into one 16-byte vector read-modify-write, and that
/// 16-byte load cannot be forwarded from the allocation path's 8-byte store of `live_blocks`: a
/// store-forwarding stall on every alloc+free pair.
#[repr(C)]
pub(crate) struct ClassList {
    /// Slabs of this class with at least one free block (full slabs are on no list).
    pub head: *mut SlabMeta,
    pub live_blocks: usize,
    pub listed: usize,
    /// Slabs this class holds, full ones included.
    pub slabs: usize,
    /// When this class next folds its live bytes into `Slab::live` (see `peak.rs`).
    pub peak: PeakMarks,
    /// Blocks returned over the class's life. Allocations are not counted separately: they are
    /// `deallocations + live_blocks`.
    pub deallocations: usize,
}

impl ClassList {
    const fn new() -> Self {
        ClassList {
            head: ptr::null_mut(),
            listed: 0,
            slabs: 0,
            live_blocks: 0,
            deallocations: 0,
            peak: PeakMarks::new(),
        }
    }

    /// Puts `slab` at the front (it is served next: its freed blocks are hot in cache).
    ///
    /// # Safety
    /// `slab` is a live slab of this class, not listed; the class lock is held.
    pub(crate) unsafe fn link_front(&mut self, slab: *mut SlabMeta) {
        // SAFETY: forwarded from the caller; `head`, if any, is a live listed slab.
        unsafe {
            debug_assert!(!(*slab).listed);
            (*slab).prev = ptr::null_mut();
            (*slab).next = self.head;
            (*slab).listed = true;
            if !self.head.is_null() {
                (*self.head).prev = slab;
            }
        }
        self.head = slab;
        self.listed += 1;
    }

    /// Takes `slab` off the list.
    ///
    /// # Safety
    /// `slab` is a listed slab of this class; the class lock is held.
    pub(crate) unsafe fn unlink(&mut self, slab: *mut SlabMeta) {
        // SAFETY: forwarded from the caller; neighbours are live listed slabs.
        unsafe {
            debug_assert!((*slab).listed);
            let (prev, next) = ((*slab).prev, (*slab).next);
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*slab).listed = false;
        }
        self.listed -= 1;
    }
}

/// Where a live block lives, found from its address.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Block {
    Small {
        chunk: *mut Chunk,
        slot: usize,
        class: usize,
    },
    Large {
        chunk: *mut Chunk,
        slot: usize,
        slots: usize,
    },
    Huge {
        header: *mut Huge,
    },
}

/// Every slab's owner id comes from here (`core`'s atomic even under loom: it is a `static`,
/// and orders nothing).
static NEXT_OWNER_ID: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(1);

const_fn_unless_loom! {
    /// One lock per class, each guarding an empty list.
    fn class_lists() -> [Guarded<ClassList>; CLASS_COUNT] {
        #[cfg(not(loom))]
        return [const { Guarded::new(ClassList::new()) }; CLASS_COUNT];
        #[cfg(loom)]
        return core::array::from_fn(|_| Guarded::new(ClassList::new()));
    }
}

impl<P: PageSource> Slab<P> {
    const_fn_unless_loom! {
        /// An empty slab allocator over `pages`. Nothing is mapped until the first allocation,
        /// so this is `const` and a `static` can hold the result (not under `cfg(loom)`, whose
        /// atomics have no `const` constructors).
        pub fn new(pages: P) -> Self {
            Slab {
                classes: class_lists(),
                chunks: Guarded::new(Chunks::new()),
                owner: AtomicUsize::new(0),
                small_tag: AtomicUsize::new(NO_SMALL_TAG),
                purge_threshold_bytes: AtomicUsize::new(DEFAULT_PURGE_THRESHOLD_BYTES),
                purge_delay_ms: AtomicU64::new(DEFAULT_PURGE_DELAY_MS),
                reallocations: AtomicUsize::new(0),
                live: LiveBytes::new(),
                pages,
            }
        }
    }

    /// The page source.
    pub fn pages(&self) -> &P {
        &self.pages
    }

    /// How many bytes of freed slots may stay resident before they are purged
    /// ([`DEFAULT_PURGE_THRESHOLD_BYTES`] unless changed). 0 purges on every release.
    pub fn purge_threshold_bytes(&self) -> usize {
        self.purge_threshold_bytes.load(Ordering::Relaxed)
    }

    /// Changes the purge threshold (see [`purge_threshold_bytes`](Self::purge_threshold_bytes)).
    pub fn set_purge_threshold_bytes(&self, threshold_bytes: usize) {
        self.purge_threshold_bytes
            .store(threshold_bytes, Ordering::Relaxed);
    }

    /// How long a freed slot may stay dirty (its pages resident) below the purge threshold
    /// ([`DEFAULT_PURGE_DELAY_MS`] unless changed; `u64::MAX`: forever, 0: not at all).
    ///
    /// The slab starts no thread: an expired slot is purged by the next slow path that
    /// notices — a slab or span released, a slab refilled, a span allocated — and the clock
    /// is read only there. A program that stops calling the allocator keeps its dirty slots
    /// until [`trim`](Self::trim), or until someone calls [`purge_due`](Self::purge_due).
    pub fn purge_delay_ms(&self) -> u64 {
        self.purge_delay_ms.load(Ordering::Relaxed)
    }

    /// Changes the purge delay (see [`purge_delay_ms`](Self::purge_delay_ms)).
    pub fn set_purge_delay_ms(&self, delay_ms: u64) {
        self.purge_delay_ms.store(delay_ms, Ordering::Relaxed);
    }

    /// The purge settings now, with the threshold capped at `threshold_cap_bytes`.
    pub(crate) fn purge_policy(&self, threshold_cap_bytes: usize) -> PurgePolicy {
        PurgePolicy {
            threshold_bytes: self.purge_threshold_bytes().min(threshold_cap_bytes),
            delay_ms: self.purge_delay_ms(),
        }
    }

    /// This slab's owner id, assigned on first use.
    pub(crate) fn owner_id(&self) -> usize {
        let id = self.owner.load(Ordering::Relaxed);
        if id != 0 {
            return id;
        }
        let fresh = NEXT_OWNER_ID.fetch_add(1, Ordering::Relaxed);
        let id = match self
            .owner
            .compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => fresh,
            Err(existing) => existing,
        };
        // Every racer stores the same value; the id is set before any chunk carries it.
        self.small_tag.store(small_tag(id), Ordering::Relaxed);
        id
    }

    /// The class of a small block, from the pointer alone, or `None` for anything else (a large
    /// or huge block, or a bad pointer — [`locate`](Self::locate) then tells which).
    ///
    /// # Safety
    /// As for [`locate`](Self::locate).
    #[inline(always)]
    pub(crate) unsafe fn small_class_of(&self, ptr: NonNull<u8>) -> Option<usize> {
        // SAFETY: forwarded from the caller.
        let class = unsafe { self.small_bin_of(ptr) }.filter(|&class| class < CLASS_COUNT)?;
        // `secure` refuses a pointer into the middle of a small block here (one multiply by the
        // class's divisibility constant). `small_bin_of` leaves that to the exact live test of
        // `take_handed_out`, whose bits mark block starts only.
        let offset = ptr.as_ptr() as usize & (SLOT_BYTES - 1);
        (!SECURE || is_block_offset(class, offset)).then_some(class)
    }

    /// The class of a small block, from the pointer alone: the unsized free's fast path. `None`
    /// when the pointer is not in a slab chunk of this slab (one header word compared);
    /// otherwise the slot's class byte, which is `CLASS_COUNT` in every slot that is not a
    /// small slab, so that there is no test of the slot's kind.
    ///
    /// # Safety
    /// As for [`locate`](Self::locate).
    #[inline(always)]
    pub(crate) unsafe fn small_bin_of(&self, ptr: NonNull<u8>) -> Option<usize> {
        if !crate::chunk_map::contains(ptr.as_ptr() as usize - 1) {
            return None;
        }
        let head = block_header(ptr);
        // SAFETY: the caller promises the header is readable; the tag is written before any
        // block of the chunk is handed out and cleared only when the chunk dies.
        let tag = unsafe { addr_of!((*head).small_tag).read() };
        if tag != self.small_tag.load(Ordering::Relaxed) {
            return None;
        }
        // SAFETY: the tag proves a live slab chunk of this slab; the slot index is in range.
        let id = unsafe { ident(head.cast::<Chunk>(), slot_of(ptr)) };
        let class = id.class as usize;
        debug_assert_eq!(class < CLASS_COUNT, id.kind == kind::SMALL);
        // Blocks start at the slot's first byte and every class is a multiple of 16 bytes, so
        // a block start is 16-aligned. Whether it is a block start at all is left to the
        // caller: with `secure` the cache's exact live test (`take_handed_out`, one bit per
        // 16 bytes, set at block starts only) refuses a pointer into the middle of a block.
        (ptr.as_ptr() as usize % 16 == 0).then_some(class)
    }

    /// Purges the dirty slots that are due now — past the threshold, or older than the purge
    /// delay — as the next slow path would (the same `Chunks::notice_expired`). For a caller
    /// that makes no allocator call for a while, such as a background purger: without it, the
    /// slots of a process that went idle stay resident. Takes the chunk lock; with the delay
    /// at `u64::MAX` (never) it reads no clock and purges nothing (the threshold is enforced
    /// by every release already).
    pub fn purge_due(&self) {
        let policy = self.purge_policy(usize::MAX);
        self.chunks.lock().notice_expired(&self.pages, policy);
    }

    /// Gives every empty slab and every dirty slot back: empty slabs kept by their class are
    /// released, dirty slots purged, empty chunks (the retained ones too) unmapped, and the
    /// page source's retained runs released (`PageSource::release_retained`). Like
    /// `malloc_trim(0)`. Takes every lock in turn; call it when the program has gone idle.
    pub fn trim(&self) {
        for (class, guarded) in self.classes.iter().enumerate() {
            let mut list = guarded.lock();
            let mut slab = list.head;
            while !slab.is_null() {
                // SAFETY: listed slabs of this class are live; the class lock is held.
                let (next, used) = unsafe { ((*slab).next, (*slab).used) };
                if used == 0 {
                    // SAFETY: as above; the slab holds no live block.
                    unsafe {
                        list.unlink(slab);
                        list.slabs -= 1;
                        self.release_slab(slab, usize::MAX);
                    }
                }
                slab = next;
            }
            debug_assert!(list.slabs >= list.listed, "class {class}");
        }
        #[cfg(feature = "hardened")]
        self.empty_huge_quarantine();
        let mut chunks = self.chunks.lock();
        chunks.purge_dirty(&self.pages);
        chunks.unmap_empty_chunks(&self.pages);
        drop(chunks);
        // What the source keeps for reuse (`heapkit_pages::Retained`'s runs: the chunks and
        // huge blocks freed before) goes back too.
        self.pages.release_retained();
    }

    /// Finds where the block at `ptr` lives, from the address alone.
    ///
    /// Cheap checks catch pointers that are not a live block's start: a wrong magic word, a
    /// header of another `Slab`, a free slot, the middle of a large span.
    ///
    /// # Safety
    /// The header [`block_header`] names for `ptr` is readable (true for every block of this
    /// slab).
    #[inline(always)]
    pub(crate) unsafe fn locate(&self, ptr: NonNull<u8>) -> Result<Block, &'static str> {
        if !crate::chunk_map::contains(ptr.as_ptr() as usize - 1) {
            return Err(
                "free of a pointer that no chunk of any Slab holds (foreign pointer, or a huge \
                 block freed twice)",
            );
        }
        let head = block_header(ptr);
        // SAFETY: the caller promises the header is readable; magic and owner are written once
        // before any block of the chunk is handed out.
        let (magic, owner) = unsafe {
            (
                addr_of!((*head).magic).read(),
                addr_of!((*head).owner_id).read(),
            )
        };
        if owner != self.owner.load(Ordering::Relaxed) {
            return Err("free of a pointer that no chunk of this Slab holds (foreign pointer)");
        }
        if magic == CHUNK_MAGIC {
            let chunk = head.cast::<Chunk>();
            let slot = slot_of(ptr);
            // SAFETY: a live chunk (magic and owner match) and an in-range slot.
            let id = unsafe { ident(chunk, slot) };
            return match id.kind {
                kind::SMALL if ptr.as_ptr() as usize % 16 == 0 => Ok(Block::Small {
                    chunk,
                    slot,
                    class: id.class as usize,
                }),
                kind::LARGE_HEAD if ptr.as_ptr() == slot_start(chunk, slot) => Ok(Block::Large {
                    chunk,
                    slot,
                    slots: id.span_slots as usize,
                }),
                kind::FREE => Err("free of a block in a free slot (double free?)"),
                _ => Err("free of a pointer that is not the start of a block"),
            };
        }
        if magic == HUGE_MAGIC {
            let header = head.cast::<Huge>();
            // SAFETY: a live huge header (magic and owner match).
            if ptr.as_ptr() == unsafe { Huge::block_start(header) } {
                return Ok(Block::Huge { header });
            }
            return Err("free of a pointer that is not the start of a huge block");
        }
        Err("free of a pointer whose chunk has no heapkit magic (foreign pointer)")
    }

    /// Serves a layout: the small path when a class fits it, the large path otherwise. Returns
    /// the block, its usable length, and whether it is known to read as zero.
    #[inline(always)]
    pub(crate) fn alloc_block(
        &self,
        layout: Layout,
    ) -> Result<(NonNull<u8>, usize, bool), AllocError> {
        match class_of_layout(layout.size(), layout.align()) {
            Some(class) => {
                let (block, zeroed) = self.alloc_small(class)?;
                Ok((block, class_usable_bytes(class), zeroed))
            }
            None => self.alloc_large(layout),
        }
    }

    /// Releases the block at `ptr`, whatever its kind.
    ///
    /// # Safety
    /// `ptr` is a live block of this slab (bad pointers are caught where cheap, see `locate`).
    #[inline(always)]
    pub(crate) unsafe fn free_block(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        match unsafe { self.locate(ptr) } {
            // SAFETY: `locate` found the block's slab, span or mapping.
            Ok(Block::Small { chunk, slot, class }) => unsafe {
                self.free_small(chunk, slot, class, ptr)
            },
            // SAFETY: as above.
            Ok(Block::Large { chunk, slot, .. }) => unsafe { self.free_span(chunk, slot) },
            // SAFETY: as above.
            Ok(Block::Huge { header }) => unsafe { self.free_huge(header) },
            Err(what) => report(what, ptr.as_ptr() as usize),
        }
    }

    /// The usable size of the block at `ptr`.
    ///
    /// # Safety
    /// `ptr` is a live block of this slab.
    pub(crate) unsafe fn block_usable_bytes(&self, block: Block) -> usize {
        match block {
            Block::Small { class, .. } => class_usable_bytes(class),
            Block::Large { slots, .. } => slots * crate::geometry::SLOT_BYTES,
            // SAFETY: a live huge header (the caller's promise).
            Block::Huge { header } => unsafe { Huge::usable_bytes(header) },
        }
    }

    /// Gives an empty small slab's slot back to its chunk. The slab's metadata must not be
    /// touched afterwards (the chunk may be unmapped).
    ///
    /// # Safety
    /// `slab` is an empty slab already taken off its class (list and count); its class lock is
    /// held.
    pub(crate) unsafe fn release_slab(&self, slab: *mut SlabMeta, threshold_bytes: usize) {
        // SAFETY: forwarded from the caller.
        let start = unsafe { (*slab).start };
        // SAFETY: as above.
        debug_assert!(unsafe { (*slab).used } == 0);
        // SAFETY: `start` is a slot start, so it is non-null.
        let start = unsafe { NonNull::new_unchecked(start) };
        // A guard page stays: the chunk's `guard_mask` remembers it for the slot's next slab,
        // and a large span lifts it before use (`slot_guard::unguard_run`).
        let chunk = header_of(start).cast::<Chunk>();
        let policy = self.purge_policy(threshold_bytes);
        let mut chunks = self.chunks.lock();
        // SAFETY: the slot is in use by this (now empty) slab in a live chunk.
        unsafe {
            chunks.release(
                &self.pages,
                chunk,
                slot_of(start),
                1,
                policy,
                RETAINED_EMPTY_CHUNKS,
            )
        };
    }
}

impl<P: PageSource> Drop for Slab<P> {
    fn drop(&mut self) {
        #[cfg(feature = "hardened")]
        self.empty_huge_quarantine();
        let chunks = self.chunks.get_mut();
        let mut chunk = chunks.head;
        while !chunk.is_null() {
            // SAFETY: a live chunk; `&mut self` means nobody else touches it.
            let next = unsafe { crate::chunk::state_of(chunk).next };
            crate::chunk_map::remove(chunk as usize);
            // SAFETY: every block dies with the allocator (the `Allocator` contract), so the
            // whole chunk run can go.
            unsafe { crate::slot_guard::unmap_chunk_run(&self.pages, chunk) };
            chunk = next;
        }
        let mut huge = chunks.huge.head;
        while !huge.is_null() {
            // SAFETY: a live huge header; `&mut self` as above.
            let next = unsafe { Huge::next(huge) };
            crate::chunk_map::remove(huge as usize);
            // SAFETY: the mapping made for this huge block, which dies with the allocator.
            unsafe { self.unmap_huge(huge) };
            huge = next;
        }
    }
}
