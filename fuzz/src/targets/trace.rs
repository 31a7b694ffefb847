//! The trace reader (`heapkit_trace::Reader`) and the lifetime check on arbitrary bytes: every
//! input is read to its end or to its first error, never a panic. A valid header is put in
//! front of most inputs (the first byte chooses), so the fuzzer spends its time in the chunks.
//! What decodes is encoded again and must read back the same (per thread, in order).

use heapkit_trace::{Event, Header, LifetimeCheck, Reader, TraceWriter};
use std::collections::BTreeMap;

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let bytes: Vec<u8> = if choice & 1 == 0 {
        let mut bytes = Header::monotonic_ns(1, 0).encode().to_vec();
        bytes.extend_from_slice(rest);
        bytes
    } else {
        rest.to_vec()
    };
    let Ok(reader) = Reader::new(&bytes) else {
        return;
    };
    let header = *reader.header();
    let mut check = LifetimeCheck::new(header.parent_pid != 0);
    let mut lenient = LifetimeCheck::lenient(false);
    let mut per_thread: BTreeMap<u64, Vec<Event>> = BTreeMap::new();
    for record in reader {
        let Ok(record) = record else { break };
        let _ = check.accept(&record, 0);
        let _ = lenient.accept(&record, 0);
        per_thread
            .entry(record.thread)
            .or_default()
            .push(record.event);
    }
    let _ = (check.summary(), lenient.summary());
    // Re-encode what was read (ticks made monotonic per thread, as a recorder's are).
    let mut writer = TraceWriter::new(&header, 256);
    for (thread, events) in &mut per_thread {
        let mut ticks = 0;
        for event in events.iter_mut() {
            ticks = ticks.max(event.ticks);
            event.ticks = ticks;
            writer.push(*thread, event);
        }
    }
    let again = writer.finish();
    let (_, records) = Reader::read_all(&again).expect("re-encoded trace reads back");
    let mut again_per_thread: BTreeMap<u64, Vec<Event>> = BTreeMap::new();
    for record in records {
        again_per_thread
            .entry(record.thread)
            .or_default()
            .push(record.event);
    }
    assert_eq!(again_per_thread, per_thread, "re-encoded events differ");
}
