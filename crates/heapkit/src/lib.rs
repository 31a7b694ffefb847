#![doc = include_str!("../README.md")]

//! # Vocabulary
//!
//! - **[`HeapKit`]**: the composed general-purpose allocator,
//!   `ThreadCache<Slab<Retained<MmapPages>>>`: per-thread caches ([`tcache`]) in front of a
//!   size-class slab allocator ([`slab`]) that maps its memory with `mmap` through a layer that
//!   keeps freed chunks and huge blocks for reuse, with decay ([`pages`]).
//! - **[`ProgramStats`]** (`program_stats.rs`): [`HeapKit::program_stats`], the program's view
//!   — bytes it holds, bytes free in thread caches, mapped, dirty, resident (`resident.rs`) —
//!   beside [`Introspect::stats`], which counts the slab's traffic (cached blocks are live
//!   there); [`HeapKit::trim`] (`trim.rs`) gives back what heapkit keeps. To count what passes through any allocator, wrap it in
//!   [`Counting`](heapkit_core::Counting):
//!
//! ```
//! use heapkit::core::{Allocator, Counting, Introspect};
//! use std::alloc::Layout;
//!
//! let heap = Counting::new(heapkit::HeapKit::new());
//! let layout = Layout::from_size_align(100, 8).unwrap();
//! let block = heap.allocate(layout).unwrap();
//! assert_eq!(heap.stats().unwrap().live_bytes, 100); // as asked, not as rounded
//! unsafe { heap.deallocate(block.cast(), layout) };
//! let stats = heap.stats().unwrap();
//! assert_eq!((stats.live_bytes, stats.allocations, stats.deallocations), (0, 1, 1));
//! assert_eq!(heap.inner().program_stats().held_bytes, 0);
//! ```
//!
//! - `prof` (feature `prof`): the sampled heap profiler hooked into `HeapKit` (sampled
//!   blocks are large blocks, whose frees the cache's free hook reports).
//! - The other crates are re-exported whole: [`core`] (traits and adapters), [`pages`],
//!   [`slab`], [`tcache`], and behind default features `bins`, `bump`, `fixed`.
//!
//! ```text
//!   #[global_allocator] static GLOBAL: HeapKit = HeapKit::new();
//!            │ alloc / dealloc (sized: the Layout gives the class)
//!            ▼
//!   ThreadCache ── per thread, per class: bin (intrusive list) ── pop / push
//!            │ refill / flush half a bin (allocate_batch / deallocate_batch); large layouts
//!            ▼
//!   Slab<Retained<MmapPages>> ── size classes (4 per doubling, 16 B .. 16 KiB), large and huge
//!            │ map / unmap / purge                                                     blocks
//!            ▼
//!   Retained ── unmapped chunks and huge blocks kept: best fit, purged after the delay,
//!            │  unmapped 10 delays later
//!            ▼
//!   MmapPages (anonymous mmap)
//! ```

// Inlined, so the re-exported crates are modules of this crate's documentation and the links
// above ([`tcache`], [`slab`]) resolve even under `cargo doc --no-deps`, where the crates' own
// pages may not exist (rustdoc then prints a link to a crate re-export as plain text).
#[doc(inline)]
pub use heapkit_core as core;
#[doc(inline)]
pub use heapkit_pages as pages;
#[doc(inline)]
pub use heapkit_slab as slab;
#[doc(inline)]
pub use heapkit_tcache as tcache;

#[cfg(feature = "bins")]
#[doc(inline)]
pub use heapkit_bins as bins;
#[cfg(feature = "bump")]
#[doc(inline)]
pub use heapkit_bump as bump;
#[cfg(feature = "fixed")]
#[doc(inline)]
pub use heapkit_fixed as fixed;
#[doc(hidden)]
pub mod c_library;
/// The allocator-api2 heapkit's allocators implement (0.2 with feature `allocator-api2-02` or
/// `allocator-api2`, else 0.4 with `allocator-api2-04`): `heapkit::allocator_api2::vec::Vec`.
#[cfg(any(feature = "allocator-api2-02", feature = "allocator-api2-04"))]
pub use heapkit_core::allocator_api2;

mod program_stats;
mod resident;
mod trim;

pub use program_stats::{ClassFigures, ProgramStats};
pub use trim::Trimmed;

#[cfg(feature = "prof")]
pub mod prof;

use ::core::alloc::{GlobalAlloc, Layout};
use ::core::ptr::NonNull;
use heapkit_core::{AllocError, Allocator, Introspect, InvariantError, Stats, UnsizedAllocator};
use heapkit_pages::{MmapPages, Retained};
use heapkit_slab::Slab;
use heapkit_tcache::ThreadCache;

