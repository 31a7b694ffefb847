//! `heapkit-probe MODE ALLOCATOR [--quick]`: measures one allocator in this process and prints
//! one JSON line (schema in docs/results-schema.md).
//!
//! - `latency`: per-operation alloc and free times (P50 / P99 / P99.9 / max, CDF).
//! - `rss`: peak and final resident memory after the mixed workload.
//! - `list`: the allocator names each mode accepts, one per line.

use heapkit_benches::allocators::{self, Visit};
use heapkit_benches::{latency, rss};
use serde_json::Value;
use std::alloc::GlobalAlloc;
use std::process::ExitCode;

/// Allocators with their own workloads (not `GlobalAlloc`).
const SPECIAL: [&str; 3] = ["bumpalo", "heapkit-bump", "heapkit-fixed"];

struct Probe {
    mode: String,
    quick: bool,
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

impl Visit for Probe {
    fn visit<G: GlobalAlloc + Sync + 'static>(&mut self, name: &'static str, alloc: &'static G) {
        self.out = Some(match self.mode.as_str() {
            "latency" => latency::global(alloc, self.latency_steps()).to_json(name, "live-set"),
            _ => rss::mixed(&mut rss::Global(alloc), self.rss_peak_bytes()).to_json(name),
        });
    }
}

fn special(probe: &Probe, name: &str) -> Option<Value> {
    let steps = probe.latency_steps();
    let peak = probe.rss_peak_bytes();
    Some(match (probe.mode.as_str(), name) {
        ("latency", "bumpalo") => {
            latency::arena(&mut bumpalo::Bump::new(), steps).to_json(name, "arena")
        }
        ("latency", "heapkit-bump") => {
            latency::arena(&mut heapkit_bump::Arena::new(), steps).to_json(name, "arena")
        }
        ("latency", "heapkit-fixed") => latency::fixed_pool(steps).to_json(name, "pool"),
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
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    match positional.as_slice() {
        [mode] if mode.as_str() == "list" => {
            for name in allocators::NAMES.iter().chain(&SPECIAL) {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        [mode, name] if ["latency", "rss"].contains(&mode.as_str()) => {
            let mut probe = Probe {
                mode: mode.to_string(),
                quick,
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
            eprintln!("usage: heapkit-probe latency|rss ALLOCATOR [--quick] | heapkit-probe list");
            ExitCode::from(2)
        }
    }
}
