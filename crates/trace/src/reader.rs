//! The reader: a trace's records in file order, each chunk checked before its events are
//! returned.

use crate::error::{ErrorKind, TraceError};
use crate::event::{Event, Kind, ALIGN_FLAG, DEFAULT_ALIGN_LOG2, KIND_MASK};
use crate::header::{Header, HEADER_BYTES, MAGIC, VERSION};
use crate::varint::{decode_uleb, unzigzag};
use crate::CHUNK_MARKER;

/// An event as read: with its thread number and its index in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// The recording thread's number.
    pub thread: u64,
    /// The index of the event in the file, from 0.
    pub index: u64,
    /// The event.
    pub event: Event,
}

/// Streams the records of a trace held in memory. An iterator of `Result`s; after the first
/// error it returns `None`.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    header: Header,
    /// Where the next chunk starts, or the next event inside the current payload.
    at: usize,
    /// The end of the current payload (equal to `at` between chunks).
    payload_end: usize,
    left_in_chunk: u64,
    thread: u64,
    ticks: u64,
    last_new: u64,
    index: u64,
    failed: bool,
}

impl<'a> Reader<'a> {
    /// Checks the header and returns a reader positioned on the first chunk.
    pub fn new(bytes: &'a [u8]) -> Result<Reader<'a>, TraceError> {
        let header = parse_header(bytes)?;
        let header_bytes = usize::from(u16::from_le_bytes([bytes[10], bytes[11]]));
        Ok(Reader {
            bytes,
            header,
            at: header_bytes,
            payload_end: header_bytes,
            left_in_chunk: 0,
            thread: 0,
            ticks: 0,
            last_new: 0,
            index: 0,
            failed: false,
        })
    }

    /// The trace's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Reads every record, stopping at the first error.
    pub fn read_all(bytes: &'a [u8]) -> Result<(Header, Vec<Record>), TraceError> {
        let reader = Reader::new(bytes)?;
        let header = reader.header;
        let records = reader.collect::<Result<Vec<_>, _>>()?;
        Ok((header, records))
    }

    fn error(&self, kind: ErrorKind, with_index: bool) -> TraceError {
        TraceError {
            kind,
            offset: self.at,
            event_index: with_index.then_some(self.index),
        }
    }

    /// A uleb inside `[self.at, limit)`.
    fn uleb(&mut self, limit: usize, cut: ErrorKind, with_index: bool) -> Result<u64, TraceError> {
        let window = &self.bytes[self.at..limit];
        match decode_uleb(window) {
            Some((value, len)) => {
                self.at += len;
                Ok(value)
            }
            // Cut short by the end of the window, or overlong.
            None if window.len() < crate::ULEB_MAX_BYTES
                && window.iter().all(|b| b & 0x80 != 0) =>
            {
                Err(self.error(cut, with_index))
            }
            None => Err(self.error(ErrorKind::BadVarint, with_index)),
        }
    }

    fn byte(&mut self, limit: usize, with_index: bool) -> Result<u8, TraceError> {
        if self.at >= limit {
            return Err(self.error(ErrorKind::BadVarint, with_index));
        }
        self.at += 1;
        Ok(self.bytes[self.at - 1])
    }

    fn start_chunk(&mut self) -> Result<(), TraceError> {
        let end = self.bytes.len();
        let marker = self.bytes[self.at];
        if marker != CHUNK_MARKER {
            return Err(self.error(ErrorKind::BadChunkMarker(marker), false));
        }
        self.at += 1;
        self.thread = self.uleb(end, ErrorKind::TruncatedChunk, false)?;
        self.ticks = self.uleb(end, ErrorKind::TruncatedChunk, false)?;
        self.last_new = self.uleb(end, ErrorKind::TruncatedChunk, false)?;
        self.left_in_chunk = self.uleb(end, ErrorKind::TruncatedChunk, false)?;
        let payload = self.uleb(end, ErrorKind::TruncatedChunk, false)?;
        let payload = usize::try_from(payload).unwrap_or(usize::MAX);
        if payload > end - self.at {
            return Err(self.error(ErrorKind::TruncatedChunk, true));
        }
        self.payload_end = self.at + payload;
        Ok(())
    }

    fn next_event(&mut self) -> Result<Record, TraceError> {
        let limit = self.payload_end;
        let cut = ErrorKind::PayloadMismatch;
        let tag = self.byte(limit, true).map_err(|e| TraceError {
            kind: cut.clone(),
            ..e
        })?;
        let kind = match Kind::from_code(tag & KIND_MASK) {
            Some(kind) if tag & !(KIND_MASK | ALIGN_FLAG) == 0 => kind,
            _ => return Err(self.error(ErrorKind::BadTag(tag), true)),
        };
        let has_align = tag & ALIGN_FLAG != 0;
        if (kind == Kind::Aligned && !has_align) || (has_align && !kind.creates()) {
            return Err(self.error(ErrorKind::BadTag(tag), true));
        }
        let dt = self.uleb(limit, cut.clone(), true)?;
        self.ticks = self.ticks.saturating_add(dt);
        let mut event = Event::new(kind, 0, 0, self.ticks);
        if kind.creates() {
            event.size = self.uleb(limit, cut.clone(), true)?;
            if has_align {
                let align = self.byte(limit, true)?;
                if align > 63 {
                    return Err(self.error(ErrorKind::BadAlign(align), true));
                }
                event.align_log2 = align;
            } else {
                event.align_log2 = DEFAULT_ALIGN_LOG2;
            }
            let delta = unzigzag(self.uleb(limit, cut.clone(), true)?);
            event.id = self.last_new.wrapping_add(delta as u64);
            self.last_new = event.id;
        } else {
            let delta = unzigzag(self.uleb(limit, cut.clone(), true)?);
            event.id = self.last_new.wrapping_add(delta as u64);
            if kind.has_size() {
                event.size = self.uleb(limit, cut, true)?;
            }
        }
        let record = Record {
            thread: self.thread,
            index: self.index,
            event,
        };
        self.index += 1;
        self.left_in_chunk -= 1;
        Ok(record)
    }

    fn step(&mut self) -> Option<Result<Record, TraceError>> {
        loop {
            if self.left_in_chunk > 0 {
                return Some(self.next_event());
            }
            if self.at != self.payload_end {
                return Some(Err(self.error(ErrorKind::PayloadMismatch, true)));
            }
            if self.at == self.bytes.len() {
                return None;
            }
            if let Err(error) = self.start_chunk() {
                return Some(Err(error));
            }
        }
    }
}

impl Iterator for Reader<'_> {
    type Item = Result<Record, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.step();
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        item
    }
}

/// Checks and decodes the header.
fn parse_header(bytes: &[u8]) -> Result<Header, TraceError> {
    let error = |kind| TraceError {
        kind,
        offset: 0,
        event_index: None,
    };
    if bytes.len() < 12 {
        return Err(error(ErrorKind::TruncatedHeader));
    }
    if bytes[..8] != MAGIC {
        return Err(error(ErrorKind::BadMagic));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        return Err(error(ErrorKind::UnsupportedVersion(version)));
    }
    let header_bytes = u16::from_le_bytes([bytes[10], bytes[11]]);
    if usize::from(header_bytes) < HEADER_BYTES {
        return Err(error(ErrorKind::BadHeaderSize(header_bytes)));
    }
    if bytes.len() < usize::from(header_bytes) {
        return Err(error(ErrorKind::TruncatedHeader));
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let header = Header {
        clock: bytes[12],
        tick_num_ns: u32_at(16),
        tick_den: u32_at(20),
        start_ticks: u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes")),
        pid: u32_at(32),
        parent_pid: u32_at(36),
    };
    if header.tick_den == 0 {
        return Err(error(ErrorKind::BadClock));
    }
    Ok(header)
}
