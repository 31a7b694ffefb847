//! The trace recorder end to end: a C++ program run under `LD_PRELOAD` with `HEAPKIT_TRACE`
//! (the default build, which has the `trace` feature), its trace read back with heapkit-trace and its own calls counted.

#![cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]

mod support;

use heapkit_trace::{in_time_order, Kind, LifetimeCheck, Reader, Record};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Reads and checks the trace at `path` strictly.
fn read(path: &Path) -> (heapkit_trace::Header, Vec<Record>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (header, records) =
        Reader::read_all(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let records = in_time_order(records);
    let mut check = LifetimeCheck::new(header.parent_pid != 0);
    for record in &records {
        check.accept(record, 0).unwrap_or_else(|e| panic!("{e}"));
    }
    (header, records)
}

/// How many events of `kind` the program's own calls made (sizes 1000..1100 or, for frees,
/// of objects created with those sizes).
fn count_own(records: &[Record]) -> HashMap<Kind, usize> {
    let mut own_ids = std::collections::HashSet::new();
    let mut counts = HashMap::new();
    for record in records {
        let event = record.event;
        let own = if event.kind.frees() {
            own_ids.contains(&event.id)
        } else {
            (1000..1100).contains(&event.size)
        };
        if own {
            own_ids.insert(event.id);
            *counts.entry(event.kind).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn a_traced_program_records_each_of_its_calls() {
    traced_program_records_each_of_its_calls("trace", &[]);
}

/// The `secure` build diverts as the normal one does (its free either stops the process or
/// reaches the cold path that tells the recorder); `hardened` tests first instead.
#[test]
fn the_secure_and_hardened_builds_record_each_call_too() {
    traced_program_records_each_of_its_calls("trace-secure", &["secure"]);
    traced_program_records_each_of_its_calls("trace-hardened", &["hardened"]);
}

/// Records tests/c/trace.cpp under the library built with `features` and checks every event.
fn traced_program_records_each_of_its_calls(work: &str, features: &[&str]) {
    let dir = support::work_dir(work);
    let library = support::heapkit_library(features);
    // -O0 -fno-builtin: the compiler removes a malloc/free pair whose block is unused.
    let program = support::compile_with(&dir, "trace.cpp", &["-O0", "-fno-builtin"], &[]);
    for entry in std::fs::read_dir(&dir).expect("the work folder") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "trace")
            || path.to_string_lossy().contains(".trace.")
        {
            std::fs::remove_file(path).expect("remove an old trace");
        }
    }
    let mut command = Command::new(&program);
    command.env("HEAPKIT_TRACE", dir.join("run-%p.trace"));
    let output = support::run(command, Some(&library));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(support::text(&output.stdout).trim(), "done");

    let mut traces: Vec<_> = std::fs::read_dir(&dir)
        .expect("the work folder")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    traces.sort();
    assert_eq!(
        traces.len(),
        2,
        "the program's and its fork child's: {traces:?}"
    );
    let parsed: Vec<_> = traces.iter().map(|p| read(p)).collect();
    let (parent, child): (Vec<_>, Vec<_>) =
        parsed.into_iter().partition(|(h, _)| h.parent_pid == 0);
    let (parent_header, records) = &parent[0];
    let (child_header, child_records) = &child[0];
    assert_eq!(child_header.parent_pid, parent_header.pid);

    let counts = count_own(records);
    let expect = [
        (Kind::Malloc, 31),
        (Kind::Realloc, 5),
        (Kind::Calloc, 1),
        (Kind::Aligned, 3),
        (Kind::NewArray, 1),
        (Kind::Free, 34),
        (Kind::DeleteArray, 1),
    ];
    for (kind, count) in expect {
        assert_eq!(
            counts.get(&kind),
            Some(&count),
            "{} events: {counts:?}",
            kind.name()
        );
    }
    // The one-byte `new` and its `delete` are not in the 1000..1100 range: find them by kind.
    assert!(records
        .iter()
        .any(|r| r.event.kind == Kind::New && r.event.size == 1));
    assert!(records.iter().any(|r| r.event.kind == Kind::Delete));
    let aligned: Vec<u8> = records
        .iter()
        .filter(|r| r.event.kind == Kind::Aligned && (1000..1100).contains(&r.event.size))
        .map(|r| r.event.align_log2)
        .collect();
    assert_eq!(aligned, [8, 6, 12]);
    // The second thread's frees are on another thread number than the mallocs they free.
    let threads: std::collections::BTreeSet<u64> = records.iter().map(|r| r.thread).collect();
    assert!(threads.len() >= 2, "{threads:?}");
    // The child's file holds its own malloc and free of 1080 bytes.
    let child_counts = count_own(child_records);
    assert_eq!(
        child_counts.get(&Kind::Malloc),
        Some(&1),
        "{child_counts:?}"
    );
    assert_eq!(child_counts.get(&Kind::Free), Some(&1), "{child_counts:?}");
}
