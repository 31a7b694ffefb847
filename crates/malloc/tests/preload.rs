//! heapkit-malloc under real programs: each runs once under glibc and once with
//! `LD_PRELOAD=libheapkit_malloc.so`, and the outputs must be identical.
//!
//! The preload library is built here, in release mode (`panic = "abort"`, LTO) into its own
//! target directory, so the test never waits on the outer cargo's lock.

#![cfg(all(target_os = "linux", not(miri)))]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use support::text;

fn work_dir() -> PathBuf {
    support::work_dir("preload")
}

/// The release libheapkit_malloc.so, built once per test run (shared with tests/probes.rs's
/// builds: see `support::heapkit_library`).
fn preload_library() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| support::heapkit_library(&[]))
}

/// The release library built with `--features hardened`, for the real programs that must run
/// under it as under glibc (`real_programs_under_the_hardened_build`).
fn hardened_library() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| support::heapkit_library(&["hardened"]))
}

/// A name for the runs under `library` (None: glibc) in file and folder names.
fn tag(library: Option<&Path>) -> String {
    library.map_or("glibc".into(), |l| {
        l.file_stem().unwrap().to_string_lossy().into_owned()
    })
}

/// Runs the command built by `make` under glibc and under `library` and requires the same exit
/// status, standard output and standard error.
fn same_as_glibc_under(what: &str, library: &Path, make: impl Fn() -> Command) -> String {
    let glibc = support::run(make(), None);
    let tested = support::run(make(), Some(library));
    support::assert_same_as_glibc(what, &glibc, &tested)
}

/// Compiles one of the C or C++ programs in tests/c (at -O1, as a program would be built).
fn compile(source: &str, extra: &[&str]) -> PathBuf {
    support::compile_with(&work_dir(), source, &["-O1"], extra)
}

/// Runs `command` with or without the preload library.
fn run(command: Command, preload: bool) -> Output {
    support::run(command, preload.then(preload_library))
}

/// Runs the command built by `make` under glibc and under heapkit and requires the same exit
/// status, standard output and standard error.
fn same_as_glibc(what: &str, make: impl Fn() -> Command) -> String {
    let glibc = run(make(), false);
    let heapkit = run(make(), true);
    support::assert_same_as_glibc(what, &glibc, &heapkit)
}

#[test]
fn every_function_and_edge_case_behaves_as_glibc() {
    let binary = compile("edge.c", &[]);
    let output = same_as_glibc("edge.c", || Command::new(&binary));
    assert!(output.contains("0 failures"), "{output}");
}

#[test]
fn threads_producer_consumer_and_churn() {
    let binary = compile("threads.c", &[]);
    same_as_glibc("threads.c", || Command::new(&binary));
}

#[test]
fn fork_in_a_threaded_program() {
    let binary = compile("fork.c", &[]);
    let output = same_as_glibc("fork.c", || Command::new(&binary));
    assert!(output.contains("200 of 200"), "{output}");
    // With the background purger running from the start (a purge round every 10 ms): its
    // rounds take the heap's locks that fork's handlers take too, and the children have no
    // purger.
    let output = same_as_glibc("fork.c with the background purger", || {
        let mut c = Command::new(&binary);
        c.env("HEAPKIT_BACKGROUND_PURGE", "1")
            .env("HEAPKIT_PURGE_DELAY_MS", "0");
        c
    });
    assert!(output.contains("200 of 200"), "{output}");
}

#[test]
fn libraries_loaded_with_dlopen() {
    let plugin = support::compile_plugin(&work_dir());
    let binary = compile("dlopen.c", &["-ldl"]);
    let output = same_as_glibc("dlopen.c", || {
        let mut c = Command::new(&binary);
        c.arg(&plugin);
        c
    });
    assert!(output.contains("dlopen ok"), "{output}");
}

#[test]
fn cxx_operators() {
    let binary = compile("cxx.cpp", &[]);
    same_as_glibc("cxx.cpp", || Command::new(&binary));
}

