//! The primary cache: the C library's entry points, which read each thread's magazine from a
//! thread-local word of their own instead of the slot and the table.
//!
//! They are heapkit-malloc's interface, not `ThreadCache`'s documented API (`#[doc(hidden)]`):
//! sound, but only of use to the one `'static` cache of a C library; a Rust program reaches the
//! same blocks through `GlobalAlloc` and heapkit's `Allocator`. The facade passes them on
//! through `heapkit::c_library`, equally hidden.

use crate::bin;
use crate::cache::ThreadCache;
use crate::magazine::{direct_bin, direct_index, DIRECT_MAX_BYTES, DIRECT_STEP_BYTES};
use crate::slot;
use crate::sync::Ordering;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use core::sync::atomic::AtomicUsize;
use heapkit_core::BatchAllocator;

/// The address of the cache that has claimed this thread-local word (0: none yet;
/// `divert::DIVERTED`: nobody, for good). See [`ThreadCache::claim_primary`] and `divert.rs`.
pub(crate) static PRIMARY_CACHE: AtomicUsize = AtomicUsize::new(0);

/// The *primary* cache: one cache in the process may have each thread's magazine in a
/// thread-local word of its own, so that its fast paths read the magazine with one TLS load
/// instead of the slot and the table (two instructions fewer per call: mimalloc's heap pointer
/// in TLS). The C library's heap claims it; every other cache uses the table.
///
/// The word is kept equal to the table's entry for the thread's slot, or the empty magazine:
/// set whenever the primary cache attaches a thread's magazine (every slow path does), reset at
/// thread exit before the slot is given back. So a stale word can only make a fast path miss.
impl<B: BatchAllocator> ThreadCache<B> {
    /// Whether this cache holds the primary magazine word.
    pub(crate) fn is_primary(&self) -> bool {
        PRIMARY_CACHE.load(Ordering::Relaxed) == self as *const Self as usize
    }

