//! `cargo xtask bench`: build, run the criterion suites, the probes and the C-level benchmark,
//! then write the report.
//!
//! ```text
//!   1 build      cargo bench --no-run -p heapkit-benches; cargo build --release --bin heapkit-probe
//!   2 criterion  every suite in benches/ (the crate suites only with --all-crates)
//!   3 probes     heapkit-probe latency|rss NAME, one process each      -> probes.json
//!   4 C level    benches/c/pairs.c under LD_PRELOAD, timed + callgrind -> c_level.json
//!   5 OS-facing  benches/c/stress.c under LD_PRELOAD, time + getrusage -> os_level.json
//!   6 replays    heapkit-replay per trace and allocator, timed + callgrind -> replay/results.json
//!   7 report     report.md, results.json, *.svg in target/heapkit-report/ (and replay/)
//! ```

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

/// The package holding the cross-crate suite and the probes.
pub const BENCH_PACKAGE: &str = "heapkit-benches";

/// The bench package's per-crate suites (one algorithm crate, or the facade, beside its peers),
/// which the default run skips to keep within its time budget; `--all-crates` adds them.
pub const CRATE_SUITES: [&str; 5] = ["bins", "bump", "fixed", "heapkit", "slab"];

/// What the user asked `cargo xtask bench` for.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A smoke test of every workload in about two minutes (after the build).
    pub quick: bool,
    /// Only benchmarks whose id contains this text (criterion ids, probe and C-level names).
    pub filter: Option<String>,
    /// Save this run as a named baseline.
    pub save_baseline: Option<String>,
    /// Compare this run with a named baseline.
    pub baseline: Option<String>,
    /// Also run the crate suites ([`CRATE_SUITES`]), which the default run skips to keep
    /// within its time budget.
    pub all_crates: bool,
}

impl Options {
    /// Parses the command line after `bench`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let mut value =
                |flag: &str| iter.next().cloned().ok_or(format!("{flag} needs a value"));
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--all-crates" => options.all_crates = true,
                "--filter" => options.filter = Some(value("--filter")?),
                "--save-baseline" => options.save_baseline = Some(value("--save-baseline")?),
                "--baseline" => options.baseline = Some(value("--baseline")?),
                other => return Err(format!("unknown bench option {other}\n{}", crate::USAGE)),
            }
        }
        if let Some(name) = options.save_baseline.iter().chain(&options.baseline).next() {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(format!(
                    "baseline name {name:?}: use letters, digits, - _ ."
                ));
            }
        }
        Ok(options)
    }

    /// True when `id` passes the filter (or there is none).
    pub fn wants(&self, id: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| id.contains(f))
    }

    /// The arguments passed through to each criterion binary.
    pub fn criterion_args(&self) -> Vec<String> {
        let mut args = vec!["--noplot".to_string()];
        if self.quick {
            // Explicit times rather than criterion's --quick, so the run's length is known.
            args.extend(
                [
                    "--warm-up-time",
                    "0.1",
                    "--measurement-time",
                    "0.3",
                    "--sample-size",
                    "10",
                    // Criterion's bootstrap (100 000 resamples by default) would take longer
                    // than the measurement itself.
                    "--nresamples",
                    "1000",
                ]
                .map(String::from),
            );
        }
        if let Some(name) = &self.save_baseline {
            args.extend(["--save-baseline".into(), name.clone()]);
        }
        if let Some(name) = &self.baseline {
            // Lenient: benchmarks new since the baseline are measured, not refused.
            args.extend(["--baseline-lenient".into(), name.clone()]);
        }
        if let Some(filter) = &self.filter {
            args.push(filter.clone());
        }
        args
    }
}

