//! heapkit-bump against bumpalo, the same workload side by side in one run.
//!
//! `cargo bench -p heapkit-benches --bench bump` (criterion reports time per iteration; each
//! group's throughput is set to the element count, so criterion also prints elements/s).
//! Both arenas are warmed up once, so every measured round runs in one kept chunk after
//! `reset`, as a per-request arena does in steady state.

use allocator_api2::vec::Vec as ApiVec;
use criterion::{black_box, BenchmarkId, Criterion, Throughput};
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

/// 256 zeroed 4 KiB blocks, each then written once (a page touched per block, as a caller
/// filling a calloc-ed buffer sparsely would). "fresh": a new arena per iteration, so chunks
/// come straight from mmap and heapkit skips the memset (the `_memset` line is heapkit doing
/// the memset anyway, what it did before); "reused": one arena reset per iteration, so the
/// memory is dirty and both must clear it.
fn alloc_zeroed(c: &mut Criterion) {
    use allocator_api2::alloc::Allocator as _;
    const BLOCKS: usize = 256;
    let layout = core::alloc::Layout::from_size_align(4096, 8).unwrap();
    let touch = |block: core::ptr::NonNull<[u8]>| {
        let first = block.cast::<u8>().as_ptr();
        // SAFETY: the block has 4096 writable bytes.
        unsafe { first.write(black_box(1)) };
        black_box(first);
    };
    let mut group = c.benchmark_group("alloc_zeroed_4KiB_x256");
    group.throughput(Throughput::Elements(BLOCKS as u64));
    group.sample_size(20);
    group.bench_function("heapkit-bump/fresh", |b| {
        b.iter(|| {
            let arena = Arena::new();
            for _ in 0..BLOCKS {
                touch(arena.allocate_zeroed(layout).unwrap());
            }
        })
    });
    group.bench_function("heapkit-bump_memset/fresh", |b| {
        b.iter(|| {
            let arena = Arena::new();
            for _ in 0..BLOCKS {
                let block = arena.allocate(layout).unwrap();
                // SAFETY: the block has 4096 writable bytes.
                unsafe { block.cast::<u8>().as_ptr().write_bytes(0, 4096) };
                touch(block);
            }
        })
    });
    group.bench_function("bumpalo/fresh", |b| {
        b.iter(|| {
            let arena = bumpalo::Bump::new();
            for _ in 0..BLOCKS {
                touch((&arena).allocate_zeroed(layout).unwrap());
            }
        })
    });
    let mut ours = Arena::new();
    group.bench_function("heapkit-bump/reused", |b| {
        b.iter(|| {
            for _ in 0..BLOCKS {
                touch(ours.allocate_zeroed(layout).unwrap());
            }
            ours.reset();
        })
    });
    let mut theirs = bumpalo::Bump::new();
    group.bench_function("bumpalo/reused", |b| {
        b.iter(|| {
            for _ in 0..BLOCKS {
                touch((&theirs).allocate_zeroed(layout).unwrap());
            }
            theirs.reset();
        })
    });
    group.finish();
}

heapkit_benches::criterion_suite! {
    config = Criterion::default();
    targets = alloc_16, alloc_16_hot, alloc_64, slices_and_strings, vec_push_growth,
        alloc_zeroed
}
