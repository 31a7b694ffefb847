//! What is wrong with a trace, and where.

use core::fmt;

/// A trace the reader or the lifetime check refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// The byte offset in the file where it was found.
    pub offset: usize,
    /// The index (from 0, over the whole file) of the event it concerns, when it concerns one.
    pub event_index: Option<u64>,
}

/// The ways a trace can be wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file is shorter than its header.
    TruncatedHeader,
    /// The file does not start with `HKTRACE\0`.
    BadMagic,
    /// A version this reader does not know.
    UnsupportedVersion(u16),
    /// A header size below the version's.
    BadHeaderSize(u16),
    /// A header with a zero tick denominator.
    BadClock,
    /// A chunk does not start with the chunk marker.
    BadChunkMarker(u8),
    /// The file ends inside a chunk header or its payload.
    TruncatedChunk,
    /// A varint that is overlong or runs past its chunk's payload.
    BadVarint,
    /// A tag with a reserved bit set or an unknown kind.
    BadTag(u8),
    /// An alignment byte above 63, or an aligned event without one.
    BadAlign(u8),
    /// A payload whose events do not fill it exactly.
    PayloadMismatch,
    /// A free or realloc of an id that was never created.
    UnknownId(u64),
    /// A free or realloc of an id that was already freed.
    FreedId(u64),
    /// A creation of an id that is live.
    LiveId(u64),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::TruncatedHeader => {
                write!(f, "truncated: the file is shorter than its header")
            }
            ErrorKind::BadMagic => write!(f, "not a heapkit trace (bad magic)"),
            ErrorKind::UnsupportedVersion(v) => {
                write!(
                    f,
                    "wrong version {v} (this reader knows version {})",
                    crate::VERSION
                )
            }
            ErrorKind::BadHeaderSize(n) => write!(f, "header size {n} is below the version's"),
            ErrorKind::BadClock => write!(f, "the header's tick denominator is 0"),
            ErrorKind::BadChunkMarker(b) => write!(f, "expected a chunk marker, found {b:#04x}"),
            ErrorKind::TruncatedChunk => write!(f, "truncated: the file ends inside a chunk"),
            ErrorKind::BadVarint => write!(f, "overlong or cut varint"),
            ErrorKind::BadTag(t) => write!(f, "bad event tag {t:#04x}"),
            ErrorKind::BadAlign(a) => write!(f, "bad alignment byte {a}"),
            ErrorKind::PayloadMismatch => {
                write!(f, "the chunk's events do not fill its payload exactly")
            }
            ErrorKind::UnknownId(id) => write!(f, "free or realloc of unknown id {id}"),
            ErrorKind::FreedId(id) => write!(f, "free or realloc of freed id {id}"),
            ErrorKind::LiveId(id) => write!(f, "id {id} created while live"),
        }
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let about_objects = matches!(
            self.kind,
            ErrorKind::UnknownId(_) | ErrorKind::FreedId(_) | ErrorKind::LiveId(_)
        );
        match self.event_index {
            // A lifetime error is about the event, wherever its bytes were.
            Some(index) if about_objects => write!(f, "event {index}: {}", self.kind),
            Some(index) => write!(f, "event {index} (byte {}): {}", self.offset, self.kind),
            None => write!(f, "byte {}: {}", self.offset, self.kind),
        }
    }
}

impl std::error::Error for TraceError {}
