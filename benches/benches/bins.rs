//! heapkit-bins against glibc's malloc (`std::alloc::System`), side by side in one run.
//!
//! Workloads (each through `GlobalAlloc`, so both sides pay the same call overhead):
//! - `random`: a live set of ~10k blocks of random sizes 16..4096; each op frees a random
//!   slot's block and allocates a new random size into it;
//! - `lifo`: batches of 100 random sizes 16..512 allocated then freed in reverse;
//! - `realloc`: 8 buffers grown by 1.5x in turn from 16 B to 256 KiB, then freed.
//!
//! Contenders:
//! - `bins`: `Locked<Bins<MmapPages>>` as configured by default (tcache of 7 per size, no fast
//!   bins): the shareable form;
//! - `bins-bare`: the same `Bins` without the lock (it is `!Sync`: one thread, or a
//!   `thread_local`);
//! - `bins-nocache`: `Locked<Bins>` with `Config::NO_CACHES` (the arena alone);
//! - `tcache-bins`: heapkit-tcache's `ThreadCache` in front of `LockedBins`;
//! - `glibc`: `System` (glibc's malloc, its tcache included).
//!
//! After the benches, a fragmentation report puts `Bins::fragmentation()` beside glibc's
//! `mallinfo2()` for the same random workload.
//!
//! Run: `cargo bench -p heapkit-benches --bench bins`.

use criterion::{BenchmarkId, Criterion, Throughput};
use heapkit_bins::{Bins, Config, LockedBins};
use heapkit_core::{GlobalAdapter, Locked};
use heapkit_pages::MmapPages;
use heapkit_tcache::ThreadCache;
use heapkit_testkit::Rng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Duration;

type Heap = GlobalAdapter<Locked<Bins<MmapPages>>>;

static BINS: Heap = GlobalAdapter::new(Locked::new(Bins::new(MmapPages::new())));
static BINS_NOCACHE: Heap = GlobalAdapter::new(Locked::new(Bins::with_config(
    MmapPages::new(),
    Config::NO_CACHES,
)));
static TCACHE_BINS: ThreadCache<LockedBins<MmapPages>> =
    ThreadCache::new(LockedBins::new(MmapPages::new()));

const LIVE_BLOCKS: usize = 10_000;
const OPS_PER_ITER: usize = 1_000;
const LIFO_BATCH: usize = 100;
const REALLOC_BUFFERS: usize = 8;
const REALLOC_MAX_BYTES: usize = 256 * 1024;

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// The random-sizes workload's state: a fixed array of slots (allocated once, outside the
/// measured loop).
struct LiveSet {
    slots: Vec<(*mut u8, usize)>,
    rng: Rng,
}

impl LiveSet {
    fn fill<A: GlobalAlloc>(a: &A) -> Self {
        let mut set = LiveSet {
            slots: Vec::with_capacity(LIVE_BLOCKS),
            rng: Rng::new(0x9E37_79B9_7F4A_7C15),
        };
        for _ in 0..LIVE_BLOCKS {
            let size = 16 + set.rng.below(4096 - 16);
            // SAFETY: non-zero layout.
            let p = unsafe { a.alloc(layout(size)) };
            assert!(!p.is_null());
            // SAFETY: p has `size` bytes.
            unsafe { p.write(1) };
            set.slots.push((p, size));
        }
        set
    }

    fn step<A: GlobalAlloc>(&mut self, a: &A) {
        let i = self.rng.below(LIVE_BLOCKS);
        let size = 16 + self.rng.below(4096 - 16);
        let (old, old_size) = self.slots[i];
        // SAFETY: `old` is live with that layout; the new layout is non-zero.
        unsafe {
            a.dealloc(old, layout(old_size));
            let p = a.alloc(layout(size));
            assert!(!p.is_null());
            p.write(1);
            self.slots[i] = (p, size);
        }
    }

    fn live_bytes(&self) -> usize {
        self.slots.iter().map(|s| s.1).sum()
    }

    fn free_all<A: GlobalAlloc>(self, a: &A) {
        for (p, size) in self.slots {
            // SAFETY: live with that layout.
            unsafe { a.dealloc(p, layout(size)) };
        }
    }
}

fn lifo<A: GlobalAlloc>(a: &A, rng: &mut Rng, batch: &mut [(*mut u8, usize); LIFO_BATCH]) {
    for slot in batch.iter_mut() {
        let size = 16 + rng.below(512 - 16);
        // SAFETY: non-zero layout.
        let p = unsafe { a.alloc(layout(size)) };
        assert!(!p.is_null());
        // SAFETY: p has `size` bytes.
        unsafe { p.write(1) };
        *slot = (p, size);
    }
    for &(p, size) in batch.iter().rev() {
        // SAFETY: live with that layout.
        unsafe { a.dealloc(p, layout(size)) };
    }
}

