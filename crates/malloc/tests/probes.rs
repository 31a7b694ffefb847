//! Security probes, Valgrind and out-of-memory runs of the C library.
//!
//! - **probes**: one C program per heap fault (`tests/c/probes/*.c`), each run under every
//!   library of [`LIBRARIES`] and classified: *detected* (the allocator aborted, with a message),
//!   *crashed* (another signal), or *undetected* (the program finished and says what the fault
//!   did). The table is printed (`cargo test -p heapkit-malloc --test probes -- --nocapture`)
//!   and written to `CARGO_TARGET_TMPDIR/probes/table.md`; docs/security.md quotes it.
//! - **valgrind**: the C test programs under memcheck with heapkit preloaded must run clean.
//! - **oom**: `probes/oom.c` under a capped address space: every allocation function fails with
//!   NULL and ENOMEM, the program goes on, and nothing is lost.

#![cfg(all(target_os = "linux", not(miri)))]

mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::{compile, run, text, work_dir, Library, HEAPKIT};

/// The libraries the probes run under, one table column each. Adding a build is one line.
const LIBRARIES: &[Library] = &[
    Library::Glibc,
    HEAPKIT,
    Library::Heapkit {
        column: "heapkit checked",
        features: &["heapkit-slab/checked", "heapkit-tcache/checked"],
    },
    Library::Heapkit {
        column: "heapkit secure",
        features: &["secure"],
    },
    Library::Heapkit {
        column: "heapkit hardened",
        features: &["hardened"],
    },
    Library::System {
        column: "jemalloc 5.3",
        path: "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    },
    Library::System {
        column: "mimalloc 2.0",
        path: "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
    },
];

/// The fault probes, in table order: (source in tests/c/probes, row label, arguments). A
/// probe that takes a block size runs once per size.
const PROBES: &[(&str, &str, &[&str])] = &[
    ("double_free.c", "double free", &[]),
    ("interior_free.c", "free of an interior pointer", &[]),
    (
        "neighbour_free.c",
        "free of a block never handed out (4 KiB)",
        &[],
    ),
    ("stack_free.c", "free of a stack address", &[]),
    ("static_free.c", "free of a static address", &[]),
    ("overflow.c", "overflow by 8 bytes into the next block", &[]),
    (
        "canary_overflow.c",
        "overflow by 1 byte ('\\0') past the end, 8 B",
        &["8", "1"],
    ),
    (
        "canary_overflow.c",
        "overflow by 1 byte ('\\0') past the end, 4 KiB",
        &["4096", "1"],
    ),
    (
        "canary_overflow.c",
        "overflow by 32 bytes past the end, 8 B",
        &["8", "32"],
    ),
    (
        "canary_overflow.c",
        "overflow by 32 bytes past the end, 4 KiB",
        &["4096", "32"],
    ),
    (
        "canary_overflow.c",
        "overflow by memcpy 32 bytes past the end, 8 B",
        &["8", "memcpy"],
    ),
    (
        "canary_overflow.c",
        "overflow by memcpy 32 bytes past the end, 4 KiB",
        &["4096", "memcpy"],
    ),
    (
        "canary_underflow.c",
        "underflow by 1 byte before the start, 8 B",
        &["8", "1"],
    ),
    (
        "canary_underflow.c",
        "underflow by 1 byte before the start, 4 KiB",
        &["4096", "1"],
    ),
    (
        "canary_underflow.c",
        "underflow by 8 bytes before the start, 8 B",
        &["8", "8"],
    ),
    (
        "canary_underflow.c",
        "underflow by 8 bytes before the start, 4 KiB",
        &["4096", "8"],
    ),
    (
        "mismatched_free.cpp",
        "delete of a new[] block, 8 B",
        &["delete-new[]", "8"],
    ),
    (
        "mismatched_free.cpp",
        "delete of a new[] block, 4 KiB",
        &["delete-new[]", "4096"],
    ),
    (
        "mismatched_free.cpp",
        "delete of a new[] block, 256 KiB",
        &["delete-new[]", "262144"],
    ),
    (
        "mismatched_free.cpp",
        "delete[] of a new block, 8 B",
        &["delete[]-new", "8"],
    ),
    (
        "mismatched_free.cpp",
        "delete[] of a new block, 4 KiB",
        &["delete[]-new", "4096"],
    ),
    (
        "mismatched_free.cpp",
        "delete[] of a new block, 256 KiB",
        &["delete[]-new", "262144"],
    ),
    (
        "mismatched_free.cpp",
        "free of a new block, 8 B",
        &["free-new", "8"],
    ),
    (
        "mismatched_free.cpp",
        "free of a new block, 4 KiB",
        &["free-new", "4096"],
    ),
    (
        "mismatched_free.cpp",
        "free of a new block, 256 KiB",
        &["free-new", "262144"],
    ),
    (
        "mismatched_free.cpp",
        "realloc of a new block, 256 KiB",
        &["realloc-new", "262144"],
    ),
    ("use_after_free.c", "use after free", &[]),
    ("freelist_overwrite.c", "free-list pointer overwrite", &[]),
    ("zero_size.c", "write through malloc(0)'s pointer", &[]),
    ("write_after_free.c", "write after free, 8 B", &["8"]),
    ("write_after_free.c", "write after free, 4 KiB", &["4096"]),
    (
        "write_after_free.c",
        "write after free, then malloc_trim, 8 B",
        &["8", "trim"],
    ),
    (
        "write_after_free.c",
        "write after free, 256 KiB",
        &["262144"],
    ),
    ("reuse.c", "free then malloc of the same size, 8 B", &["8"]),
    (
        "reuse.c",
        "free then malloc of the same size, 4 KiB",
        &["4096"],
    ),
    (
        "reuse.c",
        "free then malloc of the same size, 256 KiB",
        &["262144"],
    ),
    (
        "sized_delete.cpp",
        "sized delete with a wrong size, 8 B",
        &["8"],
    ),
    (
        "sized_delete.cpp",
        "sized delete with a wrong size, 4 KiB",
        &["4096"],
    ),
    (
        "sized_delete.cpp",
        "sized delete with a wrong size, 256 KiB",
        &["262144"],
    ),
    // Large blocks against guard pages, and the C++ faces of overflow and use after free.
    (
        "large_overflow.c",
        "overflow past a 256 KiB block by 1 byte",
        &["262144", "1"],
    ),
    (
        "large_overflow.c",
        "overflow past a 256 KiB block by 32 bytes",
        &["262144", "32"],
    ),
    (
        "large_overflow.c",
        "overflow past a 256 KiB + 1 block by 32 bytes",
        &["262145", "32"],
    ),
    (
        "large_overflow.c",
        "overflow past a 256 KiB block aligned to 64 KiB by 1 byte",
        &["262144", "1", "over", "65536"],
    ),
    (
        "large_overflow.c",
        "underflow before a 256 KiB block by 1 byte",
        &["262144", "1", "under"],
    ),
    (
        "large_overflow.c",
        "underflow before a 256 KiB block by 32 bytes",
        &["262144", "32", "under"],
    ),
    (
        "cxx_faults.cpp",
        "C++ overflow past new char[256 KiB] by 1 byte",
        &["overflow-array", "262144"],
    ),
    (
        "cxx_faults.cpp",
        "C++ overflow past operator new(256 KiB) by 1 byte",
        &["overflow-new", "262144"],
    ),
    (
        "cxx_faults.cpp",
        "C++ overflow past new char[8] by 1 byte",
        &["overflow-array", "8"],
    ),
    (
        "cxx_faults.cpp",
        "C++ overflow past new char[4 KiB] by 1 byte",
        &["overflow-array", "4096"],
    ),
    (
        "cxx_faults.cpp",
        "C++ write after delete[], 256 KiB",
        &["uaf-array", "262144"],
    ),
    (
        "cxx_faults.cpp",
        "C++ write after delete, 256 KiB",
        &["uaf-new", "262144"],
    ),
    (
        "cxx_faults.cpp",
        "C++ write after delete, 8 B",
        &["uaf-new", "8"],
    ),
    (
        "cxx_faults.cpp",
        "C++ write after delete[], 4 KiB",
        &["uaf-array", "4096"],
    ),
];

/// The rows the hardened build must stop (abort, or fault for the zero-size block and for
/// large blocks, which sit between guard pages and are inaccessible while quarantined), with
/// words its message must hold (none for a fault). Overflows, underflows and mismatched
/// releases of small blocks are caught by their canaries (heapkit-slab's `canary.rs`,
/// heapkit-malloc's `family.rs`); mismatched releases of large blocks by the family their
/// header records (heapkit-slab's `huge_family.rs`).
const HARDENED_STOPS: &[(&str, &str)] = &[
    // At a's free ("heap overflow") or, when b follows a, at b's ("heap underflow").
    ("overflow by 8 bytes into the next block", "was overwritten"),
    ("write through malloc(0)'s pointer", ""),
    ("write after free, 8 B", "write after free"),
    ("write after free, 4 KiB", "write after free"),
    (
        "write after free, then malloc_trim, 8 B",
        "write after free",
    ),
    ("write after free, 256 KiB", ""),
    ("overflow past a 256 KiB block by 1 byte", ""),
    ("overflow past a 256 KiB block by 32 bytes", ""),
    ("overflow past a 256 KiB + 1 block by 32 bytes", ""),
    (
        "overflow past a 256 KiB block aligned to 64 KiB by 1 byte",
        "",
    ),
    ("underflow before a 256 KiB block by 1 byte", ""),
    ("underflow before a 256 KiB block by 32 bytes", ""),
    ("C++ overflow past new char[256 KiB] by 1 byte", ""),
    ("C++ overflow past operator new(256 KiB) by 1 byte", ""),
    ("C++ write after delete[], 256 KiB", ""),
    ("C++ write after delete, 256 KiB", ""),
    ("C++ write after delete, 8 B", "write after free"),
    ("C++ write after delete[], 4 KiB", "write after free"),
    ("sized delete with a wrong size, 8 B", "mismatched"),
    ("sized delete with a wrong size, 4 KiB", "mismatched"),
    ("sized delete with a wrong size, 256 KiB", "mismatched"),
    (
        "overflow by 1 byte ('\\0') past the end, 8 B",
        "heap overflow",
    ),
    (
        "overflow by 1 byte ('\\0') past the end, 4 KiB",
        "heap overflow",
    ),
    ("overflow by 32 bytes past the end, 8 B", "heap overflow"),
    ("overflow by 32 bytes past the end, 4 KiB", "heap overflow"),
    (
        "overflow by memcpy 32 bytes past the end, 8 B",
        "heap overflow",
    ),
    (
        "overflow by memcpy 32 bytes past the end, 4 KiB",
        "heap overflow",
    ),
    (
        "underflow by 1 byte before the start, 8 B",
        "heap underflow",
    ),
    (
        "underflow by 1 byte before the start, 4 KiB",
        "heap underflow",
    ),
    (
        "underflow by 8 bytes before the start, 8 B",
        "heap underflow",
    ),
    (
        "underflow by 8 bytes before the start, 4 KiB",
        "heap underflow",
    ),
    (
        "delete of a new[] block, 8 B",
        "mismatched free: operator delete of a block allocated by operator new[]",
    ),
    (
        "delete of a new[] block, 4 KiB",
        "mismatched free: operator delete of a block allocated by operator new[]",
    ),
    (
        "delete of a new[] block, 256 KiB",
        "mismatched free: operator delete of a block allocated by operator new[]",
    ),
    (
        "delete[] of a new block, 8 B",
        "mismatched free: operator delete[] of a block allocated by operator new",
    ),
    (
        "delete[] of a new block, 4 KiB",
        "mismatched free: operator delete[] of a block allocated by operator new",
    ),
    (
        "delete[] of a new block, 256 KiB",
        "mismatched free: operator delete[] of a block allocated by operator new",
    ),
    (
        "free of a new block, 8 B",
        "mismatched free: free() (or realloc()) of a block allocated by operator new",
    ),
    (
        "free of a new block, 4 KiB",
        "mismatched free: free() (or realloc()) of a block allocated by operator new",
    ),
    (
        "free of a new block, 256 KiB",
        "mismatched free: free() (or realloc()) of a block allocated by operator new",
    ),
    (
        "realloc of a new block, 256 KiB",
        "mismatched free: free() (or realloc()) of a block allocated by operator new",
    ),
];

/// The rows where the hardened build must make the fault fail without stopping the program,
/// and the words of the probe's account that say so: the quarantine never hands the
/// just-freed small block straight back, nor follows a link written into it.
const HARDENED_PREVENTS: &[(&str, &str)] = &[
    ("free-list pointer overwrite", "did not follow"),
    ("free then malloc of the same size, 8 B", "in 0 of"),
    ("free then malloc of the same size, 4 KiB", "in 0 of"),
    ("free then malloc of the same size, 256 KiB", "in 0 of"),
];

/// Probes (by label) after which heapkit's release build may die of a signal today: for a free
/// of a static address, `locate` reads the "chunk header" at the pointer rounded down to 2 MiB,
/// and below a static address that page is usually not mapped (SIGSEGV instead of the
/// foreign-pointer report; see docs/security.md); after a write into a cached 8-byte block,
/// the byte lands in the thread cache's plain link, which `malloc_trim`'s flush then follows.
const HEAPKIT_MAY_CRASH: &[&str] = &[
    "free of a static address",
    "write after free, then malloc_trim, 8 B",
];

/// How a probe run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// SIGABRT: the allocator stopped the program; the first line of its message.
    Detected(String),
    /// Killed by another signal (named).
    Crashed(String),
    /// Exit 0: the fault went through; the probe's account of what it did.
    Undetected(String),
    /// Anything else (a broken probe): the exit code and output.
    Failed(String),
}

