//! The C library's interface to [`HeapKit`]: the entry points heapkit-malloc builds `malloc`,
//! `free` and the `fork` handlers from, kept off `HeapKit`'s documented API.
//!
//! They are sound but narrow: the primary-word paths assume one `'static` heap per process owns
//! the thread-local primary word (heapkit-malloc's `HEAP`), and the fork pair must bracket a
//! `fork`. A Rust program reaches the same memory through `GlobalAlloc` and heapkit's
//! `Allocator`; nothing here is faster for it. Import the trait to call them:
//! `use heapkit::c_library::CLibraryEntry as _;`.

use crate::HeapKit;
use ::core::alloc::Layout;
use ::core::ptr::NonNull;

/// The C library's entry points into a [`HeapKit`] (see the [module](self) documentation).
/// Implemented for `HeapKit` only; every method is `#[inline(always)]` and forwards to the
/// thread cache, so calling through the trait costs nothing over an inherent method.
pub trait CLibraryEntry {
    /// The thread cache's hit path alone: a block for `layout` from this thread's cache, or
    /// null when only the full path (an allocating method) can serve it. See
    /// `ThreadCache::allocate_cached`.
    fn allocate_cached(&self, layout: Layout) -> *mut u8;

    /// Makes this heap's thread cache the process's primary one (see
    /// `ThreadCache::claim_primary`) if none is yet, and points the calling thread's primary
    /// word at its magazine: for the C library's `malloc` of a size the direct table does not
    /// cover.
    fn sync_primary(&'static self);

    /// The miss path of C's `malloc` for the sizes the direct table covers, in one call into
    /// the thread cache: claims the primary word, attaches the thread's magazine, points the
    /// word at it and refills the bin the direct table names (see
    /// `ThreadCache::allocate_small_primary_slow`). Null when out of memory.
    ///
    /// Inlined: call it from an out-of-line, `#[cold]` function of your own.
    fn allocate_small_primary_slow(&'static self, size_bytes: usize) -> *mut u8;

    /// The hit path of C's `malloc`: a block of `size_bytes` (`1..=1024`) aligned to 16 from
    /// this thread's cache, through the primary word and the direct table (no class lookup),
    /// or null when only the full path can serve it.
    ///
    /// # Safety
    /// No other cache in the process has claimed the primary word (see
    /// `ThreadCache::allocate_cached_small_primary`).
    unsafe fn allocate_cached_small_primary(&'static self, size_bytes: usize) -> *mut u8;

    /// `deallocate_unsized` through the primary word.
    ///
    /// # Safety
    /// As for `deallocate_unsized`, and no other cache in the process has claimed the primary
    /// word.
    unsafe fn deallocate_unsized_primary(&'static self, ptr: NonNull<u8>);

    /// `ThreadCache::allocate_cached_small_primary_sized`: `calloc`'s hit, with the block's
    /// class size.
    ///
    /// # Safety
    /// As for [`allocate_cached_small_primary`](Self::allocate_cached_small_primary).
    unsafe fn allocate_cached_small_primary_sized(
        &'static self,
        size_bytes: usize,
    ) -> (*mut u8, usize);

    /// Sends every later `_primary` call to a cold path, and each block freed through
    /// [`deallocate_unsized_primary`](Self::deallocate_unsized_primary) to `observer` before it
    /// is released: `ThreadCache::divert_primary` (heapkit-tcache's `divert.rs`). False when it
    /// cannot (another thread may exist, or `secure`).
    fn divert_primary(&'static self, observer: fn(NonNull<u8>)) -> bool;

    /// Takes every lock of the heap, so that a `fork` copies a heap no thread is in the middle
    /// of changing: the `pthread_atfork` prepare handler. The thread caches need no lock (each
    /// thread's magazine is its own, and slots are claimed with atomics), so these are the
    /// slab's locks, then the retaining layer's (the slab maps under its chunk lock: that
    /// order).
    fn lock_for_fork(&self);

    /// Releases what [`lock_for_fork`](Self::lock_for_fork) took: the `pthread_atfork` parent
    /// and child handlers.
    ///
    /// # Safety
    /// The calling thread took the locks with `lock_for_fork` — or, in the child of a `fork`,
    /// the thread that called `fork` did, and this is that thread.
    unsafe fn unlock_after_fork(&self);
}

impl CLibraryEntry for HeapKit {
    #[inline(always)]
    fn allocate_cached(&self, layout: Layout) -> *mut u8 {
        self.cache.allocate_cached(layout)
    }

    #[cold]
    fn sync_primary(&'static self) {
        self.cache.sync_primary()
    }

    #[inline(always)]
    fn allocate_small_primary_slow(&'static self, size_bytes: usize) -> *mut u8 {
        self.cache.allocate_small_primary_slow(size_bytes)
    }

    #[inline(always)]
    unsafe fn allocate_cached_small_primary(&'static self, size_bytes: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.allocate_cached_small_primary(size_bytes) }
    }

    #[inline(always)]
    unsafe fn allocate_cached_small_primary_sized(
        &'static self,
        size_bytes: usize,
    ) -> (*mut u8, usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.allocate_cached_small_primary_sized(size_bytes) }
    }

    #[inline(always)]
    unsafe fn deallocate_unsized_primary(&'static self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.cache.deallocate_unsized_primary(ptr) }
    }

    fn divert_primary(&'static self, observer: fn(NonNull<u8>)) -> bool {
        self.cache.divert_primary(observer)
    }

    fn lock_for_fork(&self) {
        // The profiler's lock first: a reader of the profile allocates while holding it.
        #[cfg(feature = "prof")]
        crate::prof::lock_for_fork();
        self.cache.lock_magazine_frees();
        self.cache.backend().lock_all();
        self.cache.backend().pages().raw_lock().lock();
    }

    unsafe fn unlock_after_fork(&self) {
        // SAFETY: forwarded from the caller: this thread holds every lock; each is released
        // once, in reverse order.
        unsafe {
            self.cache.backend().pages().raw_lock().unlock();
            self.cache.backend().unlock_all();
            self.cache.unlock_magazine_frees();
            #[cfg(feature = "prof")]
            crate::prof::unlock_after_fork();
        }
    }
}
