#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

//! # Vocabulary
//!
//! - **[`HeapKit`]**: the composed general-purpose allocator,
//!   `ThreadCache<Slab<Retained<MmapPages>>>`: per-thread caches ([`tcache`]) in front of a
//!   size-class slab allocator ([`slab`]) that maps its memory with `mmap` through a layer that
//!   keeps freed chunks and huge blocks for reuse, with decay ([`pages`]).
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

pub use heapkit_core as core;
pub use heapkit_pages as pages;
pub use heapkit_slab as slab;
pub use heapkit_tcache as tcache;

#[cfg(feature = "bins")]
pub use heapkit_bins as bins;
#[cfg(feature = "bump")]
pub use heapkit_bump as bump;
#[cfg(feature = "fixed")]
pub use heapkit_fixed as fixed;

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
/// It is also a heapkit [`Allocator`] (and, with the `allocator-api2` feature, an
/// `allocator_api2` one), usable as a local instance: dropping it returns all its memory.
pub struct HeapKit {
    cache: ThreadCache<Backend>,
}

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

    /// Takes every lock of the heap, so that a `fork` copies a heap no thread is in the middle
    /// of changing: the `pthread_atfork` prepare handler. The thread caches need no lock (each
    /// thread's magazine is its own, and slots are claimed with atomics), so these are the
    /// slab's locks, then the retaining layer's (the slab maps under its chunk lock: that
    /// order).
    pub fn lock_for_fork(&self) {
        self.cache.backend().lock_all();
        self.cache.backend().pages().raw_lock().lock();
    }

    /// Releases what [`lock_for_fork`](Self::lock_for_fork) took: the `pthread_atfork` parent
    /// and child handlers.
    ///
    /// # Safety
    /// The calling thread took the locks with `lock_for_fork` — or, in the child of a `fork`,
    /// the thread that called `fork` did, and this is that thread.
    pub unsafe fn unlock_after_fork(&self) {
        // SAFETY: forwarded from the caller: this thread holds every lock; each is released
        // once, in reverse order.
        unsafe {
            self.cache.backend().pages().raw_lock().unlock();
            self.cache.backend().unlock_all();
        }
    }
}

impl HeapKit {
    /// The thread cache's hit path alone: a block for `layout` from this thread's cache, or
    /// null when only the full path (an allocating method) can serve it. See
    /// [`ThreadCache::allocate_cached`].
    #[inline(always)]
    pub fn allocate_cached(&self, layout: Layout) -> *mut u8 {
        self.cache.allocate_cached(layout)
    }

    /// Makes this heap's thread cache the process's primary one (see
    /// [`ThreadCache::claim_primary`]) if none is yet, and points the calling thread's primary
    /// word at its magazine: for the C library's `malloc` of a size the direct table does not
    /// cover.
    #[cold]
    pub fn sync_primary(&'static self) {
        self.cache.sync_primary()
    }

    /// The miss path of C's `malloc` for the sizes the direct table covers, in one call into
    /// the thread cache: claims the primary word, attaches the thread's magazine, points the
    /// word at it and refills the bin the direct table names (see
    /// [`ThreadCache::allocate_small_primary_slow`]). Null when out of memory.
    ///
    /// Inlined: call it from an out-of-line, `#[cold]` function of your own.
    #[inline(always)]
    pub fn allocate_small_primary_slow(&'static self, size_bytes: usize) -> *mut u8 {
        self.cache.allocate_small_primary_slow(size_bytes)
    }

    /// The hit path of C's `malloc`: a block of `size_bytes` (`1..=1024`) aligned to 16 from
    /// this thread's cache, through the primary word and the direct table (no class lookup),
    /// or null when only the full path can serve it.
    ///
    /// # Safety
    /// No other cache in the process has claimed the primary word (see
    /// [`ThreadCache::allocate_cached_small_primary`]).
    #[inline(always)]
    pub unsafe fn allocate_cached_small_primary(&'static self, size_bytes: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.allocate_cached_small_primary(size_bytes) }
    }

    /// `deallocate_unsized` through the primary word.
    ///
    /// # Safety
    /// As for `deallocate_unsized`, and no other cache in the process has claimed the primary
    /// word.
    #[inline(always)]
    pub unsafe fn deallocate_unsized_primary(&'static self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.deallocate_unsized_primary(ptr) }
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
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.alloc(layout) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.realloc(ptr, layout, new_size) }
    }
}

// SAFETY: every call is forwarded to the thread cache, which keeps the block contract.
unsafe impl Allocator for HeapKit {
    #[inline(always)]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.cache.allocate_nonzero(layout)
    }

    #[inline(always)]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.deallocate_nonzero(ptr, layout) }
    }

    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.cache.allocate_zeroed_nonzero(layout)
    }

    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.grow_nonzero(ptr, old_layout, new_layout) }
    }

    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.shrink_nonzero(ptr, old_layout, new_layout) }
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

heapkit_core::impl_foreign_allocators!(impl[] for HeapKit);
