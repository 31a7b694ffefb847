//! Runs N acquire+release (or alloc+free) pairs of one kind, for instruction counting with
//! callgrind, which is immune to the load of a shared machine:
//!
//! ```text
//! for w in pool malloc arena bump static-bump; do for n in 0 1000000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/fixed_pair_counts $w $n 2>&1 | grep 'Collected'
//! done; done
//! ```
//! (instructions per pair = (Ir at 1e6 - Ir at 0) / 1e6)

use core::alloc::Layout;
use heapkit_core::Allocator;
use heapkit_fixed::{OnViolation, Prefault, Region, RegionLayout, StaticAllocator};
use heapkit_pages::MmapPages;
use std::alloc::{GlobalAlloc, System};
use std::hint::black_box;

type Object = [u64; 2];

fn main() {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_else(|| "pool".into());
    let pairs: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut layout = RegionLayout::new();
    let objects = layout.pool::<Object>("objects", 1024);
    layout.bump("init", 1 << 16);
    let region = Region::new(layout, MmapPages::new(), Prefault::Populate).unwrap();
    let mut pool = region.pool(objects).unwrap();
    let sealed = StaticAllocator::with_policy(&region, OnViolation::Abort);
    let object_layout = Layout::new::<Object>();
    match workload.as_str() {
        "pool" => {
            for i in 0..pairs {
                let id = black_box(pool.try_acquire([i as u64, 2]).unwrap());
                black_box(pool.release(id).unwrap()[0]);
            }
        }
        "malloc" => {
            for i in 0..pairs {
                // SAFETY: a non-zero layout, freed right away with it.
                unsafe {
                    let ptr = System.alloc(black_box(object_layout)).cast::<Object>();
                    ptr.write([i as u64, 2]);
                    System.dealloc(black_box(ptr).cast(), object_layout);
                }
            }
        }
        "arena" => arena_allocs(pairs),
        "bump" => allocator_pairs(&region, pairs),
        "static-bump" => allocator_pairs(&sealed, pairs),
        other => panic!("unknown workload {other}: pool | malloc | arena | bump | static-bump"),
    }
}

fn allocator_pairs<A: Allocator>(a: &A, pairs: usize) {
    let object_layout = Layout::new::<Object>();
    for i in 0..pairs {
        let block = a.allocate(black_box(object_layout)).unwrap();
        // SAFETY: a fresh 16-byte block, freed with its layout.
        unsafe {
            block.cast::<Object>().write([i as u64, 2]);
            a.deallocate(black_box(block.cast()), object_layout);
        }
    }
}

/// heapkit-bump's `Arena::alloc`, reset every `ARENA_RESET_EVERY` allocations as in
/// benches/benches/fixed.rs: an arena's "pair" is one allocation and its share of the reset.
fn arena_allocs(allocs: usize) {
    const ARENA_RESET_EVERY: usize = 1024;
    let mut arena = heapkit_bump::Arena::new();
    for i in 0..allocs {
        black_box(arena.alloc([i as u64, 2]));
        if (i + 1) % ARENA_RESET_EVERY == 0 {
            arena.reset();
        }
    }
}
