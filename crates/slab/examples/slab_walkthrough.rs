//! A scripted walk through a slab heap: after each step, print every slab and its free slots.
//!
//! `cargo run -p heapkit-slab --example slab_walkthrough`

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::{Allocator, Introspect};
use heapkit_pages::BufferPages;
use heapkit_slab::{Slab, SlotKind};

type Heap = Slab<BufferPages<'static>>;

/// Prints the slots that are not plain free ones, and for slabs a map of their blocks:
/// `#` live, `.` freed (on the free list), `_` never used.
fn show(heap: &Heap, step: &str) {
    println!("── {step}");
    let mut lines = Vec::new();
    heap.heap_map(|slot| {
        let line = match slot.kind {
            SlotKind::Header | SlotKind::Free { dirty: false } | SlotKind::LargeTail => return,
            SlotKind::Free { dirty: true } => format!("slot {:2}: free, dirty (not purged yet)", slot.index),
            SlotKind::Small { class, block_bytes, capacity, live, untouched } => {
                let mut map = vec!['#'; capacity];
                slot.for_each_free_block(|i| map[i] = '.');
                for c in map.iter_mut().skip(capacity - untouched) {
                    *c = '_';
                }
                let shown: String = map.iter().take(24).collect();
                format!(
                    "slot {:2}: class {class:2} ({block_bytes:5} B) {live:4}/{capacity:4} live  [{shown}{}]",
                    slot.index,
                    if capacity > 24 { "…" } else { "" }
                )
            }
            SlotKind::Large { slots } => format!("slot {:2}: large span of {slots} slots ({} KiB)", slot.index, slots * 64),
            SlotKind::Huge { usable_bytes, mapped_bytes } => {
                format!("huge block at {:#x}: {usable_bytes} B usable, {mapped_bytes} B mapped", slot.addr)
            }
        };
        lines.push(line);
    });
    for line in lines {
        println!("   {line}");
    }
    let stats = heap.stats().unwrap();
    println!(
        "   live {} B in {} blocks, mapped {} KiB",
        stats.live_bytes,
        stats.live_blocks,
        stats.mapped_bytes >> 10
    );
    heap.check().expect("heap invariants");
}

fn main() {
    let heap: Heap = Slab::new(BufferPages::owned(16 << 20, 4096).expect("test buffer"));
    let small = Layout::from_size_align(40, 8).unwrap(); // → the 48 B class
    let medium = Layout::from_size_align(3000, 8).unwrap(); // → the 3072 B class
    let large = Layout::from_size_align(100_000, 8).unwrap(); // → a 2-slot span
    let huge = Layout::from_size_align(1_500_000, 8).unwrap(); // → its own mapping

    let mut smalls: Vec<NonNull<u8>> = (0..6)
        .map(|_| heap.allocate(small).unwrap().cast())
        .collect();
    show(
        &heap,
        "6 × 40 B: one 48 B slab, blocks handed out in address order",
    );

    // SAFETY: live blocks of `small`.
    unsafe {
        heap.deallocate(smalls[1], small);
        heap.deallocate(smalls[4], small);
    }
    show(
        &heap,
        "free blocks 1 and 4: they go on the slab's free list (4 first: LIFO)",
    );

    smalls[4] = heap.allocate(small).unwrap().cast();
    show(
        &heap,
        "allocate 40 B again: the most recently freed block (4) comes back",
    );

    let mediums: Vec<NonNull<u8>> = (0..25)
        .map(|_| heap.allocate(medium).unwrap().cast())
        .collect();
    show(
        &heap,
        "25 × 3000 B: 21 blocks fill one 3072 B slab, a second slab takes the rest",
    );

    let big = heap.allocate(large).unwrap().cast::<u8>();
    let giant = heap.allocate(huge).unwrap().cast::<u8>();
    show(
        &heap,
        "100 000 B takes a 2-slot span; 1 500 000 B gets its own mapping",
    );

    // SAFETY: live blocks with the layouts they were allocated with.
    unsafe {
        for m in mediums {
            heap.deallocate(m, medium);
        }
        heap.deallocate(big, large);
        heap.deallocate(giant, huge);
    }
    show(&heap, "free the 3000 B blocks, the span and the huge block: one empty slab is kept, the other slot is dirty");

    // SAFETY: live blocks of `small` (block 1 was freed above).
    unsafe {
        for (i, s) in smalls.into_iter().enumerate() {
            if i != 1 {
                heap.deallocate(s, small);
            }
        }
    }
    heap.trim();
    show(
        &heap,
        "free everything and trim(): empty slabs released, dirty slots purged, chunks unmapped",
    );
}
