//! One thread: hot pairs per size, batches freed LIFO / FIFO / random, a random-size live set,
//! realloc growth. Ids: `workload/allocator/parameter`.

use criterion::{BenchmarkId, Criterion, Throughput};
use heapkit_benches::allocators::{for_each, Visit};
use heapkit_benches::workloads::{
    self, Batch, FreeOrder, Growth, LiveSet, BATCH_BLOCKS, HOT_PAIR_SIZES_BYTES, LIVE_SET_STEPS,
};
use std::alloc::{GlobalAlloc, Layout};

struct Suite<'c>(&'c mut Criterion);

impl Visit for Suite<'_> {
    fn visit<G: GlobalAlloc + Sync + 'static>(&mut self, name: &'static str, alloc: &'static G) {
        let mut group = self.0.benchmark_group("hot_pair");
        group.throughput(Throughput::Elements(1));
        for size in HOT_PAIR_SIZES_BYTES {
            let layout = Layout::from_size_align(size, 8).expect("valid");
            group.bench_with_input(BenchmarkId::new(name, size), &layout, |b, &layout| {
                b.iter(|| workloads::hot_pair(alloc, layout))
            });
        }
        group.finish();

        let mut group = self.0.benchmark_group("batch");
        group.throughput(Throughput::Elements(BATCH_BLOCKS as u64));
        for order in FreeOrder::ALL {
            let mut batch = Batch::new(order);
            group.bench_function(BenchmarkId::new(name, order.name()), |b| {
                b.iter(|| batch.run(alloc))
            });
        }
        group.finish();

        let mut group = self.0.benchmark_group("live_set");
        group.throughput(Throughput::Elements(LIVE_SET_STEPS as u64));
        let mut live = LiveSet::new();
        live.fill(alloc);
        group.bench_function(BenchmarkId::new(name, "16-4096"), |b| {
            b.iter(|| live.run(alloc))
        });
        live.drain(alloc);
        group.finish();

        let mut group = self.0.benchmark_group("realloc");
        for growth in Growth::ALL {
            group.throughput(Throughput::Elements(growth.reallocs() as u64));
            group.bench_function(BenchmarkId::new(name, growth.name()), |b| {
                b.iter(|| workloads::realloc_growth(alloc, growth))
            });
        }
        group.finish();
    }
}

fn single_thread(c: &mut Criterion) {
    for_each(&mut Suite(c));
}

heapkit_benches::criterion_suite! {
    config = heapkit_benches::settings::criterion();
    targets = single_thread
}
