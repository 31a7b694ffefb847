//! Per-operation latency: allocations and frees timed in samples of `batch` operations each
//! (one, where the clock resolves a single operation) into [`hdrhistogram`]s of raw clock
//! ticks, summarised per operation as P50 / P99 / P99.9 / max, mean and a CDF.
//!
//! # How a figure is made, and why it is honest
//!
//! A sample is the ticks between two [`Clock::now`] reads around `batch` operations, so it
//! carries the clock's own cost once: the median of back-to-back reads, taken during the run
//! (one empty section per round, [`Latencies::empty`]), so under the samples' own conditions.
//! The histograms keep the samples as read, never adjusted or
//! clamped. Only the summary subtracts the overhead, from each quantile (a shift of the whole
//! distribution: `quantile(sample - overhead) = quantile(sample) - overhead`), and divides by
//! the operations per sample. What results can be no finer than the clock's step divided by
//! the operations per sample (the per-operation resolution), so every published figure is
//! rounded to [`precision_ns`] of that resolution, and one below the resolution, which might
//! be anything from 0 up to it (even negative before rounding, when an operation is quicker
//! than the overhead's own jitter), is published as 0, meaning only "below the resolution":
//! a report prints it as `< precision`. No figure is floored to a made-up 1 ns.

use crate::arena::{PoolObject, POOL_OBJECTS};
use crate::clock::Clock;
use crate::rng::Rng;
use crate::workloads::must_alloc;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::ptr::NonNull;

/// Blocks live at once while latencies are sampled.
pub const LIVE_BLOCKS: usize = 1000;
/// Operations per sample on `CLOCK_MONOTONIC`, whose step (up to ~10 ns on a virtual
/// machine) is as long as one fast operation: 32 operations bring the per-operation
/// resolution under 0.5 ns. Also the batch of the second, batched pass beside single
/// operations timed on the TSC ([`Latencies::with_batched`]).
pub const BATCH: usize = 32;
/// The largest sample kept, in ticks (~8 minutes at 2.3 GHz); anything slower is clamped.
const SAMPLE_MAX_TICKS: u64 = 1 << 40;
/// Points of the CDF kept for plotting (the histogram's quantile iterator is cut to these).
const CDF_POINTS_MAX: usize = 200;

/// The operations per sample this clock needs: one on the TSC, [`BATCH`] otherwise.
pub fn default_batch(clock: &Clock) -> usize {
    match clock.source {
        crate::clock::Source::Tsc { .. } => 1,
        crate::clock::Source::Monotonic => BATCH,
    }
}

/// The step figures are rounded to for a resolution: the smallest 1, 2 or 5 × 10^k
/// nanoseconds not below it (0.87 ns → 1 ns, 0.027 ns → 0.05 ns, 10.3 ns → 20 ns).
pub fn precision_ns(resolution_ns: f64) -> f64 {
    if !(resolution_ns.is_finite() && resolution_ns > 0.0) {
        return 1.0;
    }
    let decade = 10f64.powf(resolution_ns.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        // The tolerance keeps an exact 0.1 at 0.1 despite the logarithm's rounding.
        .find(|&step| step >= resolution_ns * (1.0 - 1e-9))
        .unwrap_or(10.0 * decade)
}

/// Significant digits a histogram keeps of a sample (hdrhistogram's precision): a figure is
/// no finer than these either (a reset of 32 888 ticks shared by 1000 objects is 14.3 ns per
/// object, not 14.296).
pub const SIGNIFICANT_DIGITS: i32 = 3;

/// A figure as published: 0 ("below the resolution") when under `resolution_ns`, otherwise
/// rounded to the nearest multiple of [`precision_ns`], or of the last of its
/// [`SIGNIFICANT_DIGITS`] when that is coarser.
pub fn publish(value_ns: f64, resolution_ns: f64) -> f64 {
    if value_ns.is_nan() || value_ns < resolution_ns || value_ns <= 0.0 {
        return 0.0;
    }
    let significant = 10f64.powi(value_ns.log10().floor() as i32 + 1 - SIGNIFICANT_DIGITS);
    let step = precision_ns(resolution_ns).max(significant);
    // The second rounding drops the binary fraction's tail (5.250000000000001 → 5.25).
    ((value_ns / step).round() * step * 1e9).round() / 1e9
}

/// Converts a sample's ticks into nanoseconds per operation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerOp {
    /// The clock's overhead, in ticks, carried once by every sample.
    pub overhead_ticks: f64,
    /// The clock's rate.
    pub ticks_per_ns: f64,
    /// Operations timed by one sample.
    pub ops_per_sample: u64,
    /// The clock's step, in ticks.
    pub resolution_ticks: f64,
}

