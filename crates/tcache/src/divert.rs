//! The divert: a mode of the primary cache in which no thread's primary magazine word is ever
//! set, so that every `_primary` fast path (the C library's `malloc` and `free`) misses and
//! takes a cold path — and an observer that the cold free paths tell of each block they are
//! given. A recorder or a call counter (heapkit-malloc's `HEAPKIT_TRACE`, `HEAPKIT_SHOW_STATS`)
//! hears of every `malloc` on its own miss path and of every `free` here, while the fast paths
//! keep the instructions they had: the mode costs them nothing when it is off (jemalloc's
//! `tsd_state_nominal_slow` sends its fast paths to the slow ones the same way).
//!
//! ```text
//!   PRIMARY_CACHE:  0 (none yet) ──claim──► &cache (primary) ──divert──► DIVERTED (for good)
//!                   0 ───────────────────────────────────────────divert──► DIVERTED
//!   while DIVERTED: claim_primary fails, so no slow path sets the word; the cache serves every
//!   thread through its table (the word stays the empty magazine, whose bins have limit 0):
//!     malloc  → pop from an empty bin → the caller's cold path        (it observes itself)
//!     free    → push into a limit-0 bin → deallocate_slow / uncached   → OBSERVER(block)
//! ```
//!
//! The divert must happen while the process has one thread (a library constructor): another
//! thread's word may already name its magazine, and nothing can reach another thread's word.
//! A forked child inherits the mode and its one thread's empty word.

use crate::cache::ThreadCache;
use crate::magazine::empty_magazine;
use crate::primary::PRIMARY_CACHE;
use crate::slot;
use crate::sync::Ordering;
use core::ptr::{self, NonNull};
use core::sync::atomic::AtomicPtr;
use heapkit_core::BatchAllocator;

/// The value of `PRIMARY_CACHE` once diverted: no cache's address (a cache is word-aligned and
/// never at address 1), so `claim_primary` fails for every cache.
pub(crate) const DIVERTED: usize = 1;

/// The observer of the diverted frees: null, or a `fn(NonNull<u8>)` (set once, by the divert).
static OBSERVER: AtomicPtr<()> = AtomicPtr::new(ptr::null_mut());

impl<B: BatchAllocator> ThreadCache<B> {
    #[doc(hidden)]
    /// Diverts the primary entry points of this cache for the rest of the process: no thread's
    /// primary word is set any more (this thread's is reset to the empty magazine), so every
    /// `allocate_cached_small_primary` misses and every `deallocate_unsized_primary` takes a
    /// cold path, which calls `observer` with the block before releasing it. The cache serves
    /// every thread through its table meanwhile (two instructions more per call, on the paths
    /// that are already cold). Idempotent; `observer` replaces the one installed before.
    ///
    /// Returns false, and changes nothing, when another thread may exist (the divert must run
    /// while the process has one thread, as in a library constructor), when another cache holds
    /// the primary word, with `hardened` (the quarantine's exchange comes before the push, so
    /// the cold path would hear of the displaced block, not the freed one), or with `secure`
    /// over a backend that keeps no handed-out record (a block with the free mark stops before
    /// the cold paths). With `secure` over a backend that keeps the record, a free either
    /// stops the process (`take_back`) or reaches the push, as without `secure`.
    ///
    /// The observer must not panic and must not free through this cache's primary methods
    /// (it may allocate).
    pub fn divert_primary(&'static self, observer: fn(NonNull<u8>)) -> bool {
        let free_may_stop_early =
            cfg!(feature = "hardened") || (crate::bin::SECURE && !B::RECORDS_HANDED_OUT);
        if free_may_stop_early || !heapkit_core::process_is_single_threaded() {
            return false;
        }
        let me = self as *const Self as usize;
        let holder = PRIMARY_CACHE.load(Ordering::Acquire);
        if holder != 0 && holder != me && holder != DIVERTED {
            return false;
        }
        OBSERVER.store(observer as *mut (), Ordering::Release);
        PRIMARY_CACHE.store(DIVERTED, Ordering::Release);
        // The word named the table's magazine for this thread (or the empty one): the table
        // keeps serving it.
        slot::set_primary_magazine(empty_magazine());
        true
    }
}

/// Tells the observer, if one is installed, of `ptr`, freed through a diverted primary entry
/// point and not yet released. Only the cold free paths call it.
#[inline]
pub(crate) fn observe(ptr: NonNull<u8>) {
    let observer = OBSERVER.load(Ordering::Acquire);
    if !observer.is_null() {
        // SAFETY: the only non-null value ever stored is a `fn(NonNull<u8>)`, cast to a data
        // pointer by `divert_primary`; function and data pointers have one size here.
        let observer = unsafe { core::mem::transmute::<*mut (), fn(NonNull<u8>)>(observer) };
        observer(ptr);
    }
}
