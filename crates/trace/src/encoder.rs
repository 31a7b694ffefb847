//! The chunk encoder: one thread's events into a caller's buffer, never allocating, never
//! panicking, so that a malloc can call it on its own allocation paths.
//!
//! The buffer starts with [`CHUNK_HEADER_MAX_BYTES`] of room for the chunk header, which is only
//! known when the chunk ends (its event count and length): [`ChunkEncoder::finish`] writes the
//! header right before the payload, so that the whole chunk is one contiguous slice — one
//! `write` on an `O_APPEND` file, which chunks of other threads cannot split.

use crate::event::{Event, ALIGN_FLAG};
use crate::varint::{encode_uleb, zigzag, ULEB_MAX_BYTES};
use crate::CHUNK_MARKER;

/// The largest chunk header: the marker and five ulebs.
pub const CHUNK_HEADER_MAX_BYTES: usize = 1 + 5 * ULEB_MAX_BYTES;
/// The largest event: tag, `dt`, size, alignment byte, id delta.
pub const EVENT_MAX_BYTES: usize = 1 + ULEB_MAX_BYTES + ULEB_MAX_BYTES + 1 + ULEB_MAX_BYTES;

/// The buffer cannot take another event: [`ChunkEncoder::finish`] it and start again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// The state of one chunk being encoded into a buffer the caller owns. It lives beside the
/// buffer (heapkit-malloc keeps both in one mapping per thread).
#[derive(Clone, Copy, Debug)]
pub struct ChunkEncoder {
    thread: u64,
    base_ticks: u64,
    base_id: u64,
    last_ticks: u64,
    last_new: u64,
    events: u64,
    /// End of the payload in the buffer (the payload starts at `CHUNK_HEADER_MAX_BYTES`).
    end: usize,
}

impl ChunkEncoder {
    /// An encoder for thread number `thread`, with no events yet.
    pub const fn new(thread: u64) -> ChunkEncoder {
        ChunkEncoder {
            thread,
            base_ticks: 0,
            base_id: 0,
            last_ticks: 0,
            last_new: 0,
            events: 0,
            end: CHUNK_HEADER_MAX_BYTES,
        }
    }

    /// Events in the current chunk.
    pub const fn events(&self) -> u64 {
        self.events
    }

    /// Whether the current chunk has no events.
    pub const fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Appends `event` to the chunk in `buf`; `Full` when `buf` might not hold it (nothing is
    /// written then). Ticks that go backwards are recorded as no time passing.
    /// Inlined so that a caller with a known kind (a malloc's `free` hook) drops the other
    /// kinds' branches.
    #[inline(always)]
    pub fn push(&mut self, buf: &mut [u8], event: &Event) -> Result<(), Full> {
        let Some(room) = buf
            .get_mut(self.end..)
            .and_then(|room| room.first_chunk_mut::<EVENT_MAX_BYTES>())
        else {
            return Err(Full);
        };
        if self.events == 0 {
            self.base_ticks = event.ticks;
            self.last_ticks = event.ticks;
            self.base_id = self.last_new;
        }
        let dt = event.ticks.saturating_sub(self.last_ticks);
        let align_flag = if event.carries_align() { ALIGN_FLAG } else { 0 };
        let id_delta = zigzag(event.id.wrapping_sub(self.last_new) as i64);
        let mut out = Cursor::new(room);
        out.byte(event.kind as u8 | align_flag);
        out.uleb(dt);
        if event.kind.creates() {
            out.uleb(event.size);
            if align_flag != 0 {
                out.byte(event.align_log2.min(63));
            }
            out.uleb(id_delta);
            self.last_new = event.id;
        } else {
            out.uleb(id_delta);
            if event.kind.has_size() {
                out.uleb(event.size);
            }
        }
        let at = out.len;
        self.last_ticks = self.last_ticks.max(event.ticks);
        self.end += at;
        self.events += 1;
        Ok(())
    }

    /// Ends the chunk: writes its header right before the payload and returns the whole chunk
    /// (empty when there were no events); the encoder starts a new chunk. `None` only when `buf`
    /// is not the buffer the events went into (shorter than they need).
    pub fn finish<'b>(&mut self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        if self.events == 0 {
            return Some(&[]);
        }
        let payload_bytes = (self.end - CHUNK_HEADER_MAX_BYTES) as u64;
        let mut header = [0u8; CHUNK_HEADER_MAX_BYTES];
        header[0] = CHUNK_MARKER;
        let mut len = 1;
        for value in [
            self.thread,
            self.base_ticks,
            self.base_id,
            self.events,
            payload_bytes,
        ] {
            len += put(&mut header[len..], value);
        }
        let start = CHUNK_HEADER_MAX_BYTES - len;
        let end = self.end;
        let chunk = buf.get_mut(start..end)?;
        chunk[..len].copy_from_slice(&header[..len]);
        self.events = 0;
        self.end = CHUNK_HEADER_MAX_BYTES;
        Some(chunk)
    }
}

/// A write position in the buffer's next [`EVENT_MAX_BYTES`]: an event's bytes go straight
/// into the buffer (no scratch array to zero and copy). The index is masked with
/// `EVENT_MAX_BYTES - 1`, which proves every write in bounds without a check (no event takes
/// more than `EVENT_MAX_BYTES`, so the mask never changes an index).
struct Cursor<'b> {
    room: &'b mut [u8; EVENT_MAX_BYTES],
    len: usize,
}

const _: () = assert!(EVENT_MAX_BYTES.is_power_of_two());

impl<'b> Cursor<'b> {
    #[inline(always)]
    fn new(room: &'b mut [u8; EVENT_MAX_BYTES]) -> Cursor<'b> {
        Cursor { room, len: 0 }
    }

    #[inline(always)]
    fn byte(&mut self, byte: u8) {
        self.room[self.len & (EVENT_MAX_BYTES - 1)] = byte;
        self.len += 1;
    }

    /// A uleb, with the one- and two-byte values (most of a trace's) unrolled.
    #[inline(always)]
    fn uleb(&mut self, mut value: u64) {
        if value < 0x80 {
            return self.byte(value as u8);
        }
        if value < 0x4000 {
            self.byte((value as u8 & 0x7F) | 0x80);
            return self.byte((value >> 7) as u8);
        }
        while value >= 0x80 {
            self.byte((value as u8 & 0x7F) | 0x80);
            value >>= 7;
        }
        self.byte(value as u8);
    }
}

/// Writes a uleb where the caller checked there is room ([`EVENT_MAX_BYTES`] or
/// [`CHUNK_HEADER_MAX_BYTES`]); a short slice writes nothing rather than panicking.
#[inline]
fn put(out: &mut [u8], value: u64) -> usize {
    encode_uleb(value, out).unwrap_or(0)
}
