//! The workspace conformance suite, over the test backend. `Counting` keeps the live figures:
//! the backend's own count includes the blocks the cache holds.

mod support;

use heapkit_core::Counting;
use heapkit_tcache::ThreadCache;
use heapkit_testkit::Suite;
use support::Pow2;

#[test]
fn conformance() {
    Suite::new("tcache-over-pow2")
        .max_align(4096)
        .run(|| Counting::new(ThreadCache::new(Pow2::new())));
}

#[test]
fn threads() {
    Suite::new("tcache-over-pow2").run_threads(|| Counting::new(ThreadCache::new(Pow2::new())));
}

// Large alignments through a thread cache are run over the slab by the facade's conformance
// tests (`HeapKit` is `ThreadCache<Slab<..>>`): this crate does not depend on the slab.
