//! The tcache: glibc's (2.26+) first stop for small chunks, kept inside the arena.
//!
//! ```text
//!   heads[i] ─► chunk ─► chunk ─► null     bin i holds chunks of exactly 32 + 16 i bytes
//!   counts[i] = 2  (never above limit)     (i = 0..63, so chunks up to 1040 bytes)
//!
//!   a cached chunk:  ┌ prev_size ┬ size|T|P ┬ next (fd word) ┬ ...
//!                    └───────────┴──────────┴────────────────┴     T = IN_TCACHE
//! ```
//!
//! A freed chunk of tcache size goes on its bin's LIFO while the bin has room, left marked in
//! use (no coalescing, no bin sorting); `malloc` pops it back. That makes the common
//! free-then-malloc-the-same-size pattern a push and a pop, which is why glibc put it in front
//! of everything else. Each bin is bounded (7 by default), so at most a few KiB per size are
//! kept out of coalescing, unlike the unbounded fast bins.
//!
//! The `IN_TCACHE` kind in the header marks a cached chunk, so `free` tells a double free in one
//! test. glibc writes a key into the freed block's second word instead and, on a match, walks the
//! bin; here that read would be of bytes the caller may never have initialised (undefined
//! behaviour in Rust, and Miri says so), while the header is always the allocator's.

use crate::binlist::{fd, set_fd};
use crate::chunk::{head, set_head, ChunkPtr, IN_TCACHE, MIN_CHUNK_BYTES};
use crate::config::MAX_TCACHE_COUNT;
use core::cell::Cell;
use core::ptr;

/// Number of tcache bins (glibc's `TCACHE_MAX_BINS`).
pub(crate) const TCACHE_BINS: usize = 64;
/// The largest chunk the tcache holds: 1040 bytes, requests up to 1032 (glibc's).
pub(crate) const TCACHE_MAX_CHUNK_BYTES: usize = MIN_CHUNK_BYTES + (TCACHE_BINS - 1) * 16;

const _: () = assert!(
    TCACHE_MAX_CHUNK_BYTES == 1040,
    "glibc's MAX_TCACHE_SIZE + header"
);
const _: () = assert!(tcache_index(TCACHE_MAX_CHUNK_BYTES) == TCACHE_BINS - 1);
const _: () = assert!(tcache_index(MIN_CHUNK_BYTES) == 0);
const _: () = assert!(MAX_TCACHE_COUNT <= u16::MAX as usize);

/// The tcache bin of a chunk size (`MIN_CHUNK_BYTES..=TCACHE_MAX_CHUNK_BYTES`).
#[inline(always)]
pub(crate) const fn tcache_index(size_bytes: usize) -> usize {
    (size_bytes - MIN_CHUNK_BYTES) >> 4
}

/// The chunk size of tcache bin `index`.
#[inline(always)]
pub(crate) const fn tcache_chunk_bytes(index: usize) -> usize {
    MIN_CHUNK_BYTES + index * 16
}

/// Per-size LIFO lists of freed chunks that still look in use.
pub(crate) struct Tcache {
    heads: [Cell<ChunkPtr>; TCACHE_BINS],
    counts: [Cell<u16>; TCACHE_BINS],
    /// Chunks per bin (0: the tcache is off and every push is refused).
    limit: u16,
}

impl Tcache {
    /// An empty tcache holding up to `limit` chunks per bin.
    pub(crate) const fn new(limit: usize) -> Self {
        debug_assert!(limit <= MAX_TCACHE_COUNT);
        Tcache {
            heads: [const { Cell::new(ptr::null_mut()) }; TCACHE_BINS],
            counts: [const { Cell::new(0) }; TCACHE_BINS],
            limit: limit as u16,
        }
    }

    /// The per-bin limit.
    pub(crate) fn limit(&self) -> usize {
        self.limit as usize
    }

    /// The first chunk of bin `index` (null when empty).
    pub(crate) fn head(&self, index: usize) -> ChunkPtr {
        self.heads[index].get()
    }

    /// How many chunks bin `index` holds.
    pub(crate) fn count(&self, index: usize) -> usize {
        self.counts[index].get() as usize
    }

    /// Takes a chunk of exactly `tcache_chunk_bytes(index)` bytes, if the bin has one.
    ///
    /// # Safety
    /// `index < TCACHE_BINS`; the bin's chunks are valid cached chunks.
    #[inline(always)]
    pub(crate) unsafe fn pop(&self, index: usize) -> Option<ChunkPtr> {
        debug_assert!(index < TCACHE_BINS);
        // SAFETY: index < TCACHE_BINS (the caller's promise).
        let head = unsafe { self.heads.get_unchecked(index) };
        let p = head.get();
        if p.is_null() {
            return None;
        }
        // SAFETY: a cached chunk's fd word is the next link and its header is readable.
        unsafe {
            head.set(fd(p));
            set_head(p, self::head(p) & !IN_TCACHE);
            let count = self.counts.get_unchecked(index);
            debug_assert!(count.get() > 0);
            count.set(count.get() - 1);
        }
        Some(p)
    }

    /// Caches a chunk if its bin has room; returns false (changing nothing) when it is full.
    ///
    /// # Safety
    /// `index < TCACHE_BINS`; `p` is a live chunk of `tcache_chunk_bytes(index)` bytes that is
    /// being freed (not already cached).
    #[inline(always)]
    pub(crate) unsafe fn push(&self, index: usize, p: ChunkPtr) -> bool {
        debug_assert!(index < TCACHE_BINS);
        // SAFETY: index < TCACHE_BINS.
        let count = unsafe { self.counts.get_unchecked(index) };
        if count.get() >= self.limit {
            return false;
        }
        // SAFETY: as above; `p` is a chunk whose fd word belongs to the allocator again.
        unsafe {
            let head = self.heads.get_unchecked(index);
            set_fd(p, head.get());
            set_head(p, self::head(p) | IN_TCACHE);
            head.set(p);
        }
        count.set(count.get() + 1);
        true
    }

    /// Whether `p` is in the tcache: the double-free test, exact and O(1).
    ///
    /// # Safety
    /// `p`'s header is readable.
    #[inline(always)]
    pub(crate) unsafe fn contains(p: ChunkPtr) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe { crate::chunk::kind(p) == IN_TCACHE }
    }

    /// Empties every bin, handing each chunk to `release`.
    pub(crate) fn drain(&self, mut release: impl FnMut(ChunkPtr)) {
        for index in 0..TCACHE_BINS {
            let mut p = self.heads[index].replace(ptr::null_mut());
            let count = self.counts[index].replace(0);
            for _ in 0..count {
                debug_assert!(!p.is_null());
                // SAFETY: bin members are valid cached chunks linked through fd.
                let next = unsafe {
                    set_head(p, self::head(p) & !IN_TCACHE);
                    fd(p)
                };
                release(p);
                p = next;
            }
        }
    }
}
