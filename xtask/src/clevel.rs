//! Step 4 of `cargo xtask bench`: the C-level benchmark (`benches/c/pairs.c`) under
//! `LD_PRELOAD` with each malloc library found: glibc (no preload), heapkit's
//! `libheapkit_malloc.so` when it builds, its hardened build (`--features hardened`; a `--quick` run without a
//! `--filter` leaves it out: one more release build), the protection floor (pairs.c built
//! with `benches/c/floor.h` under the plain library: see [`FLOOR`]; a plain `--quick` times it
//! but does not count it), and Debian's jemalloc, mimalloc and tcmalloc.
//! Each is timed, and counted with callgrind (instructions per pair: noise-free) when
//! valgrind is installed. A missing library or tool is a note, never a failure.

use crate::bench::Options;
use indicatif::ProgressBar;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The libraries in report order.
pub const LIBRARIES: [&str; 7] = [
    "glibc",
    "heapkit",
    "heapkit-hardened",
    FLOOR,
    "jemalloc",
    "mimalloc",
    "tcmalloc",
];
/// heapkit's builds: (report name, cargo features, the copy's file name in the report folder).
/// The plain build comes first (and is built last).
const HEAPKIT_BUILDS: [(&str, &str, &str); 2] = [
    ("heapkit", "", "libheapkit_malloc.so"),
    (
        "heapkit-hardened",
        "hardened",
        "libheapkit_malloc_hardened.so",
    ),
];
/// The protection floor's row: pairs.c built with `benches/c/floor.h` (`-DHEAPKIT_FLOOR`: the
/// program zeroes every block before freeing it and reads every byte of each block it gets,
/// the hardened build's zero on free and zero check done by the program) under
/// [`FLOOR_BASE`]'s library. A lower bound of what those two protections cost the hardened
/// build; issue #23.
pub const FLOOR: &str = "heapkit-floor";
/// The library the floor runs under, its reference: the plain build. A run that wants the
/// floor measures it too, in the same interleaved rounds, so that their ratio is one run's.
pub const FLOOR_BASE: &str = "heapkit";
/// The `gcc` define that turns the floor on in `benches/c/bench.h`.
const FLOOR_DEFINE: &str = "-DHEAPKIT_FLOOR";

/// Debian's peer libraries: (report name, package, file names to look for).
const PEERS: [(&str, &str, &[&str]); 3] = [
    ("jemalloc", "libjemalloc2", &["libjemalloc.so.2"]),
    (
        "mimalloc",
        "libmimalloc2.0",
        &["libmimalloc.so.2.0", "libmimalloc.so.2"],
    ),
    (
        "tcmalloc",
        "libtcmalloc-minimal4",
        &["libtcmalloc_minimal.so.4"],
    ),
];
/// Where Debian and Ubuntu put shared libraries.
const LIB_DIRS: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib",
];
/// The modes of pairs.c, with the block size each uses, in report order.
pub const MODES: [(&str, usize); 5] = [
    ("pair", 32),
    ("lifo", 32),
    ("mixed", 16),
    ("prodcons", 64),
    ("larson", 16),
];

/// What step 4 will do: the libraries found, the tools, and the notes on what is missing.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// (report name, preload path; None for glibc).
    pub libraries: Vec<(String, Option<PathBuf>)>,
    /// The compiled benchmark, when gcc worked.
    pub binary: Option<PathBuf>,
    /// The benchmark compiled with the floor ([`FLOOR`]), when the run wants it and gcc worked.
    pub floor_binary: Option<PathBuf>,
    /// Whether the floor's row is counted with callgrind too: not in a plain `--quick` (CI's
    /// smoke run), where its ten callgrind runs would be most of its cost; timed, it still
    /// shows that floor.h builds and runs.
    pub floor_counted: bool,
    /// Whether valgrind is installed.
    pub callgrind: bool,
    /// Timed operations per run.
    pub timed_ops: u64,
    /// Timed runs per library and mode (the report gives their median).
    pub timed_rounds: usize,
    /// Operations per callgrind run (the second run does twice as many).
    pub counted_ops: u64,
    /// The modes to run.
    pub modes: Vec<(String, usize)>,
    /// Why something is not measured.
    pub notes: Vec<String>,
}

impl Plan {
    /// Progress steps: one per (library, mode) that has a program to run.
    pub fn steps(&self) -> usize {
        let runnable = self
            .libraries
            .iter()
            .filter(|(name, _)| self.binary_for(name).is_some())
            .count();
        runnable * self.modes.len()
    }