#[test]
fn rss_falls_after_the_program_frees() {
    // Only under heapkit: glibc keeps most of this memory (freed small chunks sit in its caches
    // and bins above the top), the very complaint this test guards against.
    let binary = compile("rss.c", &[]);
    let output = run(Command::new(&binary), true);
    assert!(
        output.status.success(),
        "RSS did not fall under heapkit: {}",
        text(&output.stdout)
    );
}

/// Runs tests/c/purge.c under heapkit with the given options; returns the per mille of the
/// resident memory it held that is still resident after its frees, and its standard error.
fn purge_kept_per_mille(binary: &Path, options: &[(&str, &str)]) -> (u64, String) {
    let (per_mille, _, stderr) = purge_figures(binary, options);
    (per_mille, stderr)
}

/// Runs tests/c/purge.c as `purge_kept_per_mille` does; also returns the KiB of freed huge
/// blocks still resident (above the live ones) after twice the default purge delay.
fn purge_figures(binary: &Path, options: &[(&str, &str)]) -> (u64, i64, String) {
    let mut command = Command::new(binary);
    command.envs(options.iter().copied());
    let output = run(command, true);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let huge_kib = stdout
        .lines()
        .find_map(|line| line.strip_prefix("huge: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|word| word.parse().ok())
        .unwrap_or_else(|| panic!("no huge-block figure in {stdout:?}"));
    let per_mille = stdout
        .split_whitespace()
        .rev()
        .nth(2)
        .and_then(|word| word.parse().ok())
        .unwrap_or_else(|| panic!("no figure in {stdout:?}"));
    (per_mille, huge_kib, text(&output.stderr))
}

#[test]
fn purge_options_decide_what_stays_resident() {
    // The freed slots stay inside live chunks (a few blocks in each are kept), so only purging
    // can give their pages back.
    let binary = compile("purge.c", &[]);
    let (by_default, huge_kib, _) = purge_figures(&binary, &[]);
    assert!(
        by_default < 500,
        "default options kept {by_default} per mille"
    );
    // Freed huge blocks are retained, then purged after the delay: within twice the delay
    // (with calls meanwhile) the process is back within the purge threshold of its live bytes.
    let threshold_kib = (heapkit::slab::DEFAULT_PURGE_THRESHOLD_BYTES >> 10) as i64;
    assert!(
        huge_kib < threshold_kib,
        "{huge_kib} KiB of freed huge blocks still resident after twice the purge delay"
    );
    let never = [
        ("HEAPKIT_PURGE_DELAY_MS", "100000000"),
        ("HEAPKIT_PURGE_THRESHOLD_BYTES", "100000000000"),
    ];
    let (kept, huge_kib, _) = purge_figures(&binary, &never);
    assert!(
        kept > 800,
        "purging switched off still gave back: {kept} per mille kept"
    );
    assert!(
        huge_kib > 24 << 10,
        "purging switched off: freed huge blocks should stay resident, {huge_kib} KiB did"
    );
    let (at_once, _) = purge_kept_per_mille(
        &binary,
        &[
            ("HEAPKIT_PURGE_DELAY_MS", "0"),
            ("HEAPKIT_PURGE_THRESHOLD_BYTES", "0"),
        ],
    );
    assert!(at_once < 500, "immediate purging kept {at_once} per mille");
    let (_, stderr) = purge_kept_per_mille(&binary, &[("HEAPKIT_PURGE_DELAY_MS", "1s")]);
    assert!(
        stderr.contains("ignoring HEAPKIT_PURGE_DELAY_MS=1s: is not a decimal number"),
        "{stderr}"
    );
}

/// Runs tests/c/purge.c's idle case under heapkit with a purge delay of 200 ms and `options`;
/// returns the KiB resident above its live bytes right after its frees and after it made no
/// allocator call for twice the delay, and its standard error.
fn idle_figures(binary: &Path, options: &[(&str, &str)]) -> (i64, i64, String) {
    let mut command = Command::new(binary);
    command
        .arg("idle")
        .env("HEAPKIT_PURGE_DELAY_MS", "200")
        .envs(options.iter().copied());
    let output = run(command, true);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let figures: Vec<i64> = stdout
        .strip_prefix("idle: ")
        .unwrap_or_else(|| panic!("no idle figures in {stdout:?}"))
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    let [freed_kib, idle_kib] = figures[..] else {
        panic!("no idle figures in {stdout:?}");
    };
    (freed_kib, idle_kib, text(&output.stderr))
}

#[test]
fn an_idle_process_gives_memory_back_only_with_the_background_purger() {
    // Issue #24's target: an idle process drops to within the purge threshold of its live bytes
    // within twice the purge delay. With no allocator call, no slow path runs: only the purger
    // thread can do it, so the same run without it must stay above the threshold.
    let binary = compile("purge.c", &[]);
    let threshold_kib = (heapkit::slab::DEFAULT_PURGE_THRESHOLD_BYTES >> 10) as i64;
    let (freed_kib, idle_kib, _) = idle_figures(&binary, &[]);
    eprintln!("without the purger: {freed_kib} KiB above the live bytes, {idle_kib} KiB idle");
    assert!(
        idle_kib > threshold_kib,
        "without a purger an idle process kept only {idle_kib} KiB: the case proves nothing"
    );
    let on = [("HEAPKIT_BACKGROUND_PURGE", "1")];
    let (freed_kib, idle_kib, stderr) = idle_figures(&binary, &on);
    eprintln!("with the purger: {freed_kib} KiB above the live bytes, {idle_kib} KiB idle");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        idle_kib < threshold_kib,
        "{idle_kib} KiB above the live bytes after twice the purge delay, with the purger"
    );
    let (_, idle_kib, stderr) = idle_figures(&binary, &[("HEAPKIT_BACKGROUND_PURGE", "maybe")]);
    assert!(
        stderr.contains("ignoring HEAPKIT_BACKGROUND_PURGE=maybe: is not on (1) or off (0)"),
        "{stderr}"
    );
    assert!(
        idle_kib > threshold_kib,
        "a bad value leaves the purger off"
    );
}

const PYTHON_SCRIPT: &str = r#"
import json, re, hashlib, collections, itertools
words = [hashlib.sha256(str(i).encode()).hexdigest()[: (i % 40) + 3] for i in range(60000)]
counts = collections.Counter(w[:2] for w in words)
tree = {}
for w in words[:20000]:
    node = tree
    for ch in w[:6]:
        node = node.setdefault(ch, {})
text = json.dumps(tree, sort_keys=True)
again = json.loads(text)
matches = sum(1 for w in words if re.fullmatch(r"[0-9a-f]*[a-f]{3}[0-9a-f]*", w))
big = [list(range(i % 500)) for i in range(5000)]
joined = "".join(sorted(words))
print(len(words), len(counts), counts.most_common(3))
print(len(text), again == tree, matches)
print(sum(map(len, big)), hashlib.md5(joined.encode()).hexdigest())
print(sorted(itertools.islice(counts.items(), 5)))
"#;

fn python_command() -> Command {
    let mut c = Command::new("python3");
    c.args(["-c", PYTHON_SCRIPT])
        .env("PYTHONMALLOC", "malloc")
        .env("PYTHONHASHSEED", "0");
    c
}

#[test]
fn python_with_every_object_through_malloc() {
    same_as_glibc("python3", python_command);
}

fn perl_command() -> Command {
    let script = r#"my %h; for my $i (1..100000) { $h{"k$i"} = [$i, "v" x ($i % 50)]; }
my $s = 0; $s += $h{$_}[0] for keys %h; my @sorted = sort { $a cmp $b } keys %h;
print scalar(keys %h), " $s $sorted[0] $sorted[-1]\n";"#;
    let mut c = Command::new("perl");
    c.args(["-e", script]);
    c
}

#[test]
fn perl_script() {
    same_as_glibc("perl", perl_command);
}

/// python3, perl, sqlite3, gcc and git give the same output under the hardened build as under
/// glibc (its guard pages, scrubbing and quarantines change no program's behaviour).
#[test]
fn real_programs_under_the_hardened_build() {
    let hardened = hardened_library();
    same_as_glibc_under("python3 (hardened)", hardened, python_command);
    same_as_glibc_under("perl (hardened)", hardened, perl_command);
    sqlite_same_as_glibc(hardened);
    gcc_same_as_glibc(hardened);
    git_same_as_glibc(hardened);
}

#[test]
fn sqlite3_builds_and_queries_a_database() {
    sqlite_same_as_glibc(preload_library());
}

/// sqlite3 builds, indexes and queries a database under glibc and under `library`, each in
/// its own file, and prints the same.
fn sqlite_same_as_glibc(library: &Path) {
    let sql = "create table t(id integer primary key, name text, score real);
with recursive n(i) as (select 1 union all select i + 1 from n where i < 50000)
insert into t select i, 'name' || (i * 7919 % 10007), (i * 31) % 1000 / 10.0 from n;
create index t_name on t(name);
select count(*), sum(score), max(name) from t;
select name, count(*) from t group by name order by count(*) desc, name limit 3;
select avg(length(name)) from t where score > 50;";
    let db = |library: Option<&Path>| {
        let path = work_dir().join(format!("db-{}.sqlite", tag(library)));
        let _ = std::fs::remove_file(&path);
        path
    };
    let glibc = support::run(sqlite(&db(None), sql), None);
    let heapkit = support::run(sqlite(&db(Some(library)), sql), Some(library));
    assert!(
        glibc.status.success(),
        "sqlite3 fails under glibc: {}",
        text(&glibc.stderr)
    );
    assert_eq!(
        text(&heapkit.stdout),
        text(&glibc.stdout),
        "sqlite3 output differs under heapkit"
    );
    assert_eq!(text(&heapkit.stderr), text(&glibc.stderr));
}

fn sqlite(db: &Path, sql: &str) -> Command {
    let mut c = Command::new("sqlite3");
    c.arg(db).arg(sql);
    c
}

#[test]
fn gcc_compiles_a_program() {
    gcc_same_as_glibc(preload_library());
}

/// gcc compiles a program under glibc and under `library`; the two binaries print the same.
fn gcc_same_as_glibc(library: &Path) {
    let source = work_dir().join("compiled.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\nstatic unsigned fib(unsigned n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }\n\
         int main(void) { for (unsigned i = 0; i < 25; i++) printf(\"%u \", fib(i)); puts(\"\"); return 0; }\n",
    )
    .unwrap();
    let mut binaries = Vec::new();
    for preload in [None, Some(library)] {
        let binary = work_dir().join(format!("compiled-{}", tag(preload)));
        let mut c = Command::new("gcc");
        c.args(["-O2", "-Wall", "-o"]).arg(&binary).arg(&source);
        let output = support::run(c, preload);
        assert!(
            output.status.success(),
            "gcc under {}: {}",
            tag(preload),
            text(&output.stderr)
        );
        binaries.push(binary);
    }
    let a = run(Command::new(&binaries[0]), false);
    let b = run(Command::new(&binaries[1]), false);
    assert_eq!(
        text(&a.stdout),
        text(&b.stdout),
        "the program gcc built under heapkit behaves differently"
    );
}

#[test]
fn git_init_add_commit_log() {
    git_same_as_glibc(preload_library());
}

/// git init, add, commit, log and status in a repository of 300 files under glibc and under
/// `library`: the same output.
fn git_same_as_glibc(library: &Path) {
    let mut outputs = Vec::new();
    for preload in [None, Some(library)] {
        let repo = work_dir().join(format!("repo-{}", tag(preload)));
        let _ = std::fs::remove_dir_all(&repo);
        std::fs::create_dir_all(&repo).unwrap();
        for i in 0..300 {
            let body: String = (0..(i % 40 + 1))
                .map(|j| format!("line {j} of file {i}\n"))
                .collect();
            std::fs::write(repo.join(format!("file{i:03}.txt")), body).unwrap();
        }
        let git = |args: &[&str]| {
            let mut c = Command::new("git");
            c.args(args)
                .current_dir(&repo)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", &repo)
                .env("GIT_AUTHOR_NAME", "heapkit")
                .env("GIT_AUTHOR_EMAIL", "heapkit@example.invalid")
                .env("GIT_COMMITTER_NAME", "heapkit")
                .env("GIT_COMMITTER_EMAIL", "heapkit@example.invalid")
                .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
                .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z");
            let output = support::run(c, preload);
            assert!(
                output.status.success(),
                "git {args:?} (under {}): {}",
                tag(preload),
                text(&output.stderr)
            );
            text(&output.stdout)
        };
        git(&["init", "-q", "-b", "main"]);
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "first"]);
        std::fs::write(repo.join("file000.txt"), "changed\n").unwrap();
        git(&["commit", "-q", "-am", "second"]);
        let log = git(&["log", "--stat", "--format=%H %s"]);
        let status = git(&["status", "--short"]);
        outputs.push((log, status));
    }
    assert_eq!(outputs[0], outputs[1], "git's output differs under heapkit");
}

