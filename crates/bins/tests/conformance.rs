//! heapkit's conformance suite, run against `Bins` (with and without fast bins).

use heapkit_bins::{Bins, Config, LockedBins};
use heapkit_core::Locked;
use heapkit_testkit::{test_pages, Suite};

/// Miri interprets every byte the suite touches and every `check()` walk; its suite asks for
/// blocks of at most 8 KiB, which a smaller pool serves as well.
const POOL_BYTES: usize = if cfg!(miri) { 1 << 20 } else { 8 << 20 };

/// The suite, lighter under Miri: blocks of at most 2 KiB (the testkit fills and verifies
/// every byte of every live block after each operation, one interpreted byte at a time; 2 KiB
/// still reaches the large bins, from 1 KiB) and 4 cases instead of 6. The same assertions run.
fn suite(name: &'static str) -> Suite {
    let suite = Suite::new(name);
    if cfg!(miri) {
        suite.max_size(2048).cases(4)
    } else {
        suite
    }
}

#[test]
fn conformance() {
    suite("bins").run(|| Bins::new(test_pages(POOL_BYTES)));
}

#[test]
fn conformance_with_fast_bins() {
    suite("bins-fast").run(|| Bins::with_config(test_pages(POOL_BYTES), Config::FAST_BINS));
}

#[test]
fn threads() {
    suite("bins").run_threads(|| Locked::new(Bins::new(test_pages(POOL_BYTES))));
}

/// `config` with a smaller top pad under Miri: once maps fail, the suite allocates until a
/// request is refused, filling every block byte by byte, so the spare top a first map leaves
/// (128 KiB by default) is what Miri pays for. 16 KiB keeps the same path (serve from top,
/// then refuse) at an eighth of the cost.
fn oom_config(config: Config) -> Config {
    if cfg!(miri) {
        Config {
            top_pad_bytes: 16 * 1024,
            ..config
        }
    } else {
        config
    }
}

#[test]
fn out_of_memory() {
    suite("bins").run_out_of_memory(
        || test_pages(POOL_BYTES),
        |pages| Bins::with_config(pages, oom_config(Config::DEFAULT)),
    );
}

#[test]
fn out_of_memory_with_fast_bins() {
    suite("bins-fast").run_out_of_memory(
        || test_pages(POOL_BYTES),
        |pages| Bins::with_config(pages, oom_config(Config::FAST_BINS)),
    );
}

#[test]
fn locked_bins_conformance() {
    suite("locked-bins").run(|| LockedBins::new(test_pages(POOL_BYTES)));
}

#[test]
#[cfg_attr(miri, ignore)] // mmap: a 1 GiB alignment needs the address space
fn large_alignments() {
    use heapkit_pages::MmapPages;
    Suite::new("bins-mmap").run_large_alignments(|| Bins::new(MmapPages::new()));
}
