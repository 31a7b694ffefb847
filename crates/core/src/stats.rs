//! Statistics and introspection: `Stats`, the `Introspect` trait and the `Counting` wrapper.
//!
//! Counting costs atomic increments on every call, so it lives in a wrapper: an allocator that
//! is not wrapped pays nothing.

use crate::{AllocError, Allocator, InvariantError};
use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A snapshot of an allocator's figures. Fields an allocator cannot know are zero.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in live blocks, as the callers asked for them.
    pub live_bytes: usize,
    /// Number of live blocks.
    pub live_blocks: usize,
    /// The highest `live_bytes` seen.
    pub peak_bytes: usize,
    /// Bytes taken from the page source and not given back.
    pub mapped_bytes: usize,
    /// Successful allocations (including zeroed ones).
    pub allocations: usize,
    /// Deallocations.
    pub deallocations: usize,
    /// Successful grows and shrinks (reallocations).
    pub reallocations: usize,
    /// Requests refused with `AllocError`.
    pub failures: usize,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "live {} B in {} blocks, peak {} B, mapped {} B; {} allocs, {} frees, {} reallocs, {} failures",
            self.live_bytes,
            self.live_blocks,
            self.peak_bytes,
            self.mapped_bytes,
            self.allocations,
            self.deallocations,
            self.reallocations,
            self.failures
        )
    }
}

/// What an allocator can tell about itself. Every heapkit allocator implements it, so that the
/// conformance suite can verify it after every operation.
pub trait Introspect {
    /// Walks the allocator's structures and reports the first broken invariant. The default
    /// (for allocators with nothing to walk) finds nothing. Must not allocate.
    fn check(&self) -> Result<(), InvariantError> {
        Ok(())
    }

    /// The allocator's figures, if it keeps any.
    fn stats(&self) -> Option<Stats> {
        None
    }
}

impl<A: Introspect + ?Sized> Introspect for &A {
    fn check(&self) -> Result<(), InvariantError> {
        (**self).check()
    }
    fn stats(&self) -> Option<Stats> {
        (**self).stats()
    }
}

/// Counts what passes through an allocator: live bytes and blocks, the peak, and calls.
///
/// Blocks are reported exactly as long as asked (any extra capacity the inner allocator has is
/// hidden), so that the live-byte count is exact whatever layout a caller frees with.
///
/// The counters are relaxed atomics, so `Counting<A>` is `Sync` whenever `A` is. `mapped_bytes`
/// comes from the inner allocator's own [`Introspect::stats`] when it has any.
///
/// ```
/// use heapkit_core::{Allocator, Counting, Introspect, Locked};
/// # use heapkit_core::AllocError;
/// # use core::{alloc::Layout, ptr::NonNull};
/// # struct Sys;
/// # unsafe impl Allocator for Sys {
/// #     fn allocate_nonzero(&self, l: Layout) -> Result<NonNull<[u8]>, AllocError> {
/// #         let p = NonNull::new(unsafe { std::alloc::alloc(l) }).ok_or(AllocError)?;
/// #         Ok(NonNull::slice_from_raw_parts(p, l.size()))
/// #     }
/// #     unsafe fn deallocate_nonzero(&self, p: NonNull<u8>, l: Layout) {
/// #         unsafe { std::alloc::dealloc(p.as_ptr(), l) }
/// #     }
/// # }
/// # impl Introspect for Sys {}
/// let counted = Counting::new(Sys);
/// let layout = Layout::from_size_align(100, 8).unwrap();
/// let block = counted.allocate(layout).unwrap();
/// assert_eq!(counted.stats().unwrap().live_bytes, 100);
/// unsafe { counted.deallocate(block.cast(), layout) };
/// let stats = counted.stats().unwrap();
/// assert_eq!((stats.live_bytes, stats.peak_bytes, stats.deallocations), (0, 100, 1));
/// ```
#[derive(Debug, Default)]
pub struct Counting<A> {
    inner: A,
    live_bytes: AtomicUsize,
    live_blocks: AtomicUsize,
    peak_bytes: AtomicUsize,
    allocations: AtomicUsize,
    deallocations: AtomicUsize,
    reallocations: AtomicUsize,
    failures: AtomicUsize,
}

