//! Instruction counting for the fast path: `valgrind --tool=callgrind` on
//! `pair <allocator> <mode> <iterations> <size>`, run at two iteration counts; the difference
//! divided by the difference in iterations is the cost per alloc+free pair, start-up excluded.
//!
//! allocator: heapkit | mimalloc | jemalloc | system; mode: hot (alloc+free) | lifo (1000
//! allocs then frees in reverse) | fifo (1000 allocs then frees in order); and the allocator
//! `heapkit-unsized`: hot pairs whose free without a size (`deallocate_unsized`, what C's `free` does),
//! which must find the class from the pointer (allocator `heapkit-unsized`, mode ignored).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

static HEAPKIT: heapkit::HeapKit = heapkit::HeapKit::new();
static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const BATCH: usize = 1000;

#[inline(never)]
fn run<A: GlobalAlloc>(a: &A, mode: &str, iterations: usize, layout: Layout) {
    let mut ptrs = vec![std::ptr::null_mut::<u8>(); BATCH];
    // SAFETY: (bench) each pointer is a live block of `a`, freed once with its own layout.
    unsafe {
        match mode {
            "hot" => {
                for _ in 0..iterations {
                    let p = a.alloc(layout);
                    black_box(p);
                    a.dealloc(p, layout);
                }
            }
            "lifo" | "fifo" => {
                for _ in 0..iterations / BATCH {
                    for slot in ptrs.iter_mut() {
                        *slot = black_box(a.alloc(layout));
                    }
                    if mode == "lifo" {
                        for &p in ptrs.iter().rev() {
                            a.dealloc(p, layout);
                        }
                    } else {
                        for &p in ptrs.iter() {
                            a.dealloc(p, layout);
                        }
                    }
                }
            }
            _ => panic!("mode: hot | lifo | fifo"),
        }
    }
}

#[inline(never)]
fn hot_unsized(iterations: usize, layout: Layout) {
    use heapkit::core::UnsizedAllocator;
    for _ in 0..iterations {
        // SAFETY: (bench) a live block of HEAPKIT, freed once.
        unsafe {
            let p = HEAPKIT.alloc(layout);
            black_box(p);
            HEAPKIT.deallocate_unsized(std::ptr::NonNull::new_unchecked(p));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("heapkit", String::as_str);
    let mode = args.get(2).map_or("hot", String::as_str);
    let iterations: usize = args.get(3).map_or(1_000_000, |s| s.parse().unwrap());
    let size: usize = args.get(4).map_or(32, |s| s.parse().unwrap());
    let layout = Layout::from_size_align(size, 8).unwrap();
    match which {
        "heapkit" => run(&HEAPKIT, mode, iterations, layout),
        "mimalloc" => run(&MIMALLOC, mode, iterations, layout),
        "jemalloc" => run(&JEMALLOC, mode, iterations, layout),
        "system" => run(&System, mode, iterations, layout),
        "heapkit-unsized" => hot_unsized(iterations, layout),
        _ => panic!("allocator: heapkit | mimalloc | jemalloc | system"),
    }
}
