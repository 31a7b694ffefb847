//! heapkit's `Allocator` for `Arena` (and, through `impl_foreign_allocators!`, allocator-api2's
//! and nightly's), so collections can live in the arena.
//!
//! Deallocation is a no-op except for the most recent block, whose memory is reused at once;
//! growing or shrinking the most recent block happens in place, which makes `Vec` push-growth
//! in an arena copy-free as long as nothing else is allocated in between.

use crate::arena::rounded;
use crate::{Arena, ChunkSource};
use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::{AllocError, Allocator};

// SAFETY: blocks come from `try_alloc_layout`, which bumps past them, so live blocks never
// overlap; they stay valid until the arena is reset, rewound or dropped, which all need
// `&mut self` (or the end of a `Scope`, whose blocks cannot outlive it). The returned length
// is the size rounded up to MIN_ALIGN_BYTES, all of which the bump pointer moved past.
unsafe impl<S: ChunkSource> Allocator for Arena<S> {
    #[inline(always)]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let block = self.try_alloc_layout(layout)?;
        Ok(NonNull::slice_from_raw_parts(block, rounded(layout.size())))
    }

    #[inline]
    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let block = self.try_alloc_layout_zeroed(layout)?;
        Ok(NonNull::slice_from_raw_parts(block, rounded(layout.size())))
    }

    #[inline]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.free_block(ptr, layout.size()) }
    }

    #[inline]
    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.grow_block(ptr, old_layout, new_layout) }
    }

    #[inline]
    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.shrink_block(ptr, old_layout, new_layout) }
    }
}

heapkit_core::impl_foreign_allocators!(impl[S: ChunkSource] for Arena<S>);
heapkit_core::impl_foreign_allocators!(impl['s, S: ChunkSource] for crate::Scope<'s, S>);