impl Outcome {
    fn cell(&self) -> String {
        match self {
            Outcome::Detected(message) => format!("**detected**: `{message}`"),
            Outcome::Crashed(signal) => format!("crashed ({signal})"),
            Outcome::Undetected(effect) => format!("undetected: {effect}"),
            Outcome::Failed(why) => format!("probe failed: {why}"),
        }
    }
}

/// Replaces every `0x…` hexadecimal address with `0x…`, so that cells do not change from run
/// to run.
fn without_addresses(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("0x") {
        out.push_str(&rest[..at]);
        let digits = rest[at + 2..]
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(rest.len() - at - 2);
        out.push_str(if digits > 0 { "0x…" } else { "0x" });
        rest = &rest[at + 2 + digits..];
    }
    out.push_str(rest);
    out
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGTRAP => "SIGTRAP".into(),
        libc::SIGFPE => "SIGFPE".into(),
        other => format!("signal {other}"),
    }
}

fn classify(output: &Output) -> Outcome {
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    match (output.status.code(), output.status.signal()) {
        (Some(0), _) => match stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("undetected: "))
        {
            Some(effect) => Outcome::Undetected(without_addresses(effect)),
            None => Outcome::Failed(format!("exit 0 without a verdict: {stdout}")),
        },
        (_, Some(libc::SIGABRT)) => Outcome::Detected(
            stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .map_or("abort, no message".into(), |l| without_addresses(l.trim())),
        ),
        (_, Some(signal)) => Outcome::Crashed(signal_name(signal)),
        (code, _) => Outcome::Failed(format!("exit {code:?}: {stdout}{stderr}")),
    }
}

