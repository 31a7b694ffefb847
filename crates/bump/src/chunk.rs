//! The chunk header: what an arena knows about each chunk, stored at the chunk's start.
//!
//! ```text
//!   chunk start (aligned to CHUNK_ALIGN_BYTES or more)
//!   ┌────────────────────────────────────┬──────────────────────────────────────────┐
//!   │ ChunkHeader { prev, len_bytes,     │ data: bumped through from low to high    │
//!   │   align_bytes, filled_bytes }      │                                          │
//!   └────────────────────────────────────┴──────────────────────────────────────────┘
//!   ▲ header                             ▲ data_start(header)                        ▲ end(header)
//! ```
//!
//! The header is at the start (not the end, as in bumpalo) because the arena bumps upward:
//! the data then runs from just after the header to the chunk's end, and the end is where
//! growth of the last block goes.

use core::ptr::NonNull;

/// What the arena records about one chunk.
#[repr(C)]
pub(crate) struct ChunkHeader {
    /// The chunk allocated before this one (older), or `None` for the oldest.
    pub(crate) prev: Option<NonNull<ChunkHeader>>,
    /// The whole chunk's length, header included, as passed to the source.
    pub(crate) len_bytes: usize,
    /// The alignment the chunk was asked for (the source needs it back to free the chunk).
    pub(crate) align_bytes: usize,
    /// For a retired (non-current) chunk: bytes of data that were bumped past when it stopped
    /// being current. Unused (zero) while the chunk is current: the arena's `ptr` says it.
    pub(crate) filled_bytes: usize,
}

/// Bytes the header takes at the start of every chunk.
pub(crate) const HEADER_BYTES: usize = core::mem::size_of::<ChunkHeader>();

/// Every chunk is aligned at least this much, so the header is aligned and the data starts on
/// a `MIN_ALIGN_BYTES` boundary.
pub(crate) const CHUNK_ALIGN_BYTES: usize = 16;

const _: () = assert!(CHUNK_ALIGN_BYTES >= core::mem::align_of::<ChunkHeader>());
const _: () = assert!(CHUNK_ALIGN_BYTES % crate::MIN_ALIGN_BYTES == 0);
const _: () = assert!(HEADER_BYTES % CHUNK_ALIGN_BYTES == 0);

/// The first data byte of a chunk.
///
/// # Safety
/// `header` is a live chunk's header.
#[inline]
pub(crate) unsafe fn data_start(header: NonNull<ChunkHeader>) -> *mut u8 {
    // SAFETY: the chunk is longer than its header (chunks are at least FIRST_CHUNK_BYTES or
    // header + request), so the address is inside it.
    unsafe { header.as_ptr().cast::<u8>().add(HEADER_BYTES) }
}

/// One past the last byte of a chunk.
///
/// # Safety
/// `header` is a live chunk's header.
#[inline]
pub(crate) unsafe fn end(header: NonNull<ChunkHeader>) -> *mut u8 {
    // SAFETY: `len_bytes` is the chunk's length, so the result is one past its end.
    unsafe {
        header
            .as_ptr()
            .cast::<u8>()
            .add((*header.as_ptr()).len_bytes)
    }
}

/// Bytes of data a chunk can hold.
///
/// # Safety
/// `header` is a live chunk's header.
#[inline]
pub(crate) unsafe fn capacity_bytes(header: NonNull<ChunkHeader>) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { (*header.as_ptr()).len_bytes - HEADER_BYTES }
}

/// Whether `addr` lies in the chunk's data area (its end included, where an empty tail block
/// would start).
///
/// # Safety
/// `header` is a live chunk's header.
#[inline]
pub(crate) unsafe fn contains(header: NonNull<ChunkHeader>, addr: usize) -> bool {
    // SAFETY: forwarded from the caller.
    let (start, end) = unsafe { (data_start(header) as usize, end(header) as usize) };
    start <= addr && addr <= end
}
