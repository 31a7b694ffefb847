//! heapkit-testkit's conformance suite against the arena. An arena's `live_bytes` (used bytes)
//! does not fall when a block other than the last is freed, hence `no_live_accounting`.

use heapkit_bump::Arena;
use heapkit_core::Locked;
use heapkit_pages::MmapPages;
use heapkit_testkit::{test_pages, Suite};

/// Enough for the model's worst case: 64 live blocks of up to 1 MiB never reused, plus the
/// geometric chunks around them. The owned buffer is touched only where chunks are used.
const SOURCE_BYTES: usize = if cfg!(miri) { 1 << 20 } else { 256 << 20 };

#[test]
fn conformance() {
    Suite::new("bump-arena")
        .no_live_accounting()
        .run(|| Arena::with_source(test_pages(SOURCE_BYTES)));
}

/// The default source: the process-wide chunk cache over `mmap`.
#[test]
#[cfg_attr(
    miri,
    ignore = "the chunk cache maps with mmap, which Miri does not model"
)]
fn conformance_default_source() {
    Suite::new("bump-arena-cache")
        .no_live_accounting()
        .run(Arena::new);
    heapkit_bump::CHUNK_CACHE.check().unwrap();
}

/// Chunks from the global allocator (Miri-able: no OS call).
#[test]
fn conformance_global_chunks() {
    Suite::new("bump-arena-global")
        .no_live_accounting()
        .run(|| Arena::with_source(heapkit_bump::GLOBAL_CHUNKS));
}

#[test]
#[cfg_attr(miri, ignore = "Miri's mmap shim cannot unmap part of a mapping")]
fn conformance_mmap() {
    Suite::new("bump-arena-mmap")
        .no_live_accounting()
        .run(|| Arena::with_source(MmapPages::new()));
}

#[test]
#[cfg_attr(miri, ignore = "threads at scale are too slow under Miri")]
fn threads() {
    Suite::new("bump-arena-locked")
        .no_live_accounting()
        .run_threads(|| Locked::new(Arena::with_source(test_pages(SOURCE_BYTES))));
}

#[test]
fn out_of_memory() {
    Suite::new("bump-arena")
        .no_live_accounting()
        .run_out_of_memory(|| test_pages(SOURCE_BYTES), Arena::with_source);
}
