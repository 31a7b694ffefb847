//! An arena made and dropped per request reuses its chunks: the default source, the
//! process-wide chunk cache, keeps what a dropped arena gave back for the next one, so a loop
//! of fresh arenas maps nothing and faults in no page once warm. What is counted is
//! deterministic: the cache's fresh and reused maps, the bytes it holds mapped, and the
//! process's minor page faults (a fresh `mmap` chunk per arena costs at least one per
//! request), never time. This file is its own test binary, so no other test's chunks or faults
//! land in the counts; its tests share the cache, hence one test.

use core::alloc::Layout;
use heapkit_bump::{Arena, CHUNK_CACHE};
use heapkit_core::{Introspect, PageSource};

#[path = "../examples/support/faults.rs"]
mod faults;

const ARENAS: usize = 1000;
/// The small request: 64 blocks of 64 B (two chunks: 4 KiB, then 8 KiB).
const BLOCKS: usize = 64;
const BLOCK_BYTES: usize = 64;
const CHUNKS_PER_REQUEST: usize = 2;
/// Faults allowed in the whole loop (the harness's own threads fault a few pages); one fresh
/// chunk per arena would be at least `ARENAS`.
const FAULTS_ALLOWED: u64 = 64;
const _: () = assert!(FAULTS_ALLOWED < ARENAS as u64 / 8);

/// One request: a fresh arena, `BLOCKS` blocks written, checked, dropped.
fn request() {
    let arena = Arena::new();
    let layout = Layout::from_size_align(BLOCK_BYTES, 8).unwrap();
    for index in 0..BLOCKS {
        let block = arena.alloc_layout(layout);
        // SAFETY: a fresh block of BLOCK_BYTES bytes.
        unsafe { block.as_ptr().write_bytes(index as u8, BLOCK_BYTES) };
    }
    assert_eq!(arena.chunk_count(), CHUNKS_PER_REQUEST);
    arena.check().unwrap();
}

#[test]
#[cfg_attr(
    miri,
    ignore = "the chunk cache maps with mmap, which Miri does not model"
)]
fn a_thousand_fresh_arenas_reuse_the_same_chunks() {
    request();
    let warm = CHUNK_CACHE.retained();
    let mapped_bytes = CHUNK_CACHE.mapped_bytes();
    let faults_before = faults::minor_faults();
    for _ in 0..ARENAS {
        request();
    }
    let faults = faults::minor_faults() - faults_before;
    let after = CHUNK_CACHE.retained();
    assert_eq!(
        after.fresh_maps, warm.fresh_maps,
        "a chunk was mapped afresh"
    );
    assert_eq!(
        after.reused_maps - warm.reused_maps,
        ARENAS * CHUNKS_PER_REQUEST,
        "every chunk request was served from the cache"
    );
    assert_eq!(CHUNK_CACHE.mapped_bytes(), mapped_bytes, "the cache grew");
    assert!(
        mapped_bytes <= 16 << 10,
        "{mapped_bytes} B mapped for requests of 12 KiB"
    );
    assert!(
        faults <= FAULTS_ALLOWED,
        "{faults} minor faults for {ARENAS} fresh arenas: chunks are not reused"
    );
    CHUNK_CACHE.check().unwrap();
    assert_eq!(CHUNK_CACHE.release_all(), mapped_bytes);
    assert_eq!(CHUNK_CACHE.mapped_bytes(), 0, "released runs are unmapped");
}