/// A progress bar that stays readable when output is not a terminal (CI logs).
fn progress(steps: u64) -> ProgressBar {
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Shows what is being done: on the bar in a terminal, as a log line otherwise (CI), where
/// indicatif draws nothing. The line starts with the bar's prefix (the command: `xtask
/// replay`), `xtask bench` when it has none.
pub fn step(bar: &ProgressBar, message: String) {
    if bar.is_hidden() {
        let prefix = bar.prefix();
        let command = if prefix.is_empty() {
            "xtask bench"
        } else {
            &prefix
        };
        eprintln!("{command}: {message}");
    }
    bar.set_message(message);
}

/// Runs `cmd`, showing it on failure.
pub fn run_checked(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed ({status})"))
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Step 1: compile everything the run needs, with cargo's own progress on the terminal.
fn build(workspace: &crate::Workspace, suites: &[(String, String)]) -> Result<(), String> {
    eprintln!("xtask bench: building (release, LTO: the first build takes a few minutes)");
    let mut cmd = Command::new(cargo());
    cmd.args(["bench", "--no-run", "--quiet"])
        .current_dir(&workspace.root);
    let mut packages: Vec<&str> = suites.iter().map(|(p, _)| p.as_str()).collect();
    packages.dedup();
    for package in packages {
        cmd.args(["-p", package]);
    }
    // Only the suites this run measures: the crate suites (LTO builds) wait for --all-crates.
    for (_, bench) in suites {
        cmd.args(["--bench", bench]);
    }
    run_checked(&mut cmd)?;
    run_checked(
        Command::new(cargo())
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                BENCH_PACKAGE,
                "--bin",
                "heapkit-probe",
                "--bin",
                "heapkit-replay",
            ])
            .current_dir(&workspace.root),
    )
}

/// Step 2: one criterion suite, its output kept in `log` and its progress on `bar`.
fn run_suite(
    workspace: &crate::Workspace,
    options: &Options,
    (package, bench): (&str, &str),
    bar: &ProgressBar,
    log: &mut std::fs::File,
) -> Result<bool, String> {
    let mut child = Command::new(cargo())
        .args(["bench", "--quiet", "-p", package, "--bench", bench, "--"])
        .args(options.criterion_args())
        .current_dir(&workspace.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    let stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    for line in BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        let _ = writeln!(log, "{line}");
        if let Some(id) = line.strip_prefix("Benchmarking ") {
            let id = id.split(':').next().unwrap_or(id);
            bar.set_message(format!("{package}/{bench}: {id}"));
        }
    }
    let status = child.wait().map_err(|e| format!("cargo bench: {e}"))?;
    let errors = errors.join().unwrap_or_default();
    let _ = write!(log, "{errors}");
    if !status.success() {
        bar.suspend(|| eprintln!("{package}/{bench} failed:\n{errors}"));
    }
    Ok(status.success())
}

/// Runs the whole benchmark and writes the report.
pub fn run(args: &[String]) -> Result<(), String> {
    let started = std::time::Instant::now();
    let options = Options::parse(args)?;
    let workspace = crate::Workspace::load()?;
    let suites: Vec<(String, String)> = workspace
        .benches
        .iter()
        .filter(|(package, _)| package == BENCH_PACKAGE)
        .flat_map(|(package, benches)| benches.iter().map(move |b| (package.clone(), b.clone())))
        .filter(|(_, bench)| options.all_crates || !CRATE_SUITES.contains(&bench.as_str()))
        .collect();
    if suites.is_empty() {
        return Err(format!(
            "no criterion suites found (is {BENCH_PACKAGE} a workspace member?)"
        ));
    }
    let report_dir = workspace.target.join("heapkit-report");
    std::fs::create_dir_all(&report_dir)
        .map_err(|e| format!("cannot create {}: {e}", report_dir.display()))?;
    build(&workspace, &suites)?;
    let built_s = started.elapsed().as_secs_f64();

    let probe = workspace.target.join("release").join("heapkit-probe");
    let probe_jobs = crate::probes::jobs(&probe, &options)?;
    let c_plan = crate::clevel::plan(&workspace, &options);
    let os_plan = crate::stress::plan(&workspace, &options);
    let steps = (suites.len() + probe_jobs.len() + c_plan.steps() + os_plan.steps()) as u64;
    let bar = progress(steps);
    let log_path = report_dir.join("criterion.log");
    let mut log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let mut failed = Vec::new();
    let mut timings = vec![format!("build {built_s:.0} s")];
    let mut lap = std::time::Instant::now();
    let mut time = |what: &str, timings: &mut Vec<String>| {
        timings.push(format!("{what} {:.0} s", lap.elapsed().as_secs_f64()));
        lap = std::time::Instant::now();
    };
    for (package, bench) in &suites {
        step(&bar, format!("criterion {package}/{bench}"));
        if !run_suite(&workspace, &options, (package, bench), &bar, &mut log)? {
            failed.push(format!("{package}/{bench}"));
        }
        bar.inc(1);
    }
    time("criterion", &mut timings);
    let probes = crate::probes::run(&probe_jobs, &options, &bar);
    let probes = merge(
        &report_dir.join("probes.json"),
        probes,
        &[
            ("latency", "allocator"),
            ("rss", "allocator"),
            ("stress", "allocator"),
        ],
    );
    write_json(&report_dir.join("probes.json"), &probes)?;
    time("probes", &mut timings);
    let c_level = crate::clevel::run(&c_plan, &bar);
    let c_level = merge(
        &report_dir.join("c_level.json"),
        c_level,
        &[("results", "library")],
    );
    write_json(&report_dir.join("c_level.json"), &c_level)?;
    time("C level", &mut timings);
    let os_level = crate::stress::run(&os_plan, &bar);
    let os_level = merge(
        &report_dir.join("os_level.json"),
        os_level,
        &[("results", "library")],
    );
    write_json(&report_dir.join("os_level.json"), &os_level)?;
    time("OS-facing", &mut timings);
    let replays = crate::replay::for_bench(&workspace, &options, &bar);
    time("replays", &mut timings);
    bar.finish_and_clear();
    // What `cargo xtask report` needs to describe this run when it rewrites the report.
    write_json(
        &report_dir.join("run.json"),
        &serde_json::json!({ "quick": options.quick, "filter": options.filter }),
    )?;
    if let Some(name) = &options.save_baseline {
        save_baseline(&report_dir, name)?;
    }
    replays?;
    let summary = crate::report::write_from_target(&options)?;
    crate::print_summary(&summary);
    eprintln!(
        "xtask bench: done in {:.0} s ({}; criterion log: {})",
        started.elapsed().as_secs_f64(),
        timings.join(", "),
        log_path.display()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("these suites failed: {}", failed.join(", ")))
    }
}