impl<A> Counting<A> {
    /// Wraps `inner` with all counters at zero.
    pub const fn new(inner: A) -> Self {
        Counting {
            inner,
            live_bytes: AtomicUsize::new(0),
            live_blocks: AtomicUsize::new(0),
            peak_bytes: AtomicUsize::new(0),
            allocations: AtomicUsize::new(0),
            deallocations: AtomicUsize::new(0),
            reallocations: AtomicUsize::new(0),
            failures: AtomicUsize::new(0),
        }
    }

    /// The wrapped allocator.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    fn on_alloc(
        &self,
        result: Result<NonNull<[u8]>, AllocError>,
        size: usize,
    ) -> Result<NonNull<[u8]>, AllocError> {
        match result {
            Ok(block) => {
                self.allocations.fetch_add(1, Ordering::Relaxed);
                self.live_blocks.fetch_add(1, Ordering::Relaxed);
                self.add_live(size);
                Ok(exactly(block, size))
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn add_live(&self, size: usize) {
        let live = self.live_bytes.fetch_add(size, Ordering::Relaxed) + size;
        self.peak_bytes.fetch_max(live, Ordering::Relaxed);
    }

    fn on_realloc(
        &self,
        result: Result<NonNull<[u8]>, AllocError>,
        old_size: usize,
        new_size: usize,
    ) -> Result<NonNull<[u8]>, AllocError> {
        match result {
            Ok(block) => {
                self.reallocations.fetch_add(1, Ordering::Relaxed);
                self.live_bytes.fetch_sub(old_size, Ordering::Relaxed);
                self.add_live(new_size);
                Ok(exactly(block, new_size))
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

/// Reports a block as exactly `size` bytes long. The caller then frees it with exactly that
/// size (a layout fits a block only between the size asked and the length returned), which is
/// what lets `Counting` subtract on free the very number it added on allocation.
#[inline(always)]
fn exactly(block: NonNull<[u8]>, size: usize) -> NonNull<[u8]> {
    debug_assert!(block.len() >= size);
    NonNull::slice_from_raw_parts(block.cast::<u8>(), size)
}

// SAFETY: every call is forwarded unchanged to the inner allocator; only counters are added.
unsafe impl<A: Allocator> Allocator for Counting<A> {
    #[inline]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.on_alloc(self.inner.allocate_nonzero(layout), layout.size())
    }
    #[inline]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        self.deallocations.fetch_add(1, Ordering::Relaxed);
        self.live_blocks.fetch_sub(1, Ordering::Relaxed);
        self.live_bytes.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.deallocate_nonzero(ptr, layout) }
    }
    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.on_alloc(self.inner.allocate_zeroed_nonzero(layout), layout.size())
    }
    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        let result = unsafe { self.inner.grow_nonzero(ptr, old_layout, new_layout) };
        self.on_realloc(result, old_layout.size(), new_layout.size())
    }
    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        let result = unsafe { self.inner.shrink_nonzero(ptr, old_layout, new_layout) };
        self.on_realloc(result, old_layout.size(), new_layout.size())
    }
}

impl<A: Introspect> Introspect for Counting<A> {
    fn check(&self) -> Result<(), InvariantError> {
        self.inner.check()
    }
    fn stats(&self) -> Option<Stats> {
        let mapped_bytes = self.inner.stats().map_or(0, |s| s.mapped_bytes);
        Some(Stats {
            live_bytes: self.live_bytes.load(Ordering::Relaxed),
            live_blocks: self.live_blocks.load(Ordering::Relaxed),
            peak_bytes: self.peak_bytes.load(Ordering::Relaxed),
            mapped_bytes,
            allocations: self.allocations.load(Ordering::Relaxed),
            deallocations: self.deallocations.load(Ordering::Relaxed),
            reallocations: self.reallocations.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        })
    }
}
