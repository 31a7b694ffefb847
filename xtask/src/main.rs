//! `cargo xtask`: heapkit's project tasks.
//!
//! - `cargo xtask bench [--quick] [--filter TEXT] [--save-baseline NAME] [--baseline NAME]
//!   [--all-crates]` builds and runs the cross-crate criterion suite (`benches/`; with
//!   `--all-crates` also the per-crate suites kept there), the latency and RSS probes, the C-level
//!   `LD_PRELOAD` benchmark and the OS-facing workloads (`benches/c/stress.c`), then writes `target/heapkit-report/report.md`, `results.json`
//!   and SVG plots and prints the summary tables.
//! - `cargo xtask replay TRACE... [--allocators LIST] [--threads original|1] [--lenient]
//!   [--no-touch] [--no-instructions]` replays recorded allocation traces (`HEAPKIT_TRACE`)
//!   through every allocator into `target/heapkit-report/replay/`, with callgrind's instruction
//!   counts where valgrind is installed.
//! - `cargo xtask miri [-p CRATE]...` runs the Miri-capable crates' tests under Miri on the
//!   nightly toolchain, installing the `miri` and `rust-src` components when they are missing.
//! - `cargo xtask asan [-p CRATE]... [-- TEST-ARGS]` runs the allocator crates' tests under
//!   AddressSanitizer (nightly, `-Zbuild-std`), installing `rust-src` when it is missing.
//! - `cargo xtask fuzz [--seconds N] [--sanitizer NAME] [TARGET]...` runs every cargo-fuzz
//!   target in `fuzz/` for N seconds (default 60) each and prints executions, exec/s, new corpus
//!   entries and crashes, installing cargo-fuzz and the nightly toolchain when missing.
//! - `cargo xtask docs` checks the book in `docs/` (chapters, pictures, capture markers, the
//!   worked example), builds and tests `docs/programs`, checks the pictures are current, and
//!   builds the HTML book with mdBook when it is installed (it installs nothing).
//! - `cargo xtask heapmap [DIR]` re-draws the book's SVG pictures (default `docs/images`).

mod asan;
mod bench;
mod clevel;
mod codemap;
mod docs;
mod fuzz;
mod miri;
mod plots;
mod probes;
mod replay;
mod report;
mod stress;

use std::process::ExitCode;

const USAGE: &str = "usage:
  cargo xtask bench [--quick] [--filter TEXT] [--save-baseline NAME] [--baseline NAME] [--all-crates]
  cargo xtask replay TRACE... [--allocators LIST] [--threads original|1] [--lenient] [--no-touch] [--no-instructions]
  cargo xtask miri [-p CRATE]...
  cargo xtask asan [-p CRATE]... [-- TEST-ARGS]   (tests under AddressSanitizer, nightly)
  cargo xtask fuzz [--seconds N] [--sanitizer NAME] [TARGET]...   (cargo-fuzz targets in fuzz/, nightly)
  cargo xtask report [--baseline NAME]   (rebuild the report from the last run's results)
  cargo xtask docs              (check the book in docs/; build it with mdBook if installed)
  cargo xtask heapmap [DIR]     (re-draw the book's pictures, default docs/images)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("replay") => replay::run(&args[1..]),
        Some("miri") => miri::run(&args[1..]),
        Some("asan") => asan::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("docs") => docs::run(&args[1..]),
        Some("heapmap") => docs::heapmap(&args[1..]),
        Some("report") => bench::Options::parse(&args[1..])
            .and_then(|options| report::write_from_target(&options))
            .map(|summary| print_summary(&summary)),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the summary; a closed pipe (`| head`) is not an error worth a panic.
pub fn print_summary(summary: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{summary}");
}

/// The workspace's root and target directories, from `cargo metadata`.
pub struct Workspace {
    /// The folder holding the root Cargo.toml.
    pub root: std::path::PathBuf,
    /// Where cargo builds (honours CARGO_TARGET_DIR).
    pub target: std::path::PathBuf,
    /// Every package's name with the names of its bench targets.
    pub benches: Vec<(String, Vec<String>)>,
}

impl Workspace {
    /// Reads the workspace layout with `cargo metadata --no-deps`.
    pub fn load() -> Result<Workspace, String> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        let mut benches = Vec::new();
        for package in meta["packages"].as_array().into_iter().flatten() {
            let names: Vec<String> = package["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bench"))
                })
                .map(|t| text(&t["name"]))
                .collect();
            if !names.is_empty() {
                benches.push((text(&package["name"]), names));
            }
        }
        benches.sort();
        Ok(Workspace {
            root: text(&meta["workspace_root"]).into(),
            target: text(&meta["target_directory"]).into(),
            benches,
        })
    }
}