fn realloc_growth<A: GlobalAlloc>(a: &A) {
    let mut bufs = [(core::ptr::null_mut::<u8>(), 16usize); REALLOC_BUFFERS];
    for buf in bufs.iter_mut() {
        // SAFETY: non-zero layout.
        buf.0 = unsafe { a.alloc(layout(16)) };
        assert!(!buf.0.is_null());
    }
    while bufs.iter().any(|b| b.1 < REALLOC_MAX_BYTES) {
        for buf in bufs.iter_mut() {
            if buf.1 >= REALLOC_MAX_BYTES {
                continue;
            }
            let new_size = (buf.1 * 3 / 2).min(REALLOC_MAX_BYTES);
            // SAFETY: live block with layout(buf.1); the new size is non-zero.
            let p = unsafe { a.realloc(buf.0, layout(buf.1), new_size) };
            assert!(!p.is_null());
            // SAFETY: p has new_size bytes.
            unsafe { p.add(new_size - 1).write(1) };
            *buf = (p, new_size);
        }
    }
    for (p, size) in bufs {
        // SAFETY: live with that layout.
        unsafe { a.dealloc(p, layout(size)) };
    }
}

/// Calls `$f(name, allocator)` for every contender, with static dispatch.
macro_rules! for_each_contender {
    ($f:expr) => {{
        $f("bins", &BINS);
        $f(
            "bins-bare",
            &GlobalAdapter::new(Bins::new(MmapPages::new())),
        );
        $f("bins-nocache", &BINS_NOCACHE);
        $f("tcache-bins", &TCACHE_BINS);
        $f("glibc", &System);
    }};
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn random_one<A: GlobalAlloc>(group: &mut Group<'_>, name: &str, a: &A) {
    let mut set = LiveSet::fill(a);
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.iter(|| {
            for _ in 0..OPS_PER_ITER {
                set.step(a);
            }
        })
    });
    set.free_all(a);
}

fn lifo_one<A: GlobalAlloc>(group: &mut Group<'_>, name: &str, a: &A) {
    let mut rng = Rng::new(42);
    let mut batch = [(core::ptr::null_mut(), 0); LIFO_BATCH];
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.iter(|| lifo(a, &mut rng, black_box(&mut batch)))
    });
}

fn realloc_one<A: GlobalAlloc>(group: &mut Group<'_>, name: &str, a: &A) {
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.iter(|| realloc_growth(a))
    });
}

fn bench_random(c: &mut Criterion) {
    let mut group = c.benchmark_group("random_16_4096_live10k");
    group.throughput(Throughput::Elements(OPS_PER_ITER as u64));
    for_each_contender!(|name, a| random_one(&mut group, name, a));
    group.finish();
}

fn bench_lifo(c: &mut Criterion) {
    let mut group = c.benchmark_group("lifo_batch_100");
    group.throughput(Throughput::Elements(2 * LIFO_BATCH as u64));
    for_each_contender!(|name, a| lifo_one(&mut group, name, a));
    group.finish();
}

fn bench_realloc(c: &mut Criterion) {
    let mut group = c.benchmark_group("realloc_growth_8x256k");
    for_each_contender!(|name, a| realloc_one(&mut group, name, a));
    group.finish();
}

/// The random workload once more, untimed, then both allocators' own view of their heaps.
fn fragmentation_report(_c: &mut Criterion) {
    const STEPS: usize = 200_000;
    let report_bins = |name: &str, heap: &Heap| {
        let mut set = LiveSet::fill(heap);
        for _ in 0..STEPS {
            set.step(heap);
        }
        let live = set.live_bytes();
        let f = heap.inner().lock().fragmentation();
        eprintln!(
            "fragmentation {name:>12}: live requested {live} B | heap {} B (+mmapped {} B, +reserved untouched {} B), used {} B, free {} B in {} chunks, largest free {} B, top {} B | heap/live {:.3}, external {:.3}",
            f.heap_bytes, f.mmapped_bytes, f.reserved_bytes, f.used_bytes, f.free_bytes,
            f.free_chunks, f.largest_free_bytes, f.top_bytes,
            (f.heap_bytes + f.mmapped_bytes) as f64 / live as f64, f.external()
        );
        set.free_all(heap);
    };
    report_bins("bins", &BINS);
    report_bins("bins-nocache", &BINS_NOCACHE);
    // SAFETY: mallinfo2 only reads glibc's statistics.
    let before = unsafe { libc::mallinfo2() };
    let mut set = LiveSet::fill(&System);
    for _ in 0..STEPS {
        set.step(&System);
    }
    let live = set.live_bytes();
    // SAFETY: as above.
    let m = unsafe { libc::mallinfo2() };
    let heap = m.arena - before.arena.min(m.arena);
    eprintln!(
        "fragmentation {:>12}: live requested {live} B | mallinfo2 arena {} B (grew {heap} B, +hblkhd {} B), uordblks {} B, fordblks {} B in {} chunks, keepcost {} B | arena/live {:.3}, free/arena {:.3}",
        "glibc", m.arena, m.hblkhd, m.uordblks, m.fordblks, m.ordblks, m.keepcost,
        (m.arena + m.hblkhd) as f64 / live as f64, m.fordblks as f64 / m.arena as f64
    );
    set.free_all(&System);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

heapkit_benches::criterion_suite! {
    config = config();
    targets = bench_random, bench_lifo, bench_realloc, fragmentation_report
}
