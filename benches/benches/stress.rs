//! stress.c's OS-facing workloads for the Rust allocators (issue #24): one producer and 2 or 8
//! consumers, the large-block replacement loop, the ownership-transfer stress with 16 threads
//! re-created each round. Time only: `heapkit-probe stress NAME` gives the minor faults and
//! context switches of the same workloads, one process per allocator.

use criterion::{BenchmarkId, Criterion, Throughput};
use heapkit_benches::allocators::{for_each, Visit};
use heapkit_benches::stress::{
    LargeBlocks, ProdCons, Transfer, LARGE_REPLACEMENTS, PRODCONS_BLOCKS, PRODCONS_CONSUMERS,
    STRESS_ALLOCATORS, TRANSFER_OBJECTS_PER_THREAD, TRANSFER_THREADS,
};
use std::alloc::GlobalAlloc;

struct Suite<'c>(&'c mut Criterion);

impl Visit for Suite<'_> {
    fn visit<G: GlobalAlloc + Sync + 'static>(&mut self, name: &'static str, alloc: &'static G) {
        if !STRESS_ALLOCATORS.contains(&name) {
            return;
        }
        let mut group = self.0.benchmark_group("stress_prodcons");
        group.throughput(Throughput::Elements(PRODCONS_BLOCKS as u64));
        let consumers_max = PRODCONS_CONSUMERS.iter().copied().max().unwrap_or(1);
        let mut prodcons = ProdCons::new(consumers_max);
        for consumers in PRODCONS_CONSUMERS {
            group.bench_function(BenchmarkId::new(name, consumers), |b| {
                b.iter(|| prodcons.run(alloc, consumers))
            });
        }
        group.finish();

        let mut group = self.0.benchmark_group("stress_large");
        group.throughput(Throughput::Elements(LARGE_REPLACEMENTS as u64));
        let mut large = LargeBlocks::new(alloc);
        group.bench_function(BenchmarkId::new(name, "20x2-10MiB"), |b| {
            b.iter(|| large.replace(alloc))
        });
        large.drain(alloc);
        group.finish();

        let mut group = self.0.benchmark_group("stress_transfer");
        group.throughput(Throughput::Elements(
            (TRANSFER_THREADS * TRANSFER_OBJECTS_PER_THREAD) as u64,
        ));
        let mut transfer = Transfer::new();
        group.bench_function(BenchmarkId::new(name, TRANSFER_THREADS), |b| {
            b.iter(|| transfer.round(alloc))
        });
        transfer.drain(alloc);
        group.finish();
    }
}

fn stress(c: &mut Criterion) {
    for_each(&mut Suite(c));
}

heapkit_benches::criterion_suite! {
    config = heapkit_benches::settings::criterion();
    targets = stress
}
