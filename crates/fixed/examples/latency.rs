//! Latency distributions over 1e6 operations: P50 / P99 / P99.9 / max, from an HDR histogram.
//!
//! `cargo run --release -p heapkit-fixed --example latency [ops] [live objects in churn]`
//!
//! Two workloads, each for the pool and for System malloc:
//! - **pair**: acquire then release one object (the allocator's best case);
//! - **churn**: 4096 objects live (or the second argument); each op releases a pseudo-random live one and acquires a new
//!   one, so free lists are shuffled as in a real server.
//!
//! Each op is timed with `rdtsc` (x86-64) around it; the timer's own cost is measured the same
//! way (an empty interval) and printed, so it can be subtracted by the reader. Results are in
//! TSC cycles and in ns (the TSC rate is calibrated against `Instant`).

use core::alloc::Layout;
use hdrhistogram::Histogram;
use heapkit_fixed::{Pool, Prefault, Region, RegionLayout, SlotId};
use heapkit_pages::MmapPages;
use std::alloc::{GlobalAlloc, System};
use std::hint::black_box;
use std::time::Instant;

type Object = [u64; 8]; // 64 bytes: a small record
/// Objects live during churn, unless the second argument says otherwise.
const LIVE_DEFAULT: usize = 4096;

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

/// A xorshift generator: deterministic, allocation-free victim choice.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 1 << 40, 3).unwrap()
}

fn time(histogram: &mut Histogram<u64>, op: impl FnOnce()) {
    let start = ticks();
    op();
    let end = ticks();
    histogram.saturating_record(end.saturating_sub(start).max(1));
}

fn report(name: &str, h: &Histogram<u64>, per_ns: f64, timer_p50: u64) {
    let p50 = h.value_at_quantile(0.50);
    let net_p50 = p50.saturating_sub(timer_p50);
    let p99 = h.value_at_quantile(0.99);
    println!(
        "{name:<22} P50 {:>6} cyc ({:>6.1} ns)  P99 {:>6} ({:>6.1} ns)  P99.9 {:>7} ({:>7.1} ns)  max {:>9} ({:>9.1} ns)  P99/P50 {:.2}  (P50 minus timer: {} cyc)",
        p50,
        p50 as f64 / per_ns,
        p99,
        p99 as f64 / per_ns,
        h.value_at_quantile(0.999),
        h.value_at_quantile(0.999) as f64 / per_ns,
        h.max(),
        h.max() as f64 / per_ns,
        p99 as f64 / p50 as f64,
        net_p50
    );
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

fn system_pair(ops: usize) -> Histogram<u64> {
    let layout = Layout::new::<Object>();
    let mut h = histogram();
    for i in 0..ops {
        time(&mut h, || {
            // SAFETY: a non-zero layout, freed with it right away.
            unsafe {
                let ptr = System.alloc(layout).cast::<Object>();
                ptr.write([i as u64; 8]);
                System.dealloc(black_box(ptr).cast(), layout);
            }
        });
    }
    h
}

fn pool_churn(pool: &mut Pool<'_, Object>, ops: usize, live_count: usize) -> Histogram<u64> {
    let mut live: Vec<SlotId<Object>> = (0..live_count)
        .map(|i| pool.try_acquire([i as u64; 8]).unwrap())
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
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

fn system_churn(ops: usize, live_count: usize) -> Histogram<u64> {
    let layout = Layout::new::<Object>();
    let mut live: Vec<*mut u8> = (0..live_count)
        .map(|i| {
            // SAFETY: a non-zero layout; the block is initialised before it is read, and every
            // block is freed once, with its layout.
            unsafe {
                let ptr = System.alloc(layout);
                ptr.cast::<Object>().write([i as u64; 8]);
                ptr
            }
        })
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut h = histogram();
    for i in 0..ops {
        let victim = rng.below(live_count);
        time(&mut h, || {
            // SAFETY: `live[victim]` is a live block with `layout` (read, like the pool's
            // release reads its value, then freed); the new one is written within its 64 bytes.
            unsafe {
                black_box(live[victim].cast::<Object>().read()[0]);
                System.dealloc(live[victim], layout);
                let ptr = System.alloc(layout);
                ptr.cast::<Object>().write([i as u64; 8]);
                live[victim] = black_box(ptr);
            }
        });
    }
    for ptr in live {
        // SAFETY: live blocks with `layout`.
        unsafe { System.dealloc(ptr, layout) };
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

fn main() {
    let ops: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let live_count: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(LIVE_DEFAULT)
        .max(1);
    let mut layout = RegionLayout::new();
    let objects = layout.pool::<Object>("objects", live_count * 2);
    let region = Region::new(layout, MmapPages::new(), Prefault::Populate).unwrap();
    let mut pool = region.pool(objects).unwrap();
    let per_ns = ticks_per_ns();
    println!(
        "{ops} ops per row; TSC {per_ns:.2} cycles/ns; object {} B",
        size_of::<Object>()
    );
    // Warm up caches and the CPU clock before anything is recorded.
    black_box(pool_pair(&mut pool, ops / 10));
    black_box(system_pair(ops / 10));
    let timer = timer_overhead(ops);
    let timer_p50 = timer.value_at_quantile(0.5);
    report("timer (empty)", &timer, per_ns, timer_p50);
    report("pool pair", &pool_pair(&mut pool, ops), per_ns, timer_p50);
    report("system malloc pair", &system_pair(ops), per_ns, timer_p50);
    report(
        "pool churn",
        &pool_churn(&mut pool, ops, live_count),
        per_ns,
        timer_p50,
    );
    report(
        "system malloc churn",
        &system_churn(ops, live_count),
        per_ns,
        timer_p50,
    );
}
