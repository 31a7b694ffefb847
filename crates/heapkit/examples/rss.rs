//! Peak RSS of one workload under one allocator, in a process of its own:
//! `rss <heapkit|mimalloc|jemalloc|system> <batch|producer_consumer|larson>` prints the
//! workload's `VmHWM` (peak resident set, KiB) from /proc/self/status. Run each pair in a fresh
//! process (`examples/rss.sh` does), so allocators never share a peak.

use std::alloc::{GlobalAlloc, System};

#[path = "../benches/support/workloads.rs"]
mod workloads;

static HEAPKIT: heapkit::HeapKit = heapkit::HeapKit::new();
static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
static SYSTEM: System = System;

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

fn run<A: GlobalAlloc + Sync>(a: &'static A, workload: &str) {
    match workload {
        "batch" => {
            let mut work = workloads::Batch::new("random");
            for _ in 0..2000 {
                work.run(a);
            }
        }
        "producer_consumer" => {
            for _ in 0..10 {
                workloads::producer_consumer_run(a, workloads::PC_BLOCKS);
            }
        }
        "larson" => {
            for _ in 0..20 {
                workloads::larson_run(a);
            }
        }
        _ => panic!("workload: batch | producer_consumer | larson"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (which, workload) = (args[1].as_str(), args[2].as_str());
    let before = peak_kib();
    match which {
        "heapkit" => run(&HEAPKIT, workload),
        "mimalloc" => run(&MIMALLOC, workload),
        "jemalloc" => run(&JEMALLOC, workload),
        "system" => run(&SYSTEM, workload),
        _ => panic!("allocator: heapkit | mimalloc | jemalloc | system"),
    }
    println!(
        "{which} {workload} peak_rss_kib {} (start {before})",
        peak_kib()
    );
}