/// The backend of [`HeapKit`]: the slab over `mmap`, through the retaining layer (chunks and
/// huge blocks freed are kept for reuse and decay; see `heapkit_pages::Retained`).
pub type Backend = Slab<Retained<MmapPages>>;

/// heapkit's general-purpose allocator: thread caches over a slab over `mmap`.
///
/// `const fn new`, so it can be the program's global allocator:
///
/// ```
/// #[global_allocator]
/// static GLOBAL: heapkit::HeapKit = heapkit::HeapKit::new();
///
/// let v: Vec<u64> = (0..1000).collect();
/// assert_eq!(v.iter().sum::<u64>(), 499_500);
/// ```
///
/// It is also a heapkit [`Allocator`] (and, with feature `allocator-api2-02` or
/// `allocator-api2-04`, an `allocator_api2` one of that version, re-exported as
/// `heapkit::allocator_api2`), usable as a local instance: dropping it returns all its
/// memory. Alignments up to 1 GiB are served (a `Box` of a `#[repr(align(4194304))]` type
/// included).
pub struct HeapKit {
    cache: ThreadCache<Backend>,
}

// The facade's promise: one `HeapKit` serves every thread, as a `static` global allocator.
static_assertions::assert_impl_all!(HeapKit: Send, Sync, GlobalAlloc, Default);

impl HeapKit {
    /// A HeapKit with no memory mapped yet.
    pub const fn new() -> Self {
        HeapKit {
            cache: ThreadCache::new(Slab::new(Retained::new(MmapPages::new()))),
        }
    }

    /// The thread cache (and through it, the slab).
    pub const fn cache(&self) -> &ThreadCache<Backend> {
        &self.cache
    }

    /// Returns this thread's cached blocks to the slab (see [`ThreadCache::flush_thread`]).
    pub fn flush_thread(&self) -> usize {
        self.cache.flush_thread()
    }

    /// Sets how long freed memory may stay resident, in the slab's free slots and in the
    /// retaining layer's runs alike (see `Slab::set_purge_delay_ms`,
    /// `Retained::set_purge_delay_ms`).
    pub fn set_purge_delay_ms(&self, delay_ms: u64) {
        self.cache.backend().set_purge_delay_ms(delay_ms);
        self.cache.backend().pages().set_purge_delay_ms(delay_ms);
    }

    /// The purge delay of the slab (the one `set_purge_delay_ms` sets everywhere);
    /// `u64::MAX`: never.
    pub fn purge_delay_ms(&self) -> u64 {
        self.cache.backend().purge_delay_ms()
    }

    /// Does the decay work that is due now, which otherwise waits for the next slow path: the
    /// slab's dirty slots older than the purge delay (`Slab::purge_due`), then the retaining
    /// layer's dirty runs older than the delay and purged runs older than ten delays
    /// (`Retained::decay_now`). For a background purger (heapkit-malloc's
    /// `HEAPKIT_BACKGROUND_PURGE`), so that a process that went idle gives memory back. Takes
    /// the slab's chunk lock, then (after releasing it) the retaining layer's; never allocates.
    /// Live threads' caches are untouched (their blocks belong to their threads); exited
    /// threads' caches go back first (`ThreadCache::reclaim_exited`), so that their blocks
    /// can be purged in the same round.
    pub fn purge_due(&self) {
        self.cache.reclaim_exited();
        self.cache.backend().purge_due();
        self.cache.backend().pages().decay_now();
    }

    /// Sets how many bytes of freed memory may stay resident before the oldest are purged, in
    /// the slab and in the retaining layer (where it is a floor that grows with the bytes in
    /// use; see `Retained::purge_threshold_bytes`).
    pub fn set_purge_threshold_bytes(&self, threshold_bytes: usize) {
        self.cache
            .backend()
            .set_purge_threshold_bytes(threshold_bytes);
        self.cache
            .backend()
            .pages()
            .set_purge_threshold_bytes(threshold_bytes);
    }

    /// Returns the cached blocks of exited threads to the slab (see
    /// [`ThreadCache::reclaim_idle`]).
    pub fn reclaim_idle(&self) -> usize {
        self.cache.reclaim_idle()
    }
}

impl Default for HeapKit {
    fn default() -> Self {
        Self::new()
    }
}

impl ::core::fmt::Debug for HeapKit {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.debug_struct("HeapKit").finish_non_exhaustive()
    }
}

