//! heapkit-malloc's static library, `libheapkit_malloc.a`, linked into C and C++ programs.
//!
//! Each program is built twice from the same source — once plain (glibc's malloc) and once
//! with the archive on its link line — and both runs must print the same thing and exit the
//! same way. Then the heapkit build must prove that heapkit really served it: the allocation
//! symbols are defined in the binary's own text (not imported from libc or libstdc++), the
//! dynamic ones are exported so that libc's and libstdc++'s internal calls reach them too,
//! `malloc_usable_size` reports heapkit's size classes, and the archive's constructor ran
//! (`HEAPKIT_SHOW_STATS=1` prints heapkit's statistics at exit).
//!
//! Vocabulary:
//! - **archive**: `libheapkit_malloc.a`, from the same release build as the preload `.so`
//!   (`support::heapkit_static_library`; the crate's types include `staticlib`).
//! - **link**: how a program is linked: [`Link::Glibc`] (no archive), [`Link::Archive`] (a
//!   dynamically linked program with the archive in it, the usual case) or
//!   [`Link::FullyStatic`] (`-static`: glibc's own `libc.a`, whose malloc must not clash).
//!
//! ```text
//!   tests/c/prog.c ─ gcc ──────────────────────────────────────────► prog (glibc)  ─┐ same
//!   tests/c/prog.c ─ gcc prog.c libheapkit_malloc.a NATIVE_LIBS ───► prog (heapkit) ─┤ output
//!   tests/c/prog.c ─ gcc -static prog.c libheapkit_malloc.a … ─────► prog (static)  ─┘
//!                                                     nm: `T malloc`, usable sizes, stats
//! ```

#![cfg(all(target_os = "linux", not(miri)))]

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use support::text;

use support::{assert_defined_in_text, symbols, NATIVE_LIBS, NATIVE_LIBS_STATIC};

/// A 17-byte block's usable size under glibc (a 32-byte chunk less its 8-byte header) and
/// under heapkit (its 17..32-byte size class): `cxx_forms.cpp usable` prints one per source.
const GLIBC_USABLE_17: &str = "24";
const HEAPKIT_USABLE_17: &str = "32";

/// The C allocation functions the archive defines; every one must be in the binary's text.
const C_SYMBOLS: &[&str] = &[
    "malloc",
    "free",
    "calloc",
    "realloc",
    "reallocarray",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "malloc_usable_size",
];

/// The C++ operators `cxx_forms.cpp` calls (Itanium names): plain, array, nothrow, sized and
/// aligned new and delete.
const CXX_SYMBOLS: &[&str] = &[
    "_Znwm",
    "_Znam",
    "_ZnwmRKSt9nothrow_t",
    "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t",
    "_ZdlPv",
    "_ZdaPv",
    "_ZdlPvm",
    "_ZdaPvm",
    "_ZdlPvRKSt9nothrow_t",
    "_ZdaPvRKSt9nothrow_t",
    "_ZdlPvSt11align_val_t",
    "_ZdaPvSt11align_val_t",
    "_ZdlPvmSt11align_val_t",
    "_ZdaPvmSt11align_val_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t",
    "_ZdaPvSt11align_val_tRKSt9nothrow_t",
];

/// How a test program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Link {
    /// No archive: glibc's malloc, the reference run.
    Glibc,
    /// A dynamically linked program with the archive on its link line after the program.
    Archive,
    /// `-static`: the archive, then glibc's `libc.a`.
    FullyStatic,
}

impl Link {
    /// The work folder for this link's binaries (one per link: a binary is named after its
    /// source).
    fn dir(self) -> PathBuf {
        support::work_dir(match self {
            Link::Glibc => "staticlib/glibc",
            Link::Archive => "staticlib/archive",
            Link::FullyStatic => "staticlib/fully-static",
        })
    }
}

/// The release libheapkit_malloc.a, built once per test run (shared with the preload tests'
/// build: see `support::heapkit_artifact`).
fn archive() -> &'static Path {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| support::heapkit_static_library(&[]))
}

