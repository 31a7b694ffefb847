//! `cargo xtask fuzz`: every cargo-fuzz target in `fuzz/` for a fixed time each.
//!
//! Installs what it needs (cargo-fuzz, the nightly toolchain) and says so, fuzzes each target
//! on a working corpus under the target directory seeded from `fuzz/corpus/<target>` (so new
//! entries never land in the repository), then prints executions, executions per second, new
//! corpus entries and crashes per target, parsed from libFuzzer's final statistics.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The default time per target.
const DEFAULT_SECONDS: u64 = 60;
/// The longest input libFuzzer makes: a few hundred operations.
const MAX_LEN_BYTES: usize = 8192;
/// One input taking longer than this is reported as a hang (a crash).
const TIMEOUT_PER_INPUT_SECONDS: u64 = 20;

struct Options {
    seconds: u64,
    sanitizer: String,
    targets: Vec<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            seconds: DEFAULT_SECONDS,
            sanitizer: "address".into(),
            targets: Vec::new(),
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--seconds" => {
                    let value = iter.next().ok_or("--seconds needs a number")?;
                    options.seconds = value
                        .parse()
                        .map_err(|_| format!("--seconds {value}: not a number"))?;
                    if options.seconds == 0 {
                        return Err("--seconds must be at least 1".into());
                    }
                }
                "--sanitizer" => {
                    options.sanitizer = iter.next().ok_or("--sanitizer needs a name")?.clone();
                }
                other if other.starts_with('-') => {
                    return Err(format!("unknown fuzz option {other}"));
                }
                target => options.targets.push(target.to_string()),
            }
        }
        Ok(options)
    }
}

/// What one target's run gave.
struct Outcome {
    target: String,
    executions: Option<u64>,
    seconds: Option<u64>,
    exec_per_second: Option<u64>,
    new_entries: usize,
    artifact: Option<String>,
    failed: bool,
    build_failed: bool,
    log: PathBuf,
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn run_status(cmd: &mut Command) -> Result<bool, String> {
    cmd.status()
        .map(|s| s.success())
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))
}

/// The nightly toolchain (cargo-fuzz needs `-Z` sanitizer flags), installed when missing.
fn ensure_nightly() -> Result<(), String> {
    if succeeds(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])) {
        return Ok(());
    }
    eprintln!("xtask: the nightly toolchain is missing: rustup toolchain install nightly");
    let ok = run_status(Command::new("rustup").args([
        "toolchain",
        "install",
        "nightly",
        "--profile",
        "minimal",
    ]))?;
    if !ok {
        return Err(
            "could not install the nightly toolchain (rustup toolchain install nightly)".into(),
        );
    }
    Ok(())
}

/// cargo-fuzz, installed from crates.io when missing.
fn ensure_cargo_fuzz() -> Result<(), String> {
    if succeeds(Command::new("cargo").args(["fuzz", "--version"])) {
        return Ok(());
    }
    eprintln!("xtask: cargo-fuzz is missing: cargo install cargo-fuzz --locked");
    let ok = run_status(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    if !ok {
        return Err("could not install cargo-fuzz (cargo install cargo-fuzz --locked)".into());
    }
    Ok(())
}

/// The targets in `fuzz/fuzz_targets`, sorted.
fn all_targets(fuzz_dir: &Path) -> Result<Vec<String>, String> {
    let dir = fuzz_dir.join("fuzz_targets");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let path = e.path();
            let is_rs = path.extension().is_some_and(|x| x == "rs");
            let stem = path.file_stem()?.to_str()?.to_string();
            is_rs.then_some(stem)
        })
        .collect();
    names.sort();
    Ok(names)
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).count())
        .unwrap_or(0)
}

/// The number after `key` on the first line of `log` that contains it.
fn number_after(log: &str, key: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains(key))?;
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// libFuzzer's closing line: `Done 123456 runs in 61 second(s)`.
fn done_line(log: &str) -> Option<(u64, u64)> {
    let line = log.lines().rev().find(|l| l.starts_with("Done "))?;
    let mut words = line.split_whitespace().skip(1);
    let runs = words.next()?.parse().ok()?;
    let seconds = words.nth(2)?.parse().ok()?;
    Some((runs, seconds))
}

fn parse_outcome(target: &str, log_text: &str, log: PathBuf, success: bool) -> Outcome {
    let done = done_line(log_text);
    let executions =
        number_after(log_text, "stat::number_of_executed_units:").or(done.map(|(runs, _)| runs));
    let exec_per_second = number_after(log_text, "stat::average_exec_per_sec:")
        .or(done.and_then(|(runs, s)| runs.checked_div(s)));
    let artifact = log_text
        .lines()
        .find_map(|l| l.split("Test unit written to ").nth(1))
        .map(|p| p.trim().to_string());
    Outcome {
        target: target.to_string(),
        executions,
        seconds: done.map(|(_, s)| s),
        exec_per_second,
        new_entries: 0,
        failed: !success || artifact.is_some(),
        build_failed: log_text.contains("failed to build fuzz script"),
        artifact,
        log,
    }
}

