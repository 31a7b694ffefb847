//! Call counts for `HEAPKIT_SHOW_STATS` (and `malloc_stats`): how many times the program called
//! each allocation function, heard of through the divert (`divert.rs`), so that counting costs
//! the fast paths of `malloc` and `free` nothing when it is off.
//!
//! One relaxed `fetch_add` per call on a process-wide counter per function: exact with any
//! number of threads, and paid only while counting (every `malloc` and `free` also takes its
//! cold path then; the README gives the cost). Counted as the trace records calls
//! (heapkit-trace's `Kind`): `realloc(NULL, n)` is a `malloc`, `realloc(p, 0)` a `free`, and
//! `free(NULL)` is not counted.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use heapkit_trace::Kind;

/// How many kinds of call are counted: `Kind`'s tags are `1..=CALL_KINDS`.
const CALL_KINDS: usize = Kind::ALL.len();

const _: () = assert!(Kind::ALL[CALL_KINDS - 1] as usize == CALL_KINDS);

/// Whether calls are counted (set once by the library constructor).
static COUNTING: AtomicBool = AtomicBool::new(false);

/// Calls per kind, at index `tag - 1`.
static CALLS: [AtomicU64; CALL_KINDS] = [const { AtomicU64::new(0) }; CALL_KINDS];

/// Starts counting; false when the divert cannot start (see `divert::start`).
pub fn start() -> bool {
    if !crate::divert::start() {
        return false;
    }
    COUNTING.store(true, Ordering::Release);
    true
}

/// Whether calls are being counted.
pub fn counting() -> bool {
    COUNTING.load(Ordering::Relaxed)
}

/// Counts one call of `kind` (while counting).
#[inline]
pub fn count(kind: Kind) {
    if counting() {
        CALLS[kind as usize - 1].fetch_add(1, Ordering::Relaxed);
    }
}

/// The counts so far, for the report: `calls: malloc N, calloc N, ...`.
pub struct CallCounts;

impl fmt::Display for CallCounts {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        out.write_str("calls:")?;
        for (index, kind) in Kind::ALL.iter().enumerate() {
            let separator = if index == 0 { " " } else { ", " };
            let calls = CALLS[*kind as usize - 1].load(Ordering::Relaxed);
            write!(out, "{separator}{} {calls}", kind.name())?;
        }
        Ok(())
    }
}
