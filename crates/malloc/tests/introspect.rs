//! glibc's introspection calls and heapkit.h's own, answered by heapkit: C programs in
//! `tests/c/` run under `LD_PRELOAD` (`introspect.c`), and one built against the header and
//! linked with the `.so` and with the `.a` (`header.c`). Also what `HEAPKIT_SHOW_STATS` and a
//! bad option value print.

#![cfg(all(target_os = "linux", not(miri)))]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use support::text;

fn work_dir() -> PathBuf {
    support::work_dir("introspect")
}

fn preload_library() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| support::heapkit_library(&[]))
}

fn introspect_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| support::compile_with(&work_dir(), "introspect.c", &["-O1"], &[]))
}

/// Runs `introspect.c MODE` under heapkit with the environment `env`.
fn introspect(mode: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(introspect_binary());
    command.arg(mode).envs(env.iter().copied());
    support::run(command, Some(preload_library()))
}

/// Runs `mode` and requires it to succeed; its standard output.
fn introspect_ok(mode: &str) -> String {
    let output = introspect(mode, &[]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "introspect {mode}: {stdout}{}",
        text(&output.stderr)
    );
    eprint!("{stdout}");
    stdout
}

#[test]
fn mallinfo2_counts_the_bytes_the_program_holds() {
    introspect_ok("mallinfo");
}

#[test]
fn malloc_trim_lowers_the_resident_set() {
    introspect_ok("trim");
}

#[test]
fn mallopt_applies_heapkits_options_and_mallinfo_saturates_nothing_small() {
    introspect_ok("mallopt");
}

#[test]
fn malloc_info_writes_well_formed_xml() {
    if !support::have("python3") {
        eprintln!("python3 not found: skipped");
        return;
    }
    let xml = introspect_ok("info");
    let file = work_dir().join("malloc_info.xml");
    std::fs::write(&file, &xml).expect("write the XML");
    let parse = "import sys, xml.dom.minidom\n\
                 d = xml.dom.minidom.parse(sys.argv[1])\n\
                 sizes = d.getElementsByTagName('size')\n\
                 held = sum(int(s.getAttribute('held')) for s in sizes)\n\
                 print(d.documentElement.tagName, len(sizes), held)";
    let output = Command::new("python3")
        .args(["-c", parse])
        .arg(&file)
        .output()
        .expect("run python3");
    let parsed = text(&output.stdout);
    assert!(
        output.status.success(),
        "not well-formed XML: {}\n{xml}",
        text(&output.stderr)
    );
    let words: Vec<&str> = parsed.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"malloc"), "{parsed}");
    let held: usize = words[2].parse().unwrap();
    assert!(held >= 10_000, "the 10,000 live blocks: {parsed}\n{xml}");
    assert!(
        xml.contains("<total type=\"huge\" count=\"1\" "),
        "the 8 MiB block: {xml}"
    );
}

/// The pid every line of `stderr` names, requiring each line to start `heapkit[<pid>]: `.
fn one_pid_per_line(stderr: &str) -> u32 {
    let mut pids = stderr.lines().map(|line| {
        line.strip_prefix("heapkit[")
            .and_then(|rest| rest.split_once("]: "))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("a line without the pid: {line:?} in\n{stderr}"))
    });
    let first = pids.next().expect("no statistics printed");
    assert!(pids.all(|pid| pid == first), "{stderr}");
    first
}

