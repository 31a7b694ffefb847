//! Per-operation latency: every allocation and every free timed on its own into an
//! [`hdrhistogram`], summarised as P50 / P99 / P99.9 / max and a CDF.
//!
//! A clock read costs tens of nanoseconds, as much as a fast allocation: the median cost of
//! an empty timed section (`timer_overhead_ns`) is measured first and subtracted from every
//! sample, so what remains is the allocator's own time (a fast path may then read 0–5 ns).

use crate::arena::{PoolObject, POOL_OBJECTS};
use crate::rng::Rng;
use crate::workloads::must_alloc;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::time::Instant;

/// Blocks live at once while latencies are sampled.
pub const LIVE_BLOCKS: usize = 1000;
/// The largest sample kept (1 s); anything slower is clamped (and would be in `max_ns`).
const SAMPLE_MAX_NS: u64 = 1_000_000_000;
/// Points of the CDF kept for plotting (the histogram's quantile iterator is cut to these).
const CDF_POINTS_MAX: usize = 200;

/// The two histograms one latency run fills.
pub struct Latencies {
    /// Nanoseconds per allocation.
    pub alloc: Histogram<u64>,
    /// Nanoseconds per free (for arenas: the reset's time shared by the objects it freed).
    pub free: Histogram<u64>,
    timer_overhead_ns: u64,
}

impl Latencies {
    /// Empty histograms, with the timer's overhead measured now.
    pub fn new() -> Latencies {
        let histogram =
            || Histogram::new_with_bounds(1, SAMPLE_MAX_NS, 3).expect("valid histogram bounds");
        Latencies {
            alloc: histogram(),
            free: histogram(),
            timer_overhead_ns: timer_overhead_ns(),
        }
    }

    /// The measured cost of an empty timed section, subtracted from every sample.
    pub fn timer_overhead_ns(&self) -> u64 {
        self.timer_overhead_ns
    }

    fn sample(&self, started: Instant) -> u64 {
        let elapsed_ns = started.elapsed().as_nanos().min(u128::from(SAMPLE_MAX_NS)) as u64;
        elapsed_ns.saturating_sub(self.timer_overhead_ns).max(1)
    }

    fn record_alloc(&mut self, started: Instant) {
        let ns = self.sample(started);
        self.alloc.saturating_record(ns);
    }

    fn record_free(&mut self, started: Instant) {
        let ns = self.sample(started);
        self.free.saturating_record(ns);
    }

    /// The JSON object the probe prints (schema in docs/results-schema.md, `latency`).
    pub fn to_json(&self, allocator: &str, workload: &str) -> Value {
        json!({
            "allocator": allocator,
            "workload": workload,
            "timer_overhead_ns": self.timer_overhead_ns,
            "alloc": summary(&self.alloc),
            "free": summary(&self.free),
        })
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

/// The median time of an empty `Instant::now()` .. `elapsed()` section.
fn timer_overhead_ns() -> u64 {
    const ROUNDS: usize = 10_001;
    let mut samples: Vec<u64> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            black_box(());
            started.elapsed().as_nanos() as u64
        })
        .collect();
    samples.sort_unstable();
    samples[ROUNDS / 2]
}

fn summary(histogram: &Histogram<u64>) -> Value {
    let mut cdf: Vec<(u64, f64)> = histogram
        .iter_quantiles(4)
        .map(|step| (step.value_iterated_to(), step.quantile_iterated_to()))
        .collect();
    if cdf.len() > CDF_POINTS_MAX {
        let stride = cdf.len().div_ceil(CDF_POINTS_MAX);
        let last = *cdf.last().expect("non-empty");
        cdf = cdf.into_iter().step_by(stride).collect();
        cdf.push(last);
    }
    json!({
        "ops": histogram.len(),
        "mean_ns": histogram.mean(),
        "p50_ns": histogram.value_at_quantile(0.5),
        "p99_ns": histogram.value_at_quantile(0.99),
        "p999_ns": histogram.value_at_quantile(0.999),
        "max_ns": histogram.max(),
        "cdf": cdf,
    })
}

