//! The seed article's advice ("What Architects Need to Know"), measured on a recorded trace:
//! allocation rate in calls/s and MB/s against its thresholds (above 100 MB/s allocation is a
//! measurable share of CPU; above 1 GB/s look at arenas or pools), the size histogram, the
//! lifetime histogram in events and in time, the share of blocks freed by the thread that
//! allocated them, the share of bytes an arena reset per phase could have served, and the
//! dominant sizes (pool candidates).

use heapkit_trace::{Header, Record};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The article's "measurable CPU" threshold.
pub const MEASURABLE_MB_PER_S: f64 = 100.0;
/// The article's "look at arenas or pools" threshold.
pub const ARENA_MB_PER_S: f64 = 1000.0;
/// A block freed by its allocating thread within this time is one an arena reset per phase
/// (a request, a frame, a parse) could have served: the phase's arena is reset before the
/// next phase, and a millisecond is a generous phase for the programs recorded here.
pub const ARENA_PHASE_NS: u64 = 1_000_000;
/// A size is a pool candidate when at least this share of all blocks has it.
pub const POOL_SHARE: f64 = 0.05;
/// The window over which the peak allocation rate is taken.
const RATE_WINDOW_NS: u64 = 100_000_000;

/// log2 bucket of `value` (0 for 0 and 1).
fn bucket(value: u64) -> usize {
    (64 - value.leading_zeros()).saturating_sub(1) as usize
}

fn add(histogram: &mut Vec<u64>, index: usize) {
    if histogram.len() <= index {
        histogram.resize(index + 1, 0);
    }
    histogram[index] += 1;
}

/// `[{"from": 2^i, "count": n}]` for a log2 histogram.
fn histogram_json(histogram: &[u64]) -> Value {
    Value::Array(
        histogram
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| json!({ "from": 1u64 << i, "count": n }))
            .collect(),
    )
}

/// Where and when an object was created.
struct Birth {
    thread: u64,
    seq: u64,
    ticks: u64,
    size: u64,
}

/// The advice figures of time-ordered, checked records.
pub fn analyse(header: &Header, records: &[Record]) -> Value {
    let ns = |ticks: u64| header.ticks_to_ns(ticks);
    let (first, last) = match (records.first(), records.last()) {
        (Some(f), Some(l)) => (f.event.ticks, l.event.ticks),
        _ => (0, 0),
    };
    let duration_ns = ns(last.saturating_sub(first)).max(1);
    let mut births: HashMap<u64, Birth> = HashMap::new();
    let (mut calls, mut bytes) = (0u64, 0u64);
    let mut sizes = Vec::new();
    let mut size_counts: HashMap<u64, u64> = HashMap::new();
    let (mut life_events, mut life_ns) = (Vec::new(), Vec::new());
    let (mut freed, mut freed_same_thread) = (0u64, 0u64);
    let mut arena_bytes = 0u64;
    let mut windows: HashMap<u64, u64> = HashMap::new();
    for (seq, record) in records.iter().enumerate() {
        let event = record.event;
        if event.kind.creates() || !event.kind.frees() {
            calls += 1;
            bytes += event.size;
            *windows
                .entry(ns(event.ticks - first) / RATE_WINDOW_NS)
                .or_insert(0) += event.size;
        }
        if event.kind.creates() {
            add(&mut sizes, bucket(event.size));
            *size_counts.entry(event.size).or_insert(0) += 1;
            births.insert(
                event.id,
                Birth {
                    thread: record.thread,
                    seq: seq as u64,
                    ticks: event.ticks,
                    size: event.size,
                },
            );
        } else if event.kind.frees() {
            if let Some(birth) = births.remove(&event.id) {
                let lived_ns = ns(event.ticks.saturating_sub(birth.ticks));
                add(&mut life_events, bucket(seq as u64 - birth.seq));
                add(&mut life_ns, bucket(lived_ns));
                freed += 1;
                if birth.thread == record.thread {
                    freed_same_thread += 1;
                    if lived_ns <= ARENA_PHASE_NS {
                        arena_bytes += birth.size;
                    }
                }
            }
        } else if let Some(birth) = births.get_mut(&event.id) {
            birth.size = event.size;
        }
    }
    let seconds = duration_ns as f64 / 1e9;
    let mb_per_s = bytes as f64 / 1e6 / seconds;
    let peak_mb_per_s = windows.values().copied().max().unwrap_or(0) as f64
        / 1e6
        / (RATE_WINDOW_NS.min(duration_ns) as f64 / 1e9);
    let creations: u64 = size_counts.values().sum();
    let mut dominant: Vec<(u64, u64)> = size_counts.into_iter().collect();
    dominant.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let verdict = |rate: f64| {
        if rate > ARENA_MB_PER_S {
            "above 1 GB/s: look at arenas or pools"
        } else if rate > MEASURABLE_MB_PER_S {
            "above 100 MB/s: allocation is a measurable share of CPU"
        } else {
            "below 100 MB/s: allocation is unlikely to matter"
        }
    };
    json!({
        "duration_s": seconds,
        "calls": calls,
        "bytes": bytes,
        "calls_per_s": calls as f64 / seconds,
        "mb_per_s": mb_per_s,
        "peak_mb_per_s_100ms": peak_mb_per_s,
        "rate_verdict": verdict(mb_per_s),
        "peak_rate_verdict": verdict(peak_mb_per_s),
        "thresholds_mb_per_s": { "measurable": MEASURABLE_MB_PER_S, "arena": ARENA_MB_PER_S },
        "size_histogram": histogram_json(&sizes),
        "lifetime_events_histogram": histogram_json(&life_events),
        "lifetime_ns_histogram": histogram_json(&life_ns),
        "freed": freed,
        "freed_by_allocating_thread_share": freed_same_thread as f64 / freed.max(1) as f64,
        "arena_phase_ns": ARENA_PHASE_NS,
        "arena_candidate_bytes_share": arena_bytes as f64 / bytes.max(1) as f64,
        "pool_share_threshold": POOL_SHARE,
        "dominant_sizes": dominant.iter().take(8).map(|&(size, count)| json!({
            "size": size,
            "count": count,
            "share": count as f64 / creations.max(1) as f64,
            "pool_candidate": count as f64 / creations.max(1) as f64 >= POOL_SHARE,
        })).collect::<Vec<_>>(),
    })
}