fn probes_dir() -> PathBuf {
    work_dir("probes")
}

/// Runs every probe under every available library; rows in `PROBES` order.
fn probe_table(libraries: &[Library]) -> Vec<Vec<Outcome>> {
    let dir = probes_dir();
    let mut compiled: Vec<(&str, PathBuf)> = Vec::new();
    for (source, _, _) in PROBES {
        if !compiled.iter().any(|(s, _)| s == source) {
            compiled.push((source, compile(&dir, &format!("probes/{source}"), &[])));
        }
    }
    let preloads: Vec<Option<PathBuf>> = libraries.iter().map(Library::preload).collect();
    PROBES
        .iter()
        .map(|(source, _, args)| {
            let binary = &compiled.iter().find(|(s, _)| s == source).unwrap().1;
            preloads
                .iter()
                .map(|preload| {
                    let mut command = Command::new(binary);
                    command.args(*args);
                    // glibc's tcache checks are what is measured; no MALLOC_CHECK_ extras.
                    command.env_remove("MALLOC_CHECK_");
                    classify(&run(command, preload.as_deref()))
                })
                .collect()
        })
        .collect()
}

fn markdown(libraries: &[Library], rows: &[Vec<Outcome>]) -> String {
    let mut table = String::from("| fault |");
    for library in libraries {
        table.push_str(&format!(" {} |", library.column()));
    }
    table.push_str("\n|---|");
    table.push_str(&"---|".repeat(libraries.len()));
    table.push('\n');
    for ((_, label, _), row) in PROBES.iter().zip(rows) {
        table.push_str(&format!("| {label} |"));
        for outcome in row {
            table.push_str(&format!(" {} |", outcome.cell()));
        }
        table.push('\n');
    }
    table
}

