//! The hardened build over a reclaimed magazine: a thread's magazine, given back to the slab
//! when another thread reclaims it, must come back to the program zeroed like any freed block
//! (the slab checks every block it hands out is still zero, and stops the process otherwise).
#![cfg(feature = "hardened")]

use heapkit::core::Allocator;
use heapkit::slab::SMALL_MAX_BYTES;
use heapkit::HeapKit;
use std::alloc::Layout;

static HEAP: HeapKit = HeapKit::new();

/// Blocks taken of each size: more than a bin's refill, so the slab hands out its free list.
const BLOCKS_PER_SIZE: usize = 64;

#[test]
#[cfg_attr(miri, ignore = "maps 2 MiB chunks: too slow under Miri")]
fn a_reclaimed_magazine_is_handed_out_again_without_a_false_write_after_free() {
    let layout = Layout::from_size_align(48, 8).unwrap();
    // This thread's own magazine first: made after the reclaim, it would take the freed
    // magazine's block itself, and the program would never be handed it.
    let mine = HEAP.allocate(layout).unwrap().cast::<u8>();
    std::thread::spawn(move || {
        let block = HEAP.allocate(layout).unwrap().cast::<u8>();
        // SAFETY: allocated above with `layout`, freed once.
        unsafe { HEAP.deallocate(block, layout) };
    })
    .join()
    .unwrap();
    // The exited thread's magazine goes back to the slab, as a block of its class.
    assert!(
        HEAP.reclaim_idle() > 0,
        "the exited thread's block came back"
    );
    // SAFETY: allocated above with `layout`, freed once.
    unsafe { HEAP.deallocate(mine, layout) };
    // Take every small class's free blocks again, the magazine's among them: the slab checks
    // each is still zero as it hands it out.
    for size in (16..=SMALL_MAX_BYTES).step_by(16) {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let blocks: Vec<_> = (0..BLOCKS_PER_SIZE)
            .map(|_| HEAP.allocate(layout).unwrap().cast::<u8>())
            .collect();
        for block in blocks {
            // SAFETY: allocated above with `layout`, freed once.
            unsafe { HEAP.deallocate(block, layout) };
        }
    }
}
