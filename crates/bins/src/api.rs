//! The public traits: `Allocator` (with in-place realloc and glibc's memalign),
//! `UnsizedAllocator` (C's `free` and `malloc_usable_size`), and the foreign bridges.

use crate::binlist::unlink;
use crate::chunk::{
    at, from_mem, head, inuse_at, is_free, is_mmapped, prev_size, request_to_size, set_head,
    set_inuse_at, set_prev_size, size, to_mem, usable_bytes, ChunkPtr, IS_MMAPPED, MIN_CHUNK_BYTES,
    PREV_INUSE,
};
use crate::heap::Bins;
use core::alloc::Layout;
use core::ptr::{self, NonNull};
use heapkit_core::{AllocError, Allocator, PageSource, UnsizedAllocator, MAX_ALIGN_BYTES};

/// The largest alignment served (larger ones are refused with `AllocError`): the page
/// sources' own limit, and far beyond any real use.
pub const MAX_ALIGN_SERVED_BYTES: usize = 1 << 30;

impl<P: PageSource> Bins<P> {
    /// Serves `layout` as a live chunk (any alignment).
    #[inline]
    fn allocate_chunk(&self, layout: Layout) -> Result<ChunkPtr, AllocError> {
        if layout.align() <= MAX_ALIGN_BYTES {
            let nb = request_to_size(layout.size()).ok_or(AllocError)?;
            self.malloc_chunk(nb)
        } else {
            self.memalign(layout.align(), layout.size())
        }
    }

    /// Over-allocates by the alignment and frees the misaligned lead and the spare tail
    /// (glibc's `_int_memalign`).
    #[cold]
    fn memalign(&self, align: usize, request_bytes: usize) -> Result<ChunkPtr, AllocError> {
        if align > MAX_ALIGN_SERVED_BYTES {
            return Err(AllocError);
        }
        let nb = request_to_size(request_bytes).ok_or(AllocError)?;
        let padded = nb
            .checked_add(align + MIN_CHUNK_BYTES)
            .and_then(request_to_size)
            .ok_or(AllocError)?;
        let p = self.malloc_chunk(padded)?;
        // SAFETY: `p` is a fresh live chunk of at least nb + align + MIN_CHUNK_BYTES bytes, so
        // an aligned position with room for a lead chunk and `nb` bytes lies inside it.
        unsafe {
            let mem = to_mem(p) as usize;
            if mem % align == 0 {
                self.trim_tail(p, nb);
                return Ok(p);
            }
            let mut aligned_mem = (mem + align - 1) & !(align - 1);
            if aligned_mem - mem < MIN_CHUNK_BYTES {
                aligned_mem += align;
            }
            let lead = aligned_mem - mem;
            let new_p = at(p, lead);
            let new_size = size(p) - lead;
            if is_mmapped(p) {
                set_prev_size(new_p, prev_size(p) + lead);
                set_head(new_p, new_size | IS_MMAPPED);
                return Ok(new_p);
            }
            set_head(new_p, new_size | PREV_INUSE);
            set_inuse_at(new_p, new_size);
            set_head(p, lead | (head(p) & PREV_INUSE));
            self.merge_free(p, lead);
            self.trim_tail(new_p, nb);
            Ok(new_p)
        }
    }

    /// Splits a live heap chunk down to `nb` bytes, freeing the tail if it can stand alone.
    ///
    /// # Safety
    /// `p` is a live chunk of this heap; `nb` is a chunk size no larger than its own.
    unsafe fn trim_tail(&self, p: ChunkPtr, nb: usize) {
        // SAFETY: forwarded from the caller; the tail lies inside `p`.
        unsafe {
            if is_mmapped(p) {
                return;
            }
            let p_size = size(p);
            debug_assert!(nb <= p_size);
            if p_size - nb < MIN_CHUNK_BYTES {
                return;
            }
            let tail = at(p, nb);
            let tail_size = p_size - nb;
            set_head(p, nb | (head(p) & PREV_INUSE));
            set_head(tail, tail_size | PREV_INUSE);
            // The chunk after the tail already says "previous in use": the tail is a live
            // chunk until `merge_free` takes it.
            debug_assert!(inuse_at(tail, tail_size));
            let merged = self.merge_free(tail, tail_size);
            if merged >= self.trim_threshold_bytes.get() {
                self.trim_top();
            }
        }
    }