fn column<'a>(libraries: &[Library], rows: &'a [Vec<Outcome>], name: &str) -> Vec<&'a Outcome> {
    let index = libraries
        .iter()
        .position(|l| l.column() == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    rows.iter().map(|row| &row[index]).collect()
}

#[test]
fn security_probes_table() {
    let libraries: Vec<Library> = LIBRARIES
        .iter()
        .copied()
        .filter(Library::available)
        .collect();
    let rows = probe_table(&libraries);
    let table = markdown(&libraries, &rows);
    println!("{table}");
    std::fs::write(probes_dir().join("table.md"), &table).expect("write the table");

    for (row, (source, _, _)) in rows.iter().zip(PROBES) {
        for (outcome, library) in row.iter().zip(&libraries) {
            assert!(
                !matches!(outcome, Outcome::Failed(_)),
                "{source} under {}: {outcome:?}",
                library.column()
            );
        }
    }
    // The probes work: glibc (2.28 and later) stops a double free with its tcache key.
    let glibc = column(&libraries, &rows, "glibc");
    assert!(
        matches!(glibc[0], Outcome::Detected(_)),
        "glibc on a double free: {:?}",
        glibc[0]
    );
    // heapkit's release build keeps its metadata in chunk headers, out of reach of the blocks,
    // and ignores the bad frees it recognises, so no probe crashes it (but two, above).
    let heapkit = column(&libraries, &rows, "heapkit");
    for (outcome, (source, label, _)) in heapkit.iter().zip(PROBES) {
        assert!(
            !matches!(outcome, Outcome::Crashed(_)) || HEAPKIT_MAY_CRASH.contains(label),
            "heapkit crashed on {source} ({label}): {outcome:?}"
        );
    }
    // The checked build (`heapkit-slab/checked`, `heapkit-tcache/checked`) stops a double free
    // and a free of a stack address, naming the fault.
    // The secure build stops every double and invalid free, naming the fault, and a free-list
    // link overwritten while the block was free.
    let secure = column(&libraries, &rows, "heapkit secure");
    let hardened = column(&libraries, &rows, "heapkit hardened");
    for (source, words) in [
        ("double_free.c", "double free"),
        ("interior_free.c", "middle of a small block"),
        ("neighbour_free.c", "invalid free"),
        ("stack_free.c", "foreign pointer"),
        ("static_free.c", "foreign pointer"),
        ("freelist_overwrite.c", "corrupted"),
    ] {
        let i = PROBES.iter().position(|(s, _, _)| *s == source).unwrap();
        for (build, outcome) in [("secure", secure[i]), ("hardened", hardened[i])] {
            // (The hardened build's quarantine keeps the block whose link is overwritten out
            // of the lists, so the planted link is never followed: see HARDENED_PREVENTS.)
            if build == "hardened" && source == "freelist_overwrite.c" {
                continue;
            }
            assert!(
                matches!(outcome, Outcome::Detected(m) if m.contains(words)),
                "{build} build on {source}: {outcome:?}"
            );
        }
    }
    // The hardened build also stops each class it adds, in every size it claims.
    for (label, words) in HARDENED_STOPS {
        let i = PROBES.iter().position(|(_, l, _)| l == label).unwrap();
        let stopped = match hardened[i] {
            Outcome::Detected(m) => m.contains(words),
            Outcome::Crashed(signal) => words.is_empty() && signal == "SIGSEGV",
            _ => false,
        };
        assert!(stopped, "hardened build on {label}: {:?}", hardened[i]);
    }
    for (label, words) in HARDENED_PREVENTS {
        let i = PROBES.iter().position(|(_, l, _)| l == label).unwrap();
        assert!(
            matches!(hardened[i], Outcome::Undetected(m) if m.contains(words)),
            "hardened build on {label}: {:?}",
            hardened[i]
        );
    }
    let checked = column(&libraries, &rows, "heapkit checked");
    for (source, words) in [
        ("double_free.c", "double free"),
        ("stack_free.c", "foreign pointer"),
    ] {
        let i = PROBES.iter().position(|(s, _, _)| *s == source).unwrap();
        assert!(
            matches!(checked[i], Outcome::Detected(m) if m.contains(words)),
            "checked build on {source}: {:?}",
            checked[i]
        );
    }
}

