//! heapkit-tcache's `ThreadCache` in front of heapkit-bins' `LockedBins`: the conformance suite
//! through the composition. It lives in the facade, the crate that depends on both, so neither
//! algorithm crate depends on the other (moved from heapkit-bins' tests).
#![cfg(feature = "bins")]

use heapkit::bins::LockedBins;
use heapkit::core::Counting;
use heapkit::pages::BufferPages;
use heapkit::tcache::ThreadCache;
use heapkit_testkit::{test_pages, Suite};

/// The arena's pool, as in heapkit-bins' own conformance tests.
const POOL_BYTES: usize = 8 << 20;

/// The thread cache in front of the arena. `Counting` keeps the live figures: blocks the
/// cache holds are live to the arena.
fn cached_heap() -> Counting<ThreadCache<LockedBins<BufferPages<'static>>>> {
    Counting::new(ThreadCache::new(LockedBins::new(test_pages(POOL_BYTES))))
}

#[test]
fn conformance_behind_a_thread_cache() {
    Suite::new("tcache-over-bins").run(cached_heap);
}

#[test]
fn threads_behind_a_thread_cache() {
    Suite::new("tcache-over-bins").run_threads(cached_heap);
}

#[test]
#[cfg_attr(miri, ignore)] // mmap: a 1 GiB alignment needs the address space
fn large_alignments_behind_a_thread_cache() {
    use heapkit::pages::MmapPages;
    Suite::new("tcache-over-locked-bins-mmap").run_large_alignments(|| {
        Counting::new(ThreadCache::new(LockedBins::new(MmapPages::new())))
    });
}