impl PerOp {
    /// Nanoseconds per operation for a sample of `sample_ticks`: may be below the resolution,
    /// even negative; see [`publish`].
    pub fn ns(&self, sample_ticks: f64) -> f64 {
        (sample_ticks - self.overhead_ticks) / self.ticks_per_ns / self.ops_per_sample as f64
    }

    /// The finest per-operation difference a sample can show.
    pub fn resolution_ns(&self) -> f64 {
        self.resolution_ticks / self.ticks_per_ns / self.ops_per_sample as f64
    }

    /// `sample_ticks` per operation, as published.
    pub fn published(&self, sample_ticks: f64) -> f64 {
        publish(self.ns(sample_ticks), self.resolution_ns())
    }
}

/// One histogram of samples, each timing `ops_per_sample` operations.
pub struct Series {
    /// Ticks per sample as read: the clock's overhead included, nothing subtracted.
    pub ticks: Histogram<u64>,
    /// Operations timed by one sample.
    pub ops_per_sample: u64,
}

impl Series {
    fn new(ops_per_sample: usize) -> Series {
        Series {
            ticks: Histogram::new_with_bounds(1, SAMPLE_MAX_TICKS, 3)
                .expect("valid histogram bounds"),
            ops_per_sample: ops_per_sample.max(1) as u64,
        }
    }

    /// Operations timed.
    pub fn ops(&self) -> u64 {
        self.ticks.len() * self.ops_per_sample
    }

    /// Records the section between two reads. A read earlier than its start (a TSC skewed
    /// between two CPUs) has no honest value and is left out.
    fn record(&mut self, started: u64, ended: u64) {
        if let Some(ticks) = ended.checked_sub(started) {
            self.ticks.saturating_record(ticks);
        }
    }

    fn per_op(&self, clock: &Clock) -> PerOp {
        PerOp {
            overhead_ticks: clock.overhead_ticks as f64,
            ticks_per_ns: clock.ticks_per_ns(),
            ops_per_sample: self.ops_per_sample,
            resolution_ticks: clock.resolution_ticks as f64,
        }
    }

    /// The summary in results.json (docs/results-schema.md, `summary`).
    fn summary(&self, clock: &Clock) -> Value {
        let per_op = self.per_op(clock);
        let quantile = |q: f64| per_op.published(self.ticks.value_at_quantile(q) as f64);
        let mut cdf: Vec<(f64, f64)> = self
            .ticks
            .iter_quantiles(4)
            .map(|step| {
                let ns = per_op.published(step.value_iterated_to() as f64);
                (ns, step.quantile_iterated_to())
            })
            .collect();
        if cdf.len() > CDF_POINTS_MAX {
            let stride = cdf.len().div_ceil(CDF_POINTS_MAX);
            let last = *cdf.last().expect("non-empty");
            cdf = cdf.into_iter().step_by(stride).collect();
            cdf.push(last);
        }
        let resolution_ns = per_op.resolution_ns();
        json!({
            "ops": self.ops(),
            "samples": self.ticks.len(),
            "ops_per_sample": self.ops_per_sample,
            "resolution_ns": resolution_ns,
            "precision_ns": precision_ns(resolution_ns),
            "mean_ns": per_op.published(self.ticks.mean()),
            "p50_ns": quantile(0.5),
            "p99_ns": quantile(0.99),
            "p999_ns": quantile(0.999),
            "max_ns": per_op.published(self.ticks.max() as f64),
            "cdf": cdf,
        })
    }
}

/// The two series one latency run fills, and the clock that timed them.
pub struct Latencies {
    /// Allocations.
    pub alloc: Series,
    /// Frees (for arenas: resets, each timing the objects it freed).
    pub free: Series,
    /// The clock that timed both (its overhead as measured at start-up).
    pub clock: Clock,
    /// Empty timed sections, one per loop round among the samples: the overhead under the
    /// run's own conditions. Measured once at start-up it ranged over 20-26 ns between probe
    /// processes on a busy 2-core VM (a sibling thread's load slows the fences), 5 ns of
    /// error on every figure; measured beside the samples it shares their conditions.
    pub empty: Histogram<u64>,
}

impl Latencies {
    /// Empty series of `alloc_batch` and `free_batch` operations per sample.
    pub fn new(clock: &Clock, alloc_batch: usize, free_batch: usize) -> Latencies {
        Latencies {
            alloc: Series::new(alloc_batch),
            free: Series::new(free_batch),
            clock: clock.clone(),
            empty: Series::new(1).ticks,
        }
    }

