//! heapkit's conformance suite, run against `Bins` (with and without fast bins).

use heapkit_bins::{Bins, Config, LockedBins};
use heapkit_core::{Counting, Locked};
use heapkit_pages::BufferPages;
use heapkit_tcache::ThreadCache;
use heapkit_testkit::{test_pages, Suite};

const POOL_BYTES: usize = 8 << 20;

#[test]
fn conformance() {
    Suite::new("bins").run(|| Bins::new(test_pages(POOL_BYTES)));
}

#[test]
fn conformance_with_fast_bins() {
    Suite::new("bins-fast").run(|| Bins::with_config(test_pages(POOL_BYTES), Config::FAST_BINS));
}

#[test]
#[cfg_attr(miri, ignore)]
fn threads() {
    Suite::new("bins").run_threads(|| Locked::new(Bins::new(test_pages(POOL_BYTES))));
}

#[test]
fn out_of_memory() {
    Suite::new("bins").run_out_of_memory(|| test_pages(POOL_BYTES), Bins::new);
}

#[test]
fn out_of_memory_with_fast_bins() {
    Suite::new("bins-fast").run_out_of_memory(
        || test_pages(POOL_BYTES),
        |pages| Bins::with_config(pages, Config::FAST_BINS),
    );
}

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
#[cfg_attr(miri, ignore)]
fn threads_behind_a_thread_cache() {
    Suite::new("tcache-over-bins").run_threads(cached_heap);
}

#[test]
fn locked_bins_conformance() {
    Suite::new("locked-bins").run(|| LockedBins::new(test_pages(POOL_BYTES)));
}
