//! Slab<MmapPages> (through GlobalAdapter, with its class lock) against glibc (System),
//! mimalloc and jemalloc, all called through `GlobalAlloc`, side by side in one run.
//!
//! `cargo bench -p heapkit-benches --bench slab`
//!
//! Groups:
//! - `pair/<size>`: one alloc + free pair (the hot path).
//! - `batch_{lifo,fifo,random}/<size>`: 1000 allocations, then free them in that order.
//! - `batch_api/<size>`: the slab alone through `BatchAllocator` (what heapkit-tcache does):
//!   1000 blocks in one `allocate_batch`, freed in one `deallocate_batch` — one lock each.
//! - `purge/<threshold>`: the slab alone; 96 × 16 KiB blocks written and freed per iteration,
//!   with purging eager (0), at 1 MiB, the default, or never — the page-fault trade-off.

use criterion::{black_box, BenchmarkId, Criterion};
use heapkit_core::GlobalAdapter;
use heapkit_pages::MmapPages;
use heapkit_slab::{Slab, DEFAULT_PURGE_THRESHOLD_BYTES};
use std::alloc::{GlobalAlloc, Layout, System};
use std::time::Duration;

static SLAB: GlobalAdapter<Slab<MmapPages>> = GlobalAdapter::new(Slab::new(MmapPages::new()));
static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SIZES: [usize; 4] = [8, 64, 256, 1024];
const BATCH: usize = 1000;

#[derive(Copy, Clone)]
enum Order {
    Lifo,
    Fifo,
    Random,
}

fn random_permutation(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..n).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

fn pair<A: GlobalAlloc>(a: &A, layout: Layout) {
    // SAFETY: a non-zero layout; the block is freed with the same layout.
    unsafe {
        let p = a.alloc(layout);
        black_box(p);
        a.dealloc(p, layout);
    }
}

fn batch<A: GlobalAlloc>(
    a: &A,
    layout: Layout,
    order: Order,
    slots: &mut [*mut u8],
    perm: &[usize],
) {
    for slot in slots.iter_mut() {
        // SAFETY: a non-zero layout.
        *slot = unsafe { a.alloc(layout) };
    }
    black_box(&slots);
    // SAFETY: every block is freed once, with its layout.
    unsafe {
        match order {
            Order::Lifo => slots.iter().rev().for_each(|&p| a.dealloc(p, layout)),
            Order::Fifo => slots.iter().for_each(|&p| a.dealloc(p, layout)),
            Order::Random => perm.iter().for_each(|&i| a.dealloc(slots[i], layout)),
        }
    }
}

macro_rules! each_allocator {
    ($group:expr, $size:expr, |$a:ident| $body:expr) => {{
        $group.bench_with_input(BenchmarkId::new("slab", $size), &$size, |b, _| {
            let $a = &SLAB;
            b.iter(|| $body)
        });
        $group.bench_with_input(BenchmarkId::new("glibc", $size), &$size, |b, _| {
            let $a = &System;
            b.iter(|| $body)
        });
        $group.bench_with_input(BenchmarkId::new("mimalloc", $size), &$size, |b, _| {
            let $a = &MIMALLOC;
            b.iter(|| $body)
        });
        $group.bench_with_input(BenchmarkId::new("jemalloc", $size), &$size, |b, _| {
            let $a = &JEMALLOC;
            b.iter(|| $body)
        });
    }};
}

fn pairs(c: &mut Criterion) {
    let mut group = c.benchmark_group("pair");
    for size in SIZES {
        let layout = Layout::from_size_align(size, 8).unwrap();
        each_allocator!(group, size, |a| pair(a, layout));
    }
    group.finish();
}

fn batches(c: &mut Criterion) {
    let perm = random_permutation(BATCH);
    for (name, order) in [
        ("batch_lifo", Order::Lifo),
        ("batch_fifo", Order::Fifo),
        ("batch_random", Order::Random),
    ] {
        let mut group = c.benchmark_group(name);
        for size in SIZES {
            let layout = Layout::from_size_align(size, 8).unwrap();
            let mut slots = vec![std::ptr::null_mut(); BATCH];
            each_allocator!(group, size, |a| batch(a, layout, order, &mut slots, &perm));
        }
        group.finish();
    }
}

fn batch_api(c: &mut Criterion) {
    use heapkit_core::BatchAllocator;
    let mut group = c.benchmark_group("batch_api");
    let slab = SLAB.inner();
    for size in SIZES {
        let class = slab
            .class_of(Layout::from_size_align(size, 8).unwrap())
            .unwrap();
        let mut blocks = vec![std::ptr::null_mut(); BATCH];
        group.bench_with_input(BenchmarkId::new("slab", size), &size, |b, _| {
            b.iter(|| {
                assert_eq!(slab.allocate_batch(class, &mut blocks), BATCH);
                black_box(&blocks);
                // SAFETY: live blocks of `class`, each once.
                unsafe { slab.deallocate_batch(class, &blocks) };
            })
        });
    }
    group.finish();
}

fn purge_tradeoff(c: &mut Criterion) {
    let mut group = c.benchmark_group("purge");
    let layout = Layout::from_size_align(16384, 16).unwrap();
    let slab = Slab::new(MmapPages::new());
    // One long-lived block keeps the chunk from emptying, so only the purge policy differs.
    let anchor = heapkit_core::Allocator::allocate(&slab, Layout::new::<u64>()).unwrap();
    for threshold in [0, 1 << 20, DEFAULT_PURGE_THRESHOLD_BYTES, usize::MAX] {
        slab.set_purge_threshold_bytes(threshold);
        let label = if threshold == usize::MAX {
            "never".to_string()
        } else {
            format!("{}KiB", threshold >> 10)
        };
        let mut blocks = vec![std::ptr::NonNull::<u8>::dangling(); 96];
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| {
                for block in blocks.iter_mut() {
                    let p = heapkit_core::Allocator::allocate(&slab, layout)
                        .unwrap()
                        .cast::<u8>();
                    // SAFETY: a fresh 16 KiB block; writing it faults its pages in.
                    unsafe { p.as_ptr().write_bytes(1, layout.size()) };
                    *block = p;
                }
                for &p in &blocks {
                    // SAFETY: live blocks.
                    unsafe { heapkit_core::Allocator::deallocate(&slab, p, layout) };
                }
            })
        });
    }
    // SAFETY: allocated above.
    unsafe { heapkit_core::Allocator::deallocate(&slab, anchor.cast(), Layout::new::<u64>()) };
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
}

heapkit_benches::criterion_suite! {
    config = config();
    targets = pairs, batches, batch_api, purge_tradeoff
}
