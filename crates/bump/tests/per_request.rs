//! An arena made and dropped per request reuses its chunks: the default source takes small
//! chunks from the global allocator (which keeps a freed one resident for the next arena) and
//! large ones from the process-wide chunk cache, so a loop of fresh arenas maps nothing and
//! faults in no page once warm. What is counted is deterministic: the cache's fresh and
//! reused maps, the bytes it holds mapped, and the process's minor page faults (a fresh `mmap`
//! chunk per arena costs at least one per request), never time. This file is its own test
//! binary, so no other test's chunks or faults land in the counts; its tests share the cache,
//! hence one test.

use core::alloc::Layout;
use heapkit_bump::{Arena, CHUNK_CACHE, SMALL_CHUNK_MAX_BYTES};
use heapkit_core::{Introspect, PageSource};

const ARENAS: usize = 1000;
/// Faults allowed in a whole loop (the harness's own threads fault a few pages); one fresh
/// chunk per arena would be at least `ARENAS`.
const FAULTS_ALLOWED: u64 = 64;
const _: () = assert!(FAULTS_ALLOWED < ARENAS as u64 / 8);

/// One request: a fresh arena, `blocks` blocks of `block_bytes` written, checked, dropped.
/// Returns how many of its chunks were longer than `SMALL_CHUNK_MAX_BYTES` (the cache's).
fn request(blocks: usize, block_bytes: usize) -> usize {
    let arena = Arena::new();
    let layout = Layout::from_size_align(block_bytes, 8).unwrap();
    for index in 0..blocks {
        let block = arena.alloc_layout(layout);
        // SAFETY: a fresh block of `block_bytes` bytes.
        unsafe { block.as_ptr().write_bytes(index as u8, block_bytes) };
    }
    arena.check().unwrap();
    let mut large_chunks = 0;
    arena.heap_map(|chunk| large_chunks += usize::from(chunk.len_bytes > SMALL_CHUNK_MAX_BYTES));
    large_chunks
}

/// Requests before the counts start. The cache merges neighbouring runs and splits them by
/// best fit, so the first few requests may get their chunks at new offsets and touch pages no
/// request touched before; from then on the layout repeats.
const WARM_REQUESTS: usize = 4;

/// Runs `ARENAS` requests after a warm-up; checks that the cache mapped nothing new and served
/// every large chunk, and that the loop faulted in no page.
fn fresh_arenas_reuse_chunks(blocks: usize, block_bytes: usize) {
    let large_chunks = request(blocks, block_bytes);
    for _ in 1..WARM_REQUESTS {
        request(blocks, block_bytes);
    }
    let warm = CHUNK_CACHE.retained();
    let mapped_bytes = CHUNK_CACHE.mapped_bytes();
    let faults_before = heapkit_testkit::minor_faults();
    for _ in 0..ARENAS {
        assert_eq!(request(blocks, block_bytes), large_chunks);
    }
    let faults = heapkit_testkit::minor_faults() - faults_before;
    let after = CHUNK_CACHE.retained();
    assert_eq!(
        after.fresh_maps, warm.fresh_maps,
        "a chunk was mapped afresh"
    );
    assert_eq!(
        after.reused_maps - warm.reused_maps,
        ARENAS * large_chunks,
        "every large chunk came from the cache"
    );
    assert_eq!(CHUNK_CACHE.mapped_bytes(), mapped_bytes, "the cache grew");
    assert!(
        faults <= FAULTS_ALLOWED,
        "{faults} minor faults for {ARENAS} fresh arenas of {blocks} x {block_bytes} B"
    );
    CHUNK_CACHE.check().unwrap();
}

#[test]
#[cfg_attr(
    miri,
    ignore = "the chunk cache maps with mmap, which Miri does not model"
)]
fn a_thousand_fresh_arenas_reuse_the_same_chunks() {
    // 64 x 64 B: two small chunks (4 and 8 KiB), both the global allocator's.
    fresh_arenas_reuse_chunks(64, 64);
    assert_eq!(
        CHUNK_CACHE.mapped_bytes(),
        0,
        "small chunks never reach the cache"
    );
    // 256 x 4 KiB: chunks of 4 KiB to 1 MiB, those above 32 KiB the cache's.
    fresh_arenas_reuse_chunks(256, 4096);
    let mapped_bytes = CHUNK_CACHE.mapped_bytes();
    assert!(
        (1 << 20..=4 << 20).contains(&mapped_bytes),
        "{mapped_bytes} B mapped for requests of 1 MiB"
    );
    assert_eq!(CHUNK_CACHE.release_all(), mapped_bytes);
    assert_eq!(CHUNK_CACHE.mapped_bytes(), 0, "released runs are unmapped");
}