    /// Times an empty section (see [`Latencies::empty`]).
    fn record_empty(&mut self) {
        let started = self.clock.now();
        let ended = self.clock.now();
        if let Some(ticks) = ended.checked_sub(started) {
            self.empty.saturating_record(ticks);
        }
    }

    /// The clock with the overhead measured during the run (start-up's when none was).
    pub fn in_run_clock(&self) -> Clock {
        let mut clock = self.clock.clone();
        if !self.empty.is_empty() {
            clock.overhead_ticks = self.empty.value_at_quantile(0.5);
        }
        clock
    }

    /// The clock's figures in results.json (docs/results-schema.md, `clock`).
    fn clock_json(&self) -> Value {
        let mut json = clock_json(&self.in_run_clock());
        json["overhead_startup_ns"] = json!(self.clock.overhead_ns());
        json
    }

    fn summaries(&self) -> (Value, Value) {
        let clock = self.in_run_clock();
        (self.alloc.summary(&clock), self.free.summary(&clock))
    }

    /// The JSON object the probe prints (schema in docs/results-schema.md, `latency`).
    pub fn to_json(&self, allocator: &str, workload: &str) -> Value {
        json!({
            "allocator": allocator,
            "workload": workload,
            "clock": self.clock_json(),
            "alloc": self.summaries().0,
            "free": self.summaries().1,
            "batched": null,
        })
    }

    /// [`Latencies::to_json`] with a second run's summaries under `batched`. Single
    /// operations timed between fences show each call's whole latency, none of it hidden
    /// behind its neighbours'; the batched run lets calls overlap as they do in a loop
    /// (closer to criterion's time per operation). Both are real; the report shows both.
    pub fn with_batched(&self, allocator: &str, workload: &str, batched: &Latencies) -> Value {
        let mut json = self.to_json(allocator, workload);
        let (alloc, free) = batched.summaries();
        json["batched"] = json!({
            "alloc": alloc,
            "free": free,
            "overhead_ns": batched.in_run_clock().overhead_ns(),
        });
        json
    }
}

/// The clock's figures in results.json (docs/results-schema.md, `clock`).
pub fn clock_json(clock: &Clock) -> Value {
    let ticks_per_ns = match clock.source {
        crate::clock::Source::Tsc { ticks_per_ns } => Some(ticks_per_ns),
        crate::clock::Source::Monotonic => None,
    };
    json!({
        "source": clock.name(),
        "tsc_ghz": ticks_per_ns,
        "resolution_ns": clock.resolution_ns(),
        "overhead_ns": clock.overhead_ns(),
        "fallback": clock.fallback,
    })
}

/// Moves `count` distinct entries, chosen at random, to the end of `items` (the last steps
/// of a Fisher-Yates shuffle) and returns where they start.
fn choose_tail<T>(items: &mut [T], count: usize, rng: &mut Rng) -> usize {
    let first = items.len() - count;
    for end in (first..items.len()).rev() {
        let pick = rng.below(end + 1);
        items.swap(pick, end);
    }
    first
}

