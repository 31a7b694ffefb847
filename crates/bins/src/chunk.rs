//! Chunks and their boundary tags: the header every block carries, and the arithmetic on it.
//!
//! ```text
//!   chunk ─► ┌───────────────────────────────┐
//!            │ prev_size  (the previous      │  valid only while the previous chunk is
//!            │            chunk's footer)    │  free; otherwise its owner's last 8 bytes
//!            ├───────────────────────┬───┬─┬─┤
//!            │ size (multiple of 16) │ K │M│P│  M = mmapped, P = previous chunk in use,
//!     mem ─► ├───────────────────────┴───┴─┴─┤  K = kind: live, fence, cached or free
//!            │ fd, bk          (free only)   │  ◄── mem: what the caller gets (16-aligned)
//!            │ fd/bk_nextsize  (large free)  │
//!            │ ... caller's bytes ...        │
//!   next  ─► ├───────────────────────────────┤
//!            │ prev_size = size (if free)    │  ◄── the footer: lets `next` find `chunk`
//!            └───────────────────────────────┘
//! ```
//!
//! A chunk's own "in use" bit lives in the *next* chunk's header (P), so a free chunk costs no
//! extra word and a used one lends its footer word to its owner: usable = size - 8. The kind
//! (K) repeats "free" in the chunk's own header: `free` reads it from a neighbour's header it
//! loads anyway, instead of one more header further on (glibc reads that one: a dependent
//! cache miss on every coalescing free).

use core::ptr;
use heapkit_core::{MAX_ALIGN_BYTES, WORD_BYTES};

/// The size of one header word (`prev_size` or `size`).
pub(crate) const SIZE_SZ: usize = WORD_BYTES;
/// Bytes between a chunk's address and its caller's pointer (`prev_size` + `size`).
pub(crate) const HEADER_BYTES: usize = 2 * SIZE_SZ;
/// Every chunk and every caller pointer is aligned this much.
pub(crate) const CHUNK_ALIGN_BYTES: usize = MAX_ALIGN_BYTES;
/// The smallest chunk: a header plus `fd`, `bk` (its footer overlaps the next header).
pub(crate) const MIN_CHUNK_BYTES: usize = 32;
/// Size of a fencepost chunk (a bare header closing a segment).
pub(crate) const FENCE_BYTES: usize = HEADER_BYTES;
/// The largest request served: leaves room for alignment padding and page rounding so that no
/// size computation can overflow (`Layout` already caps sizes at `isize::MAX`).
pub(crate) const MAX_REQUEST_BYTES: usize = (isize::MAX as usize) - (1 << 32);

/// Flag in `size`: the previous chunk is in use (so `prev_size` is not a footer).
pub(crate) const PREV_INUSE: usize = 0b01;
/// Flag in `size`: the chunk is a run of its own from the page source (`prev_size` holds the
/// distance from the run's start).
pub(crate) const IS_MMAPPED: usize = 0b10;
/// The two bits of `size` above `IS_MMAPPED` say what a heap chunk is (its *kind*): live (0),
/// a fencepost, cached in the tcache, or free in a bin. The kind lives in the chunk's own
/// header, so `free` learns whether a neighbour can be merged from the neighbour's header
/// alone, without the dependent cache miss on the header after it (where the P bit is).
pub(crate) const KIND_MASK: usize = 0b1100;
/// Kind: a fencepost closing a retired segment (never a block, never free, never coalesced
/// with).
pub(crate) const IS_FENCE: usize = 0b0100;
/// Kind: the chunk sits in the tcache (looks in use, is not). glibc marks cached chunks with a
/// key in the caller's bytes instead; reading bytes the caller may never have written is
/// undefined behaviour in Rust, the header is ours.
pub(crate) const IN_TCACHE: usize = 0b1000;
/// Kind: the chunk is free in a bin (unsorted, small or large; never the top chunk). Exactly
/// the chunks whose next chunk has a clear P bit. A chunk merged into its free predecessor
/// keeps this kind in its stale header, so freeing it again is still caught.
pub(crate) const IS_FREE: usize = 0b1100;
/// Low bits of `size` that are flags, not size (sizes are multiples of 16).
pub(crate) const FLAG_MASK: usize = CHUNK_ALIGN_BYTES - 1;

