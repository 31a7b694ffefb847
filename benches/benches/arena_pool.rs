//! Arena bulk allocation + reset (bumpalo, heapkit-bump, and the general-purpose allocators
//! freeing block by block), an arena made and dropped per request (`per_request`), and pool
//! acquire/release (heapkit-fixed beside the same).

use criterion::{BenchmarkId, Criterion, Throughput};
use heapkit_benches::allocators::{for_each, Visit};
use heapkit_benches::arena::{self, ARENA_OBJECTS, POOL_OBJECTS};
use heapkit_pages::MmapPages;
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
    per_request(c);
    for_each(&mut Arenas {
        criterion: c,
        layouts,
    });
}

/// An arena made and dropped per request: `Arena::new()` (`DefaultChunks`: small chunks from
/// the global allocator, large ones from the process-wide chunk cache) against bumpalo; then
/// the two designs alone (every chunk from the global allocator; every chunk from the cache)
/// and plain `mmap` (the default before: a fresh mapping per request).
fn per_request(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_request");
    for (count, size_bytes) in arena::PER_REQUEST_SHAPES {
        let layout = Layout::from_size_align(size_bytes, 8).expect("a valid benchmark layout");
        let shape = format!("{count}x{size_bytes}B");
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(BenchmarkId::new("heapkit-bump", &shape), |b| {
            b.iter(|| arena::heapkit_bump_request(heapkit_bump::DefaultChunks, count, layout))
        });
        group.bench_function(BenchmarkId::new("bumpalo", &shape), |b| {
            b.iter(|| arena::bumpalo_request(count, layout))
        });
        group.bench_function(BenchmarkId::new("heapkit-bump-global", &shape), |b| {
            b.iter(|| arena::heapkit_bump_request(heapkit_bump::GLOBAL_CHUNKS, count, layout))
        });
        group.bench_function(BenchmarkId::new("heapkit-bump-cache", &shape), |b| {
            b.iter(|| arena::heapkit_bump_request(&heapkit_bump::CHUNK_CACHE, count, layout))
        });
        group.bench_function(BenchmarkId::new("heapkit-bump-mmap", &shape), |b| {
            b.iter(|| arena::heapkit_bump_request(MmapPages::new(), count, layout))
        });
    }
    group.finish();
}

heapkit_benches::criterion_suite! {
    config = heapkit_benches::settings::criterion();
    targets = arenas
}
