//! Pool acquire+release vs System malloc+free vs the bump partition, side by side.
//!
//! `cargo bench -p heapkit-fixed --bench fixed`
//!
//! heapkit-bump is not a dependency of this crate (it is written in parallel); the region's own
//! bump partition stands in for "a bump allocator's alloc" until the lead wires the two up.

use core::alloc::Layout;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use heapkit_core::Allocator;
use heapkit_fixed::{OnViolation, Prefault, Region, RegionLayout, StaticAllocator};
use heapkit_pages::MmapPages;
use std::alloc::{GlobalAlloc, System};

type Object = [u64; 2];
const SLOTS: usize = 1 << 16;

fn pairs(c: &mut Criterion) {
    let mut layout = RegionLayout::new();
    let objects = layout.pool::<Object>("objects", SLOTS);
    layout.bump("init", 1 << 20);
    let region = Region::new(layout, MmapPages::new(), Prefault::Populate).unwrap();
    let mut pool = region.pool(objects).unwrap();
    let sealed_view = StaticAllocator::with_policy(&region, OnViolation::Abort);
    let object_layout = Layout::new::<Object>();

    let mut group = c.benchmark_group("pair_16B");
    group.bench_function("pool_acquire_release", |b| {
        let mut i = 0u64;
        b.iter(|| {
            // Like the malloc pair: a value written, an opaque handle, the value read back. (A
            // `black_box` around the whole array or `Result` costs a store-forwarding stall
            // that is the harness's, not the pool's.)
            i += 1;
            let id = black_box(pool.try_acquire([i, 2]).unwrap());
            black_box(pool.release(id).unwrap()[0])
        })
    });
    group.bench_function("system_malloc_free", |b| {
        b.iter(|| {
            // SAFETY: a non-zero layout; the block is freed with it right away.
            unsafe {
                let ptr = System.alloc(black_box(object_layout));
                ptr.cast::<Object>().write([1, 2]);
                System.dealloc(black_box(ptr), object_layout);
            }
        })
    });
    group.bench_function("region_bump_alloc_free", |b| {
        b.iter(|| {
            let block = region.allocate(black_box(object_layout)).unwrap();
            // SAFETY: a fresh block of 16 bytes, freed with its layout.
            unsafe {
                block.cast::<Object>().write([1, 2]);
                region.deallocate(black_box(block.cast()), object_layout);
            }
        })
    });
    group.bench_function("static_allocator_bump_alloc_free", |b| {
        b.iter(|| {
            let block = sealed_view.allocate(black_box(object_layout)).unwrap();
            // SAFETY: as above.
            unsafe {
                block.cast::<Object>().write([1, 2]);
                sealed_view.deallocate(black_box(block.cast()), object_layout);
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = pairs
}
criterion_main!(benches);
