//! A whole trace from events, for tests and tools: one [`ChunkEncoder`] and buffer per thread,
//! a chunk written whenever a buffer fills and at the end — what the recorder does, in memory.

use crate::encoder::{ChunkEncoder, CHUNK_HEADER_MAX_BYTES, EVENT_MAX_BYTES};
use crate::event::Event;
use crate::header::Header;
use std::collections::BTreeMap;

/// Builds a trace in memory.
#[derive(Debug)]
pub struct TraceWriter {
    out: Vec<u8>,
    chunk_bytes: usize,
    threads: BTreeMap<u64, (ChunkEncoder, Vec<u8>)>,
}

impl TraceWriter {
    /// A trace with `header` whose threads buffer `chunk_bytes` bytes (at least room for one
    /// event) before a chunk is written.
    pub fn new(header: &Header, chunk_bytes: usize) -> TraceWriter {
        TraceWriter {
            out: header.encode().to_vec(),
            chunk_bytes: chunk_bytes.max(CHUNK_HEADER_MAX_BYTES + EVENT_MAX_BYTES),
            threads: BTreeMap::new(),
        }
    }

    /// Records `event` on thread `thread`.
    pub fn push(&mut self, thread: u64, event: &Event) {
        let chunk_bytes = self.chunk_bytes;
        let (encoder, buf) = self
            .threads
            .entry(thread)
            .or_insert_with(|| (ChunkEncoder::new(thread), vec![0; chunk_bytes]));
        if encoder.push(buf, event).is_err() {
            let chunk = encoder.finish(buf).expect("the encoder's own buffer");
            self.out.extend_from_slice(chunk);
            encoder
                .push(buf, event)
                .expect("an empty buffer takes one event");
        }
    }

    /// Flushes thread `thread`'s buffered events as a chunk (as a thread exit does).
    pub fn flush(&mut self, thread: u64) {
        if let Some((encoder, buf)) = self.threads.get_mut(&thread) {
            let chunk = encoder.finish(buf).expect("the encoder's own buffer");
            self.out.extend_from_slice(chunk);
        }
    }

    /// Flushes every thread and returns the trace's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        let threads: Vec<u64> = self.threads.keys().copied().collect();
        for thread in threads {
            self.flush(thread);
        }
        self.out
    }
}
