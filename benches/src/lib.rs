#![doc = include_str!("../README.md")]

//! # Vocabulary
//!
//! - **allocator** ([`allocators`]): anything with a `GlobalAlloc` face: glibc (`system`),
//!   the `mimalloc` and `tikv-jemallocator` crates, and every heapkit allocator through
//!   `heapkit_core::GlobalAdapter`; plus the two arenas (bumpalo, heapkit-bump) and the
//!   fixed pool (heapkit-fixed), which have their own workloads.
//! - **workload**: one pattern of requests, generic over the allocator so each runs the very
//!   same code: [`workloads`] (one thread), [`threads`] (remote frees), [`arena`] (bulk
//!   allocation + reset, pool acquire/release), [`stress`] (stress.c's OS-facing modes, with
//!   the `getrusage` figures beside).
//! - **probe** (`src/bin/heapkit-probe.rs`): a process that runs one allocator and prints
//!   one JSON line: per-operation [`latency`] histograms, or [`rss`] after a mixed workload.
//! - **clock** ([`clock`]): what a latency sample is read from (the invariant TSC, else
//!   `CLOCK_MONOTONIC`), with its measured resolution (smallest step) and overhead.
//! - **replay** ([`replay`], `src/bin/heapkit-replay.rs`): a recorded allocation trace run
//!   through one allocator per process, with the trace's own figures ([`trace_advice`]: the
//!   seed article's advice, measured); `cargo xtask replay` runs them all, and counts each
//!   replay's instructions under callgrind ([`callgrind`]: client requests and the marker
//!   functions' names).
//! - **suite**: one bench target (`benches/*.rs`), its criterion group and `main` written by
//!   [`criterion_suite!`].
//! - **benchmark id**: `workload/allocator/parameter`, criterion's group / function / value;
//!   the xtask's report lines up rows with the same workload and parameter.
//!
//! ```text
//!   cargo xtask bench ──► cargo bench -p heapkit-benches ──► target/criterion/**/estimates.json
//!        │            ──► heapkit-probe latency NAME      ──► one JSON line per allocator
//!        │            ──► heapkit-probe rss NAME          ──► (each in its own process)
//!        │            ──► benches/c/pairs.c under LD_PRELOAD (time; callgrind instructions)
//!        ▼
//!   target/heapkit-report/{report.md, results.json, *.svg}
//! ```

pub mod allocators;
pub mod arena;
pub mod callgrind;
pub mod clock;
pub mod latency;
pub mod replay;
pub mod rng;
pub mod rss;
pub mod stress;
mod suite;
pub mod threads;
pub mod trace_advice;
pub mod workloads;

/// Criterion settings shared by the suites: short enough that the default `cargo xtask
/// bench` fits in about ten minutes on two cores. Command-line flags (`--quick`,
/// `--measurement-time`, ...) still override them.
pub mod settings {
    use std::time::Duration;

    /// Warm-up per benchmark.
    pub const WARM_UP: Duration = Duration::from_millis(500);
    /// Measurement per benchmark.
    pub const MEASUREMENT: Duration = Duration::from_millis(1500);
    /// Samples per benchmark (criterion's minimum is 10).
    pub const SAMPLES: usize = 20;

    /// Bootstrap resamples for the confidence intervals (criterion's default of 100 000
    /// takes longer than a short measurement on a loaded machine).
    pub const RESAMPLES: usize = 10_000;

    /// A criterion with these settings, then the command line's.
    pub fn criterion() -> criterion::Criterion {
        criterion::Criterion::default()
            .warm_up_time(WARM_UP)
            .measurement_time(MEASUREMENT)
            .sample_size(SAMPLES)
            .nresamples(RESAMPLES)
            .configure_from_args()
    }
}
