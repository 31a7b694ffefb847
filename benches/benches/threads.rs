//! Two threads: producer/consumer (every free remote) and a larson-like server.

use criterion::{BenchmarkId, Criterion, Throughput};
use heapkit_benches::allocators::{for_each, Visit};
use heapkit_benches::threads::{
    Larson, ProducerConsumer, HANDOFF_BLOCKS, LARSON_STEPS, LARSON_THREADS,
};
use std::alloc::GlobalAlloc;

struct Suite<'c>(&'c mut Criterion);

impl Visit for Suite<'_> {
    fn visit<G: GlobalAlloc + Sync + 'static>(&mut self, name: &'static str, alloc: &'static G) {
        let mut group = self.0.benchmark_group("producer_consumer");
        group.throughput(Throughput::Elements(HANDOFF_BLOCKS as u64));
        let mut handoff = ProducerConsumer::new();
        group.bench_function(BenchmarkId::new(name, 64), |b| {
            b.iter(|| handoff.run(alloc, 64))
        });
        group.finish();

        let mut group = self.0.benchmark_group("larson");
        group.throughput(Throughput::Elements((LARSON_STEPS * LARSON_THREADS) as u64));
        let mut larson = Larson::new(alloc);
        group.bench_function(BenchmarkId::new(name, "2x16-1024"), |b| {
            b.iter(|| larson.round(alloc))
        });
        larson.drain(alloc);
        group.finish();
    }
}

fn threads(c: &mut Criterion) {
    for_each(&mut Suite(c));
}

heapkit_benches::criterion_suite! {
    config = heapkit_benches::settings::criterion();
    targets = threads
}