/// A general-purpose allocator: [`LIVE_BLOCKS`] blocks of 16 B..=1 KiB live; `steps` times,
/// a random one is freed (timed) and a new one allocated (timed).
pub fn global<G: GlobalAlloc>(alloc: &G, steps: usize) -> Latencies {
    let mut rng = Rng::new(0x1A7E);
    let mut live: Vec<(*mut u8, Layout)> = (0..LIVE_BLOCKS)
        .map(|_| {
            let layout = rng.layout(16, 1024);
            // SAFETY: non-zero layout.
            (unsafe { must_alloc(alloc, layout) }, layout)
        })
        .collect();
    let mut latencies = Latencies::new();
    for _ in 0..steps {
        let slot = rng.below(LIVE_BLOCKS);
        let layout = rng.layout(16, 1024);
        let (old, old_layout) = live[slot];
        let started = Instant::now();
        // SAFETY: `old` is live with `old_layout` and is replaced below.
        unsafe { alloc.dealloc(black_box(old), old_layout) };
        latencies.record_free(started);
        let started = Instant::now();
        // SAFETY: non-zero layout.
        let block = black_box(unsafe { must_alloc(alloc, layout) });
        latencies.record_alloc(started);
        // SAFETY: one byte inside the new block (touching it outside the timed section).
        unsafe { block.write(1) };
        live[slot] = (block, layout);
    }
    for (block, layout) in live {
        // SAFETY: each block is live with this layout and freed once.
        unsafe { alloc.dealloc(block, layout) };
    }
    latencies
}

/// The two arenas' common face, so one latency loop serves both.
pub trait ResetArena {
    /// Allocates `layout` (non-zero size) or stops the benchmark.
    fn alloc_block(&self, layout: Layout) -> *mut u8;
    /// Frees everything at once.
    fn reset_all(&mut self);
}

impl ResetArena for heapkit_bump::Arena {
    fn alloc_block(&self, layout: Layout) -> *mut u8 {
        self.try_alloc_layout(layout)
            .expect("the arena refused memory during a benchmark")
            .as_ptr()
    }
    fn reset_all(&mut self) {
        self.reset();
    }
}

impl ResetArena for bumpalo::Bump {
    fn alloc_block(&self, layout: Layout) -> *mut u8 {
        self.alloc_layout(layout).as_ptr()
    }
    fn reset_all(&mut self) {
        self.reset();
    }
}

/// An arena: `steps` allocations of 16 B..=1 KiB (timed), with a reset after every
/// [`LIVE_BLOCKS`] objects whose time is shared equally by the objects it freed (the arena's
/// "free").
pub fn arena(arena: &mut impl ResetArena, steps: usize) -> Latencies {
    let mut rng = Rng::new(0x1A7E);
    let mut latencies = Latencies::new();
    for step in 1..=steps {
        let layout = rng.layout(16, 1024);
        let started = Instant::now();
        let block = black_box(arena.alloc_block(layout));
        latencies.record_alloc(started);
        // SAFETY: the block holds at least 16 bytes.
        unsafe { block.write(1) };
        if step % LIVE_BLOCKS == 0 {
            let started = Instant::now();
            arena.reset_all();
            let per_object_ns = latencies.sample(started) / LIVE_BLOCKS as u64;
            latencies
                .free
                .saturating_record_n(per_object_ns.max(1), LIVE_BLOCKS as u64);
        }
    }
    latencies
}

/// heapkit-fixed: a pool of [`POOL_OBJECTS`] 64 B objects kept half full; `steps` times a
/// random held slot is released (timed) and a new one acquired (timed).
pub fn fixed_pool(steps: usize) -> Latencies {
    let (region, id) = crate::arena::fixed_region();
    let mut pool = region.pool(id).expect("a fresh region lends its pool");
    let mut rng = Rng::new(0x1A7E);
    let mut held: Vec<std::ptr::NonNull<PoolObject>> = (0..POOL_OBJECTS / 2)
        .map(|i| {
            pool.try_acquire_ptr([i as u64; 8])
                .expect("the pool has room")
        })
        .collect();
    let mut latencies = Latencies::new();
    for step in 0..steps {
        let slot = rng.below(held.len());
        let started = Instant::now();
        let value = pool.release_ptr(black_box(held[slot]));
        latencies.record_free(started);
        black_box(value.expect("a held slot releases"));
        let started = Instant::now();
        let acquired = pool.try_acquire_ptr([step as u64; 8]);
        latencies.record_alloc(started);
        held[slot] = black_box(acquired.expect("the pool has room"));
    }
    latencies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_runs_fill_both_histograms() {
        let run = global(&crate::allocators::HEAPKIT, 2000);
        assert_eq!(run.alloc.len(), 2000);
        assert_eq!(run.free.len(), 2000);
        let json = run.to_json("heapkit", "live-set");
        assert!(
            json["alloc"]["p99_ns"].as_u64().unwrap() >= json["alloc"]["p50_ns"].as_u64().unwrap()
        );
        let pool = fixed_pool(1000);
        assert_eq!(pool.alloc.len(), 1000);
        let run = arena(&mut bumpalo::Bump::new(), 3000);
        assert_eq!(run.free.len(), 3000);
        let run = arena(&mut heapkit_bump::Arena::new(), 3000);
        assert_eq!(run.free.len(), 3000);
    }
}
