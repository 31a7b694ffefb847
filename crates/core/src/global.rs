//! `GlobalAdapter<A>`: any heapkit allocator as a `GlobalAlloc` (and, when `Sync`, as the
//! `#[global_allocator]`).

use crate::Allocator;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

/// Implements [`GlobalAlloc`] for any heapkit [`Allocator`].
///
/// A `#[global_allocator]` static must be `Sync`, so there `A` must be (wrap a single-threaded
/// allocator in [`Locked`](crate::Locked)); a `GlobalAlloc` used by one thread — a benchmark of
/// the lock-free form, a `thread_local!` heap — needs no lock.
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
unsafe impl<A: Allocator> GlobalAlloc for GlobalAdapter<A> {
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

/// The opposite bridge: any [`GlobalAlloc`] (the system allocator, mimalloc, another crate's
/// global allocator) as a heapkit [`Allocator`], so it can sit under heapkit's adapters
/// (`StaticAllocator`, `Counting`) and run heapkit's conformance suite.
///
/// ```
/// use heapkit_core::{Allocator, FromGlobal};
/// use std::alloc::{Layout, System};
/// let system = FromGlobal(System);
/// let layout = Layout::new::<[u64; 4]>();
/// let block = system.allocate_zeroed(layout).unwrap();
/// assert_eq!(block.len(), 32);
/// unsafe { system.deallocate(block.cast(), layout) };
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct FromGlobal<G>(pub G);

#[inline(always)]
fn into_block(ptr: *mut u8, len: usize) -> Result<NonNull<[u8]>, crate::AllocError> {
    NonNull::new(ptr)
        .map(|p| NonNull::slice_from_raw_parts(p, len))
        .ok_or(crate::AllocError)
}

impl<G: GlobalAlloc> FromGlobal<G> {
    /// `GlobalAlloc::realloc` keeps the alignment, so a change of alignment moves the block
    /// through allocate, copy, free; otherwise `realloc` does the work (in place when it can).
    ///
    /// # Safety
    /// `ptr` is a live block of `self.0` with `old_layout`; `new_layout.size() > 0`.
    unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, crate::AllocError> {
        if old_layout.align() == new_layout.align() {
            // SAFETY: forwarded from the caller; the alignment is unchanged, as `realloc` needs.
            let raw = unsafe { self.0.realloc(ptr.as_ptr(), old_layout, new_layout.size()) };
            return into_block(raw, new_layout.size());
        }
        // SAFETY: forwarded from the caller; this allocator frees exactly through `self.0`.
        unsafe { crate::relocate(self, ptr, old_layout, new_layout) }
    }
}

// SAFETY: every call maps onto `GlobalAlloc`'s contract: null is `AllocError`, blocks are exactly
// as long as asked, and `resize` keeps the old block on failure because `realloc` does.
unsafe impl<G: GlobalAlloc> Allocator for FromGlobal<G> {
    #[inline]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, crate::AllocError> {
        // SAFETY: the layout's size is non-zero, as `GlobalAlloc::alloc` requires.
        into_block(unsafe { self.0.alloc(layout) }, layout.size())
    }
    #[inline]
    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, crate::AllocError> {
        // SAFETY: as above.
        into_block(unsafe { self.0.alloc_zeroed(layout) }, layout.size())
    }
    #[inline]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller passes a live block of this allocator with a layout that fits it;
        // blocks are reported exactly as long as asked, so that layout is the allocation's.
        unsafe { self.0.dealloc(ptr.as_ptr(), layout) }
    }
    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, crate::AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.resize(ptr, old_layout, new_layout) }
    }
    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, crate::AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.resize(ptr, old_layout, new_layout) }
    }
}

/// A bridged allocator reports what the allocator behind it reports.
impl<G: crate::Introspect> crate::Introspect for FromGlobal<G> {
    fn check(&self) -> Result<(), crate::InvariantError> {
        self.0.check()
    }
    fn stats(&self) -> Option<crate::Stats> {
        self.0.stats()
    }
}

/// The system allocator has nothing to walk and keeps no figures.
#[cfg(feature = "std")]
impl crate::Introspect for std::alloc::System {}