/// How many times [`secure_build_stops_a_free_of_a_block_never_handed_out`] runs its probe.
const NEIGHBOUR_FREE_RUNS: usize = 100;

/// The hole the exact live test closed (issue 23): `free(p + 4096)` of the never-used block
/// after a live one. Before it, the secure build took the block into the thread cache in about
/// one run in five (and later handed it out twice); now every run stops at that free, before
/// the cache, naming an invalid free. Run many times because the fresh blocks' order is
/// random.
#[test]
fn secure_build_stops_a_free_of_a_block_never_handed_out() {
    let dir = work_dir("neighbour_free");
    let binary = compile(&dir, "probes/neighbour_free.c", &[]);
    let library = support::heapkit_library(&["secure"]);
    for run_index in 0..NEIGHBOUR_FREE_RUNS {
        let outcome = classify(&run(Command::new(&binary), Some(&library)));
        assert!(
            matches!(&outcome, Outcome::Detected(m)
                if m.contains("invalid free") && m.contains("invalid pointer")),
            "run {run_index}: {outcome:?}"
        );
    }
}

/// The C test programs (and their arguments) that run under memcheck.
fn valgrind_programs(dir: &Path) -> Vec<(String, PathBuf, Vec<PathBuf>)> {
    let plugin = support::compile_plugin(dir);
    let mut programs = Vec::new();
    for source in [
        "edge.c",
        "threads.c",
        "fork.c",
        "cxx.cpp",
        "probes/whose_malloc.c",
    ] {
        programs.push((source.to_string(), compile(dir, source, &[]), Vec::new()));
    }
    programs.push((
        "dlopen.c".into(),
        compile(dir, "dlopen.c", &["-ldl"]),
        vec![plugin],
    ));
    programs
}

