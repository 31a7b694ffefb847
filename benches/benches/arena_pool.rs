//! Arena bulk allocation + reset (bumpalo, heapkit-bump, and the general-purpose allocators
//! freeing block by block), and pool acquire/release (heapkit-fixed beside the same).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use heapkit_benches::allocators::{for_each, Visit};
use heapkit_benches::arena::{self, ARENA_OBJECTS, POOL_OBJECTS};
use std::alloc::{GlobalAlloc, Layout};

struct Arenas<'c> {
    criterion: &'c mut Criterion,
    layouts: Vec<Layout>,
}

impl Visit for Arenas<'_> {
    fn visit<G: GlobalAlloc + Sync + 'static>(&mut self, name: &'static str, alloc: &'static G) {
        let mut blocks = Vec::with_capacity(ARENA_OBJECTS);
        let layouts = &self.layouts;
        let mut group = self.criterion.benchmark_group("arena");
        group.throughput(Throughput::Elements(ARENA_OBJECTS as u64));
        group.bench_function(BenchmarkId::new(name, "8-128"), |b| {
            b.iter(|| arena::global_round(alloc, layouts, &mut blocks))
        });
        group.finish();

        let mut held = Vec::with_capacity(POOL_OBJECTS);
        let mut group = self.criterion.benchmark_group("pool");
        group.throughput(Throughput::Elements(POOL_OBJECTS as u64));
        group.bench_function(BenchmarkId::new(name, "64"), |b| {
            b.iter(|| arena::global_pool_round(alloc, &mut held))
        });
        group.finish();
    }
}

fn arenas(c: &mut Criterion) {
    let layouts = arena::arena_layouts();
    {
        let mut group = c.benchmark_group("arena");
        group.throughput(Throughput::Elements(ARENA_OBJECTS as u64));
        let mut bump = heapkit_bump::Arena::new();
        group.bench_function(BenchmarkId::new("heapkit-bump", "8-128"), |b| {
            b.iter(|| arena::heapkit_bump_round(&mut bump, &layouts))
        });
        let mut other = bumpalo::Bump::new();
        group.bench_function(BenchmarkId::new("bumpalo", "8-128"), |b| {
            b.iter(|| arena::bumpalo_round(&mut other, &layouts))
        });
        group.finish();
    }
    {
        let (region, id) = arena::fixed_region();
        let mut pool = region.pool(id).expect("a fresh region lends its pool");
        let mut held = Vec::with_capacity(POOL_OBJECTS);
        let mut group = c.benchmark_group("pool");
        group.throughput(Throughput::Elements(POOL_OBJECTS as u64));
        group.bench_function(BenchmarkId::new("heapkit-fixed", "64"), |b| {
            b.iter(|| arena::fixed_pool_round(&mut pool, &mut held))
        });
        group.finish();
    }
    for_each(&mut Arenas {
        criterion: c,
        layouts,
    });
}

criterion_group! {
    name = benches;
    config = heapkit_benches::settings::criterion();
    targets = arenas
}
criterion_main!(benches);