/// Fuzzes one target for `options.seconds`.
fn fuzz_one(root: &Path, work: &Path, target: &str, options: &Options) -> Result<Outcome, String> {
    let seeds = root.join("fuzz").join("corpus").join(target);
    let corpus = work.join("corpus").join(target);
    let logs = work.join("logs");
    for dir in [&seeds, &corpus, &logs] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let before = count_files(&corpus);
    let log_path = logs.join(format!("{target}.log"));
    let log_file =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    eprintln!(
        "xtask: fuzzing {target} for {} s (sanitizer {}, log {})",
        options.seconds,
        options.sanitizer,
        log_path.display()
    );
    let status = Command::new("cargo")
        .current_dir(root)
        .args(["+nightly", "fuzz", "run", "--sanitizer", &options.sanitizer])
        .arg("--target-dir")
        .arg(work.join("build"))
        .arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={}", options.seconds))
        .arg(format!("-max_len={MAX_LEN_BYTES}"))
        .arg(format!("-timeout={TIMEOUT_PER_INPUT_SECONDS}"))
        .arg("-print_final_stats=1")
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .status()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut outcome = parse_outcome(target, &log_text, log_path, status.success());
    outcome.new_entries = count_files(&corpus).saturating_sub(before);
    if outcome.failed {
        let tail: Vec<&str> = log_text.lines().rev().take(40).collect();
        for line in tail.iter().rev() {
            eprintln!("  | {line}");
        }
    }
    Ok(outcome)
}

fn show(value: Option<u64>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

fn summary(outcomes: &[Outcome]) -> String {
    let mut text = String::from(
        "| target | executions | seconds | exec/s | new corpus entries | crashes |\n\
         | --- | ---: | ---: | ---: | ---: | --- |\n",
    );
    for o in outcomes {
        let crash = match (&o.artifact, o.failed) {
            (Some(path), _) => format!("1: {path}"),
            (None, true) if o.build_failed => format!("build failed, see {}", o.log.display()),
            (None, true) => format!("failed, see {}", o.log.display()),
            (None, false) => "0".into(),
        };
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            o.target,
            show(o.executions),
            show(o.seconds),
            show(o.exec_per_second),
            o.new_entries,
            crash
        ));
    }
    text
}

/// `cargo xtask fuzz [--seconds N] [--sanitizer NAME] [TARGET...]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    let workspace = crate::Workspace::load()?;
    let root = workspace.root;
    let available = all_targets(&root.join("fuzz"))?;
    let targets = if options.targets.is_empty() {
        available.clone()
    } else {
        options.targets.clone()
    };
    if let Some(unknown) = targets.iter().find(|t| !available.contains(t)) {
        return Err(format!(
            "no fuzz target {unknown} (there are: {})",
            available.join(", ")
        ));
    }
    ensure_nightly()?;
    ensure_cargo_fuzz()?;
    let work = workspace.target.join("fuzz");
    let mut outcomes = Vec::new();
    for target in &targets {
        outcomes.push(fuzz_one(&root, &work, target, &options)?);
    }
    crate::print_summary(&summary(&outcomes));
    let crashed: Vec<&Outcome> = outcomes.iter().filter(|o| o.failed).collect();
    if crashed.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = crashed
        .iter()
        .map(|o| match &o.artifact {
            Some(path) => format!(
                "{} (artifact {path}; reproduce: cargo +nightly fuzz run {} {path})",
                o.target, o.target
            ),
            None => format!("{} (log {})", o.target, o.log.display()),
        })
        .collect();
    Err(format!("fuzzing failed: {}", names.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: &str = "#1000 DONE cov: 10\nDone 14199 runs in 21 second(s)\n\
        stat::number_of_executed_units: 14199\nstat::average_exec_per_sec:     676\n\
        stat::new_units_added:          155\n";

    #[test]
    fn a_clean_run_is_parsed() {
        let o = parse_outcome("bins", CLEAN, PathBuf::from("log"), true);
        assert_eq!(
            (o.executions, o.seconds, o.exec_per_second),
            (Some(14199), Some(21), Some(676))
        );
        assert!(!o.failed && o.artifact.is_none());
    }

    #[test]
    fn a_crash_is_parsed() {
        let log = "thread panicked at src/shadow.rs:1:1:\n\
            artifact_prefix='/w/fuzz/artifacts/bins/'; Test unit written to /w/fuzz/artifacts/bins/crash-abc\n";
        let o = parse_outcome("bins", log, PathBuf::from("log"), false);
        assert_eq!(
            o.artifact.as_deref(),
            Some("/w/fuzz/artifacts/bins/crash-abc")
        );
        assert!(o.failed && o.executions.is_none());
        assert!(summary(&[o]).contains("crash-abc"));
    }

    #[test]
    fn options_are_parsed() {
        let args: Vec<String> = ["--seconds", "5", "slab", "bump"]
            .map(String::from)
            .to_vec();
        let o = Options::parse(&args).unwrap();
        assert_eq!((o.seconds, o.targets.len()), (5, 2));
        assert!(Options::parse(&["--seconds".to_string(), "0".to_string()]).is_err());
        assert!(Options::parse(&["--bogus".to_string()]).is_err());
    }
}