#[test]
fn c_programs_run_clean_under_valgrind_memcheck() {
    if !support::have("valgrind") {
        println!("note: valgrind is not installed; the memcheck runs were skipped");
        return;
    }
    let dir = work_dir("valgrind");
    let library = HEAPKIT.preload().expect("heapkit is a preload");
    // fork.c alone takes most of the time: run the programs side by side.
    std::thread::scope(|scope| {
        for (name, binary, args) in valgrind_programs(&dir) {
            let library = &library;
            scope.spawn(move || memcheck(&name, &binary, &args, library));
        }
    });
}

/// Runs one program under memcheck with `library` preloaded and requires a clean run.
fn memcheck(name: &str, binary: &Path, args: &[PathBuf], library: &Path) {
    let mut command = Command::new("valgrind");
    command
        .args(["--tool=memcheck", "--error-exitcode=99", "--quiet"])
        // By default Valgrind (3.19) intercepts the allocation functions exported by *any*
        // library, the preloaded heapkit included, and would test its own malloc instead. A
        // synonym that matches no library leaves only libc's replaced (see valgrind(1)).
        .arg("--soname-synonyms=somalloc=nouserintercepts")
        .args(["--track-origins=yes", "--child-silent-after-fork=yes"])
        // Valgrind runs one thread at a time; without a fair lock fork.c's three churning
        // threads starve the forking one (224 s instead of about 50 s here).
        .arg("--fair-sched=yes")
        .arg(binary)
        .args(args);
    let started = std::time::Instant::now();
    let output = run(command, Some(library));
    println!(
        "valgrind {name}: exit {:?} in {:.1} s",
        output.status.code(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{name} under memcheck with heapkit preloaded:\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    if name.ends_with("whose_malloc.c") {
        // With the synonym above memcheck replaces only libc.so's malloc: the preloaded heapkit
        // must still serve the program, exactly as it does without Valgrind.
        let plain = run(Command::new(binary), Some(library));
        assert_eq!(text(&output.stdout), text(&plain.stdout));
        let usable = text(&output.stdout);
        assert!(usable.ends_with("= 32\n"), "not heapkit's malloc: {usable}");
    }
}

#[test]
fn out_of_memory_returns_null_and_enomem_and_the_program_goes_on() {
    // glibc is not run here (its brk heap keeps memory between rounds, so its second round
    // differs; docs/security.md shows both): `oom` under glibc is the same binary without
    // LD_PRELOAD.
    let dir = work_dir("oom");
    let binary = compile(&dir, "probes/oom.c", &[]);
    let library = HEAPKIT.preload().expect("heapkit is a preload");
    let mut command = Command::new(&binary);
    command.arg(OOM_BUDGET_MIB.to_string());
    let output = run(command, Some(&library));
    let stdout = text(&output.stdout);
    println!(
        "{} {OOM_BUDGET_MIB} under heapkit:\n{stdout}",
        binary.display()
    );
    assert!(
        output.status.success() && stdout.contains("oom: ok"),
        "out of memory under heapkit: {:?}\n{stdout}{}",
        output.status,
        text(&output.stderr)
    );
}

/// The address space `oom` may use on top of what it has at start.
const OOM_BUDGET_MIB: usize = 64;
