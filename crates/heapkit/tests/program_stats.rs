//! The program-level view (`HeapKit::program_stats`): what the program holds is told apart
//! from what the thread caches keep, and both from what is mapped.

use heapkit::core::Allocator;
use heapkit::HeapKit;
use std::alloc::Layout;
use std::ptr::NonNull;

/// A few sizes across the small classes, one large block and one huge one.
const SIZES: [usize; 6] = [16, 100, 1000, 4000, 100_000, 3 << 20];

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// Allocates `rounds` blocks of every size in [`SIZES`]; the blocks and their layouts.
fn allocate_all(heap: &HeapKit, rounds: usize) -> Vec<(NonNull<u8>, Layout)> {
    let mut blocks = Vec::new();
    for _ in 0..rounds {
        for size in SIZES {
            let block = heap.allocate(layout(size)).unwrap();
            blocks.push((block.cast(), layout(size)));
        }
    }
    blocks
}

fn free_all(heap: &HeapKit, blocks: Vec<(NonNull<u8>, Layout)>) {
    for (block, layout) in blocks {
        // SAFETY: each block is live and freed once with its own layout.
        unsafe { heap.deallocate(block, layout) };
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "maps 2 MiB chunks and huge blocks: too slow under Miri"
)]
fn after_threads_exit_and_data_is_dropped_nothing_is_held() {
    let heap = HeapKit::new();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let blocks = allocate_all(&heap, 200);
                free_all(&heap, blocks);
            });
        }
    });
    let stats = heap.program_stats();
    assert_eq!((stats.held_bytes, stats.held_blocks), (0, 0), "{stats:?}");
    assert!(stats.cached_blocks > 0, "exited threads' caches: {stats:?}");
    assert!(stats.metadata_bytes > 0, "their magazines: {stats:?}");
    assert!(stats.mapped_bytes > stats.cached_bytes, "{stats:?}");

    // Reclaiming the exited threads' caches moves their blocks from "cached" back to the slab,
    // block for block. (A slot an exited thread left may already be held by a thread of
    // another test, which uses its own heap: its magazine in this heap then stays, cached,
    // until that thread exits. So the count moved is what is checked, not "none left".)
    let returned_blocks = heap.reclaim_idle() + heap.cache().drain_depots();
    let reclaimed = heap.program_stats();
    assert_eq!(
        (reclaimed.held_bytes, reclaimed.held_blocks),
        (0, 0),
        "{reclaimed:?}"
    );
    assert_eq!(
        reclaimed.cached_blocks,
        stats.cached_blocks - returned_blocks,
        "{stats:?} -> {reclaimed:?}"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "maps 2 MiB chunks and huge blocks: too slow under Miri"
)]
fn held_blocks_are_the_programs_own() {
    let heap = HeapKit::new();
    let blocks = allocate_all(&heap, 10);
    let stats = heap.program_stats();
    assert_eq!(stats.held_blocks, blocks.len(), "{stats:?}");
    let asked: usize = blocks.iter().map(|(_, layout)| layout.size()).sum();
    // Rounded to classes (and pages for large and huge blocks): at least as asked, and the
    // rounding is a quarter at most.
    assert!(stats.held_bytes >= asked, "{stats:?}, {asked} B asked");
    assert!(stats.held_bytes <= asked + asked / 4, "{stats:?}");
    // (The hardened build puts large blocks in their own guarded mappings too: SIZES has one
    // large and one huge size.)
    let huge_per_round = if cfg!(feature = "hardened") { 2 } else { 1 };
    assert_eq!(stats.huge_blocks, huge_per_round * 10, "{stats:?}");
    assert!(stats.huge_mapped_bytes >= 10 * (3 << 20), "{stats:?}");
    assert!(stats.mapped_bytes >= stats.held_bytes, "{stats:?}");

    let mut classes_held = 0;
    heap.for_each_class(|class| classes_held += class.held_blocks);
    // Every small block (4 per round) is in a class, plus this thread's magazine.
    assert_eq!(classes_held, 4 * 10 + 1);

    free_all(&heap, blocks);
    let stats = heap.program_stats();
    assert_eq!((stats.held_bytes, stats.held_blocks), (0, 0), "{stats:?}");
    assert!(stats.cached_blocks > 0, "{stats:?}");
}

#[test]
#[cfg_attr(
    miri,
    ignore = "maps 2 MiB chunks and huge blocks: too slow under Miri"
)]
fn trim_returns_the_caches_and_purges() {
    let heap = HeapKit::new();
    let blocks = allocate_all(&heap, 50);
    free_all(&heap, blocks);
    let before = heap.program_stats();
    let trimmed = heap.trim();
    assert!(trimmed.released_any(), "{trimmed:?}");
    assert!(trimmed.flushed_blocks > 0, "{trimmed:?}");
    let after = heap.program_stats();
    assert_eq!(after.cached_blocks, 0, "{after:?}");
    assert_eq!(after.dirty_bytes, 0, "{after:?}");
    assert!(
        after.mapped_bytes < before.mapped_bytes,
        "{before:?} -> {after:?}"
    );
    // A second trim finds nothing left to give back.
    assert!(!heap.trim().released_any());
}
