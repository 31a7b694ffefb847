//! `SystemHeap`: the platform allocator (`std::alloc::System`) behind heapkit's `Allocator`
//! trait, so that the common case — "the usual heap, but sealed after init" — is one line:
//!
//! ```
//! use heapkit_core::GlobalAdapter;
//! use heapkit_fixed::{StaticAllocator, SystemHeap};
//! // In a real program: #[global_allocator]
//! static GLOBAL: GlobalAdapter<StaticAllocator<SystemHeap>> =
//!     GlobalAdapter::new(StaticAllocator::new(SystemHeap));
//! ```

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use heapkit_core::{AllocError, Allocator, Introspect};
use std::alloc::System;

/// The platform allocator (`malloc`/`free` on Unix) as a heapkit [`Allocator`]. Stateless and
/// `Sync`.
#[derive(Copy, Clone, Debug, Default)]
pub struct SystemHeap;

// SAFETY: every call forwards to `System`, whose blocks are aligned, disjoint and valid until
// freed; the reported length is the size asked for.
unsafe impl Allocator for SystemHeap {
    #[inline]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the layout's size is non-zero (the trait's promise).
        let ptr = NonNull::new(unsafe { System.alloc(layout) }).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(ptr, layout.size()))
    }

    #[inline]
    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: as above.
        let ptr = NonNull::new(unsafe { System.alloc_zeroed(layout) }).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(ptr, layout.size()))
    }

    #[inline]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller: a live block of `System` fitted by `layout` (its
        // size is the one asked for, since that is the length reported).
        unsafe { System.dealloc(ptr.as_ptr(), layout) }
    }

    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.realloc(ptr, old_layout, new_layout) }
    }

    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.realloc(ptr, old_layout, new_layout) }
    }
}

impl SystemHeap {
    /// `realloc` when the alignment is unchanged, else allocate, copy, free.
    ///
    /// # Safety
    /// `ptr` is a live block fitted by `old_layout`; both sizes are non-zero.
    unsafe fn realloc(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if old_layout.align() != new_layout.align() {
            let block = self.allocate_nonzero(new_layout)?;
            let keep_bytes = old_layout.size().min(new_layout.size());
            // SAFETY: distinct live blocks with at least `keep_bytes` bytes each.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr.as_ptr(), block.cast().as_ptr(), keep_bytes);
                self.deallocate_nonzero(ptr, old_layout);
            }
            return Ok(block);
        }
        // SAFETY: `ptr` is a live block with `old_layout`; the new size is non-zero and a valid
        // layout with the same alignment (it came from a `Layout`).
        let raw = unsafe { System.realloc(ptr.as_ptr(), old_layout, new_layout.size()) };
        let ptr = NonNull::new(raw).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(ptr, new_layout.size()))
    }
}

impl Introspect for SystemHeap {}

heapkit_core::impl_foreign_allocators!(impl[] for SystemHeap);