    /// Grows a live heap chunk to `nb` bytes in place, into the top chunk or a free
    /// neighbour. Returns false (changing nothing) when neither has room.
    ///
    /// # Safety
    /// `p` is a live, non-mmapped chunk of this heap smaller than `nb`.
    unsafe fn grow_in_place(&self, p: ChunkPtr, nb: usize) -> bool {
        // SAFETY: boundary tags are consistent; every chunk touched is `p` or its successor.
        unsafe {
            let p_size = size(p);
            let next = at(p, p_size);
            let next_size = size(next);
            let flags = head(p) & PREV_INUSE;
            if next == self.top.get() {
                // Too short a top grows first, when it can without moving (the reserve, or
                // `extend`): cheaper than copying the block, and glibc's `brk` heap gets the
                // same from a top that `sbrk` keeps contiguous.
                if p_size + next_size < nb + MIN_CHUNK_BYTES
                    && self.grow_top_in_place(nb - p_size) != Ok(true)
                {
                    return false;
                }
                let next_size = size(next);
                let new_top = at(p, nb);
                set_head(new_top, (p_size + next_size - nb) | PREV_INUSE);
                set_head(p, nb | flags);
                self.top.set(new_top);
                self.note_top_dirty(new_top);
                return true;
            }
            if !is_free(next) {
                return false;
            }
            if p_size + next_size < nb {
                return false;
            }
            unlink(next);
            if self.last_remainder.get() == next {
                self.last_remainder.set(ptr::null_mut());
            }
            let merged = p_size + next_size;
            set_head(p, merged | flags);
            set_inuse_at(p, merged);
            self.trim_tail(p, nb);
            true
        }
    }

    fn block(&self, p: ChunkPtr) -> NonNull<[u8]> {
        // SAFETY: `p` is a live chunk; its caller pointer is non-null.
        unsafe {
            let usable = usable_bytes(p);
            NonNull::slice_from_raw_parts(NonNull::new_unchecked(to_mem(p)), usable)
        }
    }

    #[inline]
    pub(crate) fn note_alloc(&self, p: ChunkPtr) -> NonNull<[u8]> {
        let block = self.block(p);
        let c = &self.counters;
        c.allocations.set(c.allocations.get() + 1);
        c.live_blocks.set(c.live_blocks.get() + 1);
        c.add_live(block.len());
        block
    }

    #[cold]
    fn note_failure(&self) -> AllocError {
        self.counters.failures.set(self.counters.failures.get() + 1);
        AllocError
    }

    /// Frees through the caller pointer, with accounting.
    ///
    /// # Safety
    /// `ptr` is a live block of this heap.
    #[inline]
    unsafe fn free_block(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe {
            if let Some(p) = self.note_free(ptr) {
                self.free_chunk(p);
            }
        }
    }

    /// [`free_block`](Self::free_block) past the tcache.
    ///
    /// # Safety
    /// `ptr` is a live block of this heap.
    pub(crate) unsafe fn free_block_uncached(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe {
            if let Some(p) = self.note_free(ptr) {
                self.free_uncached(p);
            }
        }
    }

    /// Validates a block about to be freed and takes it out of the live figures; `None` (with
    /// the misuse reported) when it is not a live block.
    ///
    /// # Safety
    /// `ptr` is a live block of this heap (checked cheaply).
    #[inline(always)]
    unsafe fn note_free(&self, ptr: NonNull<u8>) -> Option<ChunkPtr> {
        let p = from_mem(ptr.as_ptr());
        // SAFETY: forwarded from the caller; `validate_free` rejects (and reports) the cheap
        // cases of misuse before anything is changed.
        unsafe {
            if p as usize % 16 == 0 && is_mmapped(p) {
                // Its own path, out of line: what it calls would make every heap free save
                // and restore registers.
                self.free_mmapped_block(p);
                return None;
            }
            if !self.validate_free(p) {
                return None;
            }
            self.note_freed(p);
        }
        Some(p)
    }

    /// Takes a live chunk out of the live figures.
    ///
    /// # Safety
    /// `p` is a live chunk.
    #[inline(always)]
    unsafe fn note_freed(&self, p: ChunkPtr) {
        // SAFETY: forwarded from the caller.
        let usable = unsafe { usable_bytes(p) };
        let c = &self.counters;
        c.deallocations.set(c.deallocations.get() + 1);
        c.live_blocks.set(c.live_blocks.get().wrapping_sub(1));
        c.live_bytes.set(c.live_bytes.get().wrapping_sub(usable));
    }

    /// Frees a block whose header says mmapped: validated, counted, unmapped.
    ///
    /// # Safety
    /// `p` is 16-aligned and its header is readable (the caller's claim that it is live).
    #[cold]
    #[inline(never)]
    unsafe fn free_mmapped_block(&self, p: ChunkPtr) {
        // SAFETY: forwarded from the caller; `validate_free` checks the run's shape.
        unsafe {
            if self.validate_free(p) {
                self.note_freed(p);
                self.free_uncached(p);
            }
        }
    }

    /// Moves a block: allocate, copy `keep_bytes`, free.
    ///
    /// # Safety
    /// `ptr` is a live block with at least `keep_bytes` bytes.
    unsafe fn move_block(
        &self,
        ptr: NonNull<u8>,
        keep_bytes: usize,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let q = self
            .allocate_chunk(new_layout)
            .map_err(|_| self.note_failure())?;
        let block = self.block(q);
        // SAFETY: distinct live chunks; both hold at least `keep_bytes`.
        unsafe {
            ptr::copy_nonoverlapping(ptr.as_ptr(), block.cast::<u8>().as_ptr(), keep_bytes);
            let old = from_mem(ptr.as_ptr());
            let c = &self.counters;
            c.sub_live(usable_bytes(old));
            c.add_live(block.len());
            c.reallocations.set(c.reallocations.get() + 1);
            self.free_chunk(old);
        }
        Ok(block)
    }

