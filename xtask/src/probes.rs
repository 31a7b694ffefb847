//! Step 3 of `cargo xtask bench`: the latency, RSS and stress probes, one process per
//! allocator and mode, so each allocator's resident memory, page faults and context switches
//! are its own.

use crate::bench::Options;
use indicatif::ProgressBar;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The probe modes, in report order.
pub const MODES: [&str; 3] = ["latency", "rss", "stress"];
/// The allocators the `stress` probe compares (heapkit-benches' `STRESS_ALLOCATORS`: stress.c's
/// OS-facing workloads in-process, beside the LD_PRELOAD runs of step 5).
pub const STRESS_ALLOCATORS: [&str; 4] = ["system", "mimalloc", "jemalloc", "heapkit"];
/// Allocators without an RSS probe, and why (shown in the report).
pub const NO_RSS: [(&str, &str); 1] = [(
    "heapkit-fixed",
    "a pool holds one size, so the mixed workload does not apply; its memory is fixed at start-up",
)];

/// One probe run: `heapkit-probe MODE ALLOCATOR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The probe binary.
    pub probe: PathBuf,
    /// `latency` or `rss`.
    pub mode: String,
    /// The allocator's report name.
    pub allocator: String,
}

/// The jobs the filter lets through, from the probe's own list of allocators.
pub fn jobs(probe: &Path, options: &Options) -> Result<Vec<Job>, String> {
    let output = Command::new(probe)
        .arg("list")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", probe.display()))?;
    if !output.status.success() {
        return Err(format!("{} list failed", probe.display()));
    }
    let names = String::from_utf8_lossy(&output.stdout);
    let mut jobs = Vec::new();
    for mode in MODES {
        for name in names.lines().filter(|n| !n.is_empty()) {
            let skipped = (mode == "rss" && NO_RSS.iter().any(|(n, _)| *n == name))
                || (mode == "stress" && !STRESS_ALLOCATORS.contains(&name));
            if !skipped && options.wants(&format!("{mode}/{name}")) {
                jobs.push(Job {
                    probe: probe.to_path_buf(),
                    mode: mode.to_string(),
                    allocator: name.to_string(),
                });
            }
        }
    }
    Ok(jobs)
}

/// Runs the jobs; a failing probe becomes a note in the report, not a failed run.
pub fn run(jobs: &[Job], options: &Options, bar: &ProgressBar) -> Value {
    let mut latency = Vec::new();
    let mut rss = Vec::new();
    let mut stress = Vec::new();
    let mut notes = Vec::new();
    for job in jobs {
        crate::bench::step(bar, format!("probe {} {}", job.mode, job.allocator));
        let mut cmd = Command::new(&job.probe);
        cmd.args([&job.mode, &job.allocator]);
        if options.quick {
            cmd.arg("--quick");
        }
        match cmd.output() {
            Ok(out) if out.status.success() => match serde_json::from_slice::<Value>(&out.stdout) {
                Ok(value) if job.mode == "latency" => latency.push(value),
                Ok(value) if job.mode == "stress" => stress.push(value),
                Ok(value) => rss.push(value),
                Err(e) => notes.push(format!(
                    "{} {}: unreadable output: {e}",
                    job.mode, job.allocator
                )),
            },
            Ok(out) => notes.push(format!(
                "{} {} failed ({}): {}",
                job.mode,
                job.allocator,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => notes.push(format!("{} {}: cannot run: {e}", job.mode, job.allocator)),
        }
        bar.inc(1);
    }
    for (name, why) in NO_RSS {
        notes.push(format!("rss {name}: not measured: {why}"));
    }
    json!({ "latency": latency, "rss": rss, "stress": stress, "notes": notes })
}
