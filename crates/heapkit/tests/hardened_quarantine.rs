//! The hardened build's quarantine is per thread (heapkit-tcache's quarantine.rs): a block
//! waits in the magazine of the thread that freed it, even when another thread allocated it;
//! a freed block is not handed out again at once; and the quarantined blocks go back to the
//! slab when their thread exits (the reclaim), on `flush_thread` and on `drain_depots`.
#![cfg(feature = "hardened")]

use heapkit::core::Allocator;
use heapkit::HeapKit;
use std::alloc::Layout;
use std::ptr::NonNull;

/// Blocks freed per test: fewer than a bin holds, so none of them reaches the slab on a flush.
const BLOCKS: usize = 8;

/// Blocks of `layout`'s class that `heap`'s cache holds (bins and quarantines of every thread,
/// and the shelves).
fn cached_blocks(heap: &HeapKit, layout: Layout) -> usize {
    let class = class_of(layout);
    let mut blocks = 0;
    heap.cache().for_each_cached(|cached_class, count| {
        if cached_class == class {
            blocks += count;
        }
    });
    blocks
}

/// The slab's class of `layout`.
fn class_of(layout: Layout) -> usize {
    heapkit::slab::class_of_layout(layout.size(), layout.align()).unwrap()
}

/// Blocks in this thread's bin of `layout`'s class in `heap`.
fn bin_blocks(heap: &HeapKit, layout: Layout) -> usize {
    heap.cache().bin_state(class_of(layout)).unwrap().count
}

/// `BLOCKS` blocks of `layout` from `heap`, as addresses (so they can cross threads).
fn allocate_blocks(heap: &HeapKit, layout: Layout) -> Vec<usize> {
    (0..BLOCKS)
        .map(|_| heap.allocate(layout).unwrap().cast::<u8>().as_ptr() as usize)
        .collect()
}

/// Frees blocks that `allocate_blocks` returned.
fn free_blocks(heap: &HeapKit, layout: Layout, blocks: &[usize]) {
    for &block in blocks {
        // SAFETY: allocated by `allocate_blocks` with `layout`, freed once.
        unsafe { heap.deallocate(NonNull::new(block as *mut u8).unwrap(), layout) };
    }
}

#[test]
#[cfg_attr(miri, ignore = "maps 2 MiB chunks: too slow under Miri")]
fn a_block_freed_by_another_thread_waits_in_the_freeing_threads_magazine() {
    static HEAP: HeapKit = HeapKit::new();
    let layout = Layout::from_size_align(48, 8).unwrap();
    let blocks = allocate_blocks(&HEAP, layout);
    let flushed = std::thread::spawn(move || {
        free_blocks(&HEAP, layout, &blocks);
        // Every block went into this thread's quarantine, or displaced one into its bin.
        HEAP.flush_thread()
    })
    .join()
    .unwrap();
    assert_eq!(
        flushed, BLOCKS,
        "the freeing thread's magazine held every freed block"
    );
}

#[test]
#[cfg_attr(miri, ignore = "maps 2 MiB chunks: too slow under Miri")]
fn a_freed_block_is_not_handed_out_again_at_once() {
    static HEAP: HeapKit = HeapKit::new();
    let layout = Layout::from_size_align(32, 8).unwrap();
    let mut block = HEAP.allocate(layout).unwrap().cast::<u8>();
    for _ in 0..100 {
        // SAFETY: allocated with `layout`, freed once.
        unsafe { HEAP.deallocate(block, layout) };
        let next = HEAP.allocate(layout).unwrap().cast::<u8>();
        assert_ne!(next, block, "the block just freed came back at once");
        block = next;
    }
    // SAFETY: allocated with `layout`, freed once.
    unsafe { HEAP.deallocate(block, layout) };
}

#[test]
#[cfg_attr(miri, ignore = "maps 2 MiB chunks: too slow under Miri")]
fn a_threads_quarantine_goes_back_when_it_exits() {
    static HEAP: HeapKit = HeapKit::new();
    let layout = Layout::from_size_align(96, 8).unwrap();
    std::thread::spawn(move || {
        let blocks = allocate_blocks(&HEAP, layout);
        free_blocks(&HEAP, layout, &blocks);
        assert!(cached_blocks(&HEAP, layout) >= BLOCKS);
    })
    .join()
    .unwrap();
    assert!(
        HEAP.reclaim_idle() >= BLOCKS,
        "the exited thread's blocks came back"
    );
    assert_eq!(
        cached_blocks(&HEAP, layout),
        0,
        "nothing of the exited thread is held"
    );
}

#[test]
#[cfg_attr(miri, ignore = "maps 2 MiB chunks: too slow under Miri")]
fn drain_depots_empties_the_calling_threads_quarantine() {
    static HEAP: HeapKit = HeapKit::new();
    let layout = Layout::from_size_align(160, 8).unwrap();
    let blocks = allocate_blocks(&HEAP, layout);
    free_blocks(&HEAP, layout, &blocks);
    let quarantined = cached_blocks(&HEAP, layout) - bin_blocks(&HEAP, layout);
    assert!(quarantined > 0, "some blocks wait in the quarantine");
    assert_eq!(HEAP.cache().drain_depots(), quarantined);
    assert_eq!(
        cached_blocks(&HEAP, layout),
        bin_blocks(&HEAP, layout),
        "only the bin's blocks are left"
    );
}