    /// Resizes in place (the chunk stays put, or its run was remapped); `from_usable` is the
    /// old usable size.
    fn note_resize(&self, p: ChunkPtr, from_usable: usize) -> NonNull<[u8]> {
        let block = self.block(p);
        let c = &self.counters;
        c.sub_live(from_usable);
        c.add_live(block.len());
        c.reallocations.set(c.reallocations.get() + 1);
        block
    }
}

// SAFETY: chunks are carved from disjoint runs of the page source and never overlap while live
// (boundary tags partition each segment; `check()` verifies it). Blocks are 16-aligned, or
// aligned as asked through `memalign`, and at least as long as asked (`request_to_size`).
unsafe impl<P: PageSource> Allocator for Bins<P> {
    #[inline]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        match self.allocate_chunk(layout) {
            Ok(p) => Ok(self.note_alloc(p)),
            Err(_) => Err(self.note_failure()),
        }
    }

    #[inline]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        let _ = layout;
        // SAFETY: forwarded from the caller.
        unsafe { self.free_block(ptr) }
    }

    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let block = self.allocate_nonzero(layout)?;
        let p = from_mem(block.cast::<u8>().as_ptr());
        // SAFETY: `p` is the live chunk just allocated; fresh mmapped runs are already zero
        // when the source says so (as glibc's calloc skips them).
        unsafe {
            if !(is_mmapped(p) && self.pages.maps_zeroed()) {
                ptr::write_bytes(block.cast::<u8>().as_ptr(), 0, block.len());
            }
        }
        Ok(block)
    }

    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let p = from_mem(ptr.as_ptr());
        let aligned = ptr.as_ptr() as usize % new_layout.align() == 0;
        let nb = request_to_size(new_layout.size()).ok_or_else(|| self.note_failure())?;
        // SAFETY: `ptr` is a live block (the caller's promise).
        unsafe {
            let old_usable = usable_bytes(p);
            if aligned && old_usable >= new_layout.size() {
                return Ok(self.note_resize(p, old_usable));
            }
            if aligned && !is_mmapped(p) && self.grow_in_place(p, nb) {
                return Ok(self.note_resize(p, old_usable));
            }
            if aligned && is_mmapped(p) && new_layout.align() <= self.pages.page_size() {
                if let Some(q) = self.remap_mmapped(p, nb) {
                    return Ok(self.note_resize(q, old_usable));
                }
            }
            self.move_block(ptr, old_layout.size(), new_layout)
        }
    }

    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let p = from_mem(ptr.as_ptr());
        if ptr.as_ptr() as usize % new_layout.align() != 0 {
            // SAFETY: forwarded from the caller.
            return unsafe { self.move_block(ptr, new_layout.size(), new_layout) };
        }
        let nb = request_to_size(new_layout.size()).ok_or_else(|| self.note_failure())?;
        let _ = old_layout;
        // SAFETY: `ptr` is a live block; `nb` is no larger than its chunk.
        unsafe {
            let old_usable = usable_bytes(p);
            if is_mmapped(p) {
                self.shrink_mmapped(p, nb);
            } else {
                self.trim_tail(p, nb.min(size(p)));
            }
            Ok(self.note_resize(p, old_usable))
        }
    }
}

// SAFETY: the chunk header gives the usable size of every live block and `free_chunk` needs
// nothing else, so freeing without a layout is exactly `deallocate`.
unsafe impl<P: PageSource> UnsizedAllocator for Bins<P> {
    #[inline]
    unsafe fn usable_size(&self, ptr: NonNull<u8>) -> usize {
        // SAFETY: `ptr` is a live block, so its header is readable.
        unsafe { usable_bytes(from_mem(ptr.as_ptr())) }
    }

    #[inline]
    unsafe fn deallocate_unsized(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.free_block(ptr) }
    }
}

heapkit_core::impl_foreign_allocators!(impl[P: PageSource] for Bins<P>);

impl<P: PageSource> Drop for Bins<P> {
    /// Gives every segment back to the page source. Live mmapped blocks cannot be found from
    /// the heap (they are not linked), so they stay mapped: a heap dropped with live blocks
    /// leaks those, exactly as a program that exits without freeing.
    fn drop(&mut self) {
        self.release_reserve();
        let mut seg = self.newest_segment.get();
        let mut steps = 0;
        while !seg.is_null() && steps < crate::segment::MAX_SEGMENTS {
            // SAFETY: the segment list is valid and nothing uses the heap any more.
            unsafe {
                let next = (*seg).next;
                let len = (*seg).size_bytes;
                self.pages.unmap(NonNull::new_unchecked(seg.cast()), len);
                seg = next;
            }
            steps += 1;
        }
        self.newest_segment.set(ptr::null_mut());
    }
}