/// Keeps the entries of the previous run's file that this run did not measure again (a
/// `--filter`ed run replaces only what it ran, as criterion does with its own results).
/// `lists` names each array and the field that, with `mode` and `workload` when present,
/// identifies an entry.
pub fn merge(
    previous: &Path,
    mut new: serde_json::Value,
    lists: &[(&str, &str)],
) -> serde_json::Value {
    let Some(old) = std::fs::read_to_string(previous)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
    else {
        return new;
    };
    let id = |v: &serde_json::Value, field: &str| {
        (v[field].clone(), v["mode"].clone(), v["workload"].clone())
    };
    for (list, field) in lists {
        let Some(fresh) = new[*list].as_array_mut() else {
            continue;
        };
        let measured: Vec<_> = fresh.iter().map(|v| id(v, field)).collect();
        let kept = old[*list]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| !measured.contains(&id(v, field)))
            .cloned()
            .collect::<Vec<_>>();
        fresh.splice(0..0, kept);
    }
    new
}

/// Writes `value` as pretty JSON.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| format!("{e}"))?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Keeps the probe, C-level and OS-facing results beside criterion's own baseline of the same name.
fn save_baseline(report_dir: &Path, name: &str) -> Result<(), String> {
    let dir = report_dir.join("baselines").join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for file in ["probes.json", "c_level.json", "os_level.json"] {
        std::fs::copy(report_dir.join(file), dir.join(file))
            .map_err(|e| format!("cannot save {file} as baseline {name}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_filtered_run_keeps_what_it_did_not_measure() {
        let path = std::env::temp_dir().join(format!("heapkit-merge-{}.json", std::process::id()));
        let old = serde_json::json!({"results": [
            {"library": "glibc", "mode": "pair", "ns_per_op": 1.0},
            {"library": "glibc", "mode": "mixed", "ns_per_op": 2.0},
        ]});
        write_json(&path, &old).unwrap();
        let new = serde_json::json!({"results": [{"library": "glibc", "mode": "pair", "ns_per_op": 3.0}]});
        let merged = merge(&path, new, &[("results", "library")]);
        let results = merged["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["ns_per_op"], 2.0);
        assert_eq!(results[1]["ns_per_op"], 3.0);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn options_pass_through_to_criterion() {
        let options = parse(&["--quick", "--filter", "hot_pair", "--baseline", "before"]).unwrap();
        let args = options.criterion_args();
        assert!(args.contains(&"--measurement-time".to_string()));
        assert!(args.ends_with(&[
            "--baseline-lenient".into(),
            "before".into(),
            "hot_pair".into()
        ]));
        assert!(options.wants("hot_pair/system/16") && !options.wants("rss/system"));
        assert!(parse(&["--baseline", "../etc"]).is_err());
        assert!(parse(&["--filter"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
    }
}
