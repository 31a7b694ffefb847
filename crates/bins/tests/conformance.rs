//! heapkit's conformance suite, run against `Bins` (with and without fast bins).

use heapkit_bins::{Bins, Config};
use heapkit_core::Locked;
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
