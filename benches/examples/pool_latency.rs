//! Latency distributions over 1e6 operations: P50 / P99 / P99.9 / max, from an HDR histogram,
//! for the fixed pool, System malloc, heapkit-slab and the composed thread cache (`HeapKit`).
//!
//! `cargo run --release -p heapkit-benches --example pool_latency [ops] [live objects in churn ...]`
//! (defaults: 1000000 ops; churn with 256 and with 4096 live objects)
//!
//! Workloads, each run for every allocator, one after another (so every row of a workload
//! sees the same machine state), with 64-byte objects:
//! - **pair**: acquire then release one object (the allocator's best case: one hot slot);
//! - **churn N**: N objects live; each op releases a pseudo-random live one (its value read
//!   first, like the pool's release returns it) and acquires a new one, so free lists are
//!   shuffled as in a real server. The victim sequence is the same for every allocator.
//!
//! The slab and `HeapKit` are local instances used through heapkit's `Allocator` trait; System
//! malloc goes through the same trait (`FromGlobal(System)`), so the three share one code path
//! and differ only in the allocator.
//!
//! Each op is timed with a fenced `rdtsc` around it; the timer's own cost is measured the same
//! way (an empty interval) and printed as the first row, so it can be subtracted by the
//! reader. Results are in TSC cycles (the TSC rate, calibrated against `Instant`, is printed).

use core::alloc::Layout;
use core::ptr::NonNull;
use hdrhistogram::Histogram;
use heapkit::HeapKit;
use heapkit_core::{Allocator, FromGlobal};
use heapkit_fixed::{Pool, Prefault, Region, RegionLayout, SlotId};
use heapkit_pages::MmapPages;
use heapkit_slab::Slab;
use heapkit_testkit::Xorshift64;
use std::alloc::System;
use std::hint::black_box;
use std::time::Instant;

type Object = [u64; 8]; // 64 bytes: a small record
/// Objects live during churn, unless arguments say otherwise.
const LIVE_DEFAULT: [usize; 2] = [256, 4096];
/// A bound on the live objects asked for, so the pool's region stays a few MiB.
const LIVE_MAX: usize = 1 << 20;
/// The pool's goal from the issue: static allocation keeps the tail close to the median.
const POOL_P99_OVER_P50_GOAL: f64 = 1.5;

/// A timestamp fenced on both sides (`lfence; rdtsc; lfence`), so the timed operation can
/// neither start before the first stamp nor finish after the second; an unfenced `rdtsc`
/// lets the CPU overlap a few-cycle operation with the timer and reports only the timer.
#[inline(always)]
fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `lfence` and `rdtsc` exist on every x86-64 CPU and have no memory effects.
    unsafe {
        use core::arch::x86_64::{_mm_lfence, _rdtsc};
        _mm_lfence();
        let t = _rdtsc();
        _mm_lfence();
        t
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

fn ticks_per_ns() -> f64 {
    let (t0, i0) = (ticks(), Instant::now());
    while i0.elapsed().as_millis() < 100 {}
    (ticks() - t0) as f64 / i0.elapsed().as_nanos() as f64
}

/// The victim sequence's seed (deterministic, allocation-free victim choice; the same
/// generator as the book's figures).
const VICTIM_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 1 << 40, 3).unwrap()
}

#[inline(always)]
fn time(histogram: &mut Histogram<u64>, op: impl FnOnce()) {
    let start = ticks();
    op();
    let end = ticks();
    histogram.saturating_record(end.saturating_sub(start).max(1));
}

/// The allocators compared, in table order.
const ALLOCATORS: [&str; 4] = ["pool", "System malloc", "heapkit-slab", "HeapKit (tcache)"];

/// Every allocator under test, built once so that warm-up carries over between workloads.
struct Contestants<'r> {
    pool: Pool<'r, Object>,
    system: FromGlobal<System>,
    slab: Slab<MmapPages>,
    heapkit: HeapKit,
}

impl Contestants<'_> {
    /// Runs `workload` (`None`: the pair; `Some(n)`: churn with `n` live) on allocator `index`.
    fn run(&mut self, index: usize, ops: usize, workload: Option<usize>) -> Histogram<u64> {
        match (index, workload) {
            (0, None) => pool_pair(&mut self.pool, ops),
            (0, Some(live_count)) => pool_churn(&mut self.pool, ops, live_count),
            (1, None) => alloc_pair(&self.system, ops),
            (1, Some(live_count)) => alloc_churn(&self.system, ops, live_count),
            (2, None) => alloc_pair(&self.slab, ops),
            (2, Some(live_count)) => alloc_churn(&self.slab, ops, live_count),
            (3, None) => alloc_pair(&self.heapkit, ops),
            (3, Some(live_count)) => alloc_churn(&self.heapkit, ops, live_count),
            _ => unreachable!("ALLOCATORS has four entries"),
        }
    }
}

fn pool_pair(pool: &mut Pool<'_, Object>, ops: usize) -> Histogram<u64> {
    let mut h = histogram();
    for i in 0..ops {
        time(&mut h, || {
            // No `black_box` around whole arrays: it adds a store-forwarding stall that is the
            // harness's, not the allocator's.
            let id = black_box(pool.try_acquire([i as u64; 8]).unwrap());
            black_box(pool.release(id).unwrap()[0]);
        });
    }
    h
}

fn pool_churn(pool: &mut Pool<'_, Object>, ops: usize, live_count: usize) -> Histogram<u64> {
    let mut live: Vec<SlotId<Object>> = (0..live_count)
        .map(|i| pool.try_acquire([i as u64; 8]).unwrap())
        .collect();
    let mut rng = Xorshift64::new(VICTIM_SEED);
    let mut h = histogram();
    for i in 0..ops {
        let victim = rng.below(live_count);
        time(&mut h, || {
            black_box(pool.release(live[victim]).unwrap()[0]);
            live[victim] = black_box(pool.try_acquire([i as u64; 8]).unwrap());
        });
    }
    for id in live {
        pool.release(id).unwrap();
    }
    h
}

