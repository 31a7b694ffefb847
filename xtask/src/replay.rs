//! `cargo xtask replay TRACE... [--allocators LIST] [--threads original|1] [--lenient]
//! [--no-touch] [--no-instructions]`: replays recorded allocation traces
//! (`docs/trace-format.md`; `.gz` files are unpacked with `gzip -dc` first) through every
//! allocator, one `heapkit-replay` process per allocator and trace, and writes
//! `target/heapkit-report/replay/` (report.md, results.json, one SVG per trace: RSS and live
//! bytes against the operation index) and a terminal table. Where valgrind is installed, each
//! replay runs a second time under callgrind for its instruction count (the replay loop only:
//! heapkit-benches' `callgrind` module says how).

use crate::bench::{run_checked, step};
use crate::clevel::{callgrind_installed, parse_collected};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The traces.
    pub traces: Vec<PathBuf>,
    /// The allocators, in order (empty: every one `heapkit-replay list` names).
    pub allocators: Vec<String>,
    /// `original` or `1`.
    pub threads: String,
    /// Skip bad events instead of refusing the trace.
    pub lenient: bool,
    /// Do not touch each new block.
    pub no_touch: bool,
    /// Do not count instructions under callgrind even when valgrind is installed.
    pub no_instructions: bool,
}

/// `schema_version` of replay/results.json (docs/results-schema.md, "Replay").
pub const SCHEMA_VERSION: u64 = 2;

/// The text of the marker functions' names (heapkit-benches' `callgrind` module), as
/// callgrind's `--toggle-collect` patterns: counted inside the first, not inside the second.
const TOGGLE_COLLECT: [&str; 2] = [
    "--toggle-collect=*replay_counted*",
    "--toggle-collect=*replay_uncounted*",
];

impl Options {
    /// Parses the arguments after `replay`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            threads: "original".into(),
            ..Options::default()
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--allocators" => {
                    let list = args
                        .next()
                        .ok_or("--allocators needs a comma-separated list")?;
                    options.allocators = list.split(',').map(str::to_string).collect();
                }
                "--threads" => {
                    let value = args.next().ok_or("--threads needs `original` or `1`")?;
                    if value != "original" && value != "1" {
                        return Err(format!("--threads takes `original` or `1`, not {value:?}"));
                    }
                    options.threads = value.clone();
                }
                "--lenient" => options.lenient = true,
                "--no-touch" => options.no_touch = true,
                "--no-instructions" => options.no_instructions = true,
                flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
                path => options.traces.push(PathBuf::from(path)),
            }
        }
        if options.traces.is_empty() {
            return Err("cargo xtask replay needs at least one trace file".into());
        }
        Ok(options)
    }

    fn flags(&self) -> Vec<String> {
        let mut flags = vec!["--threads".to_string(), self.threads.clone()];
        if self.lenient {
            flags.push("--lenient".into());
        }
        if self.no_touch {
            flags.push("--no-touch".into());
        }
        flags
    }
}

/// Builds heapkit-replay in release.
pub fn build(workspace: &crate::Workspace) -> Result<PathBuf, String> {
    eprintln!("xtask replay: building heapkit-replay (release)");
    run_checked(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "heapkit-benches",
                "--bin",
                "heapkit-replay",
            ])
            .current_dir(&workspace.root),
    )?;
    Ok(workspace.target.join("release").join("heapkit-replay"))
}

/// The trace's name in the report (its file name without `.trace` / `.gz`).
fn trace_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    name.trim_end_matches(".gz")
        .trim_end_matches(".trace")
        .to_string()
}

