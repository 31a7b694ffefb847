//! Replaying a recorded allocation trace (`docs/trace-format.md`) through one allocator:
//! the trace becomes a [`Plan`] (per replay thread, the operations in the recorded order, each
//! naming the object's slot and how many operations the object has seen before it), then
//! [`replay`] runs the plan's threads at once. An operation on an object another thread used
//! last waits until that operation is done, so cross-thread frees and reallocs happen as
//! recorded and nothing else is ordered between threads.
//!
//! ```text
//!   trace ─► Reader ─► in_time_order ─► LifetimeCheck ─► Plan { threads: [[Op]], live curve }
//!                                                           │
//!   replay(plan, allocator): one OS thread per plan thread ─┘─► time, RSS peak/final/curve
//! ```

use crate::{callgrind, rss};
use heapkit_pages::MmapPages;
use heapkit_trace::{in_time_order, Event, Kind, LifetimeCheck, Reader, Record};
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `ThreadCache<Bins>`: heapkit's thread caches over the locked bins, a composition the
/// allocator list of the benchmarks does not carry (replays only).
pub static HEAPKIT_TCACHE_BINS: heapkit_tcache::ThreadCache<heapkit_bins::LockedBins<MmapPages>> =
    heapkit_tcache::ThreadCache::new(heapkit_bins::LockedBins::new(MmapPages::new()));

/// The replay-only allocator's name.
pub const TCACHE_BINS_NAME: &str = "heapkit-tcache-bins";

/// Every allocator a replay runs, in report order: the benchmarks' general-purpose ones and
/// [`TCACHE_BINS_NAME`].
pub fn allocator_names() -> impl Iterator<Item = &'static str> {
    crate::allocators::NAMES
        .into_iter()
        .chain([TCACHE_BINS_NAME])
}

/// Points of the live-bytes and RSS curves.
const CURVE_POINTS: u64 = 400;

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// A new block (zeroed for `calloc`).
    Alloc {
        /// `calloc`: ask for zeroed memory.
        zeroed: bool,
    },
    /// A resize of the object's block.
    Realloc,
    /// The object's block is freed.
    Free,
}

/// One operation of a plan thread.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    /// What it does.
    pub kind: OpKind,
    /// The object's slot (dense, from 0).
    pub slot: u32,
    /// How many operations the object saw before this one (its creation is 0).
    pub version: u32,
    /// The new size (the block's size for a free).
    pub size: u64,
    /// The size before (reallocs and frees).
    pub old_size: u64,
    /// The alignment.
    pub align: u64,
    /// The index of the operation in the time-ordered trace.
    pub seq: u64,
}

/// A trace ready to replay.
#[derive(Debug, Default)]
pub struct Plan {
    /// The operations of each replay thread.
    pub threads: Vec<Vec<Op>>,
    /// Objects (slots).
    pub objects: usize,
    /// Operations in all.
    pub operations: u64,
    /// The checker's summary (peak and final live bytes, skipped and inherited events).
    pub summary: heapkit_trace::Summary,
    /// (operation index, live bytes) at regular steps.
    pub live_curve: Vec<(u64, u64)>,
}

/// How the replay maps recorded threads to replay threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// One replay thread per recorded thread.
    Original,
    /// Everything on one thread, in time order.
    One,
}

/// Reads, orders and checks a trace: the records in time order. A strict check stops at the
/// first bad event with a message naming it; a lenient one skips bad events (the returned
/// records leave them out) and, when the file is cut short or garbled, keeps the records read
/// before the damage (saying so on stderr): a trace of a killed process still replays.
pub fn load(bytes: &[u8], lenient: bool) -> Result<(heapkit_trace::Header, Vec<Record>), String> {
    let reader = Reader::new(bytes).map_err(|e| e.to_string())?;
    let header = *reader.header();
    let mut records = Vec::new();
    for record in reader {
        match record {
            Ok(record) => records.push(record),
            Err(error) if lenient => {
                eprintln!(
                    "heapkit-replay: {error}; replaying the {} events before it",
                    records.len()
                );
                break;
            }
            Err(error) => return Err(error.to_string()),
        }
    }
    let records = in_time_order(records);
    let inherits = header.parent_pid != 0;
    let mut check = if lenient {
        LifetimeCheck::lenient(inherits)
    } else {
        LifetimeCheck::new(inherits)
    };
    let mut kept = Vec::with_capacity(records.len());
    for record in records {
        if check.accept(&record, 0).map_err(|e| e.to_string())? {
            kept.push(record);
        }
    }
    Ok((header, kept))
}

