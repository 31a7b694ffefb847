//! HeapKit against glibc (`System`), the mimalloc crate and tikv-jemallocator, all called
//! through `GlobalAlloc` with static dispatch, in one run:
//!
//! - `hot_pair/<size>`: allocate and free one block, repeatedly (8..1024 B);
//! - `batch_1000/<order>`: 1000 allocations of 8..1024 B, then frees in LIFO, FIFO or random
//!   order;
//! - `producer_consumer`: one thread allocates, another frees (cross-thread frees); blocks
//!   cross in chunks of 250 through a bounded channel;
//! - `larson`: two threads each replace random blocks of an array of 1000 (8..1024 B); between
//!   rounds the threads swap arrays, so half the frees are of blocks another thread allocated.
//!
//! `cargo bench -p heapkit-benches --bench heapkit` (quick settings: sample size 20, 1 s each);
//! `cargo xtask bench --all-crates` runs it too. Moved here from the facade crate.

use criterion::{BenchmarkId, Criterion, Throughput};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Duration;

mod workloads;
use workloads::*;

static HEAPKIT: heapkit::HeapKit = heapkit::HeapKit::new();
static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
static SYSTEM: System = System;

macro_rules! for_each_allocator {
    ($f:ident, $($arg:expr),*) => {{
        $f("heapkit", &HEAPKIT, $($arg),*);
        $f("mimalloc", &MIMALLOC, $($arg),*);
        $f("jemalloc", &JEMALLOC, $($arg),*);
        $f("system", &SYSTEM, $($arg),*);
    }};
}

fn hot_pair<A: GlobalAlloc>(name: &str, a: &'static A, c: &mut Criterion, size: usize) {
    let layout = Layout::from_size_align(size, 8).unwrap();
    let mut group = c.benchmark_group(format!("hot_pair/{size}"));
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        // SAFETY: (bench) each pointer is a live block of `a`, freed once with its own layout.
        b.iter(|| unsafe {
            let p = a.alloc(layout);
            black_box(p);
            a.dealloc(p, layout);
        })
    });
    group.finish();
}

fn batch<A: GlobalAlloc>(name: &str, a: &'static A, c: &mut Criterion, order: &str) {
    let mut work = Batch::new(order);
    let mut group = c.benchmark_group(format!("batch_1000/{order}"));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(name, |b| b.iter(|| work.run(a)));
    group.finish();
}

fn producer_consumer<A: GlobalAlloc + Sync>(name: &str, a: &'static A, c: &mut Criterion) {
    let mut group = c.benchmark_group("producer_consumer");
    group.throughput(Throughput::Elements(PC_BLOCKS as u64));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| producer_consumer_run(a, PC_BLOCKS))
                .sum()
        })
    });
    group.finish();
}

fn larson<A: GlobalAlloc + Sync>(name: &str, a: &'static A, c: &mut Criterion) {
    let mut group = c.benchmark_group("larson");
    group.throughput(Throughput::Elements(
        (LARSON_THREADS * LARSON_ROUNDS * LARSON_OPS_PER_ROUND) as u64,
    ));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| (0..iters).map(|_| larson_run(a)).sum())
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    for size in [8, 64, 256, 1024] {
        for_each_allocator!(hot_pair, c, size);
    }
    for order in ["lifo", "fifo", "random"] {
        for_each_allocator!(batch, c, order);
    }
    for_each_allocator!(producer_consumer, c);
    for_each_allocator!(larson, c);
    let _ = BenchmarkId::new("", 0);
}

heapkit_benches::criterion_suite! {
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = benches
}
