//! Chapter 4: heapkit-slab's size-class table with the waste of each class, and the pointer →
//! metadata lookup done by hand on a real block.
//!
//! `cargo run --manifest-path docs/programs/Cargo.toml --bin classes`

use core::alloc::Layout;
use heapkit_core::{Allocator, BatchAllocator, UnsizedAllocator};
use heapkit_pages::BufferPages;
use heapkit_slab::{
    natural_align, waste_per_mille, Slab, SlotKind, CHUNK_BYTES, CLASS_BYTES, CLASS_COUNT,
    SLOT_BYTES,
};

fn main() {
    println!("class  block B  align  blocks/slab  slab tail B  worst waste (request)");
    let mut previous = 0usize;
    for (class, &bytes) in CLASS_BYTES.iter().enumerate().take(CLASS_COUNT) {
        let block = bytes as usize;
        let smallest_request = previous + 1;
        let worst_per_mille = (block - smallest_request) * 1000 / block;
        println!(
            "{class:>5}  {block:>7}  {:>5}  {:>11}  {:>11}  {:>5.1}% ({smallest_request} B)",
            natural_align(block),
            SLOT_BYTES / block,
            SLOT_BYTES % block,
            worst_per_mille as f64 / 10.0
        );
        previous = block;
    }
    let (worst, average) = waste_per_mille();
    println!(
        "over every request 1..=16384 B: worst {:.1}% (above 64 B), average {:.1}%",
        worst as f64 / 10.0,
        average as f64 / 10.0
    );

    // free(ptr) finds the slab from the address alone.
    let heap = Slab::new(BufferPages::owned(8 << 20, 4096).expect("buffer"));
    let layout = Layout::from_size_align(100, 8).unwrap();
    let block = heap.allocate(layout).unwrap().cast::<u8>();
    let addr = block.as_ptr() as usize;
    let chunk = addr & !(CHUNK_BYTES - 1);
    let slot = (addr >> SLOT_BYTES.trailing_zeros()) & (CHUNK_BYTES / SLOT_BYTES - 1);
    println!("\nmalloc(100) returned {addr:#x}");
    println!("  chunk header = ptr & !({CHUNK_BYTES:#x} - 1) = {chunk:#x}");
    println!("  slot         = (ptr >> 16) & 31            = {slot}");
    heap.heap_map(|info| {
        if info.chunk_addr == chunk && info.index == slot {
            if let SlotKind::Small { class, block_bytes, capacity, live, .. } = info.kind {
                println!("  slot {slot} holds a slab of class {class}: {block_bytes} B blocks, {live}/{capacity} live");
            }
        }
    });
    // SAFETY: `block` is live.
    unsafe {
        println!(
            "  usable_size(ptr) = {} B, class_of_block(ptr) = {:?}",
            heap.usable_size(block),
            heap.class_of_block(block)
        );
        heap.deallocate_unsized(block);
    }
}