/// One 64-byte block from `allocator`, written with `value` (as the pool's acquire writes it).
#[inline(always)]
fn new_object(allocator: &impl Allocator, value: u64) -> NonNull<Object> {
    let block = allocator.allocate(Layout::new::<Object>()).unwrap();
    let object = block.cast::<Object>();
    // SAFETY: a fresh block of at least `size_of::<Object>()` bytes, aligned for it.
    unsafe { object.write([value; 8]) };
    object
}

/// Reads the object's first word (as the pool's release returns the value) and frees it.
///
/// # Safety
/// `object` came from `new_object(allocator, _)` and is not freed yet.
#[inline(always)]
unsafe fn free_object(allocator: &impl Allocator, object: NonNull<Object>) -> u64 {
    // SAFETY: from the caller: a live, initialised object of this allocator, freed once with
    // the layout it was allocated with.
    unsafe {
        let first = object.as_ref()[0];
        allocator.deallocate(object.cast(), Layout::new::<Object>());
        first
    }
}

fn alloc_pair(allocator: &impl Allocator, ops: usize) -> Histogram<u64> {
    let mut h = histogram();
    for i in 0..ops {
        time(&mut h, || {
            let object = black_box(new_object(allocator, i as u64));
            // SAFETY: allocated just above, freed once.
            black_box(unsafe { free_object(allocator, object) });
        });
    }
    h
}

fn alloc_churn(allocator: &impl Allocator, ops: usize, live_count: usize) -> Histogram<u64> {
    let mut live: Vec<NonNull<Object>> = (0..live_count)
        .map(|i| new_object(allocator, i as u64))
        .collect();
    let mut rng = Xorshift64::new(VICTIM_SEED);
    let mut h = histogram();
    for i in 0..ops {
        let victim = rng.below(live_count);
        time(&mut h, || {
            // SAFETY: `live` holds live objects of this allocator; the victim is replaced
            // right after it is freed, so each is freed once.
            black_box(unsafe { free_object(allocator, live[victim]) });
            live[victim] = black_box(new_object(allocator, i as u64));
        });
    }
    for object in live {
        // SAFETY: the objects still live, each freed once.
        unsafe { free_object(allocator, object) };
    }
    h
}

fn timer_overhead(ops: usize) -> Histogram<u64> {
    let mut h = histogram();
    for _ in 0..ops {
        time(&mut h, || {});
    }
    h
}

fn header() {
    println!(
        "| allocator | workload | P50 | P99 | P99.9 | max | P50 ns | P50 minus timer | P99/P50 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
}

fn row(name: &str, workload: &str, h: &Histogram<u64>, per_ns: f64, timer_p50: u64) -> f64 {
    let p50 = h.value_at_quantile(0.50);
    let p99 = h.value_at_quantile(0.99);
    let ratio = p99 as f64 / p50 as f64;
    println!(
        "| {name} | {workload} | {p50} | {p99} | {} | {} | {:.1} | {} | {ratio:.2} |",
        h.value_at_quantile(0.999),
        h.max(),
        p50 as f64 / per_ns,
        p50.saturating_sub(timer_p50),
    );
    ratio
}

fn workload_name(workload: Option<usize>) -> String {
    match workload {
        None => "pair".into(),
        Some(live_count) => format!("churn {live_count} live"),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let ops: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut live_counts: Vec<usize> = args
        .filter_map(|s| s.parse().ok())
        .map(|n: usize| n.clamp(1, LIVE_MAX))
        .collect();
    if live_counts.is_empty() {
        live_counts = LIVE_DEFAULT.to_vec();
    }
    let slots = *live_counts.iter().max().unwrap();

    let mut layout = RegionLayout::new();
    let objects = layout.pool::<Object>("objects", slots);
    let region = Region::new(layout, MmapPages::new(), Prefault::Populate).unwrap();
    let mut contestants = Contestants {
        pool: region.pool(objects).unwrap(),
        system: FromGlobal(System),
        slab: Slab::new(MmapPages::new()),
        heapkit: HeapKit::new(),
    };
    let per_ns = ticks_per_ns();
    println!(
        "{ops} ops per row; TSC {per_ns:.2} cycles/ns; object {} B; latencies in TSC cycles\n",
        size_of::<Object>()
    );
    // Warm up caches, the allocators' first chunks and the CPU clock before recording.
    for index in 0..ALLOCATORS.len() {
        black_box(contestants.run(index, ops / 10, None));
    }
    let timer = timer_overhead(ops);
    let timer_p50 = timer.value_at_quantile(0.5);
    header();
    row("timer (empty)", "-", &timer, per_ns, timer_p50);
    let mut pool_ratios = Vec::new();
    let workloads = core::iter::once(None).chain(live_counts.iter().map(|&n| Some(n)));
    for workload in workloads {
        let name = workload_name(workload);
        for (index, allocator) in ALLOCATORS.iter().enumerate() {
            let h = contestants.run(index, ops, workload);
            let ratio = row(allocator, &name, &h, per_ns, timer_p50);
            if index == 0 {
                pool_ratios.push((name.clone(), ratio));
            }
        }
    }
    println!();
    for (name, ratio) in pool_ratios {
        let verdict = if ratio <= POOL_P99_OVER_P50_GOAL {
            "met"
        } else {
            "NOT met"
        };
        println!("pool {name}: P99/P50 {ratio:.2} (goal <= {POOL_P99_OVER_P50_GOAL}: {verdict})");
    }
}
