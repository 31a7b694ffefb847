//! One block after it was handed out: freeing, growing and shrinking it (in place when it is
//! the newest), whether the arena owns it, and zeroed allocation.
//!
//! A child module of `arena` (declared there) so that it reads the bump pointer directly.

use super::{rounded, Arena};
use crate::chunk;
use crate::ChunkSource;
use core::alloc::Layout;
use core::ptr::{self, NonNull};
use heapkit_core::{is_aligned, AllocError};

impl<S: ChunkSource> Arena<S> {
    /// Like [`try_alloc_layout`](Self::try_alloc_layout), with the block's bytes zero (all of
    /// `layout.size()` rounded up to [`MIN_ALIGN_BYTES`](crate::MIN_ALIGN_BYTES)). Only the
    /// part below `zero_from` is cleared: memory fresh from a zeroing source (`mmap`) is not
    /// written, so its pages are not touched until the caller touches them; memory handed out
    /// before (a reused chunk, or bytes a free, shrink or rewind gave back) is cleared.
    #[inline]
    pub fn try_alloc_layout_zeroed(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let block = self.try_alloc_layout(layout)?;
        if layout.size() == 0 {
            return Ok(block);
        }
        // The block is in the current chunk (a fresh chunk was installed if it did not fit),
        // at or above the old `ptr`; bytes from `zero_from` on are zero. The whole rounded
        // length is cleared: the `Allocator` impl reports it as usable.
        let dirty_bytes = (self.zero_from.get() as usize)
            .saturating_sub(block.as_ptr() as usize)
            .min(rounded(layout.size()));
        // SAFETY: the bump pointer moved past `rounded(layout.size())` bytes of the block, and
        // `dirty_bytes` is at most that.
        unsafe { ptr::write_bytes(block.as_ptr(), 0, dirty_bytes) };
        Ok(block)
    }

    /// Whether `block + rounded(size)` ends exactly at the bump pointer: the block is the most
    /// recent one, so it can be freed, grown or shrunk in place.
    #[inline(always)]
    fn is_last(&self, block: NonNull<u8>, size_bytes: usize) -> bool {
        block.as_ptr() as usize + rounded(size_bytes) == self.ptr.get() as usize
    }

    /// Frees a block: the most recent one rolls the bump pointer back; any other is a no-op.
    ///
    /// # Safety
    /// `block` is a live block of this arena of `size_bytes` (as asked or as returned).
    #[inline]
    pub(crate) unsafe fn free_block(&self, block: NonNull<u8>, size_bytes: usize) {
        self.assert_owned(block);
        if self.is_last(block, size_bytes) {
            self.move_ptr_back(block.as_ptr());
        }
    }

    /// Grows a block; the most recent one grows in place when the chunk has room.
    ///
    /// # Safety
    /// `block` is a live block fitted by `old`, and `new.size() >= old.size() > 0`.
    pub(crate) unsafe fn grow_block(
        &self,
        block: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        self.assert_owned(block);
        let addr = block.as_ptr() as usize;
        if self.is_last(block, old.size())
            && is_aligned(addr, new.align())
            && rounded(new.size()) <= self.end.get() as usize - addr
        {
            self.ptr
                // SAFETY: `block + rounded(new) <= end`, checked just above.
                .set(unsafe { block.as_ptr().add(rounded(new.size())) });
            return Ok(NonNull::slice_from_raw_parts(block, rounded(new.size())));
        }
        let moved = self.try_alloc_layout(new)?;
        // SAFETY: `moved` is a fresh block after every live one, so distinct from `block`;
        // the old block has `old.size()` readable bytes and the new one at least as many.
        unsafe { ptr::copy_nonoverlapping(block.as_ptr(), moved.as_ptr(), old.size()) };
        Ok(NonNull::slice_from_raw_parts(moved, rounded(new.size())))
    }

    /// Shrinks a block in place (the most recent one gives its tail back), or moves it when
    /// the new alignment is stricter than the block's address.
    ///
    /// # Safety
    /// `block` is a live block fitted by `old`, and `0 < new.size() <= old.size()`.
    pub(crate) unsafe fn shrink_block(
        &self,
        block: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        self.assert_owned(block);
        if !is_aligned(block.as_ptr() as usize, new.align()) {
            let moved = self.try_alloc_layout(new)?;
            // SAFETY: distinct blocks (see `grow_block`); both have `new.size()` bytes.
            unsafe { ptr::copy_nonoverlapping(block.as_ptr(), moved.as_ptr(), new.size()) };
            return Ok(NonNull::slice_from_raw_parts(moved, rounded(new.size())));
        }
        if self.is_last(block, old.size()) {
            // SAFETY: the new end is inside the old block.
            self.move_ptr_back(unsafe { block.as_ptr().add(rounded(new.size())) });
        }
        Ok(NonNull::slice_from_raw_parts(block, rounded(new.size())))
    }

    /// Whether `addr` lies in the data area of one of the arena's chunks (walks the list).
    pub fn owns(&self, addr: *const u8) -> bool {
        let mut next = self.current.get();
        while let Some(header) = next {
            // SAFETY: the list holds live chunks.
            unsafe {
                if chunk::contains(header, addr as usize) {
                    return true;
                }
                next = (*header.as_ptr()).prev;
            }
        }
        false
    }

    /// Foreign pointers are a caller bug: caught in debug builds, and with the `checked`
    /// feature in every build (an abort with a message, never a panic).
    #[inline(always)]
    fn assert_owned(&self, block: NonNull<u8>) {
        #[cfg(feature = "checked")]
        if !self.owns(block.as_ptr()) {
            heapkit_core::fatal(
                "heapkit-bump",
                "free/grow/shrink of a pointer the arena does not own",
                block.as_ptr() as usize,
            );
        }
        debug_assert!(self.owns(block.as_ptr()), "block is not in this arena");
        let _ = block;
    }
}
