//! The report: criterion's estimates, the probes' latencies and resident memory, and the
//! C-level results gathered into `report.md`, `results.json` (schema: docs/results-schema.md)
//! and SVG plots, with the seed's "Comparison at a Glance" table filled with measured numbers.
//!
//! Criterion writes `target/criterion/<group>/<function>/<value>/new/{benchmark,estimates}.json`.
//! Every benchmark id in heapkit follows `workload/allocator[/parameter]`, so rows that share a
//! workload and a parameter are the same work done by different allocators, and the report
//! gives each one's time as a ratio to the reference: the system allocator (glibc) when it
//! took part, otherwise the fastest.

use crate::bench::Options;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The version of results.json's layout; bump it when a field changes meaning or goes away.
pub const SCHEMA_VERSION: u64 = 3;

/// One measured benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The workload (criterion's group id).
    pub workload: String,
    /// The allocator (criterion's function id).
    pub allocator: String,
    /// The parameter, such as the block size (criterion's value string; empty if none).
    pub parameter: String,
    /// Mean time per iteration, in nanoseconds.
    pub mean_ns: f64,
    /// Median time per iteration, in nanoseconds.
    pub median_ns: f64,
    /// Operations per iteration (criterion's `Throughput::Elements`), when the suite said.
    pub ops_per_iter: Option<u64>,
    /// Mean time in the named baseline, when one was asked for and exists.
    pub baseline_mean_ns: Option<f64>,
}

impl Row {
    /// Mean nanoseconds per operation (per iteration when the suite gave no count).
    pub fn ns_per_op(&self) -> f64 {
        self.mean_ns / self.ops_per_iter.unwrap_or(1).max(1) as f64
    }
}

/// Names that mean "the system allocator", the reference for ratios.
const REFERENCE_NAMES: &[&str] = &["system", "System", "glibc"];

/// The allocators in report order: (id in results, name in the glance table, seed's claim).
/// The seed's table has four columns (glibc, jemalloc, arena, fixed); each heapkit allocator
/// is set beside the column whose design it shares.
pub const ALLOCATORS: [(&str, &str, &str); 9] = [
    (
        "system",
        "glibc malloc",
        "alloc ~50–200 ns · free ~50–200 ns · high (external) · dynamic",
    ),
    (
        "jemalloc",
        "jemalloc",
        "alloc ~5–50 ns · free ~5–50 ns · low · dynamic",
    ),
    (
        "mimalloc",
        "mimalloc",
        "(not in the seed's table; grouped with jemalloc in its text)",
    ),
    (
        "heapkit-bins",
        "heapkit-bins",
        "(glibc's design) ~50–200 ns · ~50–200 ns · high · dynamic",
    ),
    (
        "heapkit-slab",
        "heapkit-slab",
        "(jemalloc's design) ~5–50 ns · ~5–50 ns · low · dynamic",
    ),
    (
        "heapkit",
        "HeapKit (tcache+slab)",
        "(jemalloc's design) ~5–50 ns · ~5–50 ns · low · dynamic",
    ),
    (
        "heapkit-bump",
        "heapkit-bump",
        "arena: ~1–5 ns · 0 ns (batch) · none · arena size",
    ),
    (
        "bumpalo",
        "bumpalo",
        "arena: ~1–5 ns · 0 ns (batch) · none · arena size",
    ),
    (
        "heapkit-fixed",
        "heapkit-fixed",
        "fixed: 0 ns (no alloc) · 0 ns (no free) · none · fixed at startup",
    ),
];

fn order_of(allocator: &str) -> usize {
    ALLOCATORS
        .iter()
        .position(|(id, _, _)| *id == allocator)
        .unwrap_or(ALLOCATORS.len())
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn find_new_dirs(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") && path.join("benchmark.json").exists() {
            found.push(path);
        } else {
            find_new_dirs(&path, found);
        }
    }
}

