//! Step 5 of `cargo xtask bench`: the OS-facing workloads of issue #24 (`benches/c/stress.c`)
//! under `LD_PRELOAD` with the same libraries as the C level: many threads on few cores, blocks
//! freed by other threads, blocks of many MiB. Each run reports its time or throughput and what
//! it asked of the kernel (peak RSS, minor faults, context switches, system time, from
//! `getrusage` in the child), every library side by side with heapkit's figure divided by each
//! peer's. A process that outlives its limit is ended by its own `alarm()`: a note, never a hang.

use crate::bench::Options;
use indicatif::ProgressBar;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One workload: a mode of stress.c with its thread count and sizes.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Its name in the report and in `--filter os/NAME/LIBRARY`.
    pub name: &'static str,
    /// stress.c's MODE.
    mode: &'static str,
    /// stress.c's THREADS (live buffers for `large`).
    threads: u32,
    /// stress.c's OPS: (quick, full).
    ops: (u64, u64),
    /// Runs per library, the libraries taking turns; the median run is reported: (quick, full).
    runs: (usize, usize),
    /// What one op is when the workload reports a throughput (`frees/s`); None: it reports time.
    pub per_second: Option<&'static str>,
}

/// The workloads in report order. Full sizes follow the issue where it gives them (2,000
/// replacements of 5-25 MiB buffers) and are chosen elsewhere so the slowest library takes
/// seconds, not minutes; quick sizes keep all of them, for all libraries, to a few seconds.
pub const WORKLOADS: [Workload; 5] = [
    Workload {
        name: "transfer-16",
        mode: "transfer",
        threads: 16,
        ops: (200_000, 8_000_000),
        runs: (1, 1),
        per_second: None,
    },
    Workload {
        name: "prodcons-2",
        mode: "prodcons",
        threads: 2,
        ops: (1_000_000, 20_000_000),
        runs: (1, 3),
        per_second: Some("frees/s"),
    },
    Workload {
        name: "prodcons-8",
        mode: "prodcons",
        threads: 8,
        ops: (1_000_000, 20_000_000),
        runs: (1, 3),
        per_second: Some("frees/s"),
    },
    Workload {
        name: "large-20",
        mode: "large",
        threads: 20,
        ops: (40, 2_000),
        runs: (1, 1),
        per_second: None,
    },
    Workload {
        name: "larson-16",
        mode: "larson",
        threads: 16,
        ops: (2_000_000, 40_000_000),
        runs: (1, 3),
        per_second: Some("ops/s"),
    },
];

/// The figures stress.c prints, in its order; all but `wall_ns` and `ops` are from getrusage.
const FIELDS: [&str; 8] = [
    "wall_ns",
    "ops",
    "peak_rss_bytes",
    "minor_faults",
    "voluntary_switches",
    "involuntary_switches",
    "user_ns",
    "system_ns",
];

/// What step 5 will run.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// (report name, preload path; None for glibc), in report order.
    pub libraries: Vec<(String, Option<PathBuf>)>,
    /// The compiled stress.c, when gcc worked.
    pub binary: Option<PathBuf>,
    /// (workload, indexes into `libraries` the filter wants for it).
    jobs: Vec<(Workload, Vec<usize>)>,
    /// Quick sizes, or full ones.
    quick: bool,
    /// Seconds after which a run ends itself.
    limit_s: u32,
    /// Why something is not measured.
    pub notes: Vec<String>,
}

impl Plan {
    /// Progress steps: one per (workload, library) measured.
    pub fn steps(&self) -> usize {
        if self.binary.is_none() {
            return 0;
        }
        self.jobs.iter().map(|(_, libraries)| libraries.len()).sum()
    }
}

/// The filter id of one workload under one library.
fn id(workload: &str, library: &str) -> String {
    format!("os/{workload}/{library}")
}