#[test]
fn malloc_stats_and_show_stats_print_the_pid_on_every_line() {
    let output = introspect("stats", &[]);
    assert!(output.status.success());
    let stderr = text(&output.stderr);
    eprint!("{stderr}");
    one_pid_per_line(&stderr);
    assert!(stderr.contains("held by the program: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 5, "{stderr}");

    let output = introspect("stats", &[("HEAPKIT_SHOW_STATS", "1")]);
    let stderr = text(&output.stderr);
    one_pid_per_line(&stderr);
    assert_eq!(
        stderr.lines().count(),
        12,
        "malloc_stats, then at exit, each with the call counts: {stderr}"
    );
}

/// The counts of a `calls:` line, by function name.
fn call_counts(line: &str) -> std::collections::HashMap<String, u64> {
    let (_, counts) = line
        .split_once("calls: ")
        .unwrap_or_else(|| panic!("not a calls line: {line:?}"));
    counts
        .split(", ")
        .map(|pair| {
            let (name, count) = pair.rsplit_once(' ').expect("name and count");
            (name.to_string(), count.parse().expect("a count"))
        })
        .collect()
}

#[test]
fn show_stats_counts_the_calls_of_each_function() {
    let dir = work_dir();
    let program = support::compile_with(&dir, "calls.c", &["-O0", "-fno-builtin"], &[]);
    let mut command = Command::new(program);
    command.env("HEAPKIT_SHOW_STATS", "1");
    let output = support::run(command, Some(preload_library()));
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    one_pid_per_line(&stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("calls: ")).collect();
    assert_eq!(
        lines.len(),
        3,
        "two malloc_stats and the exit report: {stderr}"
    );
    let (before, after) = (call_counts(lines[0]), call_counts(lines[1]));
    let made = [
        ("malloc", 101),
        ("calloc", 7),
        ("realloc", 30),
        ("free", 114),
        ("aligned", 6),
        ("new", 0),
        ("new[]", 0),
        ("delete", 0),
        ("delete[]", 0),
    ];
    for (name, calls) in made {
        assert_eq!(after[name] - before[name], calls, "{name}: {stderr}");
    }
}

#[test]
fn a_bad_option_value_is_echoed_with_the_default_used() {
    let output = introspect(
        "stats",
        &[
            ("HEAPKIT_PURGE_DELAY_MS", "1s"),
            ("HEAPKIT_PURGE_THRESHOLD_BYTES", "99999999999999999999999"),
            ("HEAPKIT_BACKGROUND_PURGE", "maybe"),
        ],
    );
    assert!(output.status.success());
    let stderr = text(&output.stderr);
    for expected in [
        "heapkit: ignoring HEAPKIT_PURGE_DELAY_MS=1s: is not a decimal number; \
         using the default, 1000 ms",
        "heapkit: ignoring HEAPKIT_PURGE_THRESHOLD_BYTES=99999999999999999999999: is out of \
         range (at most 18446744073709551615); using the default, 8388608 bytes",
        "heapkit: ignoring HEAPKIT_BACKGROUND_PURGE=maybe: is not on (1) or off (0); using \
         the default, off",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in\n{stderr}");
    }
}

/// What `header.c` calls, each defined in the text of a binary linked with the archive (glibc's
/// would be imported from libc.so in the dynamic link; in the `-static` one, the checks of
/// `header.c` itself tell whose `mallopt` answered).
const HEADER_SYMBOLS: &[&str] = &["heapkit_stats", "heapkit_purge", "mallopt", "mallinfo2"];

/// `header.c` linked the given way; runs it and requires its checks to pass.
fn header_program_passes(binary: &Path) {
    let output = support::run(Command::new(binary), None);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("ok: 0 failures"),
        "{}: {stdout}{}",
        binary.display(),
        text(&output.stderr)
    );
}

fn include_flag() -> String {
    format!("-I{}/include", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_header_links_against_the_shared_library() {
    let library = preload_library();
    let dir = work_dir().join("shared");
    std::fs::create_dir_all(&dir).unwrap();
    let rpath = format!("-Wl,-rpath,{}", library.parent().unwrap().display());
    let binary = support::compile_with(
        &dir,
        "header.c",
        &["-O1", &include_flag()],
        &[library.to_str().unwrap(), &rpath],
    );
    header_program_passes(&binary);
}

#[test]
fn the_header_links_against_the_static_library() {
    let archive = support::heapkit_static_library(&[]);
    let archive = archive.to_str().unwrap();
    let dynamic = work_dir().join("archive");
    let fully_static = work_dir().join("fully-static");
    for dir in [&dynamic, &fully_static] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let include = include_flag();
    let binary = support::compile_with(
        &dynamic,
        "header.c",
        &["-O1", &include],
        &[&[archive][..], support::NATIVE_LIBS].concat(),
    );
    header_program_passes(&binary);
    support::assert_defined_in_text(&binary, HEADER_SYMBOLS, false);
    let binary = support::compile_with(
        &fully_static,
        "header.c",
        &["-O1", "-static", &include],
        &[&[archive][..], support::NATIVE_LIBS_STATIC].concat(),
    );
    header_program_passes(&binary);
    support::assert_defined_in_text(&binary, HEADER_SYMBOLS, false);
}
