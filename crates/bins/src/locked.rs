//! `LockedBins<P>`: one arena shared by threads, and the batch contract a thread cache needs.
//!
//! ```text
//!   ThreadCache<LockedBins<P>>          per-thread magazines (heapkit-tcache)
//!        │ refill / flush: one lock per batch
//!        ▼
//!   LockedBins<P> = SpinLock + Bins<P>  the arena (with its own tcache inside)
//! ```
//!
//! `heapkit_core::Locked<Bins<P>>` is the generic way to share a `Bins`; it forwards
//! `Allocator` only. `LockedBins` is the same lock around the same heap, plus the traits that
//! need the heap's own knowledge: [`UnsizedAllocator`] and [`BatchAllocator`] (whose batches
//! take the lock once, not once per block).

use crate::batch::CLASS_COUNT;
use crate::config::Config;
use crate::heap::Bins;
use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::{
    AllocError, Allocator, BatchAllocator, Introspect, InvariantError, Locked, LockedGuard,
    PageSource, Stats, UnsizedAllocator,
};

/// A [`Bins`] behind a spin lock: `Sync`, and a [`BatchAllocator`] so that
/// `heapkit_tcache::ThreadCache` can front it.
pub struct LockedBins<P: PageSource> {
    inner: Locked<Bins<P>>,
}

// Checked in test builds: naming a page source here keeps heapkit-pages a dev-dependency.
#[cfg(test)]
static_assertions::assert_impl_all!(LockedBins<heapkit_pages::MmapPages>: Send, Sync);
#[cfg(test)]
static_assertions::assert_impl_all!(LockedBins<heapkit_pages::StaticPages>: Send, Sync);

impl<P: PageSource> LockedBins<P> {
    /// A shared heap over `pages` with glibc's default tunables (`const`: a `static` can hold
    /// it).
    pub const fn new(pages: P) -> Self {
        Self::with_config(pages, Config::DEFAULT)
    }

    /// A shared heap with the given tunables.
    pub const fn with_config(pages: P, config: Config) -> Self {
        LockedBins {
            inner: Locked::new(Bins::with_config(pages, config)),
        }
    }

    /// Takes the lock and gives the heap (for `trim`, `fragmentation`, `heap_map`, ...).
    #[inline]
    pub fn lock(&self) -> LockedGuard<'_, Bins<P>> {
        self.inner.lock()
    }

    /// The `Locked` inside.
    pub fn as_locked(&self) -> &Locked<Bins<P>> {
        &self.inner
    }
}

// SAFETY: every call runs under the lock, so the heap sees one caller at a time; `Bins`'s
// block contract carries over.
unsafe impl<P: PageSource> Allocator for LockedBins<P> {
    #[inline]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.inner.lock().allocate_nonzero(layout)
    }

    #[inline]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.lock().deallocate_nonzero(ptr, layout) }
    }

    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.inner.lock().allocate_zeroed_nonzero(layout)
    }

    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.lock().grow_nonzero(ptr, old_layout, new_layout) }
    }

    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe {
            self.inner
                .lock()
                .shrink_nonzero(ptr, old_layout, new_layout)
        }
    }
}

// SAFETY: forwarded under the lock to `Bins`, whose headers give every block's size.
unsafe impl<P: PageSource> UnsizedAllocator for LockedBins<P> {
    #[inline]
    unsafe fn usable_size(&self, ptr: NonNull<u8>) -> usize {
        // SAFETY: forwarded from the caller. A live block's header does not change while it
        // is live, but the lock keeps the read ordered after the block's allocation.
        unsafe { self.inner.lock().usable_size(ptr) }
    }

    #[inline]
    unsafe fn deallocate_unsized(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.lock().deallocate_unsized(ptr) }
    }
}

// SAFETY: a class is a chunk size (32 + 16 c); batches hand out chunks of exactly that size
// (so `class_of_block` finds the class they were allocated in), single allocations of a
// class's layouts get chunks at least that large, and every block of every path is freed by
// its header alone, so any release path takes any block. Class blocks are 16-aligned, which
// covers the alignment of every class size (24 + 16 c is a multiple of 8, not of 16).
unsafe impl<P: PageSource + Send> BatchAllocator for LockedBins<P> {
    #[inline(always)]
    fn class_count(&self) -> usize {
        CLASS_COUNT
    }

    #[inline(always)]
    fn class_of(&self, layout: Layout) -> Option<usize> {
        Bins::<P>::class_of(layout)
    }

    #[inline(always)]
    fn class_size(&self, class: usize) -> usize {
        Bins::<P>::class_size(class)
    }

    #[inline]
    unsafe fn class_of_block(&self, ptr: NonNull<u8>) -> Option<usize> {
        // SAFETY: forwarded from the caller; a live block's header is stable while it lives.
        unsafe { self.inner.lock().class_of_block(ptr) }
    }

    fn allocate_batch(&self, class: usize, out: &mut [*mut u8]) -> usize {
        self.inner.lock().allocate_batch(class, out)
    }

    unsafe fn deallocate_batch(&self, class: usize, blocks: &[*mut u8]) {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.lock().deallocate_batch(class, blocks) }
    }
}

impl<P: PageSource> Introspect for LockedBins<P> {
    fn check(&self) -> Result<(), InvariantError> {
        self.inner.lock().check()
    }

    fn stats(&self) -> Option<Stats> {
        self.inner.lock().stats()
    }
}

heapkit_core::impl_foreign_allocators!(impl[P: PageSource] for LockedBins<P>);