const _: () = assert!(
    HEADER_BYTES == CHUNK_ALIGN_BYTES,
    "mem must keep chunk alignment"
);
const _: () = assert!(MIN_CHUNK_BYTES % CHUNK_ALIGN_BYTES == 0);
const _: () = assert!(
    MIN_CHUNK_BYTES >= HEADER_BYTES + 2 * SIZE_SZ,
    "room for fd and bk"
);
const _: () = assert!(FLAG_MASK == (PREV_INUSE | IS_MMAPPED | KIND_MASK));
const _: () = assert!(IS_FREE == IS_FENCE | IN_TCACHE && IS_FREE == KIND_MASK);
const _: () = assert!(core::mem::offset_of!(Chunk, fd) == HEADER_BYTES);
const _: () = assert!(core::mem::size_of::<Chunk>() == 6 * SIZE_SZ);

/// A chunk header as it lies in memory. Only the fields a chunk's state makes valid may be
/// touched: `prev_size` and `size` always; `fd`, `bk` while free (or for a bin sentinel);
/// `fd_nextsize`, `bk_nextsize` only for free chunks of large-bin size.
#[repr(C)]
pub(crate) struct Chunk {
    pub(crate) prev_size: usize,
    pub(crate) size: usize,
    pub(crate) fd: *mut Chunk,
    pub(crate) bk: *mut Chunk,
    pub(crate) fd_nextsize: *mut Chunk,
    pub(crate) bk_nextsize: *mut Chunk,
}

/// A pointer to a chunk header.
pub(crate) type ChunkPtr = *mut Chunk;

/// The chunk size that serves a request of `request_bytes` (header overhead included, rounded
/// to 16, at least [`MIN_CHUNK_BYTES`]), or `None` when the request is absurdly large.
#[inline(always)]
pub(crate) const fn request_to_size(request_bytes: usize) -> Option<usize> {
    if request_bytes > MAX_REQUEST_BYTES {
        return None;
    }
    let size = (request_bytes + SIZE_SZ + FLAG_MASK) & !FLAG_MASK;
    Some(if size < MIN_CHUNK_BYTES {
        MIN_CHUNK_BYTES
    } else {
        size
    })
}

const _: () = assert!(matches!(request_to_size(1), Some(32)));
const _: () = assert!(matches!(request_to_size(24), Some(32)));
const _: () = assert!(matches!(request_to_size(25), Some(48)));
const _: () = assert!(request_to_size(usize::MAX).is_none());

/// The chunk `offset_bytes` after `c` (in the same run).
///
/// # Safety
/// The result lies within (or one past) the run that holds `c`.
#[inline(always)]
pub(crate) unsafe fn at(c: ChunkPtr, offset_bytes: usize) -> ChunkPtr {
    // SAFETY: the caller keeps the result inside the run.
    unsafe { c.cast::<u8>().add(offset_bytes).cast() }
}

/// The chunk `offset_bytes` before `c` (in the same run).
///
/// # Safety
/// The result lies within the run that holds `c`.
#[inline(always)]
pub(crate) unsafe fn before(c: ChunkPtr, offset_bytes: usize) -> ChunkPtr {
    // SAFETY: the caller keeps the result inside the run.
    unsafe { c.cast::<u8>().sub(offset_bytes).cast() }
}

/// The caller's pointer for chunk `c`.
#[inline(always)]
pub(crate) fn to_mem(c: ChunkPtr) -> *mut u8 {
    c.cast::<u8>().wrapping_add(HEADER_BYTES)
}

/// The chunk behind a caller's pointer.
#[inline(always)]
pub(crate) fn from_mem(mem: *mut u8) -> ChunkPtr {
    mem.wrapping_sub(HEADER_BYTES).cast()
}

/// The size field with flags.
///
/// # Safety
/// `c` points at a readable chunk header.
#[inline(always)]
pub(crate) unsafe fn head(c: ChunkPtr) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { ptr::addr_of!((*c).size).read() }
}

/// The size in bytes, flags stripped.
///
/// # Safety
/// `c` points at a readable chunk header.
#[inline(always)]
pub(crate) unsafe fn size(c: ChunkPtr) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { head(c) & !FLAG_MASK }
}

/// Whether the chunk before `c` is in use.
///
/// # Safety
/// `c` points at a readable chunk header.
#[inline(always)]
pub(crate) unsafe fn prev_inuse(c: ChunkPtr) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { head(c) & PREV_INUSE != 0 }
}

