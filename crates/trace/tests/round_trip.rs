//! The format end to end: the spec's example, round trips, and every refusal naming its event.

use heapkit_trace::{
    in_time_order, ErrorKind, Event, Header, Kind, LifetimeCheck, Reader, Record, TraceError,
    TraceWriter,
};
use proptest::prelude::*;

fn header() -> Header {
    Header::monotonic_ns(42, 1_000)
}

/// Reads and checks a whole trace strictly.
fn check(bytes: &[u8]) -> Result<(Vec<Record>, heapkit_trace::Summary), TraceError> {
    let (header, records) = Reader::read_all(bytes)?;
    let mut check = LifetimeCheck::new(header.parent_pid != 0);
    for record in &records {
        check.accept(record, 0)?;
    }
    Ok((records, check.summary()))
}

#[test]
fn the_specs_example_decodes() {
    let mut bytes = header().encode().to_vec();
    bytes.extend_from_slice(&[0xC7, 0x00, 0x05, 0x00, 0x03, 0x0B]);
    bytes.extend_from_slice(&[0x01, 0x00, 0x18, 0x02]);
    bytes.extend_from_slice(&[0x02, 0x0A, 0x64, 0x02]);
    bytes.extend_from_slice(&[0x04, 0x03, 0x01]);
    let (records, summary) = check(&bytes).unwrap();
    let events: Vec<Event> = records.iter().map(|r| r.event).collect();
    assert_eq!(
        events,
        [
            Event::new(Kind::Malloc, 1, 24, 5),
            Event::new(Kind::Calloc, 2, 100, 15),
            Event::new(Kind::Free, 1, 0, 18),
        ]
    );
    assert_eq!(summary.peak_live_bytes, 124);
    assert_eq!(summary.final_live_bytes, 100);
    // And the writer produces exactly those bytes.
    let mut writer = TraceWriter::new(&header(), 4096);
    for event in &events {
        writer.push(0, event);
    }
    assert_eq!(writer.finish(), bytes);
}

#[test]
fn every_kind_round_trips_with_alignment() {
    let events = [
        Event::new(Kind::Malloc, 1, 0, 0),
        Event::new(Kind::Aligned, 2, 4096, 3).aligned(12),
        Event::new(Kind::New, 3, 48, 9).aligned(6),
        Event::new(Kind::NewArray, 4, 480, 9),
        Event::new(Kind::Realloc, 1, 1 << 40, 20),
        Event::new(Kind::DeleteArray, 4, 0, 21),
        Event::new(Kind::Delete, 3, 0, 21),
        Event::new(Kind::Free, 2, 0, 30),
        Event::new(Kind::Calloc, 5, u64::MAX, u64::MAX),
    ];
    let mut writer = TraceWriter::new(&header(), 4096);
    for event in &events {
        writer.push(7, event);
    }
    let (records, summary) = check(&writer.finish()).unwrap();
    assert!(records.iter().all(|r| r.thread == 7));
    assert_eq!(records.iter().map(|r| r.event).collect::<Vec<_>>(), events);
    assert_eq!(summary.final_live_objects, 2);
}

#[test]
fn a_truncated_trace_names_the_event() {
    let mut writer = TraceWriter::new(&header(), 4096);
    for id in 1..=10 {
        writer.push(0, &Event::new(Kind::Malloc, id, 100, id * 10));
    }
    let bytes = writer.finish();
    let error = Reader::read_all(&bytes[..bytes.len() - 3]).unwrap_err();
    assert_eq!(error.kind, ErrorKind::TruncatedChunk);
    assert_eq!(error.event_index, Some(0));
    assert!(error.to_string().contains("event 0"), "{error}");
    assert_eq!(
        Reader::read_all(&bytes[..20]).unwrap_err().kind,
        ErrorKind::TruncatedHeader
    );
}

#[test]
fn a_wrong_version_is_refused() {
    let mut bytes = TraceWriter::new(&header(), 4096).finish();
    bytes[8] = 2;
    let error = Reader::read_all(&bytes).unwrap_err();
    assert_eq!(error.kind, ErrorKind::UnsupportedVersion(2));
    assert!(error.to_string().contains("wrong version 2"), "{error}");
    bytes[0] = b'X';
    assert_eq!(
        Reader::read_all(&bytes).unwrap_err().kind,
        ErrorKind::BadMagic
    );
}

#[test]
fn frees_of_unknown_and_freed_ids_name_the_event() {
    let mut writer = TraceWriter::new(&header(), 4096);
    writer.push(0, &Event::new(Kind::Malloc, 1, 8, 0));
    writer.push(0, &Event::new(Kind::Free, 9, 0, 1));
    let error = check(&writer.finish()).unwrap_err();
    assert_eq!(error.kind, ErrorKind::UnknownId(9));
    assert_eq!(error.event_index, Some(1));

    let mut writer = TraceWriter::new(&header(), 4096);
    writer.push(0, &Event::new(Kind::Malloc, 1, 8, 0));
    writer.push(0, &Event::new(Kind::Free, 1, 0, 1));
    writer.push(0, &Event::new(Kind::Realloc, 1, 64, 2));
    let error = check(&writer.finish()).unwrap_err();
    assert_eq!(error.kind, ErrorKind::FreedId(1));
    assert_eq!(error.event_index, Some(2));
    assert!(error.to_string().starts_with("event 2"), "{error}");
}