/// The trace as a plain file: `.gz` files are unpacked into `dir`.
fn unpacked(path: &Path, dir: &Path) -> Result<PathBuf, String> {
    if path.extension().is_none_or(|e| e != "gz") {
        return Ok(path.to_path_buf());
    }
    let out = dir.join(format!("{}.trace", trace_name(path)));
    let output = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    if !output.status.success() {
        return Err(format!("gzip -dc {} failed", path.display()));
    }
    std::fs::write(&out, output.stdout).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

/// Runs heapkit-replay and parses its JSON line.
fn json_of(binary: &Path, args: &[String]) -> Result<Value, String> {
    let output = Command::new(binary)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if !output.status.success() {
        return Err(format!(
            "heapkit-replay {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("heapkit-replay's output: {e}"))
}

/// The replay's instructions: `heapkit-replay` (`args`) under callgrind, instrumented only from
/// the replay on and counting only inside the replay threads' marker function.
fn instructions(binary: &Path, args: &[String]) -> Result<u64, String> {
    let output = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--instr-atstart=no",
            "--collect-atstart=no",
        ])
        .args(TOGGLE_COLLECT)
        .arg(binary)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    match parse_collected(&stderr) {
        Some(count) if output.status.success() => Ok(count),
        _ => Err(format!(
            "callgrind on heapkit-replay {} gave no count: {}",
            args.join(" "),
            stderr.lines().last().unwrap_or("").trim()
        )),
    }
}

/// Adds the instruction count (`instructions`, `instructions_per_op`) to a replay's result.
fn add_instructions(result: &mut Value, count: u64) {
    let operations = result["operations"].as_u64().unwrap_or(0).max(1);
    result["instructions"] = json!(count);
    result["instructions_per_op"] = json!(count as f64 / operations as f64);
}

/// The allocators to run: those asked for, each checked against `heapkit-replay list`, or all.
fn resolve_allocators(binary: &Path, asked: &[String]) -> Result<Vec<String>, String> {
    let output = Command::new(binary)
        .arg("list")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let known: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    if asked.is_empty() {
        return Ok(known);
    }
    match asked.iter().find(|a| !known.contains(a)) {
        Some(bad) => Err(format!(
            "unknown allocator {bad:?} (known: {})",
            known.join(", ")
        )),
        None => Ok(asked.to_vec()),
    }
}

/// Replays every trace through every allocator; returns results.json's value.
pub fn measure(
    binary: &Path,
    options: &Options,
    dir: &Path,
    bar: &ProgressBar,
) -> Result<Value, String> {
    let allocators = resolve_allocators(binary, &options.allocators)?;
    let mut notes = Vec::new();
    let counting = if options.no_instructions {
        notes.push("instructions not counted (--no-instructions)".to_string());
        false
    } else if !callgrind_installed() {
        notes.push("valgrind is not installed: no instruction counts".to_string());
        false
    } else {
        true
    };
    let runs_per_allocator = if counting { 2 } else { 1 };
    bar.inc_length((options.traces.len() * allocators.len() * runs_per_allocator) as u64);
    let mut traces = Vec::new();
    for path in &options.traces {
        let name = trace_name(path);
        let file = unpacked(path, dir)?;
        let file_arg = file.to_string_lossy().to_string();
        step(bar, format!("replay {name}: reading"));
        let mut args = vec!["stats".to_string(), file_arg.clone()];
        args.extend(options.flags());
        let stats = json_of(binary, &args)?;
        let mut results = Vec::new();
        for allocator in &allocators {
            step(bar, format!("replay {name}: {allocator}"));
            let mut args = vec!["run".to_string(), allocator.clone(), file_arg.clone()];
            args.extend(options.flags());
            let mut result = json_of(binary, &args)?;
            bar.inc(1);
            if counting {
                step(bar, format!("replay {name}: {allocator} under callgrind"));
                match instructions(binary, &args) {
                    Ok(count) => add_instructions(&mut result, count),
                    Err(note) => notes.push(note),
                }
                bar.inc(1);
            }
            results.push(result);
        }
        traces.push(json!({ "trace": name, "file": path, "stats": stats, "results": results }));
    }
    Ok(json!({
        "schema_version": SCHEMA_VERSION,
        "threads": options.threads,
        "touch": !options.no_touch,
        "instructions": counting,
        "traces": traces,
        "notes": notes,
    }))
}

fn mib(bytes: &Value) -> f64 {
    bytes.as_f64().unwrap_or(0.0) / (1024.0 * 1024.0)
}

/// A replay's instruction count as the table shows it: millions, and per operation; `–` where
/// it was not counted (no valgrind, or a file written before counts existed).
fn instructions_cells(result: &Value) -> (String, String) {
    match (
        result["instructions"].as_f64(),
        result["instructions_per_op"].as_f64(),
    ) {
        (Some(count), Some(per_op)) => (format!("{:.1}", count / 1e6), format!("{per_op:.0}")),
        _ => ("–".into(), "–".into()),
    }
}

/// The side-by-side table of one trace's replays.
fn table(trace: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| allocator | time (s) | Mops/s | instructions (M) | instr/op | peak RSS (MiB) | final RSS (MiB) | failures |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in trace["results"].as_array().into_iter().flatten() {
        let (count, per_op) = instructions_cells(r);
        let _ = writeln!(
            out,
            "| {} | {:.3} | {:.2} | {count} | {per_op} | {:.1} | {:.1} | {} |",
            r["allocator"].as_str().unwrap_or("?"),
            r["time_s"].as_f64().unwrap_or(0.0),
            r["ops_per_s"].as_f64().unwrap_or(0.0) / 1e6,
            mib(&r["peak_rss_bytes"]),
            mib(&r["final_rss_bytes"]),
            r["failures"]
        );
    }
    out
}

/// The seed's advice for one trace, each figure beside the article's threshold.
fn advice(trace: &Value) -> String {
    let stats = &trace["stats"];
    let a = &stats["advice"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "- {} events on {} threads, {} objects; peak live {:.1} MiB, final live {:.1} MiB",
        stats["events"],
        stats["threads"],
        stats["objects"],
        mib(&stats["peak_live_bytes"]),
        mib(&stats["final_live_bytes"])
    );
    let _ = writeln!(
        out,
        "- allocation rate over the run: {:.0} calls/s, {:.1} MB/s ({}); peak over 100 ms: {:.1} MB/s ({}). The article: > 100 MB/s is measurable CPU, > 1 GB/s look at arenas or pools",
        a["calls_per_s"].as_f64().unwrap_or(0.0),
        a["mb_per_s"].as_f64().unwrap_or(0.0),
        a["rate_verdict"].as_str().unwrap_or(""),
        a["peak_mb_per_s_100ms"].as_f64().unwrap_or(0.0),
        a["peak_rate_verdict"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        out,
        "- blocks freed by the thread that allocated them: {:.1} %; bytes an arena reset per phase could have served (freed by their own thread within {} ms): {:.1} %",
        a["freed_by_allocating_thread_share"].as_f64().unwrap_or(0.0) * 100.0,
        a["arena_phase_ns"].as_u64().unwrap_or(0) / 1_000_000,
        a["arena_candidate_bytes_share"].as_f64().unwrap_or(0.0) * 100.0
    );
    let dominant: Vec<String> = a["dominant_sizes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "{} B {:.1} %{}",
                d["size"],
                d["share"].as_f64().unwrap_or(0.0) * 100.0,
                if d["pool_candidate"].as_bool() == Some(true) {
                    " (pool candidate)"
                } else {
                    ""
                }
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "- dominant sizes (a pool candidate holds ≥ {:.0} % of blocks): {}",
        a["pool_share_threshold"].as_f64().unwrap_or(0.0) * 100.0,
        dominant.join(", ")
    );
    for (key, what) in [
        ("size_histogram", "sizes (bytes)"),
        ("lifetime_events_histogram", "lifetimes (events)"),
        ("lifetime_ns_histogram", "lifetimes (ns)"),
    ] {
        let buckets: Vec<String> = a[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| format!("≥{}: {}", b["from"], b["count"]))
            .collect();
        let _ = writeln!(out, "- {what}, log2 buckets: {}", buckets.join(", "));
    }
    out
}

/// RSS (per allocator) and live bytes, in MiB, against the operation index.
fn plot(path: &Path, trace: &Value) -> Result<(), String> {
    let curve = |v: &Value| -> Vec<(f64, f64)> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()? / 1048576.0)))
            .collect()
    };
    let mut series = vec![(
        "live bytes".to_string(),
        curve(&trace["stats"]["live_curve"]),
    )];
    for r in trace["results"].as_array().into_iter().flatten() {
        let name = format!("RSS {}", r["allocator"].as_str().unwrap_or("?"));
        series.push((name, curve(&r["rss_curve"])));
    }
    let title = format!(
        "{}: RSS and live bytes",
        trace["trace"].as_str().unwrap_or("")
    );
    crate::plots::lines(path, &title, ("operation index", "MiB"), &series)
}