/// Finds the libraries the filter wants for any workload and compiles stress.c.
pub fn plan(workspace: &crate::Workspace, options: &Options) -> Plan {
    let mut notes = Vec::new();
    let wanted = |library: &str| {
        crate::clevel::affordable(options, library)
            && WORKLOADS
                .iter()
                .any(|w| options.wants(&id(w.name, library)))
    };
    let libraries = crate::clevel::libraries(workspace, wanted, &mut notes);
    let jobs = WORKLOADS
        .iter()
        .map(|w| {
            let wanted = (0..libraries.len())
                .filter(|&i| options.wants(&id(w.name, &libraries[i].0)))
                .collect::<Vec<_>>();
            (*w, wanted)
        })
        .filter(|(_, wanted)| !wanted.is_empty())
        .collect();
    let binary = crate::clevel::compile(workspace, "stress", &mut notes);
    Plan {
        libraries,
        binary,
        jobs,
        quick: options.quick,
        // Far above any library's time at these sizes (the slowest full run takes under a
        // minute even on a busy machine), low enough that a hang costs little.
        limit_s: if options.quick { 30 } else { 180 },
        notes,
    }
}

/// One run: the figures it printed, or why there are none.
fn run_once(
    binary: &Path,
    preload: &Option<PathBuf>,
    workload: &Workload,
    ops: u64,
    limit_s: u32,
) -> Result<Value, String> {
    let mut cmd = Command::new(binary);
    cmd.args([
        workload.mode.to_string(),
        workload.threads.to_string(),
        ops.to_string(),
        limit_s.to_string(),
    ]);
    if let Some(lib) = preload {
        cmd.env("LD_PRELOAD", lib);
    }
    let out = cmd.output().map_err(|e| format!("cannot run: {e}"))?;
    if !out.status.success() {
        let why = match (out.status.code(), unix_signal(&out.status)) {
            (_, Some(14)) => format!("ended by its {limit_s} s alarm"),
            (_, Some(signal)) => format!("killed by signal {signal}"),
            (code, None) => format!("exit status {code:?}"),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{why} {}", stderr.trim()).trim_end().to_string());
    }
    parse(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| "unreadable output".into())
}

#[cfg(unix)]
fn unix_signal(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn unix_signal(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// Reads stress.c's line of `key=value` figures; None unless every field is there.
pub fn parse(line: &str) -> Option<Value> {
    let pairs: Vec<(&str, f64)> = line
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(key, value)| Some((key, value.parse::<f64>().ok()?)))
        .collect();
    let mut figures = serde_json::Map::new();
    for field in FIELDS {
        let value = pairs.iter().find(|(key, _)| *key == field)?.1;
        figures.insert(field.into(), json!(value as u64));
    }
    Some(Value::Object(figures))
}

/// Runs the plan: one result per (workload, library) that succeeded at least once.
///
/// The libraries take turns within each round, so a burst of noise from the shared machine lands
/// on every library alike; the result is the run with the median wall time (its getrusage
/// figures with it, so they describe one run), with every run's wall time beside it.
pub fn run(plan: &Plan, bar: &ProgressBar) -> Value {
    let mut results = Vec::new();
    let mut notes = plan.notes.clone();
    let Some(binary) = &plan.binary else {
        return json!({ "results": results, "notes": notes });
    };
    for (workload, wanted) in &plan.jobs {
        let (ops, runs) = if plan.quick {
            (workload.ops.0, workload.runs.0)
        } else {
            (workload.ops.1, workload.runs.1)
        };
        let mut samples: Vec<Vec<Value>> = vec![Vec::new(); wanted.len()];
        for round in 0..runs {
            for (&library, library_samples) in wanted.iter().zip(samples.iter_mut()) {
                let (name, preload) = &plan.libraries[library];
                crate::bench::step(
                    bar,
                    format!(
                        "OS-facing: {} under {name} ({}/{runs})",
                        workload.name,
                        round + 1
                    ),
                );
                match run_once(binary, preload, workload, ops, plan.limit_s) {
                    Ok(figures) => library_samples.push(figures),
                    Err(why) => notes.push(format!("{}: {why}", id(workload.name, name))),
                }
            }
        }
        for (&library, library_samples) in wanted.iter().zip(samples) {
            let (name, preload) = &plan.libraries[library];
            if let Some(result) = summarise(workload, name, preload, library_samples) {
                results.push(result);
            }
            bar.inc(1);
        }
    }
    json!({ "results": results, "notes": notes })
}

/// The median run of one library on one workload, as a result entry.
fn summarise(
    workload: &Workload,
    library: &str,
    preload: &Option<PathBuf>,
    mut samples: Vec<Value>,
) -> Option<Value> {
    samples.sort_by_key(|s| s["wall_ns"].as_u64());
    let wall_samples: Vec<Value> = samples.iter().map(|s| s["wall_ns"].clone()).collect();
    let mut result = samples.get(samples.len().checked_sub(1)? / 2)?.clone();
    let ops = result["ops"].as_f64().unwrap_or(0.0);
    let wall_ns = result["wall_ns"].as_f64().unwrap_or(0.0);
    let fields = [
        ("library", json!(library)),
        (
            "preload",
            json!(preload.as_ref().map(|p| p.display().to_string())),
        ),
        ("workload", json!(workload.name)),
        ("mode", json!(workload.mode)),
        ("threads", json!(workload.threads)),
        (
            "ops_per_s",
            json!((wall_ns > 0.0).then(|| ops * 1e9 / wall_ns)),
        ),
        ("primary", json!(primary_key(workload.per_second.is_some()))),
        ("unit", json!(workload.per_second)),
        ("wall_ns_samples", json!(wall_samples)),
    ];
    for (key, value) in fields {
        result[key] = value;
    }
    Some(result)
}

fn primary_key(throughput: bool) -> &'static str {
    if throughput {
        "ops_per_s"
    } else {
        "wall_ns"
    }
}

/// The measures compared, in table order: (key in a result, label; None: the primary measure).
const MEASURES: [(Option<&str>, &str); 6] = [
    (None, ""),
    (Some("peak_rss_bytes"), "peak RSS"),
    (Some("minor_faults"), "minor faults"),
    (Some("voluntary_switches"), "voluntary ctx switches"),
    (Some("involuntary_switches"), "involuntary ctx switches"),
    (Some("system_ns"), "system CPU time"),
];

/// The keys `heapkit_ratio` holds, one per measure.
const RATIO_KEYS: [&str; 7] = [
    "wall_ns",
    "ops_per_s",
    "peak_rss_bytes",
    "minor_faults",
    "voluntary_switches",
    "involuntary_switches",
    "system_ns",
];

/// heapkit's figure divided by `other`'s, when both exist and the divisor is not zero.
fn ratio(heapkit: &Value, other: &Value, key: &str) -> Option<f64> {
    let divisor = other[key].as_f64().filter(|d| *d > 0.0)?;
    Some(heapkit[key].as_f64()? / divisor)
}

fn heapkit_of<'a>(results: &'a [Value], workload: &Value) -> Option<&'a Value> {
    results
        .iter()
        .find(|r| r["library"] == "heapkit" && r["workload"] == *workload)
}