/// Whether `c` is a run of its own from the page source.
///
/// # Safety
/// `c` points at a readable chunk header.
#[inline(always)]
pub(crate) unsafe fn is_mmapped(c: ChunkPtr) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { head(c) & IS_MMAPPED != 0 }
}

/// The kind bits of `c`'s header: 0 (live), [`IS_FENCE`], [`IN_TCACHE`] or [`IS_FREE`].
///
/// # Safety
/// `c` points at a readable chunk header.
#[inline(always)]
pub(crate) unsafe fn kind(c: ChunkPtr) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { head(c) & KIND_MASK }
}

/// Whether `c` is a fencepost.
///
/// # Safety
/// `c` points at a readable chunk header.
#[inline(always)]
pub(crate) unsafe fn is_fence(c: ChunkPtr) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { kind(c) == IS_FENCE }
}

/// Whether `c` is a free chunk in a bin (read from its own header).
///
/// # Safety
/// `c` points at a readable chunk header.
#[inline(always)]
pub(crate) unsafe fn is_free(c: ChunkPtr) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { kind(c) == IS_FREE }
}

/// Writes the size field (size and flags).
///
/// # Safety
/// `c` points at a writable chunk header.
#[inline(always)]
pub(crate) unsafe fn set_head(c: ChunkPtr, size_and_flags: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { ptr::addr_of_mut!((*c).size).write(size_and_flags) }
}

/// Reads `prev_size` (the previous chunk's footer, or an mmapped chunk's offset).
///
/// # Safety
/// `c` points at a readable chunk header.
#[inline(always)]
pub(crate) unsafe fn prev_size(c: ChunkPtr) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { ptr::addr_of!((*c).prev_size).read() }
}

/// Writes `prev_size`.
///
/// # Safety
/// `c` points at a writable chunk header.
#[inline(always)]
pub(crate) unsafe fn set_prev_size(c: ChunkPtr, value: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { ptr::addr_of_mut!((*c).prev_size).write(value) }
}

/// Writes the footer of a free chunk of `size_bytes` (the next chunk's `prev_size`).
///
/// # Safety
/// `c` is a chunk of `size_bytes` followed by a chunk header in the same run.
#[inline(always)]
pub(crate) unsafe fn set_foot(c: ChunkPtr, size_bytes: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { set_prev_size(at(c, size_bytes), size_bytes) }
}

/// Whether the chunk at `c + offset_bytes` is in use (the P bit of the chunk after it).
///
/// # Safety
/// `c + offset_bytes` is a chunk with a header after it in the same run.
#[inline(always)]
pub(crate) unsafe fn inuse_at(c: ChunkPtr, offset_bytes: usize) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { prev_inuse(at(c, offset_bytes)) }
}

/// Marks the chunk that ends at `c + offset_bytes` as in use.
///
/// # Safety
/// `c + offset_bytes` is a chunk header in the same run.
#[inline(always)]
pub(crate) unsafe fn set_inuse_at(c: ChunkPtr, offset_bytes: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let next = at(c, offset_bytes);
        set_head(next, head(next) | PREV_INUSE);
    }
}

/// Marks a free chunk just taken out of its bin as in use, whole: its kind back to live and
/// the P bit of the chunk after it set.
///
/// # Safety
/// `c` is a chunk of `c_size` bytes followed by a chunk header in the same run.
#[inline(always)]
pub(crate) unsafe fn set_taken(c: ChunkPtr, c_size: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        debug_assert!(kind(c) == IS_FREE, "taking a chunk that is not free");
        set_head(c, head(c) & !KIND_MASK);
        set_inuse_at(c, c_size);
    }
}

/// Marks the chunk that ends at `c + offset_bytes` as free.
///
/// # Safety
/// `c + offset_bytes` is a chunk header in the same run.
#[inline(always)]
pub(crate) unsafe fn clear_inuse_at(c: ChunkPtr, offset_bytes: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let next = at(c, offset_bytes);
        set_head(next, head(next) & !PREV_INUSE);
    }
}

/// The bytes a caller may use in a live chunk: heap chunks lend their footer word, mmapped
/// chunks have no next chunk to lend from.
///
/// # Safety
/// `c` is a live chunk.
#[inline(always)]
pub(crate) unsafe fn usable_bytes(c: ChunkPtr) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe {
        if is_mmapped(c) {
            size(c) - HEADER_BYTES
        } else {
            size(c) - SIZE_SZ
        }
    }
}
