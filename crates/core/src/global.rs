//! `GlobalAdapter<A>`: install any `Sync` heapkit allocator as `#[global_allocator]`.

use crate::Allocator;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

/// Implements [`GlobalAlloc`] for a heapkit [`Allocator`] that is `Sync`.
///
/// `GlobalAlloc` never passes a zero-size layout, so calls go straight to the `*_nonzero`
/// methods with no extra branch. Failure becomes a null pointer, as `GlobalAlloc` requires;
/// nothing unwinds.
///
/// ```
/// use heapkit_core::{GlobalAdapter, Locked};
/// # use heapkit_core::{AllocError, Allocator};
/// # use core::{alloc::Layout, ptr::NonNull};
/// # struct Refuse;
/// # unsafe impl Allocator for Refuse {
/// #     fn allocate_nonzero(&self, _: Layout) -> Result<NonNull<[u8]>, AllocError> { Err(AllocError) }
/// #     unsafe fn deallocate_nonzero(&self, _: NonNull<u8>, _: Layout) {}
/// # }
/// // In a real program: #[global_allocator]
/// static GLOBAL: GlobalAdapter<Locked<Refuse>> = GlobalAdapter::new(Locked::new(Refuse));
/// use std::alloc::GlobalAlloc;
/// assert!(unsafe { GLOBAL.alloc(Layout::new::<u64>()) }.is_null());
/// ```
#[derive(Debug, Default)]
pub struct GlobalAdapter<A> {
    inner: A,
}

impl<A> GlobalAdapter<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        GlobalAdapter { inner }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

#[inline(always)]
fn into_raw(result: Result<NonNull<[u8]>, crate::AllocError>) -> *mut u8 {
    match result {
        Ok(block) => block.cast::<u8>().as_ptr(),
        Err(_) => ptr::null_mut(),
    }
}

// SAFETY: `GlobalAlloc`'s contract is the block contract of `Allocator` with nulls for errors:
// layouts are non-zero (the caller's promise), blocks are aligned and disjoint (the allocator's),
// and `realloc` keeps the old block on failure because `grow`/`shrink` do.
unsafe impl<A: Allocator + Sync> GlobalAlloc for GlobalAdapter<A> {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        debug_assert!(layout.size() != 0);
        into_raw(self.inner.allocate_nonzero(layout))
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `GlobalAlloc` callers pass a non-null block of this allocator and its layout.
        unsafe {
            self.inner
                .deallocate_nonzero(NonNull::new_unchecked(ptr), layout)
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        into_raw(self.inner.allocate_zeroed_nonzero(layout))
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `GlobalAlloc::realloc` callers promise that `new_size` is non-zero and, rounded
        // up to the alignment, does not overflow `isize`, so the layout is valid; `ptr` is a live
        // non-null block with layout `layout`.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let ptr = NonNull::new_unchecked(ptr);
            let result = if new_size >= layout.size() {
                self.inner.grow_nonzero(ptr, layout, new_layout)
            } else {
                self.inner.shrink_nonzero(ptr, layout, new_layout)
            };
            into_raw(result)
        }
    }
}