/// What the instruction columns are.
const INSTRUCTIONS_LEGEND: &str = "Instructions: the replay threads' own (the operations, the \
    touching and the loop; not reading the trace, not waiting for another thread's operation), \
    counted by a second run under `valgrind --tool=callgrind`: noise-free, and `–` where valgrind \
    is missing.";

/// Writes report.md and the SVGs into `dir`; returns the terminal summary.
pub fn write_report(dir: &Path, results: &Value) -> Result<String, String> {
    let mut report = String::from("# Replays of recorded allocation traces\n\n");
    let _ = writeln!(
        report,
        "Threads: {}; each new block's first and last byte touched: {}. Times are wall time of the whole replay; RSS is above the replaying process's own before the replay. {INSTRUCTIONS_LEGEND}\n",
        results["threads"].as_str().unwrap_or("?"),
        results["touch"]
    );
    let notes: Vec<&str> = results["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(report, "Notes:\n\n- {}\n", notes.join("\n- "));
    }
    let mut summary = String::new();
    for trace in results["traces"].as_array().into_iter().flatten() {
        let name = trace["trace"].as_str().unwrap_or("trace");
        let svg = format!("{name}.svg");
        plot(&dir.join(&svg), trace)?;
        let _ = writeln!(
            report,
            "## {name}\n\n{}\n{}\n![RSS and live bytes]({svg})\n",
            table(trace),
            advice(trace)
        );
        let _ = writeln!(summary, "replay {name}\n{}", table(trace));
    }
    let path = dir.join("report.md");
    std::fs::write(&path, report).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(summary)
}