/// Reads every benchmark criterion has results for under `criterion_dir`.
pub fn collect(criterion_dir: &Path, baseline: Option<&str>) -> Vec<Row> {
    let mut dirs = Vec::new();
    find_new_dirs(criterion_dir, &mut dirs);
    let mut rows: Vec<Row> = dirs
        .iter()
        .filter_map(|dir| {
            let bench = read_json(&dir.join("benchmark.json"))?;
            let estimates = read_json(&dir.join("estimates.json"))?;
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let baseline_mean_ns = baseline.and_then(|name| {
                let base = read_json(&dir.parent()?.join(name).join("estimates.json"))?;
                base["mean"]["point_estimate"].as_f64()
            });
            Some(Row {
                workload: text(&bench["group_id"]),
                allocator: text(&bench["function_id"]),
                parameter: text(&bench["value_str"]),
                mean_ns: estimates["mean"]["point_estimate"].as_f64()?,
                median_ns: estimates["median"]["point_estimate"].as_f64()?,
                ops_per_iter: bench["throughput"]["Elements"].as_u64(),
                baseline_mean_ns,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        let key = |r: &Row| {
            (
                r.workload.clone(),
                parameter_key(&r.parameter),
                order_of(&r.allocator),
                r.allocator.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    rows
}

/// Sorts numeric parameters (block sizes) by value, before any text.
fn parameter_key(parameter: &str) -> (u8, u64, String) {
    match parameter.parse::<u64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, parameter.to_string()),
    }
}

/// The reference time of each (workload, parameter): the system allocator's, else the fastest.
fn references(rows: &[Row]) -> BTreeMap<(String, String), (String, f64)> {
    let mut refs: BTreeMap<(String, String), (String, f64)> = BTreeMap::new();
    for row in rows {
        let key = (row.workload.clone(), row.parameter.clone());
        let is_system = REFERENCE_NAMES.contains(&row.allocator.as_str());
        let entry = refs
            .entry(key)
            .or_insert((row.allocator.clone(), row.mean_ns));
        let entry_is_system = REFERENCE_NAMES.contains(&entry.0.as_str());
        if (is_system && !entry_is_system)
            || (is_system == entry_is_system && row.mean_ns < entry.1)
        {
            *entry = (row.allocator.clone(), row.mean_ns);
        }
    }
    refs
}

/// Formats nanoseconds with a unit a reader takes in at a glance.
pub fn human_time(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.1} ns"),
        n if n < 1e6 => format!("{:.2} µs", n / 1e3),
        n if n < 1e9 => format!("{:.2} ms", n / 1e6),
        n => format!("{:.2} s", n / 1e9),
    }
}

/// Formats bytes in MiB.
pub fn human_mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// The Markdown table of all rows, with ratios to each workload's reference.
pub fn markdown(rows: &[Row], baseline: Option<&str>) -> String {
    let refs = references(rows);
    let mut out = String::new();
    let _ = write!(
        out,
        "| workload | parameter | allocator | mean | median | per op | ratio to reference |"
    );
    if let Some(name) = baseline {
        let _ = write!(out, " change vs `{name}` |");
    }
    out.push('\n');
    out.push_str("|---|---|---|---:|---:|---:|---:|");
    if baseline.is_some() {
        out.push_str("---:|");
    }
    out.push('\n');
    for row in rows {
        let (ref_name, ref_ns) = &refs[&(row.workload.clone(), row.parameter.clone())];
        let ratio = row.mean_ns / ref_ns;
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {} | {} | {ratio:.2}× {ref_name} |",
            row.workload,
            row.parameter,
            row.allocator,
            human_time(row.mean_ns),
            human_time(row.median_ns),
            human_time(row.ns_per_op()),
        );
        if baseline.is_some() {
            match row.baseline_mean_ns {
                Some(base) => {
                    let _ = write!(out, " {:+.1}% |", (row.mean_ns / base - 1.0) * 100.0);
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out
}

/// The allocators that appear in `rows`, in report order.
fn allocators_in(rows: &[Row]) -> Vec<String> {
    let mut names: Vec<String> = rows.iter().map(|r| r.allocator.clone()).collect();
    names.sort_by_key(|n| (order_of(n), n.clone()));
    names.dedup();
    names
}

/// One line per (workload, parameter), one column per allocator: time per operation and the
/// ratio to the reference. This is the summary printed to the terminal.
pub fn pivot(rows: &[Row]) -> String {
    let refs = references(rows);
    let names = allocators_in(rows);
    let mut out = String::from("| workload | parameter |");
    for name in &names {
        let _ = write!(out, " {name} |");
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---:|".repeat(names.len()));
    out.push('\n');
    let mut keys: Vec<(&String, &String)> =
        rows.iter().map(|r| (&r.workload, &r.parameter)).collect();
    keys.dedup();
    for (workload, parameter) in keys {
        let (_, ref_ns) = &refs[&(workload.clone(), parameter.clone())];
        let _ = write!(out, "| {workload} | {parameter} |");
        for name in &names {
            let cell = rows
                .iter()
                .find(|r| {
                    &r.workload == workload && &r.parameter == parameter && &r.allocator == name
                })
                .map(|r| format!("{} ({:.2}×)", human_time(r.ns_per_op()), r.mean_ns / ref_ns))
                .unwrap_or_else(|| "–".into());
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out
}

/// The probes' and the C level's results, read from the report folder (empty when absent).
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// `probes.json`: `{latency: [...], rss: [...], stress: [...], notes: [...]}`.
    pub probes: Value,
    /// `c_level.json`: `{results: [...], notes: [...]}`.
    pub c_level: Value,
    /// `os_level.json` (the OS-facing workloads): `{results: [...], notes: [...]}`.
    pub os_level: Value,
}

impl Extras {
    /// Reads `probes.json` and `c_level.json` from `dir`.
    pub fn load(dir: &Path) -> Extras {
        Extras {
            probes: read_json(&dir.join("probes.json")).unwrap_or(Value::Null),
            c_level: read_json(&dir.join("c_level.json")).unwrap_or(Value::Null),
            os_level: read_json(&dir.join("os_level.json")).unwrap_or(Value::Null),
        }
    }

    fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
        value[key].as_array().map(Vec::as_slice).unwrap_or(&[])
    }

    fn latency(&self, allocator: &str) -> Option<&Value> {
        Self::list(&self.probes, "latency")
            .iter()
            .find(|v| v["allocator"] == allocator)
    }

    fn rss(&self, allocator: &str) -> Option<&Value> {
        Self::list(&self.probes, "rss")
            .iter()
            .find(|v| v["allocator"] == allocator)
    }

    fn notes(&self) -> Vec<String> {
        Self::list(&self.probes, "notes")
            .iter()
            .chain(Self::list(&self.c_level, "notes"))
            .chain(Self::list(&self.os_level, "notes"))
            .filter_map(|n| n.as_str().map(String::from))
            .collect()
    }
}

/// Decimals that print multiples of `precision_ns` exactly, and nothing finer.
fn decimals_of(precision_ns: f64) -> usize {
    if !(precision_ns.is_finite() && precision_ns > 0.0) {
        return 0;
    }
    // The tolerance keeps 0.1's logarithm (-0.9999999999999998) at one decimal.
    (-precision_ns.log10() - 1e-9).ceil().max(0.0) as usize
}

/// Decimals that show three significant digits of `value` (a histogram keeps no more).
fn significant_decimals(value: f64) -> usize {
    if !(value.is_finite() && value > 0.0) {
        return 0;
    }
    (2.0 - value.log10().floor()).max(0.0) as usize
}

/// One latency figure of a probe's `summary`, never finer than its resolution: below the
/// resolution, `< precision`; otherwise in ns, µs, ms or s at the precision the probe rounded
/// it to, and at most three significant digits. Summaries written before schema 3 have no
/// resolution: their integers print as they are.
pub fn latency_ns_text(summary: &Value, key: &str) -> String {
    let Some(value) = summary[key].as_f64() else {
        return "–".into();
    };
    let (Some(resolution), Some(precision)) = (
        summary["resolution_ns"].as_f64(),
        summary["precision_ns"].as_f64(),
    ) else {
        return format!("{value} ns");
    };
    if value < resolution {
        let decimals = decimals_of(precision);
        return format!("< {precision:.decimals$} ns");
    }
    let (unit_ns, unit) = match value {
        v if v < 1e3 => (1.0, "ns"),
        v if v < 1e6 => (1e3, "µs"),
        v if v < 1e9 => (1e6, "ms"),
        _ => (1e9, "s"),
    };
    let scaled = value / unit_ns;
    let decimals = decimals_of(precision / unit_ns).min(significant_decimals(scaled));
    format!("{scaled:.decimals$} {unit}")
}

fn quantiles(summary: &Value) -> String {
    if summary["p50_ns"].is_null() || summary["p99_ns"].is_null() {
        return "–".into();
    }
    format!(
        "{} / {}",
        latency_ns_text(summary, "p50_ns"),
        latency_ns_text(summary, "p99_ns")
    )
}

/// The clocks the latency probes read, in one line: source, rate, resolution and overhead
/// (each probe measures its own; a range when they differ), and the operations per sample.
pub fn clock_line(extras: &Extras) -> Option<String> {
    let probes = Extras::list(&extras.probes, "latency");
    let clocks: Vec<&Value> = probes.iter().map(|p| &p["clock"]).collect();
    let span = |key: &str, decimals: usize| {
        let values: Vec<f64> = clocks.iter().filter_map(|c| c[key].as_f64()).collect();
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (low, high) = (format!("{low:.decimals$}"), format!("{high:.decimals$}"));
        if low == high {
            low
        } else {
            format!("{low}–{high}")
        }
    };
    let mut sources: Vec<String> = clocks
        .iter()
        .filter_map(|c| c["source"].as_str())
        .map(|source| match source {
            "tsc" => format!(
                "TSC (invariant; {} GHz against CLOCK_MONOTONIC)",
                span("tsc_ghz", 3)
            ),
            "monotonic" => "CLOCK_MONOTONIC".to_string(),
            other => other.to_string(),
        })
        .collect();
    sources.dedup();
    if sources.is_empty() {
        return None;
    }
    let mut batches: Vec<u64> = probes
        .iter()
        .filter_map(|p| p["alloc"]["ops_per_sample"].as_u64())
        .collect();
    batches.sort_unstable();
    batches.dedup();
    let batches: Vec<String> = batches.iter().map(u64::to_string).collect();
    let mut fallbacks: Vec<&str> = clocks
        .iter()
        .filter_map(|c| c["fallback"].as_str())
        .collect();
    fallbacks.dedup();
    let mut line = format!(
        "Clock: {}, resolution {} ns (smallest step between back-to-back reads), overhead {} ns \
         (median of back-to-back reads, subtracted once per sample); {} operation(s) per sample.",
        sources.join(", "),
        span("resolution_ns", 2),
        span("overhead_ns", 1),
        batches.join(" or "),
    );
    for fallback in fallbacks {
        let _ = write!(line, " Not the TSC: {fallback}.");
    }
    Some(line)
}

/// The seed's "Comparison at a Glance", one line per allocator, measured on this machine.
pub fn glance(extras: &Extras) -> String {
    let mut out = String::from(
        "| allocator | allocation P50 / P99 | free P50 / P99 | fragmentation | GC-free | max heap (peak RSS) | the seed claims (alloc · free · fragmentation · max heap) |\n\
         |---|---:|---:|---:|---|---:|---|\n",
    );
    for (id, display, claim) in ALLOCATORS {
        let latency = extras.latency(id);
        let rss = extras.rss(id);
        if latency.is_none() && rss.is_none() {
            continue;
        }
        let alloc = latency
            .map(|l| quantiles(&l["alloc"]))
            .unwrap_or_else(|| "–".into());
        let free = latency
            .map(|l| quantiles(&l["free"]))
            .unwrap_or_else(|| "–".into());
        let arena = id == "heapkit-bump" || id == "bumpalo";
        let fragmentation = match (rss.and_then(|r| r["fragmentation"].as_f64()), id) {
            (Some(f), _) if arena => format!("{:+.0}% (no single free)", f * 100.0),
            (Some(f), _) => format!("{:+.0}%", f * 100.0),
            (None, "heapkit-fixed") => "none (one size per pool)".into(),
            (None, _) => "–".into(),
        };
        let max_heap = match (rss, id) {
            (Some(r), _) => format!(
                "{} for {} live",
                human_mib(r["peak_rss_bytes"].as_f64().unwrap_or(0.0)),
                human_mib(r["peak_live_bytes"].as_f64().unwrap_or(0.0))
            ),
            (None, "heapkit-fixed") => "fixed at start-up".into(),
            (None, _) => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {display} | {alloc} | {free} | {fragmentation} | yes | {max_heap} | {claim} |"
        );
    }
    out
}

fn latency_table(extras: &Extras) -> String {
    let mut out = String::from(
        "| allocator | workload | op | P50 | P99 | P99.9 | max | mean | ops per sample | resolution | batched: ops per sample, P50 / mean |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut all: Vec<&Value> = Extras::list(&extras.probes, "latency").iter().collect();
    all.sort_by_key(|v| order_of(v["allocator"].as_str().unwrap_or_default()));
    for value in all {
        for op in ["alloc", "free"] {
            let s = &value[op];
            let ns = |key: &str| latency_ns_text(s, key);
            // Two significant digits: a reset's share per object is well under 0.01 ns.
            let resolution = s["resolution_ns"]
                .as_f64()
                .map(|r| format!("{r:.*} ns", significant_decimals(r).saturating_sub(1)))
                .unwrap_or_else(|| "–".into());
            let batched = &value["batched"][op];
            let batched = match batched["ops_per_sample"].as_u64() {
                Some(n) => format!(
                    "{n}: {} / {}",
                    latency_ns_text(batched, "p50_ns"),
                    latency_ns_text(batched, "mean_ns")
                ),
                None => "–".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {op} | {} | {} | {} | {} | {} | {} | {resolution} | {batched} |",
                value["allocator"].as_str().unwrap_or("?"),
                value["workload"].as_str().unwrap_or("?"),
                ns("p50_ns"),
                ns("p99_ns"),
                ns("p999_ns"),
                ns("max_ns"),
                ns("mean_ns"),
                s["ops_per_sample"].as_u64().unwrap_or(1),
            );
        }
    }
    out
}

fn rss_table(extras: &Extras) -> String {
    let mut out = String::from(
        "| allocator | peak live | peak RSS | peak overhead | final live | final RSS | fragmentation |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut all: Vec<&Value> = Extras::list(&extras.probes, "rss").iter().collect();
    all.sort_by_key(|v| order_of(v["allocator"].as_str().unwrap_or_default()));
    for r in all {
        let mib = |key: &str| human_mib(r[key].as_f64().unwrap_or(0.0));
        let pct = |key: &str| format!("{:+.0}%", r[key].as_f64().unwrap_or(0.0) * 100.0);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r["allocator"].as_str().unwrap_or("?"),
            mib("peak_live_bytes"),
            mib("peak_rss_bytes"),
            pct("peak_overhead"),
            mib("final_live_bytes"),
            mib("final_rss_bytes"),
            pct("fragmentation"),
        );
    }
    out
}

fn c_level_table(extras: &Extras) -> String {
    let mut out = String::from(
        "| library (LD_PRELOAD) | mode | block | ns per malloc+free: median (fastest) | instructions per malloc+free | ratio to glibc (time) | ratio to mimalloc (time) | ratio to heapkit (time) |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let results = Extras::list(&extras.c_level, "results");
    let mut sorted: Vec<&Value> = results.iter().collect();
    let position = |list: &[&str], v: &Value| {
        let name = v.as_str().unwrap_or_default();
        list.iter().position(|x| *x == name).unwrap_or(list.len())
    };
    let modes: Vec<&str> = crate::clevel::MODES.iter().map(|(m, _)| *m).collect();
    sorted.sort_by_key(|r| {
        (
            position(&crate::clevel::LIBRARIES, &r["library"]),
            position(&modes, &r["mode"]),
        )
    });
    let time_of = |library: &str, mode: &Value| c_level_time(results, library, mode);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    };
    let figure = |v: &Value| v.as_f64().map(|n| format!("{n:.1}"));
    for r in sorted {
        let ns = r["ns_per_op"].as_f64();
        let time = match (figure(&r["ns_per_op"]), figure(&r["ns_per_op_min"])) {
            (Some(median), Some(min)) => format!("{median} ({min})"),
            (Some(median), None) => median,
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} B | {time} | {} | {} | {} | {} |",
            r["library"].as_str().unwrap_or("?"),
            r["mode"].as_str().unwrap_or("?"),
            r["size_bytes"],
            figure(&r["instructions_per_op"]).unwrap_or_else(|| "–".into()),
            ratio(ns, time_of("glibc", &r["mode"])),
            ratio(ns, time_of("mimalloc", &r["mode"])),
            ratio(ns, time_of("heapkit", &r["mode"])),
        );
    }
    out
}

/// The median time per malloc+free pair of `library` on `mode` in the C-level results.
fn c_level_time(results: &[Value], library: &str, mode: &Value) -> Option<f64> {
    results
        .iter()
        .find(|r| r["library"] == library && r["mode"] == *mode)
        .and_then(|r| r["ns_per_op"].as_f64())
}

/// What the protection floor's table shows, said above it in the report.
const FLOOR_LEGEND: &str = "`heapkit-floor` is pairs.c built with `benches/c/floor.h` \
    (`gcc -DHEAPKIT_FLOOR`) and run under the plain library: the program itself reads every \
    byte of each block it gets, as the hardened build's zero check does, and zeroes the block \
    before freeing it, as its zero on free does, with nothing else of the hardened build (no \
    canary, quarantine, record or guard pages) and over fewer bytes (the request rounded up to \
    16, not the class's usable size). It is a lower bound of what those two protections cost \
    (issue #23): on a mode where the floor is above 1.5× the plain build, no hardened build \
    that zeroes on free and checks on hand-out can be within 1.5×. Medians of the interleaved \
    runs above; in brackets, the ratio to the plain build's.";

/// The protection floor beside the hardened build, one line per mode the floor ran: each one's
/// median time per malloc+free pair and its ratio to the plain build's. Empty without floor
/// results.
fn floor_table(results: &[Value]) -> String {
    use crate::clevel::{FLOOR, FLOOR_BASE};
    let mut lines = String::new();
    for (mode, size) in crate::clevel::MODES {
        let time_of = |library: &str| c_level_time(results, library, &json!(mode));
        let (Some(plain), Some(floor)) = (time_of(FLOOR_BASE), time_of(FLOOR)) else {
            continue;
        };
        let cell = |ns: Option<f64>| match ns {
            Some(ns) if plain > 0.0 => format!("{ns:.1} ({:.2}×)", ns / plain),
            Some(ns) => format!("{ns:.1}"),
            None => "–".into(),
        };
        let _ = writeln!(
            lines,
            "| {mode} | {size} B | {plain:.1} | {} | {} |",
            cell(Some(floor)),
            cell(time_of("heapkit-hardened")),
        );
    }
    if lines.is_empty() {
        return lines;
    }
    format!(
        "| mode | block | heapkit: ns per malloc+free | floor: ns (÷ heapkit) | hardened: ns (÷ heapkit) |\n\
         |---|---:|---:|---:|---:|\n{lines}"
    )
}

/// What the OS-facing table shows, said above it in the report.
const RUST_STRESS_LEGEND: &str = "`heapkit-probe stress NAME`, each allocator in its own process \
    (benches/src/stress.rs; the same workloads' times are criterion's `stress_*` rows): stress.c's \
    modes at a smaller scale, through `GlobalAlloc`. Time for the whole run; minor faults and \
    context switches counted by `getrusage` over it. In brackets: heapkit's figure ÷ that \
    allocator's.";

const OS_LEVEL_LEGEND: &str = "`benches/c/stress.c` (benches/README.md, \"OS-facing workloads\"), \
    one process per library and run, the libraries taking turns; the median run by wall time \
    is shown with its own getrusage figures (after every thread is joined; faults, switches and \
    system time counted over the workload only, peak RSS the process's high-water mark). In \
    brackets: heapkit's figure ÷ that library's (time, RSS, faults, switches: below 1 is \
    heapkit lower; frees/s and ops/s: above 1 is heapkit faster).";

/// Everything as `results.json` (schema in docs/results-schema.md).
pub fn json(rows: &[Row], extras: &Extras, options: &Options) -> Value {
    let refs = references(rows);
    let results: Vec<Value> = rows
        .iter()
        .map(|row| {
            let (ref_name, ref_ns) = &refs[&(row.workload.clone(), row.parameter.clone())];
            json!({
                "workload": row.workload,
                "parameter": row.parameter,
                "allocator": row.allocator,
                "mean_ns": row.mean_ns,
                "median_ns": row.median_ns,
                "ops_per_iter": row.ops_per_iter,
                "ns_per_op": row.ns_per_op(),
                "reference": ref_name,
                "ratio_to_reference": row.mean_ns / ref_ns,
                "baseline_mean_ns": row.baseline_mean_ns,
            })
        })
        .collect();
    let list = |v: &Value, key: &str| Value::Array(Extras::list(v, key).to_vec());
    json!({
        "schema_version": SCHEMA_VERSION,
        "source": "criterion",
        "quick": options.quick,
        "filter": options.filter,
        "baseline": options.baseline,
        "results": results,
        "latency": list(&extras.probes, "latency"),
        "rss": list(&extras.probes, "rss"),
        "stress": list(&extras.probes, "stress"),
        "c_level": list(&extras.c_level, "results"),
        "os_level": crate::stress::with_ratios(Extras::list(&extras.os_level, "results")),
        "notes": extras.notes(),
    })
}

/// Writes report.md, results.json and the plots under `target/heapkit-report/` from what the
/// last run left there (the replays' section from `replay/results.json`), and returns the
/// terminal summary.
pub fn write_from_target(options: &Options) -> Result<String, String> {
    let workspace = crate::Workspace::load()?;
    let rows = collect(
        &workspace.target.join("criterion"),
        options.baseline.as_deref(),
    );
    let dir = workspace.target.join("heapkit-report");
    let extras = Extras::load(&dir);
    // `cargo xtask report` describes the run that left the files, not its own flags.
    let mut options = options.clone();
    if let Some(run) = read_json(&dir.join("run.json")) {
        options.quick |= run["quick"].as_bool().unwrap_or(false);
        if options.filter.is_none() {
            options.filter = run["filter"].as_str().map(String::from);
        }
    }
    let summary = write(&dir, &rows, &extras, &options)?;
    let replays = crate::replay::render_saved(&dir)?;
    Ok(if replays.is_empty() {
        summary
    } else {
        format!("{summary}\n\n{replays}")
    })
}

/// Draws the plots; returns the files written (a plot that fails becomes a note).
fn plots(dir: &Path, rows: &[Row], extras: &Extras, notes: &mut Vec<String>) -> Vec<String> {
    let mut files = Vec::new();
    let mut keep = |name: String, result: Result<(), String>| match result {
        Ok(()) if dir.join(&name).exists() => files.push(name),
        Ok(()) => {}
        Err(e) => notes.push(e),
    };
    let mut workloads: Vec<&str> = rows.iter().map(|r| r.workload.as_str()).collect();
    workloads.dedup();
    for workload in workloads {
        let these: Vec<&Row> = rows.iter().filter(|r| r.workload == workload).collect();
        let mut parameters: Vec<String> = these.iter().map(|r| r.parameter.clone()).collect();
        parameters.dedup();
        let owned: Vec<Row> = these.iter().map(|r| (*r).clone()).collect();
        let series: Vec<crate::plots::Series> = allocators_in(&owned)
            .into_iter()
            .map(|name| {
                let values = parameters
                    .iter()
                    .map(|p| {
                        these
                            .iter()
                            .find(|r| &r.parameter == p && r.allocator == name)
                            .map(|r| r.ns_per_op())
                    })
                    .collect();
                (name, values)
            })
            .collect();
        let name = format!("bars-{workload}.svg");
        let result = crate::plots::bars(
            &dir.join(&name),
            &format!("{workload}: time per operation (lower is better)"),
            "ns per op",
            &parameters,
            &series,
        );
        keep(name, result);
    }
    for op in ["alloc", "free"] {
        let mut all: Vec<&Value> = Extras::list(&extras.probes, "latency").iter().collect();
        all.sort_by_key(|v| order_of(v["allocator"].as_str().unwrap_or_default()));
        let series: Vec<(String, Vec<(f64, f64)>)> = all
            .iter()
            .map(|v| {
                let points = v[op]["cdf"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
                    .collect();
                (v["allocator"].as_str().unwrap_or("?").to_string(), points)
            })
            .collect();
        let name = format!("latency-{op}-cdf.svg");
        let result = crate::plots::cdf(&dir.join(&name), &format!("{op} latency CDF"), &series);
        keep(name, result);
    }
    let mut rss: Vec<&Value> = Extras::list(&extras.probes, "rss").iter().collect();
    rss.sort_by_key(|v| order_of(v["allocator"].as_str().unwrap_or_default()));
    let categories: Vec<String> = rss
        .iter()
        .map(|r| r["allocator"].as_str().unwrap_or("?").to_string())
        .collect();
    let series: Vec<crate::plots::Series> = [
        ("peak RSS", "peak_rss_bytes"),
        ("peak live", "peak_live_bytes"),
        ("final RSS", "final_rss_bytes"),
        ("final live", "final_live_bytes"),
    ]
    .iter()
    .map(|(label, key)| {
        let values = rss
            .iter()
            .map(|r| r[*key].as_f64().map(|b| b / (1024.0 * 1024.0)))
            .collect();
        (label.to_string(), values)
    })
    .collect();
    let result = crate::plots::bars(
        &dir.join("rss.svg"),
        "resident memory after the mixed workload (MiB above the baseline)",
        "MiB",
        &categories,
        &series,
    );
    keep("rss.svg".into(), result);
    files
}

/// Writes the report for `rows` and `extras` into `dir`; returns the terminal summary.
pub fn write(
    dir: &Path,
    rows: &[Row],
    extras: &Extras,
    options: &Options,
) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut notes = extras.notes();
    let svgs = plots(dir, rows, extras, &mut notes);
    // The clock's figures stand under the glance table, in the report and on the terminal.
    let glance = match clock_line(extras) {
        Some(clock) => format!("{}\n{clock}\n", glance(extras)),
        None => glance(extras),
    };
    let pivot = pivot(rows);
    let mode = if options.quick {
        " in quick mode (fewer samples, shorter runs: expect ±10–20% noise)"
    } else {
        ""
    };
    let mut report = format!(
        "# heapkit benchmark report\n\nMeasured on this machine by `cargo xtask bench`{mode}.\n\n\
         ## Comparison at a glance\n\nThe seed's table, measured. Latency: per-operation times \
         (the clock's overhead subtracted; a figure under the clock's resolution shows as \
         `< precision`) with 1000 blocks of 16 B–1 KiB live (arenas: allocation, \
         and the reset's time shared by the objects it frees; heapkit-fixed: pool acquire and \
         release). Fragmentation: resident bytes per live byte minus one after the mixed \
         workload (grow, free to a quarter, refill to half with small blocks). Max heap: peak \
         resident bytes above the process's baseline. GC-free: by construction (no collector), \
         not measured.\n\n{glance}\n\
         ## Time per operation (criterion)\n\nEach cell: mean time per operation and, in \
         brackets, the ratio to glibc (`system`) on the same workload; lower is better.\n\n{pivot}\n"
    );
    let _ = write!(
        report,
        "## Latency distribution\n\nPer operation: each sample times `ops per sample` operations, \
         the clock's overhead subtracted once per sample; figures are rounded to the resolution \
         (benches/README.md, \"Latency\"). A single operation timed between fences shows its \
         whole latency; the batched pass lets consecutive calls overlap as in a loop, nearer \
         criterion's time per operation.\n\n{}\n## Resident memory\n\nEach allocator in its own process.\n\n{}\n\
         ## C level (LD_PRELOAD)\n\n`benches/c/pairs.c`; each mode timed several times, the \
         libraries taking turns, and the median reported with the fastest run in brackets (the \
         two-thread modes pin their threads to two CPUs); instructions counted \
         with callgrind (noise-free), the difference between runs of N and 2N operations.\n\n{}\n",
        latency_table(extras),
        rss_table(extras),
        c_level_table(extras)
    );
    let floor = floor_table(Extras::list(&extras.c_level, "results"));
    if !floor.is_empty() {
        let _ = write!(
            report,
            "### The protection floor\n\n{FLOOR_LEGEND}\n\n{floor}\n"
        );
    }
    let os_level = crate::stress::table(Extras::list(&extras.os_level, "results"));
    if !os_level.is_empty() {
        let _ = write!(
            report,
            "## OS-facing workloads (LD_PRELOAD)\n\n{OS_LEVEL_LEGEND}\n\n{os_level}\n"
        );
    }
    let rust_stress = crate::stress::probe_table(Extras::list(&extras.probes, "stress"));
    if !rust_stress.is_empty() {
        let _ = write!(
            report,
            "## OS-facing workloads, Rust allocators in-process\n\n{RUST_STRESS_LEGEND}\n\n{rust_stress}\n"
        );
    }
    if !svgs.is_empty() {
        report.push_str("## Plots\n\n");
        for svg in &svgs {
            let _ = writeln!(report, "![{svg}]({svg})");
        }
        report.push('\n');
    }
    if !notes.is_empty() {
        report.push_str("## Notes\n\n");
        for note in &notes {
            let _ = writeln!(report, "- {note}");
        }
        report.push('\n');
    }
    let _ = write!(
        report,
        "## Every benchmark\n\n{}",
        markdown(rows, options.baseline.as_deref())
    );
    let write_file = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("cannot write {name}: {e}"))
    };
    write_file("report.md", report)?;
    write_file(
        "results.json",
        serde_json::to_string_pretty(&json(rows, extras, options)).unwrap_or_default(),
    )?;
    let os_summary = if os_level.is_empty() {
        String::new()
    } else {
        format!(
            "OS-facing workloads (in brackets: heapkit's figure ÷ that library's):\n\n{os_level}\n"
        )
    };
    let floor_summary = if floor.is_empty() {
        String::new()
    } else {
        format!("C level: the protection floor beside the hardened build (report.md says what the floor is):\n\n{floor}\n")
    };
    Ok(format!(
        "\nComparison at a glance (measured here):\n\n{glance}\nTime per operation (ratio to glibc):\n\n{pivot}\n{floor_summary}{os_summary}report: {}",
        dir.join("report.md").display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(dir: &Path, group: &str, function: &str, value: &str, mean: f64) {
        let leaf = dir.join(group).join(function).join(value).join("new");
        std::fs::create_dir_all(&leaf).unwrap();
        let bench = json!({"group_id": group, "function_id": function, "value_str": value,
                           "throughput": {"Elements": 10}});
        let estimates =
            json!({"mean": {"point_estimate": mean}, "median": {"point_estimate": mean * 0.9}});
        std::fs::write(leaf.join("benchmark.json"), bench.to_string()).unwrap();
        std::fs::write(leaf.join("estimates.json"), estimates.to_string()).unwrap();
    }

    fn extras() -> Extras {
        // Per-operation figures as the probe publishes them: rounded to 1 ns, 0 when below
        // the 0.87 ns resolution.
        let summary = |p50: f64, ops_per_sample: u64| {
            json!({"ops": 100 * ops_per_sample, "samples": 100, "ops_per_sample": ops_per_sample,
                   "resolution_ns": 0.87 / ops_per_sample as f64, "precision_ns": if ops_per_sample == 1 { 1.0 } else { 0.05 },
                   "mean_ns": p50, "p50_ns": p50, "p99_ns": p50 * 4.0,
                   "p999_ns": p50 * 10.0, "max_ns": p50 * 1000.0, "cdf": [[p50, 0.5], [p50 * 100.0, 1.0]]})
        };
        let clock = |overhead_ns: f64| json!({"source": "tsc", "tsc_ghz": 2.3, "resolution_ns": 0.87, "overhead_ns": overhead_ns, "fallback": null});
        Extras {
            probes: json!({
                "latency": [
                    {"allocator": "system", "workload": "live-set", "clock": clock(20.0), "alloc": summary(20.0, 1), "free": summary(15.0, 1),
                     "batched": {"alloc": summary(9.45, 32), "free": summary(0.0, 32)}},
                    {"allocator": "heapkit", "workload": "live-set", "clock": clock(21.0), "alloc": summary(5.0, 1), "free": summary(4.0, 1), "batched": null},
                    {"allocator": "heapkit-fixed", "workload": "pool", "clock": clock(20.0), "alloc": summary(0.0, 1), "free": summary(2.0, 1), "batched": null},
                ],
                "rss": [
                    {"allocator": "system", "workload": "mixed", "baseline_bytes": 3 << 20, "peak_live_bytes": 16 << 20,
                     "peak_rss_bytes": 18 << 20, "final_live_bytes": 8 << 20, "final_rss_bytes": 12 << 20,
                     "fragmentation": 0.5, "peak_overhead": 0.125},
                ],
                "notes": ["rss heapkit-fixed: not measured"],
            }),
            c_level: json!({
                "results": [
                    {"library": "glibc", "preload": null, "mode": "pair", "size_bytes": 32, "ns_per_op": 20.0, "instructions_per_op": 139.0},
                    {"library": "jemalloc", "preload": "/usr/lib/libjemalloc.so.2", "mode": "pair", "size_bytes": 32, "ns_per_op": 10.0, "instructions_per_op": 80.0},
                ],
                "notes": ["tcmalloc: libtcmalloc-minimal4 is not installed; skipped"],
            }),
            ..Extras::default()
        }
    }

    #[test]
    fn os_facing_results_get_their_section_and_ratios() {
        let root = std::env::temp_dir().join(format!("heapkit-report-os-{}", std::process::id()));
        let entry = |library: &str, wall_ns: u64| {
            json!({"library": library, "workload": "large-20", "mode": "large", "wall_ns": wall_ns,
                   "ops": 2000, "peak_rss_bytes": 1 << 20, "minor_faults": 10, "voluntary_switches": 0,
                   "involuntary_switches": 3, "user_ns": 1, "system_ns": 2})
        };
        let extras = Extras {
            os_level: json!({"results": [entry("heapkit", 4_000_000_000), entry("glibc", 2_000_000_000)],
                             "notes": ["os/large-20/tcmalloc: ended by its 180 s alarm"]}),
            ..Extras::default()
        };
        let summary = write(&root, &[], &extras, &Options::default()).unwrap();
        assert!(
            summary.contains("| large-20 | time | 2.00 s (2.00×) | 4.00 s |"),
            "{summary}"
        );
        let report = std::fs::read_to_string(root.join("report.md")).unwrap();
        assert!(report.contains("## OS-facing workloads"), "{report}");
        assert!(report.contains("- os/large-20/tcmalloc: ended by its 180 s alarm"));
        let results: Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(results["os_level"][1]["heapkit_ratio"]["wall_ns"], 2.0);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn report_writer_ratios_against_the_system_allocator() {
        let root = std::env::temp_dir().join(format!("heapkit-report-test-{}", std::process::id()));
        let criterion = root.join("criterion");
        fixture(&criterion, "hot_pair", "system", "32", 20.0);
        fixture(&criterion, "hot_pair", "heapkit", "32", 10.0);
        fixture(&criterion, "hot_pair", "system", "256", 30.0);
        fixture(&criterion, "arena", "bumpalo", "16", 4.0);
        fixture(&criterion, "arena", "heapkit-bump", "16", 2.0);
        let rows = collect(&criterion, None);
        assert_eq!(rows.len(), 5);
        // Block sizes sort by value, not as text.
        assert_eq!(rows[2].parameter, "32");
        assert_eq!(rows[4].parameter, "256");
        let extras = extras();
        let summary = write(&root.join("out"), &rows, &extras, &Options::default()).unwrap();
        let report = std::fs::read_to_string(root.join("out/report.md")).unwrap();
        assert!(
            report
                .contains("| hot_pair | 32 | heapkit | 10.0 ns | 9.0 ns | 1.0 ns | 0.50× system |"),
            "{report}"
        );
        assert!(
            report.contains(
                "| arena | 16 | bumpalo | 4.0 ns | 3.6 ns | 0.4 ns | 2.00× heapkit-bump |"
            ),
            "{report}"
        );
        // The glance table: measured numbers beside the seed's claims, in the seed's order.
        assert!(summary.contains("| glibc malloc | 20 ns / 80 ns | 15 ns / 60 ns | +50% | yes | 18.0 MiB for 16.0 MiB live |"), "{summary}");
        // Below the resolution: "< 1 ns", never a clamped "1 ns".
        assert!(summary.contains("| heapkit-fixed | < 1 ns / < 1 ns | 2 ns / 8 ns | none (one size per pool) | yes | fixed at start-up |"), "{summary}");
        // The clock's figures under the glance table, on the terminal and in the report.
        let clock =
            "Clock: TSC (invariant; 2.300 GHz against CLOCK_MONOTONIC), resolution 0.87 ns \
                     (smallest step between back-to-back reads), overhead 20.0–21.0 ns (median of \
                     back-to-back reads, subtracted once per sample); 1 operation(s) per sample.";
        assert!(summary.contains(clock), "{summary}");
        assert!(report.contains(clock), "{report}");
        assert!(
            report.contains("| system | live-set | alloc | 20 ns | 80 ns | 200 ns | 20.0 µs | 20 ns | 1 | 0.87 ns | 32: 9.45 ns / 9.45 ns |"),
            "{report}"
        );
        assert!(
            report.contains("| system | live-set | free | 15 ns | 60 ns | 150 ns | 15.0 µs | 15 ns | 1 | 0.87 ns | 32: < 0.05 ns / < 0.05 ns |"),
            "{report}"
        );
        assert!(
            report.contains("| heapkit-fixed | pool | alloc | < 1 ns | < 1 ns | < 1 ns | < 1 ns | < 1 ns | 1 | 0.87 ns | – |"),
            "{report}"
        );
        assert!(summary.find("glibc malloc").unwrap() < summary.find("HeapKit").unwrap());
        // The pivot: heapkit at half of glibc's time.
        assert!(
            summary.contains("| hot_pair | 32 | 2.0 ns (1.00×) | 1.0 ns (0.50×) |"),
            "{summary}"
        );
        assert!(
            report.contains("| jemalloc | pair | 32 B | 10.0 | 80.0 | 0.50× |"),
            "{report}"
        );
        assert!(report.contains("- tcmalloc: libtcmalloc-minimal4 is not installed; skipped"));
        for svg in [
            "bars-hot_pair.svg",
            "bars-arena.svg",
            "latency-alloc-cdf.svg",
            "rss.svg",
        ] {
            assert!(root.join("out").join(svg).exists(), "{svg} missing");
            assert!(report.contains(&format!("![{svg}]({svg})")));
        }
        let results: Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("out/results.json")).unwrap())
                .unwrap();
        assert_eq!(results["schema_version"], SCHEMA_VERSION);
        assert_eq!(results["results"].as_array().unwrap().len(), 5);
        assert_eq!(results["results"][0]["ns_per_op"], 0.2);
        assert_eq!(results["latency"].as_array().unwrap().len(), 3);
        assert_eq!(results["rss"][0]["fragmentation"], 0.5);
        assert_eq!(results["c_level"][1]["instructions_per_op"], 80.0);
        assert_eq!(results["notes"].as_array().unwrap().len(), 2);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_floor_stands_beside_the_hardened_build() {
        let root =
            std::env::temp_dir().join(format!("heapkit-report-floor-{}", std::process::id()));
        let entry = |library: &str, mode: &str, size: u64, ns: f64| {
            json!({"library": library, "preload": "/r/libheapkit_malloc.so", "mode": mode,
                   "size_bytes": size, "ns_per_op": ns, "ns_per_op_min": ns, "instructions_per_op": null})
        };
        let extras = Extras {
            c_level: json!({"results": [
                entry("heapkit-floor", "mixed", 16, 52.5),
                entry("heapkit-hardened", "mixed", 16, 66.0),
                entry("heapkit", "mixed", 16, 7.5),
                entry("heapkit", "pair", 32, 5.0),
                entry("heapkit-floor", "pair", 32, 6.0),
                // No plain row to compare with: no line in the floor's table.
                entry("heapkit-floor", "lifo", 32, 7.0),
            ]}),
            ..Extras::default()
        };
        let summary = write(&root, &[], &extras, &Options::default()).unwrap();
        let report = std::fs::read_to_string(root.join("report.md")).unwrap();
        let lines = [
            "| pair | 32 B | 5.0 | 6.0 (1.20×) | – |",
            "| mixed | 16 B | 7.5 | 52.5 (7.00×) | 66.0 (8.80×) |",
        ];
        for text in [&report, &summary] {
            let at = |line: &str| text.find(line);
            assert!(
                at(lines[0]).is_some() && at(lines[0]) < at(lines[1]),
                "{text}"
            );
            assert!(!text.contains("\n| lifo | 32 B |"), "{text}");
        }
        assert!(report.contains(
            "### The protection floor\n\n`heapkit-floor` is pairs.c built with `benches/c/floor.h`"
        ));
        // In the C-level table the floor comes after the hardened build, with its ratio to heapkit.
        let row = |library: &str| report.find(&format!("| {library} | mixed | 16 B |"));
        assert!(row("heapkit") < row("heapkit-hardened"));
        assert!(row("heapkit-hardened") < row("heapkit-floor"));
        assert!(
            report.contains("| heapkit-floor | mixed | 16 B | 52.5 (52.5) | – | – | – | 7.00× |"),
            "{report}"
        );
        // A run without the floor has no such section.
        let plain = Extras {
            c_level: json!({"results": [entry("heapkit", "pair", 32, 5.0)]}),
            ..Extras::default()
        };
        write(&root, &[], &plain, &Options::default()).unwrap();
        let report = std::fs::read_to_string(root.join("report.md")).unwrap();
        assert!(!report.contains("protection floor"), "{report}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_report_without_probes_still_writes() {
        let root =
            std::env::temp_dir().join(format!("heapkit-report-empty-{}", std::process::id()));
        let summary = write(&root, &[], &Extras::default(), &Options::default()).unwrap();
        assert!(summary.contains("Comparison at a glance"));
        assert!(root.join("results.json").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn no_latency_figure_is_finer_than_its_resolution() {
        let summary = |value: f64, resolution: f64, precision: f64| json!({"p50_ns": value, "resolution_ns": resolution, "precision_ns": precision});
        let text = |value, resolution, precision| {
            latency_ns_text(&summary(value, resolution, precision), "p50_ns")
        };
        assert_eq!(text(0.0, 0.87, 1.0), "< 1 ns");
        assert_eq!(text(14.0, 0.87, 1.0), "14 ns");
        assert_eq!(text(0.0, 10.3, 20.0), "< 20 ns");
        assert_eq!(text(40.0, 10.3, 20.0), "40 ns");
        assert_eq!(text(2.15, 0.027, 0.05), "2.15 ns");
        assert_eq!(text(2.2, 0.0625, 0.1), "2.2 ns");
        assert_eq!(text(0.0, 0.027, 0.05), "< 0.05 ns");
        // Three significant digits at most, in a unit a reader takes in.
        assert_eq!(text(8_063_757.0, 0.87, 1.0), "8.06 ms");
        assert_eq!(text(1_240.0, 10.3, 20.0), "1.24 µs");
        assert_eq!(text(14.3, 0.00087, 0.001), "14.3 ns");
        assert_eq!(text(0.513, 0.00087, 0.001), "0.513 ns");
        assert_eq!(text(0.007, 0.00087, 0.001), "0.007 ns");
        assert_eq!(text(20_000.0, 0.87, 1.0), "20.0 µs");
        // A summary from before schema 3 prints as it is; a missing one as a dash.
        assert_eq!(latency_ns_text(&json!({"p50_ns": 11}), "p50_ns"), "11 ns");
        assert_eq!(latency_ns_text(&json!({}), "p50_ns"), "–");
        // Resolutions print with two significant digits.
        assert_eq!(
            format!("{:.*}", significant_decimals(0.00087) - 1, 0.00087),
            "0.00087"
        );
        assert_eq!(
            (
                decimals_of(1.0),
                decimals_of(0.1),
                decimals_of(0.05),
                decimals_of(20.0)
            ),
            (0, 1, 2, 0)
        );
    }

    #[test]
    fn human_time_picks_a_readable_unit() {
        assert_eq!(human_time(12.34), "12.3 ns");
        assert_eq!(human_time(12_340.0), "12.34 µs");
        assert_eq!(human_time(2.5e9), "2.50 s");
    }
}