/// The results with `heapkit_ratio` added to each: heapkit's figure ÷ this library's, per measure.
pub fn with_ratios(results: &[Value]) -> Vec<Value> {
    results
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let ratios: serde_json::Map<String, Value> = match heapkit_of(results, &r["workload"]) {
                Some(heapkit) => RATIO_KEYS
                    .iter()
                    .map(|key| (key.to_string(), json!(ratio(heapkit, &r, key))))
                    .collect(),
                None => serde_json::Map::new(),
            };
            r["heapkit_ratio"] = Value::Object(ratios);
            r
        })
        .collect()
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One figure as the table shows it.
fn figure(result: &Value, key: &str) -> String {
    let Some(n) = result[key].as_f64() else {
        return "–".into();
    };
    match key {
        // getrusage counts CPU time in scheduler ticks: a workload that spent under one tick in
        // the kernel shows none, which "0.0 ns" would overstate as a measurement.
        "system_ns" if n == 0.0 => "0".into(),
        "wall_ns" | "system_ns" => crate::report::human_time(n),
        "ops_per_s" => format!("{:.1} M", n / 1e6),
        "peak_rss_bytes" => crate::report::human_mib(n),
        _ => thousands(n as u64),
    }
}

/// The Markdown table: one line per (workload, measure), one column per library; in brackets
/// heapkit's figure ÷ that library's.
pub fn table(results: &[Value]) -> String {
    if results.is_empty() {
        return String::new();
    }
    let position = |name: &str| {
        crate::clevel::LIBRARIES
            .iter()
            .position(|l| *l == name)
            .unwrap_or(crate::clevel::LIBRARIES.len())
    };
    let mut libraries: Vec<&str> = results
        .iter()
        .filter_map(|r| r["library"].as_str())
        .collect();
    libraries.sort_by_key(|name| (position(name), *name));
    libraries.dedup();
    let mut out = String::from("| workload | measure |");
    for library in &libraries {
        let _ = write!(out, " {library} |");
    }
    let _ = writeln!(out, "\n|---|---|{}", "---:|".repeat(libraries.len()));
    for workload in WORKLOADS {
        let these: Vec<&Value> = results
            .iter()
            .filter(|r| r["workload"] == workload.name)
            .collect();
        if these.is_empty() {
            continue;
        }
        let heapkit = heapkit_of(results, &json!(workload.name));
        for (key, label) in MEASURES {
            let key = key.unwrap_or(primary_key(workload.per_second.is_some()));
            let label = match (label, workload.per_second) {
                ("", Some(unit)) => unit,
                ("", None) => "time",
                (label, _) => label,
            };
            let _ = write!(out, "| {} | {label} |", workload.name);
            for library in &libraries {
                let cell = match these.iter().find(|r| r["library"] == *library) {
                    None => "–".into(),
                    Some(r) => match heapkit.and_then(|h| ratio(h, r, key)) {
                        Some(x) if *library != "heapkit" => format!("{} ({x:.2}×)", figure(r, key)),
                        _ => figure(r, key),
                    },
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
    }
    out
}

/// The measures of a `heapkit-probe stress` line, in table order: (key, label).
const PROBE_MEASURES: [(&str, &str); 4] = [
    ("wall_ns", "time"),
    ("minor_faults", "minor faults"),
    ("voluntary_switches", "voluntary ctx switches"),
    ("involuntary_switches", "involuntary ctx switches"),
];

/// The Markdown table of the `stress` probe lines (`{allocator, workloads: [{workload, ...}]}`):
/// one line per (workload, measure), one column per allocator in the probe's order; in brackets
/// heapkit's figure ÷ that allocator's.
pub fn probe_table(lines: &[Value]) -> String {
    let allocators: Vec<&str> = crate::probes::STRESS_ALLOCATORS
        .iter()
        .copied()
        .filter(|name| lines.iter().any(|l| l["allocator"] == *name))
        .collect();
    if allocators.is_empty() {
        return String::new();
    }
    let entry = |allocator: &str, workload: &Value| -> Option<Value> {
        let line = lines.iter().find(|l| l["allocator"] == allocator)?;
        line["workloads"]
            .as_array()?
            .iter()
            .find(|w| w["workload"] == *workload)
            .cloned()
    };
    let mut workloads: Vec<Value> = Vec::new();
    for line in lines {
        for w in line["workloads"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            if !workloads.contains(&w["workload"]) {
                workloads.push(w["workload"].clone());
            }
        }
    }
    let mut out = String::from("| workload | measure |");
    for allocator in &allocators {
        let _ = write!(out, " {allocator} |");
    }
    let _ = writeln!(out, "\n|---|---|{}", "---:|".repeat(allocators.len()));
    for workload in &workloads {
        let heapkit = entry("heapkit", workload);
        for (key, label) in PROBE_MEASURES {
            let _ = write!(out, "| {} | {label} |", workload.as_str().unwrap_or("?"));
            for allocator in &allocators {
                let cell = match entry(allocator, workload) {
                    Some(result) => {
                        let shown = figure(&result, key);
                        match heapkit.as_ref().and_then(|h| ratio(h, &result, key)) {
                            Some(r) if *allocator != "heapkit" => format!("{shown} ({r:.2}×)"),
                            _ => shown,
                        }
                    }
                    None => "–".into(),
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "wall_ns=2000000000 ops=4000000 peak_rss_bytes=1048576 minor_faults=1234 \
                        voluntary_switches=5 involuntary_switches=10 user_ns=100 system_ns=300";

    #[test]
    fn the_probe_table_puts_allocators_side_by_side_with_heapkit_ratios() {
        let line = |allocator: &str, wall_ns: u64, faults: u64| {
            json!({"allocator": allocator, "mode": "stress", "workloads": [
                {"workload": "transfer/16", "ops": 10, "wall_ns": wall_ns, "minor_faults": faults,
                 "voluntary_switches": 1, "involuntary_switches": 2}]})
        };
        let table = probe_table(&[
            line("heapkit", 4_000_000, 300),
            line("mimalloc", 2_000_000, 100),
        ]);
        assert!(
            table.starts_with("| workload | measure | mimalloc | heapkit |"),
            "{table}"
        );
        assert!(
            table.contains("| transfer/16 | time | 2.00 ms (2.00×) | 4.00 ms |"),
            "{table}"
        );
        assert!(
            table.contains("| transfer/16 | minor faults | 100 (3.00×) | 300 |"),
            "{table}"
        );
        assert_eq!(probe_table(&[]), "");
    }

    #[test]
    fn stress_output_is_read_whole_or_not_at_all() {
        let figures = parse(LINE).unwrap();
        assert_eq!(figures["wall_ns"], 2_000_000_000u64);
        assert_eq!(figures["involuntary_switches"], 10);
        assert_eq!(parse("wall_ns=5 ops=1"), None);
    }

    #[test]
    fn the_median_run_is_kept_with_its_own_figures() {
        let mut runs: Vec<Value> = [3.0, 1.0, 2.0]
            .iter()
            .map(|s| {
                let mut v = parse(LINE).unwrap();
                v["wall_ns"] = json!((s * 1e9) as u64);
                v["minor_faults"] = json!(*s as u64);
                v
            })
            .collect();
        let larson = WORKLOADS[4];
        let result = summarise(&larson, "glibc", &None, runs.clone()).unwrap();
        assert_eq!(result["wall_ns"], 2_000_000_000u64);
        assert_eq!(result["minor_faults"], 2);
        assert_eq!(result["ops_per_s"], 2e6);
        assert_eq!(result["primary"], "ops_per_s");
        assert_eq!(result["wall_ns_samples"].as_array().unwrap().len(), 3);
        runs.clear();
        assert_eq!(summarise(&larson, "glibc", &None, runs), None);
    }

    #[test]
    fn the_table_divides_heapkit_by_each_peer() {
        let entry = |library: &str, wall_s: f64, faults: u64| {
            let mut v = parse(LINE).unwrap();
            v["wall_ns"] = json!((wall_s * 1e9) as u64);
            v["minor_faults"] = json!(faults);
            summarise(&WORKLOADS[0], library, &None, vec![v]).unwrap()
        };
        let results = vec![entry("mimalloc", 2.0, 1000), entry("heapkit", 6.0, 4000)];
        let table = table(&results);
        assert!(
            table.starts_with("| workload | measure | heapkit | mimalloc |"),
            "{table}"
        );
        assert!(
            table.contains("| transfer-16 | time | 6.00 s | 2.00 s (3.00×) |"),
            "{table}"
        );
        assert!(
            table.contains("| transfer-16 | minor faults | 4,000 | 1,000 (4.00×) |"),
            "{table}"
        );
        let ratios = with_ratios(&results);
        assert_eq!(ratios[0]["heapkit_ratio"]["wall_ns"], 3.0);
        assert_eq!(ratios[1]["heapkit_ratio"]["minor_faults"], 1.0);
        assert_eq!(super::table(&[]), "");
    }

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
