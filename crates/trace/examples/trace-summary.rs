//! `cargo run -p heapkit-trace --example trace-summary -- TRACE...`: per file, the events by
//! kind, the threads, bytes per event, and the lifetime check's verdict.

use heapkit_trace::{in_time_order, Kind, LifetimeCheck, Reader};
use std::collections::BTreeSet;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for path in std::env::args().skip(1) {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => {
                eprintln!("{path}: {error}");
                status = ExitCode::FAILURE;
                continue;
            }
        };
        if let Err(error) = summarise(&path, &bytes) {
            eprintln!("{path}: {error}");
            status = ExitCode::FAILURE;
        }
    }
    status
}

fn summarise(path: &str, bytes: &[u8]) -> Result<(), heapkit_trace::TraceError> {
    let (header, records) = Reader::read_all(bytes)?;
    let mut check = LifetimeCheck::new(header.parent_pid != 0);
    let mut by_kind = [0u64; Kind::ALL.len()];
    let mut threads = BTreeSet::new();
    // Threads' chunks are in flush order in the file: merge them in time order first.
    for record in in_time_order(records) {
        check.accept(&record, 0)?;
        by_kind[record.event.kind as usize - 1] += 1;
        threads.insert(record.thread);
    }
    let events: u64 = by_kind.iter().sum();
    let summary = check.summary();
    println!(
        "{path}: pid {} (parent {}), {events} events, {} threads, {:.2} bytes/event",
        header.pid,
        header.parent_pid,
        threads.len(),
        bytes.len() as f64 / events.max(1) as f64
    );
    for (kind, count) in Kind::ALL.iter().zip(by_kind) {
        if count > 0 {
            println!("  {:<9} {count}", kind.name());
        }
    }
    println!(
        "  peak live {} B, final live {} B in {} objects, {} inherited",
        summary.peak_live_bytes,
        summary.final_live_bytes,
        summary.final_live_objects,
        summary.inherited
    );
    Ok(())
}