/// The plan of checked, time-ordered records.
pub fn plan(records: &[Record], threads: Threads) -> Plan {
    let mut plan = Plan::default();
    let mut slots: HashMap<u64, (u32, u32, u64)> = HashMap::new();
    let mut thread_index: HashMap<u64, usize> = HashMap::new();
    let mut check = LifetimeCheck::new(true);
    let step = (records.len() as u64 / CURVE_POINTS).max(1);
    for (seq, record) in records.iter().enumerate() {
        let event: Event = record.event;
        let _ = check.accept(record, 0);
        let index = match threads {
            Threads::One => 0,
            Threads::Original => {
                let next = thread_index.len();
                *thread_index.entry(record.thread).or_insert(next)
            }
        };
        if plan.threads.len() <= index {
            plan.threads.resize_with(index + 1, Vec::new);
        }
        let align = event.align_bytes().max(1);
        let op = if event.kind.creates() {
            let slot = plan.objects as u32;
            plan.objects += 1;
            slots.insert(event.id, (slot, 1, event.size));
            Op {
                kind: OpKind::Alloc {
                    zeroed: event.kind == Kind::Calloc,
                },
                slot,
                version: 0,
                size: event.size,
                old_size: 0,
                align,
                seq: seq as u64,
            }
        } else {
            let Some(entry) = slots.get_mut(&event.id) else {
                continue;
            };
            let (slot, version, old_size) = *entry;
            let kind = if event.kind.frees() {
                OpKind::Free
            } else {
                OpKind::Realloc
            };
            *entry = (slot, version + 1, event.size);
            Op {
                kind,
                slot,
                version,
                size: if kind == OpKind::Free {
                    old_size
                } else {
                    event.size
                },
                old_size,
                align,
                seq: seq as u64,
            }
        };
        plan.threads[index].push(op);
        plan.operations += 1;
        if seq as u64 % step == 0 {
            plan.live_curve.push((seq as u64, check.live_bytes()));
        }
    }
    plan.summary = check.summary();
    plan
}

/// One object's block during a replay.
struct Slot {
    block: AtomicPtr<u8>,
    /// Operations done on the object; the next operation waits for its own version.
    done: AtomicU32,
    /// The alignment the object was created with (reallocs keep it).
    align: AtomicU64,
}

/// What a replay measured.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Wall time of the replay.
    pub elapsed: Duration,
    /// RSS above the process's before the replay: at the peak and at the end.
    pub peak_rss_bytes: u64,
    /// See `peak_rss_bytes`.
    pub final_rss_bytes: u64,
    /// (operations done, RSS above the baseline) sampled during the replay.
    pub rss_curve: Vec<(u64, u64)>,
    /// Operations that failed (the allocator returned NULL).
    pub failures: u64,
}

/// The layout an operation asks for (zero sizes become one byte, as C's `malloc(0)`).
fn layout(size: u64, align: u64) -> Layout {
    Layout::from_size_align(size.max(1) as usize, align.max(1) as usize)
        .unwrap_or_else(|_| Layout::new::<u8>())
}

/// Writes the block's first and last byte, so that its pages are really faulted in.
fn touch(block: *mut u8, size: u64) {
    let last = size.max(1) as usize - 1;
    // SAFETY: the block is at least `size.max(1)` bytes long and owned by this replay.
    unsafe {
        block.write_volatile(1);
        block.add(last).write_volatile(1);
    }
}

/// Waits until the object has seen `version` operations (its previous one, maybe on another
/// thread, is done).
#[inline]
fn wait_for(slot: &Slot, version: u32) {
    if slot.done.load(Ordering::Acquire) != version {
        replay_uncounted_wait(slot, version);
    }
}