/// A command for `binary` with heap profiling on (`HEAPKIT_PROF`), sampling every
/// `mean_bytes` bytes on average; glibc's run ignores the variables.
fn profiled(binary: &Path, mean_bytes: &str) -> Command {
    let mut c = Command::new(binary);
    c.env("HEAPKIT_PROF", "1")
        .env("HEAPKIT_PROF_SAMPLE_BYTES", mean_bytes);
    c
}

#[test]
fn fork_and_threads_with_profiling_on() {
    // A 4 KiB mean: thousands of samples, taken, moved and freed across threads and forks
    // (the fork handlers take the profiler's lock too).
    let binary = compile("fork.c", &[]);
    let output = same_as_glibc("fork.c profiled", || profiled(&binary, "4096"));
    assert!(output.contains("200 of 200"), "{output}");
    let binary = compile("threads.c", &[]);
    same_as_glibc("threads.c profiled", || profiled(&binary, "4096"));
}

#[test]
fn profiling_dumps_pprof_and_a_flame_graph_at_exit() {
    let binary = compile("threads.c", &[]);
    let dir = work_dir().join("prof-dump");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the dump folder");
    let mut command = profiled(&binary, "65536");
    command.env("HEAPKIT_PROF_DUMP", dir.join("heap.%p.pb.gz"));
    let output = run(command, true);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the dump folder")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let pprof = names
        .iter()
        .find(|name| name.ends_with(".pb.gz"))
        .unwrap_or_else(|| panic!("no pprof dump among {names:?}"));
    assert!(!pprof.contains("%p"), "%p expanded: {pprof}");
    let bytes = std::fs::read(dir.join(pprof)).expect("read the dump");
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip");
    let svg = std::fs::read_to_string(dir.join(format!("{pprof}.svg"))).expect("the svg");
    assert!(svg.contains("<svg"), "{svg}");
}

#[test]
fn a_bad_profiling_option_is_reported_and_ignored() {
    let binary = compile("threads.c", &[]);
    let output = run(profiled(&binary, "0"), true);
    assert!(output.status.success());
    assert!(
        text(&output.stderr).contains("heapkit: ignoring HEAPKIT_PROF_SAMPLE_BYTES"),
        "{}",
        text(&output.stderr)
    );
}
