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

#[test]
#[cfg_attr(miri, ignore)] // mmap: a 1 GiB alignment needs the address space
fn large_alignments() {
    use heapkit_pages::MmapPages;
    use heapkit_slab::Slab;
    Suite::new("tcache-over-slab-mmap")
        .run_large_alignments(|| Counting::new(ThreadCache::new(Slab::new(MmapPages::new()))));
}