// SAFETY: every call is forwarded to the thread cache, which keeps the block contract.
unsafe impl GlobalAlloc for HeapKit {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        #[cfg(feature = "prof")]
        if prof::is_active() {
            return self.alloc_profiled(layout, false);
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.alloc(layout) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        #[cfg(feature = "prof")]
        if prof::samples_may_exist() {
            // SAFETY: `GlobalAlloc` callers pass a live, non-null block of this heap.
            return unsafe { self.dealloc_profiled(NonNull::new_unchecked(ptr)) };
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        #[cfg(feature = "prof")]
        if prof::is_active() {
            return self.alloc_profiled(layout, true);
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        #[cfg(feature = "prof")]
        if prof::samples_may_exist() {
            // SAFETY: `GlobalAlloc::realloc` callers pass a live non-null block, its layout, and
            // a non-zero `new_size` that rounded up to the alignment fits `isize`.
            return unsafe {
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                self.realloc_profiled(NonNull::new_unchecked(ptr), layout, new_layout)
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.realloc(ptr, layout, new_size) }
    }
}

/// The thread cache of a [`HeapKit`].
type Cache = ThreadCache<Backend>;
/// The cache's `grow_nonzero` or `shrink_nonzero`.
type CacheResize =
    unsafe fn(&Cache, NonNull<u8>, Layout, Layout) -> Result<NonNull<[u8]>, AllocError>;

impl HeapKit {
    /// `grow_nonzero` and `shrink_nonzero`: through the profiler while sampled blocks may
    /// exist (a sampled block's record moves with it), else `resize` (the cache's
    /// `grow_nonzero` or `shrink_nonzero`).
    ///
    /// # Safety
    /// As for `resize`: `ptr` is a live block of this heap fitted by `old_layout`, both sizes
    /// non-zero, in the order `resize` requires.
    #[inline(always)]
    unsafe fn resize_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
        resize: CacheResize,
    ) -> Result<NonNull<[u8]>, AllocError> {
        #[cfg(feature = "prof")]
        if prof::samples_may_exist() {
            // SAFETY: forwarded from the caller: a live block of `old_layout`; non-zero sizes.
            let moved = unsafe { self.realloc_profiled(ptr, old_layout, new_layout) };
            return block_of(moved, new_layout);
        }
        // SAFETY: forwarded from the caller.
        unsafe { resize(&self.cache, ptr, old_layout, new_layout) }
    }
}

// SAFETY: every call is forwarded to the thread cache, which keeps the block contract.
unsafe impl Allocator for HeapKit {
    #[inline(always)]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        #[cfg(feature = "prof")]
        if prof::is_active() {
            return block_of(self.alloc_profiled(layout, false), layout);
        }
        self.cache.allocate_nonzero(layout)
    }

    #[inline(always)]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        #[cfg(feature = "prof")]
        if prof::samples_may_exist() {
            // SAFETY: forwarded from the caller: a live block of this heap.
            return unsafe { self.dealloc_profiled(ptr) };
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.deallocate_nonzero(ptr, layout) }
    }

    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        #[cfg(feature = "prof")]
        if prof::is_active() {
            return block_of(self.alloc_profiled(layout, true), layout);
        }
        self.cache.allocate_zeroed_nonzero(layout)
    }

    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.resize_nonzero(ptr, old_layout, new_layout, Cache::grow_nonzero) }
    }

    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.resize_nonzero(ptr, old_layout, new_layout, Cache::shrink_nonzero) }
    }
}

// SAFETY: forwarded to the thread cache, which asks the slab.
unsafe impl UnsizedAllocator for HeapKit {
    unsafe fn usable_size(&self, ptr: NonNull<u8>) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.usable_size(ptr) }
    }

    #[inline(always)]
    unsafe fn deallocate_unsized(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.deallocate_unsized(ptr) }
    }
}

impl Introspect for HeapKit {
    fn check(&self) -> Result<(), InvariantError> {
        self.cache.check()?;
        self.cache.backend().pages().check()
    }

    fn stats(&self) -> Option<Stats> {
        self.cache.stats()
    }
}

/// A raw block as the `Allocator` contract returns it: exactly `layout.size()` bytes (a sampled
/// block has more, which the caller need not know), or `AllocError` for null.
#[cfg(feature = "prof")]
fn block_of(block: *mut u8, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
    NonNull::new(block)
        .map(|ptr| NonNull::slice_from_raw_parts(ptr, layout.size()))
        .ok_or(AllocError)
}

heapkit_core::impl_foreign_allocators!(impl[] for HeapKit);