    #[doc(hidden)]
    /// Makes this cache the primary one if no cache is yet; returns whether it is (now or
    /// already). Only a `'static` cache may be primary: the word must never outlive it. False
    /// for every cache once the primary entry points are diverted (`divert.rs`).
    pub fn claim_primary(&'static self) -> bool {
        let me = self as *const Self as usize;
        let holder = PRIMARY_CACHE.load(Ordering::Relaxed);
        if holder != 0 {
            // Held, or diverted: no locked instruction (a diverted heap asks on every call).
            return holder == me;
        }
        match PRIMARY_CACHE.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(holder) => holder == me,
        }
    }

    #[doc(hidden)]
    /// Claims the primary word if it is free, and points this thread's word at its magazine
    /// here: for the paths of callers of the `_primary` methods that go through the general
    /// methods (the C `malloc` of a size the direct table does not cover), so that a thread's
    /// next call hits. The small miss has its own entry point,
    /// [`allocate_small_primary_slow`](Self::allocate_small_primary_slow).
    #[cold]
    pub fn sync_primary(&'static self) {
        if self.claim_primary() {
            slot::set_primary_magazine(self.current_magazine());
        }
    }

    #[doc(hidden)]
    /// [`allocate_cached`](Self::allocate_cached) for C's `malloc`: a block of `size_bytes`
    /// (`1..=DIRECT_MAX_BYTES`) aligned to [`DIRECT_STEP_BYTES`], from the magazine the
    /// primary word names, through its direct table (no class lookup); or null when only an
    /// allocating method can serve it.
    ///
    /// # Safety
    /// No other cache has claimed the primary word (`claim_primary` would return true for this
    /// one); otherwise the word may hold another cache's magazine.
    #[inline(always)]
    pub unsafe fn allocate_cached_small_primary(&'static self, size_bytes: usize) -> *mut u8 {
        debug_assert!((1..=DIRECT_MAX_BYTES).contains(&size_bytes));
        let bins = slot::primary_magazine();
        // SAFETY: every magazine, the empty one included, has a full direct table before its
        // header, and the index is below DIRECT_LEN for the sizes this method takes. The bin
        // is this thread's (or an empty one, which a pop never writes): see `allocate_in_class`.
        unsafe {
            let entry = direct_bin::<B>(bins, size_bytes);
            self.hand_out(bin::pop_with(entry, self.fast_secrets()))
        }
    }

    #[doc(hidden)]
    /// [`allocate_cached_small_primary`](Self::allocate_cached_small_primary) for `calloc`:
    /// the block and its class's block size (what `calloc` zeroes: the whole usable size, as
    /// the general zeroed path does), found from the bin the direct table named — no lookup
    /// through the block. `(null, 0)` when only an allocating method can serve it.
    ///
    /// # Safety
    /// As for `allocate_cached_small_primary`.
    #[inline(always)]
    pub unsafe fn allocate_cached_small_primary_sized(
        &'static self,
        size_bytes: usize,
    ) -> (*mut u8, usize) {
        debug_assert!((1..=DIRECT_MAX_BYTES).contains(&size_bytes));
        let bins = slot::primary_magazine();
        // SAFETY: as in `allocate_cached_small_primary`.
        let entry = unsafe { direct_bin::<B>(bins, size_bytes) };
        // SAFETY: as in `allocate_cached_small_primary`.
        let block = self.hand_out(unsafe { bin::pop(entry) });
        if block.is_null() {
            return (block, 0);
        }
        // A pop succeeded, so the entry is a class's bin of this magazine (the uncached bin
        // and the empty magazine's never hold a block): its index is the class.
        // SAFETY: both point into the magazine `bins` heads.
        let class = unsafe { entry.offset_from(bins) } as usize;
        debug_assert!(class < self.backend.class_count());
        (block, self.backend.class_size(class))
    }

    #[doc(hidden)]
    /// The miss path of [`allocate_cached_small_primary`](Self::allocate_cached_small_primary),
    /// in one call: claims the primary word if it is free, attaches this thread's magazine
    /// (taking a slot and making the magazine on first use), points the word at it (its one
    /// write), and serves `size_bytes` from the bin the direct table names for the size —
    /// popping it, else refilling it from its class's shelf, then from the backend, as
    /// [`alloc`](core::alloc::GlobalAlloc::alloc) would. The class is the bin's index in the
    /// magazine: no class lookup. Null when out of memory, and for sizes outside
    /// `1..=DIRECT_MAX_BYTES`.
    ///
    /// A size whose step no single class serves (the table names the uncached bin) takes the
    /// class the backend gives its layout; a thread that can have no magazine (no slot left, or
    /// its thread-local storage being torn down) is served by the backend; and when another
    /// cache holds the word, this one serves through its table. The block is always one that
    /// `GlobalAlloc::alloc` with `size_bytes` at [`DIRECT_STEP_BYTES`] alignment could return.
    ///
    /// Inlined: call it from an out-of-line, `#[cold]` function of your own (heapkit-malloc's
    /// `allocate_small_cold`), so that the inline hit path stays free of it and the whole miss
    /// is that one call.
    #[inline(always)]
    pub fn allocate_small_primary_slow(&'static self, size_bytes: usize) -> *mut u8 {
        if !(1..=DIRECT_MAX_BYTES).contains(&size_bytes) {
            return ptr::null_mut();
        }
        let Ok(layout) = Layout::from_size_align(size_bytes, DIRECT_STEP_BYTES) else {
            return ptr::null_mut();
        };
        if !self.claim_primary() {
            // The word is another cache's: leave it alone and serve through our table.
            // SAFETY: a non-zero size.
            return unsafe { GlobalAlloc::alloc(self, layout) };
        }
        let bins = self.attach_table_magazine();
        if bins.is_null() {
            // A layout of a class (the direct table's sizes all have one).
            return self.hand_out(self.allocate_uncached(layout));
        }
        slot::set_primary_magazine(bins);
        // SAFETY: a magazine of this cache; the size is in range (tested above).
        let index = unsafe { direct_index::<B>(bins, size_bytes) };
        let class = if index < self.backend.class_count() {
            index
        } else {
            // The uncached bin: the step's sizes do not share one cached class.
            match self.backend.class_of(layout) {
                Some(class) => class,
                None => return self.allocate_uncached(layout),
            }
        };
        // SAFETY: `bins` is this thread's magazine (attached above); `class` serves `layout`:
        // the direct table names the bin of the class that serves every size of the step at
        // DIRECT_STEP_BYTES alignment (or the backend said so).
        self.hand_out(unsafe { self.allocate_attached(bins, class, layout) })
    }

    #[doc(hidden)]
    /// [`deallocate_unsized`](heapkit_core::UnsizedAllocator::deallocate_unsized) through the
    /// primary word.
    ///
    /// # Safety
    /// As for `deallocate_unsized`, and as for
    /// [`allocate_cached_small_primary`](Self::allocate_cached_small_primary).
    #[inline(always)]
    pub unsafe fn deallocate_unsized_primary(&'static self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.deallocate_unsized_in::<true>(ptr) }
    }
}