/// The shipped traces `cargo xtask bench` replays (`--quick`: the smallest only, to stay fast).
fn shipped_traces(workspace: &crate::Workspace, quick: bool) -> Vec<PathBuf> {
    let names: &[&str] = if quick {
        &["sqlite"]
    } else {
        &["python", "sqlite", "git", "gcc"]
    };
    names
        .iter()
        .map(|n| {
            workspace
                .root
                .join("benches/traces")
                .join(format!("{n}.trace.gz"))
        })
        .filter(|p| p.exists())
        .collect()
}

/// `cargo xtask bench`'s replay step (heapkit-replay already built): the shipped traces
/// through every allocator into `heapkit-report/replay/` (results.json and its report); the
/// bench's report.md gets its section from [`render_saved`]. `--quick` replays and counts
/// the small sqlite trace only (about 15 s under callgrind for seven allocators).
pub fn for_bench(
    workspace: &crate::Workspace,
    bench: &crate::bench::Options,
    bar: &ProgressBar,
) -> Result<(), String> {
    let options = Options {
        traces: shipped_traces(workspace, bench.quick),
        threads: "original".into(),
        ..Options::default()
    };
    if options.traces.is_empty() {
        return Ok(());
    }
    let dir = workspace.target.join("heapkit-report").join("replay");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let binary = workspace.target.join("release").join("heapkit-replay");
    let results = measure(&binary, &options, &dir, bar)?;
    crate::bench::write_json(&dir.join("results.json"), &results)
}

/// The replay section of the bench's report.md: each trace's table, the rest linked.
fn bench_section(results: &Value) -> String {
    let mut section = String::from(
        "\n## Replays of recorded programs\n\nThe traces in `replay/results.json` (the shipped \
         ones, `benches/traces/`, after `cargo xtask bench`) through every allocator; the \
         seed's advice measured on each and the RSS plots are in \
         [replay/report.md](replay/report.md).\n\n",
    );
    for trace in results["traces"].as_array().into_iter().flatten() {
        let _ = writeln!(
            section,
            "### {}\n\n{}",
            trace["trace"].as_str().unwrap_or(""),
            table(trace)
        );
    }
    section
}

/// Re-renders the saved replay results (`report_dir/replay/results.json`, when there is one):
/// replay/report.md and its SVGs, and the replay section appended to `report_dir/report.md`
/// (just written by the bench's report). Returns the terminal summary (empty without replays).
pub fn render_saved(report_dir: &Path) -> Result<String, String> {
    let dir = report_dir.join("replay");
    let path = dir.join("results.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(String::new());
    };
    let results: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let summary = write_report(&dir, &results)?;
    let report = report_dir.join("report.md");
    let mut text = std::fs::read_to_string(&report).unwrap_or_default();
    text.push_str(&bench_section(&results));
    std::fs::write(&report, text).map_err(|e| format!("{}: {e}", report.display()))?;
    Ok(summary)
}