/// Compiles `tests/c/<source>` at -O1 and links it the `link` way, once per test run: tests
/// running in parallel share a binary instead of writing the same file at once.
fn build(source: &'static str, link: Link) -> PathBuf {
    type Builds = HashMap<(&'static str, Link), Arc<OnceLock<PathBuf>>>;
    static BUILDS: Mutex<Option<Builds>> = Mutex::new(None);
    let once = {
        let mut builds = BUILDS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let builds = builds.get_or_insert_with(HashMap::new);
        Arc::clone(builds.entry((source, link)).or_default())
    };
    // Only this program's build waits here; other programs build in parallel.
    once.get_or_init(|| compile_and_link(source, link)).clone()
}

/// The link line: the program, then the archive, then the system libraries. The archive comes
/// after the program because a linker takes from an archive only what is undefined when it
/// reaches it (see `an_archive_before_the_program_is_ignored`).
fn compile_and_link(source: &str, link: Link) -> PathBuf {
    let archive = archive().to_str().expect("a UTF-8 target path");
    let (flags, extra): (&[&str], Vec<&str>) = match link {
        Link::Glibc => (&["-O1"], Vec::new()),
        Link::Archive => (&["-O1"], [&[archive][..], NATIVE_LIBS].concat()),
        Link::FullyStatic => (
            &["-O1", "-static"],
            [&[archive][..], NATIVE_LIBS_STATIC].concat(),
        ),
    };
    support::compile_with(&link.dir(), source, flags, &extra)
}

/// Runs `binary` with `args`, the environment cleared of heapkit's options unless `stats`.
fn run(binary: &Path, args: &[&str], stats: bool) -> Output {
    let mut command = Command::new(binary);
    command.args(args);
    if stats {
        command.env("HEAPKIT_SHOW_STATS", "1");
    } else {
        command.env_remove("HEAPKIT_SHOW_STATS");
    }
    support::run(command, None)
}

/// Builds `source` plain and with the archive linked the `link` way, requires both runs to end
/// the same, requires the heapkit binary to define `symbols` in its text, and returns the
/// output.
fn same_as_glibc(source: &'static str, link: Link, symbols: &[&str]) -> String {
    let reference = build(source, Link::Glibc);
    let linked = build(source, link);
    let what = format!("{source} ({link:?})");
    let output = support::assert_same_as_glibc(
        &what,
        &run(&reference, &[], false),
        &run(&linked, &[], false),
    );
    assert_defined_in_text(&linked, symbols, link == Link::Archive);
    output
}

/// The usable sizes `cxx_forms.cpp usable` prints, one `(source, bytes)` per line.
fn usable_sizes(binary: &Path) -> Vec<(String, String)> {
    let output = run(binary, &["usable"], false);
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
        .lines()
        .map(|line| {
            let (source, bytes) = line.rsplit_once(' ').expect("`source bytes` lines");
            (source.to_string(), bytes.to_string())
        })
        .collect()
}

#[test]
fn every_function_and_edge_case_behaves_as_glibc() {
    let output = same_as_glibc("edge.c", Link::Archive, C_SYMBOLS);
    assert!(output.contains("0 failures"), "{output}");
}

#[test]
fn every_function_and_edge_case_fully_static() {
    let output = same_as_glibc("edge.c", Link::FullyStatic, C_SYMBOLS);
    assert!(output.contains("0 failures"), "{output}");
}

#[test]
fn threads_producer_consumer_and_churn() {
    same_as_glibc("threads.c", Link::Archive, &["malloc", "free", "realloc"]);
}

#[test]
fn threads_fully_static() {
    same_as_glibc(
        "threads.c",
        Link::FullyStatic,
        &["malloc", "free", "realloc"],
    );
}

#[test]
fn fork_handlers_come_with_the_archive() {
    // The fork handlers are registered by the archive's constructor (an `.init_array` entry
    // in the same object as `malloc`, so linking `malloc` in brings it along).
    let output = same_as_glibc("fork.c", Link::Archive, &["malloc", "free"]);
    assert!(output.contains("200 of 200"), "{output}");
}

#[test]
fn cxx_operators_in_every_form() {
    for link in [Link::Archive, Link::FullyStatic] {
        let output = same_as_glibc("cxx_forms.cpp", link, CXX_SYMBOLS);
        assert!(output.contains("0 failures"), "{output}");
    }
}

#[test]
fn cxx_containers_and_aligned_types() {
    same_as_glibc("cxx.cpp", Link::Archive, &["_Znwm", "_ZdlPvm"]);
}

#[test]
fn heapkit_serves_the_program_libc_and_libstdcxx() {
    let glibc = usable_sizes(&build("cxx_forms.cpp", Link::Glibc));
    assert!(
        glibc.iter().all(|(_, bytes)| bytes == GLIBC_USABLE_17),
        "glibc's usable sizes changed, so they no longer tell the allocators apart: {glibc:?}"
    );
    for link in [Link::Archive, Link::FullyStatic] {
        let heapkit = usable_sizes(&build("cxx_forms.cpp", link));
        assert_eq!(heapkit.len(), glibc.len(), "{heapkit:?}");
        for (source, bytes) in &heapkit {
            assert_eq!(
                bytes, HEAPKIT_USABLE_17,
                "{source} was not served by heapkit ({link:?}): {heapkit:?}"
            );
        }
    }
}

#[test]
fn the_archive_constructor_runs() {
    for link in [Link::Archive, Link::FullyStatic] {
        let binary = build("cxx_forms.cpp", link);
        let output = run(&binary, &[], true);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let stderr = text(&output.stderr);
        assert!(
            stderr.starts_with("heapkit[") && stderr.contains("]: held by the program: "),
            "no statistics at exit ({link:?}): {stderr:?}"
        );
    }
}

#[test]
fn an_archive_before_the_program_is_ignored() {
    // Why the link line puts the archive after the program: scanned first, it has nothing to
    // resolve yet, nothing of it is taken, and the program silently runs on glibc's malloc.
    // This guards the documented order (and the checks above that catch a wrong one).
    let dir = support::work_dir("staticlib/wrong-order");
    let binary = dir.join("whose_malloc");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/probes/whose_malloc.c");
    let status = Command::new("gcc")
        .args(["-O1", "-w", "-o"])
        .arg(&binary)
        .arg(archive())
        .arg(&source)
        .status()
        .expect("run gcc");
    assert!(status.success(), "linking whose_malloc.c failed");
    let output = text(&run(&binary, &[], false).stdout);
    assert_eq!(
        output.trim(),
        format!("malloc_usable_size(malloc(17)) = {GLIBC_USABLE_17}")
    );
    assert!(!symbols(&binary, false).contains(" T malloc\n"));
}
