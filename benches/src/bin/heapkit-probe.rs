//! `heapkit-probe MODE ALLOCATOR [--quick] [--monotonic] [--batch=N]`: measures one allocator
//! in this process and prints one JSON line (schema in docs/results-schema.md).
//!
//! - `latency`: per-operation alloc and free times (P50 / P99 / P99.9 / max, CDF), timed with
//!   the invariant TSC one operation per sample, else with `CLOCK_MONOTONIC` in batches;
//!   `--monotonic` forces the latter and `--batch=N` sets the operations per sample.
//! - `rss`: peak and final resident memory after the mixed workload.
//! - `stress`: stress.c's OS-facing workloads (producer → 2 and 8 consumers, large-block
//!   replacement, ownership transfer): wall time, minor faults and context switches of each
//!   (`getrusage`), for the general-purpose allocators.
//! - `list`: the allocator names each mode accepts, one per line.

use heapkit_benches::allocators::{self, Visit};
use heapkit_benches::clock::Clock;
use heapkit_benches::{latency, rss, stress};
use serde_json::Value;
use std::alloc::GlobalAlloc;
use std::process::ExitCode;

/// Allocators with their own workloads (not `GlobalAlloc`).
const SPECIAL: [&str; 3] = ["bumpalo", "heapkit-bump", "heapkit-fixed"];

struct Probe {
    mode: String,
    quick: bool,
    clock: Clock,
    batch: usize,
    out: Option<Value>,
}

impl Probe {
    fn latency_steps(&self) -> usize {
        if self.quick {
            50_000
        } else {
            500_000
        }
    }

    fn rss_peak_bytes(&self) -> usize {
        if self.quick {
            16 << 20
        } else {
            64 << 20
        }
    }
}

impl Probe {
    /// One latency run at the chosen batch and, when that times single operations, a second
    /// at [`latency::BATCH`] per sample (reported under `batched`).
    fn latency(
        &self,
        name: &str,
        workload: &str,
        run: impl Fn(&Clock, usize) -> latency::Latencies,
    ) -> Value {
        let main = run(&self.clock, self.batch);
        if self.batch > 1 {
            return main.to_json(name, workload);
        }
        main.with_batched(name, workload, &run(&self.clock, latency::BATCH))
    }
}

impl Visit for Probe {
    fn visit<G: GlobalAlloc + Sync + 'static>(&mut self, name: &'static str, alloc: &'static G) {
        self.out = Some(match self.mode.as_str() {
            "latency" => self.latency(name, "live-set", |clock, batch| {
                latency::global(alloc, self.latency_steps(), clock, batch)
            }),
            "stress" => stress::to_json(name, &stress::measure_all(alloc, self.quick)),
            _ => rss::mixed(&mut rss::Global(alloc), self.rss_peak_bytes()).to_json(name),
        });
    }
}

fn special(probe: &Probe, name: &str) -> Option<Value> {
    let steps = probe.latency_steps();
    let peak = probe.rss_peak_bytes();
    Some(match (probe.mode.as_str(), name) {
        ("latency", "bumpalo") => probe.latency(name, "arena", |clock, batch| {
            latency::arena(&mut bumpalo::Bump::new(), steps, clock, batch)
        }),
        ("latency", "heapkit-bump") => probe.latency(name, "arena", |clock, batch| {
            latency::arena(&mut heapkit_bump::Arena::new(), steps, clock, batch)
        }),
        ("latency", "heapkit-fixed") => probe.latency(name, "pool", |clock, batch| {
            latency::fixed_pool(steps, clock, batch)
        }),
        ("rss", "bumpalo") => {
            rss::mixed(&mut rss::ArenaHeap(bumpalo::Bump::new()), peak).to_json(name)
        }
        ("rss", "heapkit-bump") => {
            rss::mixed(&mut rss::ArenaHeap(heapkit_bump::Arena::new()), peak).to_json(name)
        }
        _ => return None,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let monotonic = args.iter().any(|a| a == "--monotonic");
    let batch = args.iter().find_map(|a| a.strip_prefix("--batch="));
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    match positional.as_slice() {
        [mode] if mode.as_str() == "list" => {
            for name in allocators::NAMES.iter().chain(&SPECIAL) {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        [mode, name] if ["latency", "rss", "stress"].contains(&mode.as_str()) => {
            // The clock is measured only for latency: calibration takes ~20 ms.
            let clock = match (mode.as_str(), monotonic) {
                ("latency", false) => Clock::finest(),
                _ => Clock::monotonic(),
            };
            let batch = match batch.map(str::parse::<usize>) {
                None => latency::default_batch(&clock),
                Some(Ok(n)) if n > 0 => n,
                Some(_) => {
                    eprintln!("heapkit-probe: --batch=N needs a whole number above 0");
                    return ExitCode::from(2);
                }
            };
            let mut probe = Probe {
                mode: mode.to_string(),
                quick,
                clock,
                batch,
                out: None,
            };
            let out = if allocators::with_name(name, &mut probe) {
                probe.out.take()
            } else {
                special(&probe, name)
            };
            match out {
                Some(value) => {
                    println!("{value}");
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("heapkit-probe: no {mode} probe for allocator {name:?}");
                    ExitCode::from(2)
                }
            }
        }
        _ => {
            eprintln!(
                "usage: heapkit-probe latency|rss|stress ALLOCATOR [--quick] [--monotonic] [--batch=N] \
                 | heapkit-probe list"
            );
            ExitCode::from(2)
        }
    }
}
