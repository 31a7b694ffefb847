//! The conformance suite with profiling active at a 1-byte mean: every allocation is sampled,
//! so every block the suite sees is a sampled (large) block, freed through the free hook, and
//! every sized free, `realloc`, `grow` and `shrink` takes the profiled path.

use heapkit::core::{Counting, FromGlobal};
use heapkit::HeapKit;
use heapkit_testkit::Suite;

fn profile_everything() {
    heapkit::prof::set_sample_mean_bytes(1).expect("a non-zero mean");
    heapkit::prof::activate();
}

#[test]
#[cfg_attr(miri, ignore)] // mmap, and the unwinder
fn conformance_with_every_allocation_sampled() {
    profile_everything();
    Suite::new("heapkit-prof").run(|| Counting::new(HeapKit::new()));
    Suite::new("heapkit-prof-global-alloc").run(|| Counting::new(FromGlobal(HeapKit::new())));
    Suite::new("heapkit-prof").run_threads(|| Counting::new(HeapKit::new()));
    assert!(heapkit::prof::store_counts().1 > 0, "samples were taken");
}