    /// Whether a library's row gets instruction counts.
    pub fn counts(&self, library: &str) -> bool {
        self.callgrind && (library != FLOOR || self.floor_counted)
    }

    /// The program a library's row runs: the floor's build for [`FLOOR`], pairs.c otherwise.
    pub fn binary_for(&self, library: &str) -> Option<&Path> {
        if library == FLOOR {
            self.floor_binary.as_deref()
        } else {
            self.binary.as_deref()
        }
    }

    /// Adds the floor's row when the plain library is in the plan: pairs.c compiled again with
    /// the floor, preloaded with the plain library. Without the library there is nothing to
    /// measure the floor over (its note is already in `notes`).
    fn add_floor(&mut self, workspace: &crate::Workspace) {
        let Some(preload) = self
            .libraries
            .iter()
            .find(|(name, _)| name == FLOOR_BASE)
            .map(|(_, preload)| preload.clone())
        else {
            return;
        };
        self.floor_binary = compile_as(
            workspace,
            "pairs",
            "pairs-floor",
            &[FLOOR_DEFINE],
            &mut self.notes,
        );
        if self.floor_binary.is_some() {
            self.libraries.push((FLOOR.to_string(), preload));
        }
    }
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

fn find_library(files: &[&str]) -> Option<PathBuf> {
    LIB_DIRS
        .iter()
        .flat_map(|dir| files.iter().map(move |f| Path::new(dir).join(f)))
        .find(|p| p.exists())
}

fn is_root() -> bool {
    // xtask has no libc dependency for geteuid: ask `id`.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Installs the missing peer packages once, quietly, when running as root.
fn install_peers(missing: &[&str], notes: &mut Vec<String>) {
    if missing.is_empty() {
        return;
    }
    if !is_root() {
        notes.push(format!(
            "not root: install {} to compare with them",
            missing.join(" ")
        ));
        return;
    }
    eprintln!(
        "xtask bench: installing {} (apt-get, once)",
        missing.join(" ")
    );
    let install = || {
        succeeds(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    // A fresh machine has no package lists yet: update once, then try again.
    let installed =
        install() || (succeeds(Command::new("apt-get").args(["update", "-q"])) && install());
    if !installed {
        notes.push(format!("apt-get could not install {}", missing.join(" ")));
    }
}

/// Builds `libheapkit_malloc.so` with `features` when the heapkit-malloc package exists and
/// builds, and copies it to the report folder as `file` (each build overwrites the one in
/// `target/release`, so the copy keeps it).
fn heapkit_library(
    workspace: &crate::Workspace,
    features: &str,
    file: &str,
    notes: &mut Vec<String>,
) -> Option<PathBuf> {
    if !workspace.root.join("crates/malloc/Cargo.toml").exists() {
        notes.push(
            "heapkit-malloc: not in the workspace yet (crates/malloc/Cargo.toml missing)".into(),
        );
        return None;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--quiet", "-p", "heapkit-malloc"])
        .current_dir(&workspace.root);
    if !features.is_empty() {
        build.args(["--features", features]);
    }
    let built = workspace
        .target
        .join("release")
        .join("libheapkit_malloc.so");
    let copy = workspace.target.join("heapkit-report").join(file);
    let copied = succeeds(&mut build)
        && std::fs::create_dir_all(workspace.target.join("heapkit-report")).is_ok()
        && std::fs::copy(&built, &copy).is_ok();
    if copied {
        Some(copy)
    } else {
        notes.push(format!("heapkit-malloc: `cargo build --release -p heapkit-malloc --features '{features}'` did not produce libheapkit_malloc.so"));
        None
    }
}

/// The libraries `wanted` names, in report order (glibc, heapkit, then the peers), installing
/// missing peers first when running as root; what cannot be had becomes a note.
pub fn libraries(
    workspace: &crate::Workspace,
    wanted: impl Fn(&str) -> bool,
    notes: &mut Vec<String>,
) -> Vec<(String, Option<PathBuf>)> {
    let mut libraries = Vec::new();
    let missing: Vec<&str> = PEERS
        .iter()
        .filter(|(name, _, files)| wanted(name) && find_library(files).is_none())
        .map(|(_, package, _)| *package)
        .collect();
    install_peers(&missing, notes);
    if wanted("glibc") {
        libraries.push(("glibc".into(), None));
    }
    // Built last to first, so that the plain build is the one left in target/release.
    let mut built: Vec<(String, Option<PathBuf>)> = HEAPKIT_BUILDS
        .iter()
        .rev()
        .filter(|(name, _, _)| wanted(name))
        .filter_map(|(name, features, file)| {
            heapkit_library(workspace, features, file, notes).map(|p| (name.to_string(), Some(p)))
        })
        .collect();
    built.reverse();
    libraries.extend(built);
    for (name, package, files) in PEERS {
        if !wanted(name) {
            continue;
        }
        match find_library(files) {
            Some(path) => libraries.push((name.into(), Some(path))),
            None => notes.push(format!("{name}: {package} is not installed; skipped")),
        }
    }
    libraries
}

/// Compiles the C benchmark `benches/c/NAME.c` into the report folder; None (and a note) when
/// gcc fails.
pub fn compile(
    workspace: &crate::Workspace,
    name: &str,
    notes: &mut Vec<String>,
) -> Option<PathBuf> {
    compile_as(workspace, name, name, &[], notes)
}

/// Compiles `benches/c/NAME.c` with the extra gcc `flags` into the report folder as `binary`;
/// None (and a note) when gcc fails.
fn compile_as(
    workspace: &crate::Workspace,
    name: &str,
    binary: &str,
    flags: &[&str],
    notes: &mut Vec<String>,
) -> Option<PathBuf> {
    let source = workspace.root.join("benches/c").join(format!("{name}.c"));
    let binary = workspace.target.join("heapkit-report").join(binary);
    if succeeds(
        Command::new("gcc")
            .args(["-O2", "-pthread"])
            .args(flags)
            .arg("-o")
            .arg(&binary)
            .arg(&source),
    ) {
        Some(binary)
    } else {
        notes.push(format!(
            "gcc could not compile {}: no results from it",
            source.display()
        ));
        None
    }
}

/// Whether `library` fits the run: the hardened library costs one more release build, so a
/// plain `--quick` (CI's smoke run) leaves it out; a quick run with a filter
/// (`--quick --filter heapkit`) includes it.
pub fn affordable(options: &Options, library: &str) -> bool {
    !(options.quick && options.filter.is_none() && library.ends_with("-hardened"))
}

/// Finds (and if needed installs) the libraries and tools, and compiles pairs.c.
pub fn plan(workspace: &crate::Workspace, options: &Options) -> Plan {
    let mut plan = Plan {
        timed_ops: if options.quick { 1_000_000 } else { 5_000_000 },
        timed_rounds: if options.quick { 3 } else { 7 },
        counted_ops: if options.quick { 20_000 } else { 100_000 },
        modes: MODES.iter().map(|(m, s)| (m.to_string(), *s)).collect(),
        floor_counted: !(options.quick && options.filter.is_none()),
        ..Plan::default()
    };
    let floor_wanted = options.wants(&format!("c/{FLOOR}")) && affordable(options, FLOOR);
    // The floor's reference comes with it, whatever the filter says of the plain library.
    let wanted = |name: &str| {
        (options.wants(&format!("c/{name}")) || (name == FLOOR_BASE && floor_wanted))
            && affordable(options, name)
    };
    plan.libraries = libraries(workspace, wanted, &mut plan.notes);
    plan.binary = compile(workspace, "pairs", &mut plan.notes);
    if floor_wanted {
        plan.add_floor(workspace);
    }
    plan.callgrind = callgrind_installed();
    if !plan.callgrind {
        plan.notes
            .push("valgrind is not installed: no instruction counts".into());
    }
    plan
}

fn command(binary: &Path, preload: &Option<PathBuf>, mode: &str, size: usize, ops: u64) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args([mode, &size.to_string(), &ops.to_string()]);
    if let Some(lib) = preload {
        cmd.env("LD_PRELOAD", lib);
    }
    cmd
}

/// ns per pair from one timed run.
fn timed(
    binary: &Path,
    preload: &Option<PathBuf>,
    mode: &str,
    size: usize,
    ops: u64,
) -> Option<f64> {
    let out = command(binary, preload, mode, size, ops).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().strip_prefix("ns_per_op=")?.parse().ok()
}

/// Instructions in one callgrind run (callgrind's "Collected" total).
fn instructions(
    binary: &Path,
    preload: &Option<PathBuf>,
    mode: &str,
    size: usize,
    ops: u64,
) -> Option<u64> {
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(binary)
        .args([mode, &size.to_string(), &ops.to_string()]);
    if let Some(lib) = preload {
        cmd.env("LD_PRELOAD", lib);
    }
    let out = cmd.output().ok()?;
    parse_collected(&String::from_utf8_lossy(&out.stderr))
}

/// Whether valgrind (and so callgrind) can be run.
pub fn callgrind_installed() -> bool {
    succeeds(Command::new("valgrind").arg("--version"))
}

/// Reads "==123== Collected : 4567" from callgrind's output.
pub fn parse_collected(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
}

/// Runs the plan: one result per (library, mode); notes carried along.
///
/// Each mode is timed `timed_rounds` times, the libraries taking turns within a round, so that
/// a burst of noise from the shared machine lands on every library alike; the result keeps the
/// median (the figure reported), the fastest run and every sample. pairs.c pins the two
/// threads of the two-thread modes to two CPUs; before it did, where the scheduler put them
/// decided a run, and single runs of the same library differed several-fold.
pub fn run(plan: &Plan, bar: &ProgressBar) -> Value {
    let mut results = Vec::new();
    for (mode, size) in &plan.modes {
        let samples = timed_rounds(plan, mode, *size);
        for ((name, preload), samples) in plan.libraries.iter().zip(samples) {
            let Some(binary) = plan.binary_for(name) else {
                continue;
            };
            crate::bench::step(bar, format!("C level: {mode} under {name}"));
            let instructions_per_op = if plan.counts(name) {
                let once = instructions(binary, preload, mode, *size, plan.counted_ops);
                let twice = instructions(binary, preload, mode, *size, 2 * plan.counted_ops);
                once.zip(twice)
                    .map(|(a, b)| b.saturating_sub(a) as f64 / plan.counted_ops as f64)
            } else {
                None
            };
            results.push(json!({
                "library": name,
                "preload": preload.as_ref().map(|p| p.display().to_string()),
                "mode": mode,
                "size_bytes": size,
                "ns_per_op": median(&samples),
                "ns_per_op_min": samples.iter().copied().reduce(f64::min),
                "ns_per_op_samples": samples,
                "instructions_per_op": instructions_per_op,
            }));
            bar.inc(1);
        }
    }
    json!({ "results": results, "notes": plan.notes })
}

/// The timed samples of one mode: per library (in plan order), one ns-per-op figure per round
/// in which the run succeeded.
fn timed_rounds(plan: &Plan, mode: &str, size: usize) -> Vec<Vec<f64>> {
    let mut samples = vec![Vec::new(); plan.libraries.len()];
    for _ in 0..plan.timed_rounds {
        for ((name, preload), library_samples) in plan.libraries.iter().zip(samples.iter_mut()) {
            if let Some(binary) = plan.binary_for(name) {
                library_samples.extend(timed(binary, preload, mode, size, plan.timed_ops));
            }
        }
    }
    samples
}

/// The median of `samples` (the mean of the middle two for an even count); None when empty.
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 100.0]), Some(3.0));
    }

    #[test]
    fn the_floor_row_runs_its_own_build_over_the_plain_library() {
        let plain = Some(PathBuf::from("/report/libheapkit_malloc.so"));
        let mut plan = Plan {
            libraries: vec![
                ("glibc".into(), None),
                (FLOOR_BASE.into(), plain.clone()),
                (FLOOR.into(), plain),
            ],
            binary: Some(PathBuf::from("/report/pairs")),
            modes: vec![("pair".into(), 32), ("mixed".into(), 16)],
            ..Plan::default()
        };
        // Without the floor's build its row has nothing to run and takes no step.
        assert_eq!(plan.steps(), 4);
        assert_eq!(plan.binary_for(FLOOR), None);
        plan.floor_binary = Some(PathBuf::from("/report/pairs-floor"));
        assert_eq!(plan.steps(), 6);
        assert_eq!(
            plan.binary_for(FLOOR),
            Some(Path::new("/report/pairs-floor"))
        );
        assert_eq!(plan.binary_for("glibc"), Some(Path::new("/report/pairs")));
        // Counted with callgrind unless the run says otherwise (a plain --quick).
        plan.callgrind = true;
        assert!(plan.counts(FLOOR_BASE) && !plan.counts(FLOOR));
        plan.floor_counted = true;
        assert!(plan.counts(FLOOR));
        // The report orders it right after the hardened build.
        let at = |name: &str| LIBRARIES.iter().position(|l| *l == name);
        assert_eq!(at(FLOOR), at("heapkit-hardened").map(|i| i + 1));
    }

    #[test]
    fn callgrind_totals_are_read() {
        let text =
            "==7== Events    : Ir\n==7== Collected : 123456\n==7==\n==7== I   refs:      123,456";
        assert_eq!(parse_collected(text), Some(123_456));
        assert_eq!(parse_collected("nothing here"), None);
    }
}
