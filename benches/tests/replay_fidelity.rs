//! Replay fidelity: replaying a single-threaded program's trace through `System` (wrapped in a
//! counter) reproduces the program's allocation count, peak live bytes and final live bytes
//! exactly — the figures computed here from the trace itself, independently of the replay's
//! plan. A zero-byte request is replayed as one byte (`GlobalAlloc` takes no zero sizes, and
//! C's `malloc(0)` returns a unique block too), so both sides count it as one.

use heapkit_benches::replay::{self, Threads};
use heapkit_trace::{Event, Header, Kind, Record, TraceWriter};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// `System`, counting allocations and live requested bytes.
#[derive(Default)]
struct Counting {
    allocations: AtomicU64,
    reallocations: AtomicU64,
    live: AtomicU64,
    peak: AtomicU64,
}

impl Counting {
    fn grow(&self, bytes: u64) {
        let live = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(live, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` unchanged; the counters do not touch the blocks.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocations.fetch_add(1, Ordering::Relaxed);
        self.grow(layout.size() as u64);
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.allocations.fetch_add(1, Ordering::Relaxed);
        self.grow(layout.size() as u64);
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(block, layout) }
    }
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.reallocations.fetch_add(1, Ordering::Relaxed);
        self.live.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        self.grow(new_size as u64);
        // SAFETY: forwarded from the caller.
        unsafe { System.realloc(block, layout, new_size) }
    }
}

/// (allocations, reallocations, peak live, final live) of time-ordered records.
fn expected(records: &[Record]) -> (u64, u64, u64, u64) {
    let mut sizes = std::collections::HashMap::new();
    let (mut allocations, mut reallocations, mut live, mut peak) = (0, 0, 0u64, 0u64);
    for record in records {
        let event = record.event;
        let size = event.size.max(1);
        if event.kind.creates() {
            allocations += 1;
            sizes.insert(event.id, size);
            live += size;
        } else if event.kind.frees() {
            live -= sizes.remove(&event.id).expect("a live object");
        } else {
            reallocations += 1;
            live = live - sizes.insert(event.id, size).expect("a live object") + size;
        }
        peak = peak.max(live);
    }
    (allocations, reallocations, peak, live)
}

fn check_fidelity(bytes: &[u8]) {
    let (_, records) = replay::load(bytes, false).expect("a valid trace");
    let plan = replay::plan(&records, Threads::One);
    let counting = Counting::default();
    let outcome = replay::replay(&plan, &counting, true);
    assert_eq!(outcome.failures, 0);
    let got = (
        counting.allocations.load(Ordering::Relaxed),
        counting.reallocations.load(Ordering::Relaxed),
        counting.peak.load(Ordering::Relaxed),
        counting.live.load(Ordering::Relaxed),
    );
    assert_eq!(
        got,
        expected(&records),
        "(allocations, reallocations, peak, final)"
    );
}

#[test]
fn a_synthetic_single_thread_trace_replays_exactly() {
    let mut writer = TraceWriter::new(&Header::monotonic_ns(1, 0), 4096);
    let mut ticks = 0;
    let mut live = Vec::new();
    let mut next_id = 1;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..5000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ticks += state % 300;
        let size = state % 5000;
        match state % 7 {
            0..=2 => {
                let kind = [Kind::Malloc, Kind::Calloc, Kind::New][(state % 3) as usize];
                writer.push(0, &Event::new(kind, next_id, size, ticks));
                live.push(next_id);
                next_id += 1;
            }
            3 => {
                let event = Event::new(Kind::Aligned, next_id, size, ticks);
                writer.push(0, &event.aligned((state % 13) as u8));
                live.push(next_id);
                next_id += 1;
            }
            4 if !live.is_empty() => {
                let id = live[(state as usize / 7) % live.len()];
                writer.push(0, &Event::new(Kind::Realloc, id, size + 1, ticks));
            }
            _ if !live.is_empty() => {
                let id = live.swap_remove((state as usize / 7) % live.len());
                writer.push(0, &Event::new(Kind::Free, id, 0, ticks));
            }
            _ => {}
        }
    }
    check_fidelity(&writer.finish());
}

#[test]
fn the_shipped_sqlite_trace_replays_exactly() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/traces/sqlite.trace.gz");
    let Ok(output) = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
    else {
        eprintln!("no gzip: skipped");
        return;
    };
    assert!(output.status.success(), "gzip -dc {path}");
    check_fidelity(&output.stdout);
}

#[test]
fn a_cut_trace_is_refused_strictly_and_its_whole_part_replayed_leniently() {
    let mut writer = TraceWriter::new(&Header::monotonic_ns(1, 0), 256);
    for id in 1..=200u64 {
        writer.push(0, &Event::new(Kind::Malloc, id, 64, id));
    }
    let bytes = writer.finish();
    let cut = &bytes[..bytes.len() - 5];
    let error = replay::load(cut, false).unwrap_err();
    assert!(
        error.contains("truncated") && error.starts_with("event "),
        "{error}"
    );
    let (_, records) = replay::load(cut, true).expect("lenient");
    assert!(
        !records.is_empty() && records.len() < 200,
        "{}",
        records.len()
    );
    let mut writer = TraceWriter::new(&Header::monotonic_ns(1, 0), 256);
    writer.push(0, &Event::new(Kind::Malloc, 1, 8, 0));
    writer.push(0, &Event::new(Kind::Free, 2, 0, 1));
    let bytes = writer.finish();
    let error = replay::load(&bytes, false).unwrap_err();
    assert_eq!(error, "event 1: free or realloc of unknown id 2");
    let (_, records) = replay::load(&bytes, true).expect("lenient");
    assert_eq!(records.len(), 1);
}