/// A general-purpose allocator: [`LIVE_BLOCKS`] blocks of 16 B..=1 KiB live; about `steps`
/// times (rounded up to whole batches), a random block is freed and a new one allocated, each
/// sample timing `batch` distinct frees, then `batch` allocations.
pub fn global<G: GlobalAlloc>(alloc: &G, steps: usize, clock: &Clock, batch: usize) -> Latencies {
    let batch = batch.clamp(1, LIVE_BLOCKS);
    let mut rng = Rng::new(0x1A7E);
    let mut live: Vec<(*mut u8, Layout)> = (0..LIVE_BLOCKS)
        .map(|_| {
            let layout = rng.layout(16, 1024);
            // SAFETY: non-zero layout.
            (unsafe { must_alloc(alloc, layout) }, layout)
        })
        .collect();
    let mut layouts = vec![Layout::new::<u64>(); batch];
    let mut latencies = Latencies::new(clock, batch, batch);
    for _ in 0..steps.div_ceil(batch) {
        let first = choose_tail(&mut live, batch, &mut rng);
        layouts.fill_with(|| rng.layout(16, 1024));
        latencies.record_empty();
        let chosen = &mut live[first..];
        let started = clock.now();
        for &(old, old_layout) in chosen.iter() {
            // SAFETY: `old` is live with `old_layout` and is replaced below.
            unsafe { alloc.dealloc(black_box(old), old_layout) };
        }
        latencies.free.record(started, clock.now());
        let started = clock.now();
        for (entry, &layout) in chosen.iter_mut().zip(&layouts) {
            // SAFETY: non-zero layout.
            *entry = (black_box(unsafe { must_alloc(alloc, layout) }), layout);
        }
        latencies.alloc.record(started, clock.now());
        for &(block, _) in chosen.iter() {
            // SAFETY: one byte inside each new block (touching it outside the timed section).
            unsafe { block.write(1) };
        }
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

/// An arena: about `steps` allocations of 16 B..=1 KiB (timed `batch` at a time), with a
/// reset after every [`LIVE_BLOCKS`] objects (rounded up to whole batches), each reset one
/// free sample of the objects it freed (the arena's "free").
pub fn arena(arena: &mut impl ResetArena, steps: usize, clock: &Clock, batch: usize) -> Latencies {
    let batch = batch.clamp(1, LIVE_BLOCKS);
    let per_reset = batch * LIVE_BLOCKS.div_ceil(batch);
    let mut rng = Rng::new(0x1A7E);
    let mut layouts = vec![Layout::new::<u64>(); batch];
    let mut blocks = vec![std::ptr::null_mut::<u8>(); batch];
    let mut latencies = Latencies::new(clock, batch, per_reset);
    let mut since_reset = 0;
    for _ in 0..steps.div_ceil(batch) {
        layouts.fill_with(|| rng.layout(16, 1024));
        latencies.record_empty();
        let started = clock.now();
        for (block, &layout) in blocks.iter_mut().zip(&layouts) {
            *block = black_box(arena.alloc_block(layout));
        }
        latencies.alloc.record(started, clock.now());
        for &block in &blocks {
            // SAFETY: each block holds at least 16 bytes.
            unsafe { block.write(1) };
        }
        since_reset += batch;
        if since_reset == per_reset {
            let started = clock.now();
            arena.reset_all();
            latencies.free.record(started, clock.now());
            since_reset = 0;
        }
    }
    latencies
}

/// heapkit-fixed: a pool of [`POOL_OBJECTS`] 64 B objects kept half full; about `steps`
/// times a random held slot is released and a new one acquired, each sample timing `batch`
/// distinct releases, then `batch` acquisitions.
pub fn fixed_pool(steps: usize, clock: &Clock, batch: usize) -> Latencies {
    let (region, id) = crate::arena::fixed_region();
    let mut pool = region.pool(id).expect("a fresh region lends its pool");
    let mut rng = Rng::new(0x1A7E);
    let mut held: Vec<NonNull<PoolObject>> = (0..POOL_OBJECTS / 2)
        .map(|i| {
            pool.try_acquire_ptr([i as u64; 8])
                .expect("the pool has room")
        })
        .collect();
    let batch = batch.clamp(1, held.len());
    // Results are stored during the timed sections and checked after them.
    let mut released = vec![false; batch];
    let mut acquired: Vec<Option<NonNull<PoolObject>>> = vec![None; batch];
    let mut latencies = Latencies::new(clock, batch, batch);
    for round in 0..steps.div_ceil(batch) {
        let first = choose_tail(&mut held, batch, &mut rng);
        latencies.record_empty();
        let started = clock.now();
        for (&slot, ok) in held[first..].iter().zip(&mut released) {
            *ok = black_box(pool.release_ptr(black_box(slot))).is_ok();
        }
        latencies.free.record(started, clock.now());
        assert!(released.iter().all(|&ok| ok), "a held slot releases");
        let value = [round as u64; 8];
        let started = clock.now();
        for slot in acquired.iter_mut() {
            *slot = black_box(pool.try_acquire_ptr(value).ok());
        }
        latencies.alloc.record(started, clock.now());
        for (slot, new) in held[first..].iter_mut().zip(&acquired) {
            *slot = new.expect("the pool has room");
        }
    }
    latencies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_runs_fill_both_series() {
        let clock = Clock::finest();
        let run = global(&crate::allocators::HEAPKIT, 2000, &clock, 1);
        assert_eq!(run.alloc.ops(), 2000);
        assert_eq!(run.free.ops(), 2000);
        let json = run.to_json("heapkit", "live-set");
        let p = |q: &str| json["alloc"][q].as_f64().unwrap();
        assert!(p("p99_ns") >= p("p50_ns"));
        assert!(json["clock"]["resolution_ns"].as_f64().unwrap() > 0.0);
        let batched = global(&crate::allocators::HEAPKIT, 2000, &Clock::monotonic(), 32);
        assert_eq!(batched.alloc.ops(), 2016);
        assert_eq!(run.empty.len(), 2000);
        let overhead_ns = json["clock"]["overhead_ns"].as_f64().unwrap();
        assert_eq!(overhead_ns, run.in_run_clock().overhead_ns());
        assert!(json["clock"]["overhead_startup_ns"].as_f64().unwrap() > 0.0);
        let both = run.with_batched("heapkit", "live-set", &batched);
        assert_eq!(both["free"]["ops_per_sample"], 1);
        assert_eq!(both["batched"]["free"]["ops_per_sample"], 32);
        assert_eq!(both["batched"]["alloc"]["ops"], 2016);
        let pool = fixed_pool(1000, &clock, 1);
        assert_eq!(pool.alloc.ops(), 1000);
        assert_eq!(fixed_pool(1000, &clock, 64).free.ops(), 1024);
        let run = arena(&mut bumpalo::Bump::new(), 3000, &clock, 1);
        assert_eq!(run.free.ops(), 3000);
        let run = arena(&mut heapkit_bump::Arena::new(), 3000, &clock, 32);
        assert_eq!((run.free.ops_per_sample, run.free.ops()), (1024, 2048));
    }

    #[test]
    fn precision_is_a_round_step_not_below_the_resolution() {
        assert_eq!(precision_ns(0.87), 1.0);
        assert_eq!(precision_ns(1.0), 1.0);
        assert_eq!(precision_ns(1.2), 2.0);
        assert_eq!(precision_ns(10.3), 20.0);
        assert_eq!(precision_ns(0.1), 0.1);
        assert!((precision_ns(0.027) - 0.05).abs() < 1e-12);
        assert!((precision_ns(6.0) - 10.0).abs() < 1e-12);
        assert_eq!(precision_ns(0.0), 1.0);
    }

    #[test]
    fn figures_below_the_resolution_are_published_as_zero() {
        // The old clamp showed these as 1 ns; they only say "below the resolution".
        assert_eq!(publish(0.5, 0.87), 0.0);
        assert_eq!(publish(-3.0, 0.87), 0.0);
        assert_eq!(publish(f64::NAN, 0.87), 0.0);
        assert_eq!(publish(5.3, 10.3), 0.0);
        // Above it: the nearest multiple of the precision, never finer.
        assert_eq!(publish(0.9, 0.87), 1.0);
        assert_eq!(publish(5.3, 0.87), 5.0);
        assert_eq!(publish(34.0, 10.3), 40.0);
        assert_eq!(publish(5.26, 0.027), 5.25);
        assert_eq!(publish(1234.4, 1.0), 1230.0);
        assert_eq!(publish(14.296, 0.00087), 14.3);
        assert_eq!(publish(0.5134, 0.00087), 0.513);
        assert_eq!(publish(8_063_757.0, 0.87), 8_060_000.0);
    }

    #[test]
    fn per_op_figures_subtract_the_overhead_once_per_sample() {
        // A 2.3 GHz TSC, 46 ticks of overhead, a step of 2 ticks.
        let single = PerOp {
            overhead_ticks: 46.0,
            ticks_per_ns: 2.3,
            ops_per_sample: 1,
            resolution_ticks: 2.0,
        };
        assert!((single.ns(46.0 + 23.0) - 10.0).abs() < 1e-9);
        assert!((single.resolution_ns() - 0.8696).abs() < 1e-4);
        assert_eq!(single.published(69.0), 10.0);
        // Quicker than the overhead's jitter: below the resolution, not a clamped 1 ns.
        assert!(single.ns(44.0) < 0.0);
        assert_eq!(single.published(44.0), 0.0);
        assert_eq!(single.published(47.0), 0.0);
        // 32 operations per sample on a 1 ns clock with 20 ns of overhead.
        let batch = PerOp {
            overhead_ticks: 20.0,
            ticks_per_ns: 1.0,
            ops_per_sample: 32,
            resolution_ticks: 10.0,
        };
        assert!((batch.ns(20.0 + 32.0 * 5.3) - 5.3).abs() < 1e-9);
        assert!((batch.resolution_ns() - 0.3125).abs() < 1e-12);
        assert_eq!(batch.published(20.0 + 32.0 * 5.3), 5.5);
    }

    #[test]
    fn chosen_entries_are_distinct() {
        let mut items: Vec<usize> = (0..100).collect();
        let mut rng = Rng::new(7);
        let first = choose_tail(&mut items, 40, &mut rng);
        assert_eq!(first, 60);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }
}