#[test]
fn a_lenient_check_skips_and_counts() {
    let mut writer = TraceWriter::new(&header(), 4096);
    writer.push(0, &Event::new(Kind::Free, 3, 0, 0));
    writer.push(0, &Event::new(Kind::Malloc, 1, 8, 1));
    let (_, records) = Reader::read_all(&writer.finish()).unwrap();
    let mut check = LifetimeCheck::lenient(false);
    let replayed: Vec<bool> = records
        .iter()
        .map(|r| check.accept(r, 0).unwrap())
        .collect();
    assert_eq!(replayed, [false, true]);
    assert_eq!(check.summary().skipped, 1);
}

#[test]
fn a_fork_childs_trace_inherits_unknown_ids() {
    let mut child = header();
    child.parent_pid = 41;
    let mut writer = TraceWriter::new(&child, 4096);
    writer.push(0, &Event::new(Kind::Free, 3, 0, 0));
    let (_, summary) = check(&writer.finish()).unwrap();
    assert_eq!(summary.inherited, 1);
}

#[test]
fn threads_are_merged_in_time_order_frees_after_their_creation() {
    let mut writer = TraceWriter::new(&header(), 4096);
    // Thread 1's chunk (a free of thread 0's object, at the same tick as the malloc) is
    // flushed first, as a thread that exits first does.
    writer.push(1, &Event::new(Kind::Free, 5, 0, 100));
    writer.push(1, &Event::new(Kind::Malloc, 6, 32, 150));
    writer.flush(1);
    writer.push(0, &Event::new(Kind::Malloc, 4, 16, 50));
    writer.push(0, &Event::new(Kind::Malloc, 5, 64, 100));
    writer.push(0, &Event::new(Kind::Free, 6, 0, 160));
    let (_, records) = Reader::read_all(&writer.finish()).unwrap();
    let mut check = LifetimeCheck::new(false);
    assert!(
        records.iter().any(|r| check.accept(r, 0).is_err()),
        "file order is not time order"
    );
    let ordered = in_time_order(records);
    let ids: Vec<(u64, u64)> = ordered.iter().map(|r| (r.thread, r.event.id)).collect();
    assert_eq!(ids, [(0, 4), (0, 5), (1, 5), (1, 6), (0, 6)]);
    let mut check = LifetimeCheck::new(false);
    for record in &ordered {
        check.accept(record, 0).unwrap();
    }
    assert_eq!(check.summary().peak_live_bytes, 80);
}

#[test]
fn typical_events_are_small() {
    let mut writer = TraceWriter::new(&header(), 64 * 1024);
    let mut ticks = 0;
    for id in 1..=10_000u64 {
        ticks += 150;
        writer.push(0, &Event::new(Kind::Malloc, id, 16 + id % 200, ticks));
        if id % 2 == 0 {
            ticks += 90;
            writer.push(0, &Event::new(Kind::Free, id - 1, 0, ticks));
        }
    }
    let bytes = writer.finish();
    let per_event = bytes.len() as f64 / 15_000.0;
    assert!(per_event <= 6.0, "{per_event} bytes per event");
}

fn arb_kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

proptest! {
    /// Any events, on any threads, with any chunk size, read back as written (per thread, in
    /// order).
    #[test]
    fn events_round_trip(
        events in prop::collection::vec(
            (0u64..4, arb_kind(), any::<u64>(), any::<u64>(), 0u8..64, 0u64..1_000_000),
            0..200,
        ),
        chunk_bytes in 64usize..600,
    ) {
        let mut writer = TraceWriter::new(&header(), chunk_bytes);
        let mut ticks = [0u64; 4];
        let mut expected: Vec<Vec<Event>> = vec![Vec::new(); 4];
        for &(thread, kind, id, size, align, dt) in &events {
            let t = &mut ticks[thread as usize];
            *t += dt;
            let mut event = Event::new(kind, id, if kind.frees() { 0 } else { size }, *t);
            if kind == Kind::Aligned || (kind.creates() && align % 3 == 0) {
                event = event.aligned(align);
            }
            writer.push(thread, &event);
            expected[thread as usize].push(event);
        }
        let (_, records) = Reader::read_all(&writer.finish()).unwrap();
        prop_assert_eq!(records.len(), events.len());
        for (index, record) in records.iter().enumerate() {
            prop_assert_eq!(record.index, index as u64);
        }
        for thread in 0..4u64 {
            let got: Vec<Event> =
                records.iter().filter(|r| r.thread == thread).map(|r| r.event).collect();
            prop_assert_eq!(&got, &expected[thread as usize]);
        }
    }

    /// Arbitrary bytes after a valid header never panic the reader.
    #[test]
    fn garbage_is_refused_not_panicked_on(tail in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = header().encode().to_vec();
        bytes.extend_from_slice(&tail);
        if let Ok(reader) = Reader::new(&bytes) {
            let mut check = LifetimeCheck::new(false);
            for record in reader {
                let Ok(record) = record else { break };
                if check.accept(&record, 0).is_err() {
                    break;
                }
            }
        }
    }
}
