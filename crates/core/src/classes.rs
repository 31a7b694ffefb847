//! The contracts between layers below the public `Allocator`: freeing without a layout (what C's
//! `free` and `malloc_usable_size` need) and batches of one size class (what thread caches
//! refill and flush through).

use crate::Allocator;
use core::alloc::Layout;
use core::ptr::NonNull;

/// An allocator that finds a block's size from the pointer alone, so a block can be freed
/// without its `Layout` — the shape of C's `free(ptr)` and `malloc_usable_size(ptr)`.
///
/// # Safety
/// Implementors promise that `usable_size` returns the length of the live block (at least the
/// size it was asked for, and the whole range is usable), and that `deallocate_unsized` releases
/// it exactly as `deallocate` with its layout would.
pub unsafe trait UnsizedAllocator: Allocator {
    /// The number of usable bytes in a live block.
    ///
    /// # Safety
    /// `ptr` is a live, non-zero-size block of this allocator.
    unsafe fn usable_size(&self, ptr: NonNull<u8>) -> usize;

    /// Releases a live block without knowing its layout.
    ///
    /// # Safety
    /// `ptr` is a live, non-zero-size block of this allocator.
    unsafe fn deallocate_unsized(&self, ptr: NonNull<u8>);
}

/// A size-class allocator that serves and takes back blocks in batches: the back end behind a
/// thread cache (heapkit-tcache refills an empty cache and flushes a full one through it).
///
/// A *class* is an index `0..class_count()`; every block of a class has the same usable size,
/// `class_size(class)`, and is aligned to the largest power of two dividing that size (at least
/// [`MAX_ALIGN_BYTES`](crate::MAX_ALIGN_BYTES) from 16 bytes up), so a layout's class also
/// serves its alignment.
///
/// # Safety
/// Implementors promise that `allocate_batch` writes only live, disjoint blocks of the class,
/// each with `class_size(class)` usable bytes, and that a block from `allocate_batch` may be
/// released through `deallocate_batch`, `deallocate` or `deallocate_unsized`, and a block from
/// `allocate` whose layout maps to a class through `deallocate_batch` of that class.
pub unsafe trait BatchAllocator: UnsizedAllocator + Sync {
    /// How many small classes there are.
    fn class_count(&self) -> usize;

    /// The class that serves `layout` (size and alignment), or `None` when the layout is too
    /// large or too aligned for the small classes. Must be O(1) and cheap: it is on the fast
    /// path of every cached allocation.
    fn class_of(&self, layout: Layout) -> Option<usize>;

    /// The usable size of every block of `class` (`class < class_count()`).
    fn class_size(&self, class: usize) -> usize;

    /// Bytes [`class_of`](Self::class_of) adds to a request's size before it picks the class
    /// (heapkit-slab's canary with `hardened`; 0 by default), below
    /// [`MAX_ALIGN_BYTES`](crate::MAX_ALIGN_BYTES). A thread cache whose size-indexed table has
    /// one entry per 16-byte step shifts its steps down by it, so that every size of a step
    /// still gets one class (a step split between two classes would miss on every call).
    const CLASS_SIZE_OFFSET_BYTES: usize = 0;

    /// The class of a live block, found from the pointer alone; `None` for blocks that belong
    /// to no small class (large blocks).
    ///
    /// # Safety
    /// `ptr` is a live, non-zero-size block of this allocator.
    unsafe fn class_of_block(&self, ptr: NonNull<u8>) -> Option<usize>;

    /// [`class_of_block`](Self::class_of_block) as a table index: `Some` of the class of a
    /// live small block or of `class_count()` for a live block of no small class; or `None`
    /// when a cheaper first test already shows that the block has no class.
    ///
    /// A thread cache keeps one extra bin at index `class_count()` that never caches (its limit
    /// is 0), so its unsized free can go straight to the bin and find "no room" there instead of
    /// testing for "no class" first: one compare and branch fewer on C's every `free`. A backend
    /// that stores its "no class" answer in the same byte as its classes can answer with one load
    /// and no branch; the default here is the branch.
    ///
    /// # Safety
    /// `ptr` is a live, non-zero-size block of this allocator.
    #[inline(always)]
    unsafe fn bin_of_block(&self, ptr: NonNull<u8>) -> Option<usize> {
        // SAFETY: forwarded from the caller.
        Some(unsafe { self.class_of_block(ptr) }.unwrap_or(self.class_count()))
    }

    /// Allocates up to `out.len()` blocks of `class`, writes their (non-null) addresses to the
    /// front of `out`, and returns how many it wrote (0 when out of memory).
    fn allocate_batch(&self, class: usize, out: &mut [*mut u8]) -> usize;

    /// Releases blocks of `class`.
    ///
    /// # Safety
    /// Every pointer is a live (non-null) block of this allocator whose class is `class`, and
    /// none appears twice.
    unsafe fn deallocate_batch(&self, class: usize, blocks: &[*mut u8]);

    /// Whether [`mark_handed_out`](Self::mark_handed_out) and
    /// [`take_handed_out`](Self::take_handed_out) keep a real record (a hardened cache then
    /// relies on it instead of its own, likelier tests).
    const RECORDS_HANDED_OUT: bool = false;

    /// For a hardened cache in front of this allocator: records that a block of a class now
    /// belongs to the program (the cache hands it out), so that
    /// [`take_handed_out`](Self::take_handed_out) can tell a live block from one that sits in
    /// a cache or was never handed out. Returns false when the record was there already (the
    /// block is being handed out twice: corrupt state). The default keeps no record.
    ///
    /// # Safety
    /// `ptr` is a block of a class that this allocator gave out (singly or in a batch).
    #[inline(always)]
    unsafe fn mark_handed_out(&self, ptr: NonNull<u8>) -> bool {
        let _ = ptr;
        true
    }

    /// The other half of [`mark_handed_out`](Self::mark_handed_out): clears the record and
    /// returns whether it was there — false for a block the program does not own (never
    /// handed out, or freed already). The default keeps no record: always true.
    ///
    /// # Safety
    /// `ptr` is the start of a block of a class of this allocator, as
    /// [`bin_of_block`](Self::bin_of_block) found it.
    #[inline(always)]
    unsafe fn take_handed_out(&self, ptr: NonNull<u8>) -> bool {
        let _ = ptr;
        true
    }
}
