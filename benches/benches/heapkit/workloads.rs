//! The criterion bench's (`heapkit.rs`) workloads. The peak-RSS comparison that also used
//! them is `heapkit-probe rss NAME` in heapkit-benches.

#![allow(dead_code)]

pub use heapkit_testkit::Rng;
use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const BATCH: usize = 1000;

/// A layout of 8..=1024 B, uniform, from the shared generator.
pub fn layout(rng: &mut Rng) -> Layout {
    Layout::from_size_align(8 + rng.below(1017), 8).unwrap()
}

/// 1000 allocations of 8..1024 B, then frees in `order` ("lifo", "fifo" or "random").
pub struct Batch {
    layouts: Vec<Layout>,
    free_order: Vec<usize>,
    ptrs: Vec<*mut u8>,
}

impl Batch {
    pub fn new(order: &str) -> Batch {
        let mut rng = Rng::new(0x1234_5678);
        let layouts: Vec<Layout> = (0..BATCH).map(|_| layout(&mut rng)).collect();
        let mut free_order: Vec<usize> = match order {
            "lifo" => (0..BATCH).rev().collect(),
            _ => (0..BATCH).collect(),
        };
        if order == "random" {
            for i in (1..BATCH).rev() {
                free_order.swap(i, rng.below(i + 1));
            }
        }
        Batch {
            layouts,
            free_order,
            ptrs: vec![std::ptr::null_mut(); BATCH],
        }
    }

    pub fn run<A: GlobalAlloc>(&mut self, a: &A) {
        // SAFETY: (bench) each pointer is a live block of `a`, freed once with its own layout.
        unsafe {
            for (slot, &layout) in self.ptrs.iter_mut().zip(&self.layouts) {
                *slot = black_box(a.alloc(layout));
            }
            for &i in &self.free_order {
                a.dealloc(self.ptrs[i], self.layouts[i]);
            }
        }
    }
}

/// Blocks cross from the producer to the consumer in chunks through a bounded channel, so the
/// measurement is of the allocators (cross-thread frees), not of a hand-off per block.
pub const PC_BLOCKS: usize = 100_000;
pub const PC_CHUNK_BLOCKS: usize = 250;
pub const PC_CHUNKS_IN_FLIGHT: usize = 4;

pub fn producer_consumer_run<A: GlobalAlloc + Sync>(a: &'static A, blocks: usize) -> Duration {
    let layout_of = |i: usize| Layout::from_size_align(8 + (i * 37) % 1017, 8).unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<usize>>(PC_CHUNKS_IN_FLIGHT);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut chunk = Vec::with_capacity(PC_CHUNK_BLOCKS);
            for i in 0..blocks {
                // SAFETY: (bench) each pointer is a live block of `a`, freed once with its own layout.
                chunk.push(unsafe { a.alloc(layout_of(i)) } as usize);
                if chunk.len() == PC_CHUNK_BLOCKS {
                    tx.send(std::mem::replace(
                        &mut chunk,
                        Vec::with_capacity(PC_CHUNK_BLOCKS),
                    ))
                    .unwrap();
                }
            }
            if !chunk.is_empty() {
                tx.send(chunk).unwrap();
            }
        });
        s.spawn(move || {
            let mut i = 0;
            for chunk in rx {
                for p in chunk {
                    // SAFETY: (bench) each pointer is a live block of `a`, freed once with its own layout.
                    unsafe { a.dealloc(p as *mut u8, layout_of(i)) };
                    i += 1;
                }
            }
        });
    });
    start.elapsed()
}

pub const LARSON_THREADS: usize = 2;
pub const LARSON_ROUNDS: usize = 20;
pub const LARSON_OPS_PER_ROUND: usize = 5_000;

pub fn larson_run<A: GlobalAlloc + Sync>(a: &'static A) -> Duration {
    // Each thread starts with an array of 1000 live blocks; arrays swap between rounds.
    let arrays: Vec<Mutex<Vec<(usize, Layout)>>> = (0..LARSON_THREADS)
        .map(|t| {
            let mut rng = Rng::new(77 + t as u64);
            Mutex::new(
                (0..BATCH)
                    .map(|_| {
                        let l = layout(&mut rng);
                        // SAFETY: (bench) each pointer is a live block of `a`, freed once with its own layout.
                        (unsafe { a.alloc(l) } as usize, l)
                    })
                    .collect(),
            )
        })
        .collect();
    let barrier = Barrier::new(LARSON_THREADS);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..LARSON_THREADS {
            let (arrays, barrier) = (&arrays, &barrier);
            s.spawn(move || {
                let mut rng = Rng::new(0xABCD + t as u64);
                for round in 0..LARSON_ROUNDS {
                    let mine = (t + round) % LARSON_THREADS;
                    let mut blocks = arrays[mine].lock().unwrap();
                    for _ in 0..LARSON_OPS_PER_ROUND {
                        let i = rng.below(BATCH);
                        let (p, l) = blocks[i];
                        // SAFETY: (bench) each pointer is a live block of `a`, freed once with its own layout.
                        unsafe { a.dealloc(p as *mut u8, l) };
                        let l = layout(&mut rng);
                        // SAFETY: (bench) each pointer is a live block of `a`, freed once with its own layout.
                        let p = unsafe { a.alloc(l) };
                        // SAFETY: (bench) `p` is a fresh block of at least one byte.
                        unsafe { p.write(1) };
                        blocks[i] = (p as usize, l);
                    }
                    drop(blocks);
                    barrier.wait();
                }
            });
        }
    });
    let elapsed = start.elapsed();
    for array in arrays {
        for (p, l) in array.into_inner().unwrap() {
            // SAFETY: (bench) each pointer is a live block of `a`, freed once with its own layout.
            unsafe { a.dealloc(p as *mut u8, l) };
        }
    }
    elapsed
}
