//! One global order for a trace's records: chunks of different threads are in flush order in
//! the file, not in time order, so a thread's free of another thread's object can come first.
//! [`in_time_order`] merges the threads by timestamp, keeping each thread's own order, and holds
//! back an operation on an object another thread creates later in the trace until that creation
//! (clocks of equal readings, or a recorder's clock skew, cannot put a free before its malloc).

use crate::reader::Record;
use hashbrown::{HashMap, HashSet};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

/// The records in time order (see the module's documentation). Stable: records of one thread
/// keep their order; ties in time go to the lower thread number.
pub fn in_time_order(records: Vec<Record>) -> Vec<Record> {
    let total = records.len();
    let mut threads: BTreeMap<u64, VecDeque<Record>> = BTreeMap::new();
    let mut created: HashSet<u64> = HashSet::new();
    for record in records {
        if record.event.kind.creates() {
            created.insert(record.event.id);
        }
        threads.entry(record.thread).or_default().push_back(record);
    }
    let mut heads: BinaryHeap<Reverse<(u64, u64)>> = threads
        .iter()
        .filter_map(|(&thread, queue)| Some(Reverse((queue.front()?.event.ticks, thread))))
        .collect();
    // Threads waiting for an object to be created, by the object's id.
    let mut waiting: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut live: HashSet<u64> = HashSet::new();
    let mut out = Vec::with_capacity(total);
    loop {
        let Some(Reverse((_, thread))) = heads.pop() else {
            // Only threads waiting for objects never created (a bad trace) are left: emit the
            // rest in thread order so that the lifetime check reports them.
            let mut rest: Vec<Record> = threads.into_values().flatten().collect();
            out.append(&mut rest);
            return out;
        };
        let queue = threads.get_mut(&thread).expect("a thread with a head");
        let record = *queue.front().expect("a head");
        let event = record.event;
        if !event.kind.creates() && !live.contains(&event.id) && created.contains(&event.id) {
            waiting.entry(event.id).or_default().push(thread);
            continue;
        }
        queue.pop_front();
        if let Some(next) = queue.front() {
            heads.push(Reverse((next.event.ticks, thread)));
        }
        if event.kind.creates() {
            live.insert(event.id);
            created.remove(&event.id);
            for woken in waiting.remove(&event.id).unwrap_or_default() {
                let ticks = threads[&woken].front().expect("a waiting head").event.ticks;
                heads.push(Reverse((ticks, woken)));
            }
        } else if event.kind.frees() {
            live.remove(&event.id);
        }
        out.push(record);
    }
}
