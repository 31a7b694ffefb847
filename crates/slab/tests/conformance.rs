//! The shared conformance suite (heapkit-testkit) against `Slab`.

use heapkit_pages::Retained;
use heapkit_slab::Slab;
use heapkit_testkit::{test_pages, Suite};

#[test]
fn conformance() {
    Suite::new("slab").run(|| Slab::new(test_pages(8 << 20)));
}

#[test]
fn conformance_with_eager_purging() {
    // Purging on every release exercises the purge path under the model.
    let cases = if cfg!(miri) { 3 } else { 32 };
    Suite::new("slab-eager-purge").cases(cases).run(|| {
        let slab = Slab::new(test_pages(8 << 20));
        slab.set_purge_threshold_bytes(0);
        slab
    });
}

#[test]
fn threads() {
    Suite::new("slab").run_threads(|| Slab::new(test_pages(32 << 20)));
}

#[test]
// Under Miri the suite exhausts with 64 × 4 KiB (256 KiB), which the first 2 MiB chunk serves
// without a new map, so "the source fails" is never observed; it runs natively.
#[cfg_attr(miri, ignore = "the Miri-sized exhaustion fits in one chunk")]
fn out_of_memory() {
    Suite::new("slab").run_out_of_memory(|| test_pages(8 << 20), Slab::new);
}

/// The slab over `Retained` (what `heapkit::HeapKit` runs on): reused chunks and huge blocks
/// hold old bytes, so zeroed allocations must not trust `maps_zeroed`.
#[test]
fn conformance_over_retained_runs() {
    Suite::new("slab-retained").run(|| Slab::new(Retained::new(test_pages(8 << 20))));
    let cases = if cfg!(miri) { 3 } else { 32 };
    Suite::new("slab-retained-eager").cases(cases).run(|| {
        let pages = Retained::new(test_pages(8 << 20));
        pages.set_purge_threshold_bytes(0);
        Slab::new(pages)
    });
}

#[test]
fn threads_over_retained_runs() {
    Suite::new("slab-retained").run_threads(|| Slab::new(Retained::new(test_pages(32 << 20))));
}

#[test]
#[cfg_attr(miri, ignore = "the Miri-sized exhaustion fits in one chunk")]
fn out_of_memory_over_retained_runs() {
    // Retained above the failing source: a failed map releases what is retained and retries.
    Suite::new("slab-retained").run_out_of_memory(
        || test_pages(8 << 20),
        |failing| Slab::new(Retained::new(failing)),
    );
}

#[test]
#[cfg_attr(miri, ignore)] // mmap: a 1 GiB alignment needs the address space
fn large_alignments() {
    Suite::new("slab-mmap").run_large_alignments(|| Slab::new(heapkit_pages::MmapPages::new()));
    Suite::new("slab-retained")
        .run_large_alignments(|| Slab::new(Retained::new(heapkit_pages::MmapPages::new())));
}
