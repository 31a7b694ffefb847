//! heapkit-bump against bumpalo, the same workload side by side in one run.
//!
//! `cargo bench -p heapkit-bump --bench bump` (criterion reports time per iteration; each
//! group's throughput is set to the element count, so criterion also prints elements/s).
//! Both arenas are warmed up once, so every measured round runs in one kept chunk after
//! `reset`, as a per-request arena does in steady state.

use allocator_api2::vec::Vec as ApiVec;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use heapkit_bump::Arena;

const ALLOCS: usize = 1_000_000;
const SLICES: usize = 100_000;
const PUSHES: usize = 100_000;

fn alloc_then_reset<const WORDS: usize>(c: &mut Criterion, name: &str, allocs: usize) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(allocs as u64));
    group.sample_size(20);
    let mut ours = Arena::new();
    group.bench_function("heapkit-bump", |b| {
        b.iter(|| {
            for i in 0..allocs {
                black_box(ours.alloc([i as u64; WORDS]));
            }
            ours.reset();
        })
    });
    let mut theirs = bumpalo::Bump::new();
    group.bench_function("bumpalo", |b| {
        b.iter(|| {
            for i in 0..allocs {
                black_box(theirs.alloc([i as u64; WORDS]));
            }
            theirs.reset();
        })
    });
    group.finish();
}

fn alloc_16(c: &mut Criterion) {
    alloc_then_reset::<2>(c, "alloc_16B_x1e6_then_reset", ALLOCS);
}

/// 1e4 allocations (160 KB) stay in cache: this measures the allocator, where the 1e6 rounds
/// (16 MB and 64 MB written per round) mostly measure memory bandwidth.
fn alloc_16_hot(c: &mut Criterion) {
    alloc_then_reset::<2>(c, "alloc_16B_x1e4_then_reset_in_cache", ALLOCS / 100);
}

fn alloc_64(c: &mut Criterion) {
    alloc_then_reset::<8>(c, "alloc_64B_x1e6_then_reset", ALLOCS);
}

fn slices_and_strings(c: &mut Criterion) {
    let words: [&str; 8] = ["a", "heap", "kit", "bump", "allocator", "x", "arena!", "µs"];
    let numbers: [u32; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let mut group = c.benchmark_group("slices_and_strings_x1e5");
    group.throughput(Throughput::Elements(SLICES as u64 * 2));
    group.sample_size(20);
    let mut ours = Arena::new();
    group.bench_function("heapkit-bump", |b| {
        b.iter(|| {
            for i in 0..SLICES {
                black_box(ours.alloc_str(black_box(words[i % 8])));
                black_box(ours.alloc_slice_copy(black_box(&numbers[..i % 10])));
            }
            ours.reset();
        })
    });
    let mut theirs = bumpalo::Bump::new();
    group.bench_function("bumpalo", |b| {
        b.iter(|| {
            for i in 0..SLICES {
                black_box(theirs.alloc_str(black_box(words[i % 8])));
                black_box(theirs.alloc_slice_copy(black_box(&numbers[..i % 10])));
            }
            theirs.reset();
        })
    });
    group.finish();
}

fn vec_push_growth(c: &mut Criterion) {
    let mut group = c.benchmark_group("vec_push_growth");
    for vecs in [1usize, 2] {
        // One Vec grows alone (in place for heapkit); two interleaved Vecs can never grow in
        // place, so both arenas copy.
        group.throughput(Throughput::Elements(PUSHES as u64));
        let mut ours = Arena::new();
        group.bench_function(BenchmarkId::new("heapkit-bump", vecs), |b| {
            b.iter(|| {
                {
                    let mut vs: [ApiVec<u32, &Arena>; 2] =
                        [ApiVec::new_in(&ours), ApiVec::new_in(&ours)];
                    for i in 0..PUSHES {
                        vs[i % vecs].push(i as u32);
                    }
                    black_box(&vs);
                }
                ours.reset();
            })
        });
        let mut theirs = bumpalo::Bump::new();
        group.bench_function(BenchmarkId::new("bumpalo", vecs), |b| {
            b.iter(|| {
                {
                    let mut vs: [ApiVec<u32, &bumpalo::Bump>; 2] =
                        [ApiVec::new_in(&theirs), ApiVec::new_in(&theirs)];
                    for i in 0..PUSHES {
                        vs[i % vecs].push(i as u32);
                    }
                    black_box(&vs);
                }
                theirs.reset();
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    alloc_16,
    alloc_16_hot,
    alloc_64,
    slices_and_strings,
    vec_push_growth
);
criterion_main!(benches);