/// [`wait_for`]'s spin: how long it spins depends on scheduling, so callgrind leaves it out of
/// the count (its name holds [`callgrind::UNCOUNTED_MARKER`]; never inlined, so that the name
/// is there to match).
#[inline(never)]
#[cold]
fn replay_uncounted_wait(slot: &Slot, version: u32) {
    let mut spins = 0u32;
    while slot.done.load(Ordering::Acquire) != version {
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Runs one operation.
fn run_op<G: GlobalAlloc>(alloc: &G, slots: &[Slot], op: &Op, touching: bool) -> bool {
    let slot = &slots[op.slot as usize];
    wait_for(slot, op.version);
    let ok = match op.kind {
        OpKind::Alloc { zeroed } => {
            let layout = layout(op.size, op.align);
            // SAFETY: a non-zero layout.
            let block = unsafe {
                if zeroed {
                    alloc.alloc_zeroed(layout)
                } else {
                    alloc.alloc(layout)
                }
            };
            slot.align.store(op.align, Ordering::Relaxed);
            slot.block.store(block, Ordering::Relaxed);
            if !block.is_null() && touching {
                touch(block, op.size);
            }
            !block.is_null()
        }
        OpKind::Realloc => {
            let block = slot.block.load(Ordering::Relaxed);
            let align = slot.align.load(Ordering::Relaxed);
            if block.is_null() {
                false
            } else {
                // SAFETY: a live block of this allocator with this layout; the new size is
                // non-zero.
                let new = unsafe {
                    alloc.realloc(block, layout(op.old_size, align), op.size.max(1) as usize)
                };
                if !new.is_null() {
                    slot.block.store(new, Ordering::Relaxed);
                    if touching {
                        touch(new, op.size);
                    }
                }
                !new.is_null()
            }
        }
        OpKind::Free => {
            let block = slot.block.swap(std::ptr::null_mut(), Ordering::Relaxed);
            if !block.is_null() {
                let align = slot.align.load(Ordering::Relaxed);
                // SAFETY: a live block of this allocator with this layout, freed once.
                unsafe { alloc.dealloc(block, layout(op.size, align)) };
            }
            true
        }
    };
    slot.done.store(op.version + 1, Ordering::Release);
    ok
}

/// One replay thread's operations: the instructions callgrind counts (the function's name
/// holds [`callgrind::COUNTED_MARKER`]; never inlined, so that the name is there to match).
#[inline(never)]
fn replay_counted<G: GlobalAlloc>(
    alloc: &G,
    slots: &[Slot],
    ops: &[Op],
    touching: bool,
    progress: &AtomicU64,
    failures: &AtomicU64,
) {
    for (index, op) in ops.iter().enumerate() {
        if !run_op(alloc, slots, op, touching) {
            failures.fetch_add(1, Ordering::Relaxed);
        }
        if index % 1024 == 1023 {
            progress.fetch_add(1024, Ordering::Relaxed);
        }
    }
}

/// Replays `plan` through `alloc`, touching each new block's first and last byte when
/// `touching`. Blocks live at the end are left allocated (the final RSS counts them).
pub fn replay<G: GlobalAlloc + Sync>(plan: &Plan, alloc: &G, touching: bool) -> Outcome {
    let slots: Vec<Slot> = (0..plan.objects)
        .map(|_| Slot {
            block: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicU32::new(0),
            align: AtomicU64::new(1),
        })
        .collect();
    let baseline = rss::resident().now_bytes as u64;
    rss::reset_peak();
    let progress = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let finished = AtomicBool::new(false);
    // Under `valgrind --tool=callgrind --instr-atstart=no` (cargo xtask replay), the trace was
    // read uninstrumented; from here on the replay threads are counted.
    callgrind::start_instrumentation();
    let started = Instant::now();
    let mut curve = Vec::new();
    std::thread::scope(|scope| {
        let workers: Vec<_> = plan
            .threads
            .iter()
            .map(|ops| {
                let (slots, progress, failures) = (&slots, &progress, &failures);
                scope.spawn(move || {
                    replay_counted(alloc, slots, ops, touching, progress, failures);
                })
            })
            .collect();
        let sampler = scope.spawn(|| {
            let mut samples = Vec::new();
            while !finished.load(Ordering::Acquire) {
                let now = rss::resident().now_bytes as u64;
                samples.push((
                    progress.load(Ordering::Relaxed),
                    now.saturating_sub(baseline),
                ));
                std::thread::sleep(Duration::from_millis(2));
            }
            samples
        });
        for worker in workers {
            worker.join().expect("a replay thread");
        }
        finished.store(true, Ordering::Release);
        curve = sampler.join().expect("the sampler");
    });
    let elapsed = started.elapsed();
    let resident = rss::resident();
    curve.push((
        plan.operations,
        (resident.now_bytes as u64).saturating_sub(baseline),
    ));
    Outcome {
        elapsed,
        peak_rss_bytes: (resident.peak_bytes as u64).saturating_sub(baseline),
        final_rss_bytes: (resident.now_bytes as u64).saturating_sub(baseline),
        rss_curve: curve,
        failures: failures.load(Ordering::Relaxed),
    }
}

impl Outcome {
    /// The JSON line `heapkit-replay run` prints (docs/results-schema.md, "Replay").
    pub fn to_json(&self, allocator: &str, plan: &Plan) -> Value {
        json!({
            "allocator": allocator,
            "threads": plan.threads.len(),
            "operations": plan.operations,
            "time_s": self.elapsed.as_secs_f64(),
            "ops_per_s": plan.operations as f64 / self.elapsed.as_secs_f64().max(1e-9),
            "peak_rss_bytes": self.peak_rss_bytes,
            "final_rss_bytes": self.final_rss_bytes,
            "failures": self.failures,
            "rss_curve": self.rss_curve,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// callgrind finds the counted and uncounted parts by these functions' names.
    #[test]
    fn the_marker_functions_carry_the_markers() {
        let counted = std::any::type_name_of_val(&replay_counted::<std::alloc::System>);
        let uncounted = std::any::type_name_of_val(&replay_uncounted_wait);
        assert!(counted.contains(callgrind::COUNTED_MARKER), "{counted}");
        assert!(
            uncounted.contains(callgrind::UNCOUNTED_MARKER),
            "{uncounted}"
        );
        assert!(!counted.contains(callgrind::UNCOUNTED_MARKER));
    }
}
