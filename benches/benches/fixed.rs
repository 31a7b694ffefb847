//! Pool acquire+release vs System malloc+free vs heapkit-bump's arena vs the region's bump
//! partition, side by side in one criterion group, for 16- and 64-byte objects.
//!
//! `cargo bench -p heapkit-benches --bench fixed`
//!
//! Every function in the group does one object's worth of work per iteration: a pair
//! (acquire + release, malloc + free, allocate + deallocate) or, for the arena, which has no
//! per-object free, one allocation plus its share of the reset that frees it (see
//! [`arena_alloc`]). Criterion prints them one after another, so the ratios are read off one
//! run on one machine state.

use core::alloc::Layout;
use criterion::measurement::WallTime;
use criterion::Criterion;
use criterion::{black_box, BenchmarkGroup, BenchmarkId};
use heapkit_bump::Arena;
use heapkit_core::Allocator;
use heapkit_fixed::{OnViolation, Prefault, Region, RegionLayout, StaticAllocator};
use heapkit_pages::MmapPages;
use std::alloc::{GlobalAlloc, System};

/// Slots in each pool: far more than the one live object a pair needs, so the pool's memory is
/// no smaller than a real server's and the free list's head is the only slot touched.
const SLOTS: usize = 1 << 16;
/// Bytes of the region's bump partition (the pairs free what they take, so it never fills).
const BUMP_BYTES: usize = 1 << 20;
/// The arena is reset after this many allocations: 64 KiB of 64-byte objects at most, so the
/// memory stays bounded and in L2, like a per-request arena. Large enough that the reset (a
/// handful of stores: the arena keeps its largest chunk) adds well under 1% per allocation.
const ARENA_RESET_EVERY: u64 = 1024;
/// Rounds run before measuring, so the arena's kept chunk has grown to hold a whole round
/// (chunks double from 4 KiB; a reset keeps the largest) and no measured round maps memory.
const ARENA_WARM_ROUNDS: usize = 8;
/// The arena keeps only its largest chunk across a reset (a retain limit of 0 bytes). With the
/// default limit it keeps every chunk as a spare, and a round that overflows the largest by a
/// little takes the next spare instead of growing: the kept chunk then never holds a whole
/// round (16 KiB of 16-byte objects: the 16 KiB chunk minus its header, plus the 8 KiB spare,
/// every round), which the setup's one-chunk check caught.
const ARENA_RETAIN_LIMIT_BYTES: usize = 0;

fn pool_pair<const WORDS: usize>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let mut layout = RegionLayout::new();
    let objects = layout.pool::<[u64; WORDS]>("objects", SLOTS);
    let region = Region::new(layout, MmapPages::new(), Prefault::Populate).unwrap();
    let mut pool = region.pool(objects).unwrap();
    group.bench_function(id("pool_acquire_release", WORDS), |b| {
        let mut i = 0u64;
        b.iter(|| {
            // Like the malloc pair: a value written, an opaque handle, the value read back. (A
            // `black_box` around the whole array or `Result` costs a store-forwarding stall
            // that is the harness's, not the pool's.)
            i += 1;
            let id = black_box(pool.try_acquire([i; WORDS]).unwrap());
            black_box(pool.release(id).unwrap()[0])
        })
    });
}

fn system_pair<const WORDS: usize>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let object_layout = Layout::new::<[u64; WORDS]>();
    group.bench_function(id("system_malloc_free", WORDS), |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            // SAFETY: a non-zero layout; the block is written within it and freed with it
            // right away.
            unsafe {
                let ptr = System.alloc(black_box(object_layout));
                ptr.cast::<[u64; WORDS]>().write([i; WORDS]);
                System.dealloc(black_box(ptr), object_layout);
            }
        })
    });
}

/// heapkit-bump's `Arena::alloc`: one object per iteration, and every `ARENA_RESET_EVERY`
/// iterations a `reset` that frees the round. An arena frees all at once, so this is its
/// "pair": the allocation plus 1/ARENA_RESET_EVERY of the reset. Memory stays bounded at one
/// round (`ARENA_RESET_EVERY` objects in the one chunk the arena keeps), which the setup checks.
fn arena_alloc<const WORDS: usize>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let mut arena = Arena::new();
    arena.set_retain_limit(Some(ARENA_RETAIN_LIMIT_BYTES));
    for _ in 0..ARENA_WARM_ROUNDS {
        for i in 0..ARENA_RESET_EVERY {
            black_box(arena.alloc([i; WORDS]));
        }
        arena.reset();
    }
    for i in 0..ARENA_RESET_EVERY {
        black_box(arena.alloc([i; WORDS]));
    }
    assert_eq!(
        arena.chunk_count(),
        1,
        "a measured round must fit the kept chunk"
    );
    arena.reset();
    let warm_bytes = arena.allocated_bytes();
    // Counted across the routine's calls (criterion calls it once per warm-up and sample): a
    // count restarting at each call would leave a partial round in the arena and make the next
    // one longer than a round.
    let mut i = 0u64;
    group.bench_function(id("bump_arena_alloc", WORDS), |b| {
        b.iter(|| {
            i += 1;
            black_box(arena.alloc([i; WORDS]));
            if i % ARENA_RESET_EVERY == 0 {
                arena.reset();
            }
        })
    });
    assert_eq!(
        arena.allocated_bytes(),
        warm_bytes,
        "a measured round mapped a chunk"
    );
    assert!(arena.allocated_bytes() <= 4 * ARENA_RESET_EVERY as usize * WORDS * 8);
}

/// The region's own (lock-free) bump partition through `Allocator`, and the same behind a
/// `StaticAllocator` in its Init state: what init-time allocations cost.
fn region_bump_pairs<const WORDS: usize>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    region: &Region<MmapPages>,
) {
    let object_layout = Layout::new::<[u64; WORDS]>();
    group.bench_function(id("region_bump_alloc_free", WORDS), |b| {
        b.iter(|| {
            let block = region.allocate(black_box(object_layout)).unwrap();
            // SAFETY: a fresh block of the layout's size, freed with its layout.
            unsafe {
                block.cast::<[u64; WORDS]>().write([1; WORDS]);
                region.deallocate(black_box(block.cast()), object_layout);
            }
        })
    });
    let sealed_view = StaticAllocator::with_policy(region, OnViolation::Abort);
    group.bench_function(id("static_allocator_bump_alloc_free", WORDS), |b| {
        b.iter(|| {
            let block = sealed_view.allocate(black_box(object_layout)).unwrap();
            // SAFETY: as above.
            unsafe {
                block.cast::<[u64; WORDS]>().write([1; WORDS]);
                sealed_view.deallocate(black_box(block.cast()), object_layout);
            }
        })
    });
}

fn id(function: &str, words: usize) -> BenchmarkId {
    BenchmarkId::new(function, format!("{}B", words * 8))
}

fn per_size<const WORDS: usize>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    region: &Region<MmapPages>,
) {
    pool_pair::<WORDS>(group);
    system_pair::<WORDS>(group);
    arena_alloc::<WORDS>(group);
    region_bump_pairs::<WORDS>(group, region);
}

fn pairs(c: &mut Criterion) {
    let mut layout = RegionLayout::new();
    layout.bump("init", BUMP_BYTES);
    let region = Region::new(layout, MmapPages::new(), Prefault::Populate).unwrap();
    let mut group = c.benchmark_group("pair");
    per_size::<2>(&mut group, &region);
    per_size::<8>(&mut group, &region);
    group.finish();
}

heapkit_benches::criterion_suite! {
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = pairs
}