/// `cargo xtask replay`.
pub fn run(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    let workspace = crate::Workspace::load()?;
    let dir = workspace.target.join("heapkit-report").join("replay");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let binary = build(&workspace)?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix("xtask replay");
    let results = measure(&binary, &options, &dir, &bar)?;
    bar.finish_and_clear();
    crate::bench::write_json(&dir.join("results.json"), &results)?;
    let summary = write_report(&dir, &results)?;
    crate::print_summary(&summary);
    eprintln!(
        "xtask replay: report in {}",
        dir.join("report.md").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_are_checked() {
        let options = parse(&[
            "a.trace",
            "--threads",
            "1",
            "--allocators",
            "system,heapkit",
        ])
        .unwrap();
        assert_eq!(options.traces, [PathBuf::from("a.trace")]);
        assert_eq!(options.allocators, ["system", "heapkit"]);
        assert_eq!(options.threads, "1");
        assert!(parse(&[]).is_err());
        assert!(parse(&["a.trace", "--threads", "2"]).is_err());
        assert!(parse(&["a.trace", "--fast"]).is_err());
        assert!(
            parse(&["a.trace", "--no-instructions"])
                .unwrap()
                .no_instructions
        );
        assert_eq!(
            trace_name(Path::new("x/python-json.trace.gz")),
            "python-json"
        );
    }

    /// A replay result as `heapkit-replay run` prints it, counted or not.
    fn result(allocator: &str, count: Option<u64>) -> Value {
        let mut r = json!({
            "allocator": allocator, "threads": 1, "operations": 1000, "time_s": 0.01,
            "ops_per_s": 1e5, "peak_rss_bytes": 1 << 20, "final_rss_bytes": 1 << 19,
            "failures": 0, "rss_curve": [[0, 0], [1000, 1 << 19]],
        });
        if let Some(count) = count {
            add_instructions(&mut r, count);
        }
        r
    }

    /// The toggle patterns name the markers heapkit-benches' replay threads carry (xtask does
    /// not link heapkit-benches, so the two are compared as text).
    #[test]
    fn the_toggles_name_the_benches_markers() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/src/callgrind.rs");
        let source = std::fs::read_to_string(&path).unwrap();
        for (toggle, marker) in TOGGLE_COLLECT.iter().zip(["COUNTED", "UNCOUNTED"]) {
            let name = toggle
                .trim_start_matches("--toggle-collect=")
                .trim_matches('*');
            let line = format!("pub const {marker}_MARKER: &str = \"{name}\";");
            assert!(source.contains(&line), "{} lacks {line}", path.display());
        }
    }

    #[test]
    fn instructions_show_per_operation_or_a_dash() {
        let counted = result("heapkit", Some(92_000));
        assert_eq!(counted["instructions_per_op"], 92.0);
        let text = table(&json!({ "results": [counted, result("system", None)] }));
        assert!(
            text.contains("| heapkit | 0.010 | 0.10 | 0.1 | 92 |"),
            "{text}"
        );
        assert!(text.contains("| system | 0.010 | 0.10 | – | – |"), "{text}");
    }

    #[test]
    fn the_report_renders_the_saved_replays() {
        let root =
            std::env::temp_dir().join(format!("heapkit-replay-saved-{}", std::process::id()));
        let replay_dir = root.join("replay");
        std::fs::create_dir_all(&replay_dir).unwrap();
        // No saved replays: nothing added, nothing fails.
        std::fs::write(root.join("report.md"), "# bench\n").unwrap();
        assert_eq!(render_saved(&root).unwrap(), "");
        let saved = json!({
            "schema_version": SCHEMA_VERSION, "threads": "original", "touch": true,
            "instructions": true, "notes": ["a note"],
            "traces": [{
                "trace": "tiny", "file": "tiny.trace",
                "stats": { "events": 1000, "threads": 1, "objects": 500,
                           "live_curve": [[0, 0], [999, 100]], "advice": {} },
                "results": [result("heapkit", Some(92_000))],
            }],
        });
        crate::bench::write_json(&replay_dir.join("results.json"), &saved).unwrap();
        let summary = render_saved(&root).unwrap();
        assert!(
            summary.contains("replay tiny") && summary.contains("| 92 |"),
            "{summary}"
        );
        let report = std::fs::read_to_string(root.join("report.md")).unwrap();
        assert!(report.starts_with("# bench\n"), "{report}");
        assert!(
            report.contains("## Replays of recorded programs"),
            "{report}"
        );
        assert!(
            report.contains("### tiny") && report.contains("| 92 |"),
            "{report}"
        );
        let replay = std::fs::read_to_string(replay_dir.join("report.md")).unwrap();
        assert!(
            replay.contains("- a note") && replay.contains("| 92 |"),
            "{replay}"
        );
        assert!(replay_dir.join("tiny.svg").exists());
        std::fs::write(replay_dir.join("results.json"), "{ not json").unwrap();
        assert!(render_saved(&root).unwrap_err().contains("results.json"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
