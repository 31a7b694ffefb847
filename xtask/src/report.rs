//! The report: criterion's estimates gathered into one table, `report.md` and `results.json`.
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
    /// Mean time in the named baseline, when one was asked for and exists.
    pub baseline_mean_ns: Option<f64>,
}

/// Names that mean "the system allocator", the reference for ratios.
const REFERENCE_NAMES: &[&str] = &["system", "System", "glibc"];

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
                baseline_mean_ns,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.workload, &a.parameter, &a.allocator).cmp(&(&b.workload, &b.parameter, &b.allocator))
    });
    rows
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

/// The Markdown table of all rows, with ratios to each workload's reference.
pub fn markdown(rows: &[Row], baseline: Option<&str>) -> String {
    let refs = references(rows);
    let mut out = String::new();
    let _ = write!(
        out,
        "| workload | parameter | allocator | mean | median | ratio to reference |"
    );
    if let Some(name) = baseline {
        let _ = write!(out, " change vs `{name}` |");
    }
    out.push('\n');
    out.push_str("|---|---|---|---:|---:|---:|");
    if baseline.is_some() {
        out.push_str("---:|");
    }
    out.push('\n');
    for row in rows {
        let (ref_name, ref_ns) = &refs[&(row.workload.clone(), row.parameter.clone())];
        let ratio = row.mean_ns / ref_ns;
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {} | {ratio:.2}× {ref_name} |",
            row.workload,
            row.parameter,
            row.allocator,
            human_time(row.mean_ns),
            human_time(row.median_ns)
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

/// The rows as `results.json` (schema in docs/results-schema.md).
pub fn json(rows: &[Row]) -> Value {
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
                "reference": ref_name,
                "ratio_to_reference": row.mean_ns / ref_ns,
                "baseline_mean_ns": row.baseline_mean_ns,
            })
        })
        .collect();
    json!({ "schema_version": 1, "source": "criterion", "results": results })
}

/// Writes report.md and results.json under `target/heapkit-report/` and returns the summary.
pub fn write_from_criterion(options: &Options) -> Result<String, String> {
    let workspace = crate::Workspace::load()?;
    let rows = collect(
        &workspace.target.join("criterion"),
        options.baseline.as_deref(),
    );
    write(&workspace.target.join("heapkit-report"), &rows, options)
}

/// Writes the report for `rows` into `dir`.
pub fn write(dir: &Path, rows: &[Row], options: &Options) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let table = markdown(rows, options.baseline.as_deref());
    let mode = if options.quick {
        " (quick mode: fewer samples, wider error bars)"
    } else {
        ""
    };
    let report = format!(
        "# heapkit benchmark report\n\nMeasured on this machine by `cargo xtask bench`{mode}. Times are per \
         iteration of each workload; the ratio compares each allocator with the system allocator \
         (glibc) where it took part, otherwise with the fastest.\n\n{table}"
    );
    let write_file = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("cannot write {name}: {e}"))
    };
    write_file("report.md", report)?;
    write_file(
        "results.json",
        serde_json::to_string_pretty(&json(rows)).unwrap_or_default(),
    )?;
    Ok(format!(
        "{table}\nreport: {}",
        dir.join("report.md").display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(dir: &Path, group: &str, function: &str, value: &str, mean: f64) {
        let leaf = dir.join(group).join(function).join(value).join("new");
        std::fs::create_dir_all(&leaf).unwrap();
        let bench = json!({"group_id": group, "function_id": function, "value_str": value});
        let estimates =
            json!({"mean": {"point_estimate": mean}, "median": {"point_estimate": mean * 0.9}});
        std::fs::write(leaf.join("benchmark.json"), bench.to_string()).unwrap();
        std::fs::write(leaf.join("estimates.json"), estimates.to_string()).unwrap();
    }

    #[test]
    fn report_writer_ratios_against_the_system_allocator() {
        let root = std::env::temp_dir().join(format!("heapkit-report-test-{}", std::process::id()));
        let criterion = root.join("criterion");
        fixture(&criterion, "hot_pair", "system", "32", 20.0);
        fixture(&criterion, "hot_pair", "heapkit", "32", 10.0);
        fixture(&criterion, "arena", "bumpalo", "16", 4.0);
        fixture(&criterion, "arena", "heapkit-bump", "16", 2.0);
        let rows = collect(&criterion, None);
        assert_eq!(rows.len(), 4);
        let summary = write(&root.join("out"), &rows, &Options::default()).unwrap();
        assert!(
            summary.contains("| hot_pair | 32 | heapkit | 10.0 ns | 9.0 ns | 0.50× system |"),
            "{summary}"
        );
        assert!(
            summary.contains("| arena | 16 | bumpalo | 4.0 ns | 3.6 ns | 2.00× heapkit-bump |"),
            "{summary}"
        );
        let results: Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("out/results.json")).unwrap())
                .unwrap();
        assert_eq!(results["schema_version"], 1);
        assert_eq!(results["results"].as_array().unwrap().len(), 4);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn human_time_picks_a_readable_unit() {
        assert_eq!(human_time(12.34), "12.3 ns");
        assert_eq!(human_time(12_340.0), "12.34 µs");
        assert_eq!(human_time(2.5e9), "2.50 s");
    }
}
