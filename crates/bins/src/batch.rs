//! Size classes and batches: what a thread cache (heapkit-tcache) needs from the arena.
//!
//! ```text
//!   class c  ◄──►  chunk size 32 + 16 c  (the small bins 2..63: chunks 32..1008,
//!                  usable 24..1000 bytes)  requests up to 1000 bytes, align <= 16
//!
//!   allocate_batch(c, n):  tcache bin ─► small bin (exact fits) ─► carve one chunk
//!                                                                  of k x size:
//!      ┌───────┬───────┬───────┬─────────────┐
//!      │ block │ block │ block │ tail (freed)│   k blocks with exact headers; a tail
//!      └───────┴───────┴───────┴─────────────┘   that is not a whole block goes back
//! ```
//!
//! Every block a batch hands out has exactly its class's chunk size, so the class found from
//! the pointer (`class_of_block`) is always the class it was allocated in. A single `malloc`
//! cannot promise that: a split that would leave a 16-byte sliver hands out the sliver too.

use crate::binlist::{bk, in_smallbin_range, smallbin_index, unlink};
use crate::chunk::{
    at, from_mem, head, request_to_size, set_head, set_taken, size, to_mem, FLAG_MASK, IS_MMAPPED,
    MIN_CHUNK_BYTES, PREV_INUSE,
};
use crate::heap::Bins;
use crate::tcache::tcache_index;
use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::{PageSource, MAX_ALIGN_BYTES};

/// Number of size classes: the small bins with room for a block (chunks 32..1008).
pub const CLASS_COUNT: usize = crate::binlist::NSMALLBINS - 2;
/// The largest chunk of a class.
const MAX_CLASS_CHUNK_BYTES: usize = class_chunk_bytes(CLASS_COUNT - 1);
/// The largest request a class serves.
pub const MAX_CLASS_REQUEST_BYTES: usize = MAX_CLASS_CHUNK_BYTES - crate::chunk::SIZE_SZ;
/// Blocks one carve produces at most: bounds the carved chunk (64 x 1008 B < 64 KiB, below any
/// mmap threshold's effect since carving never maps) and the work under the caller's lock.
const CARVE_BLOCKS_MAX: usize = 64;

const _: () = assert!(CLASS_COUNT == 62);
const _: () = assert!(MAX_CLASS_CHUNK_BYTES == 1008 && in_smallbin_range(MAX_CLASS_CHUNK_BYTES));
const _: () = assert!(matches!(
    request_to_size(MAX_CLASS_REQUEST_BYTES),
    Some(1008)
));
const _: () = assert!(MAX_CLASS_CHUNK_BYTES <= crate::tcache::TCACHE_MAX_CHUNK_BYTES);
const _: () = assert!(CARVE_BLOCKS_MAX >= 2, "a carve needs room for a tail");

/// The chunk size of class `class`.
#[inline(always)]
const fn class_chunk_bytes(class: usize) -> usize {
    MIN_CHUNK_BYTES + class * 16
}

/// The class of a chunk size in the class range.
#[inline(always)]
const fn class_of_chunk(size_bytes: usize) -> usize {
    (size_bytes - MIN_CHUNK_BYTES) >> 4
}

impl<P: PageSource> Bins<P> {
    /// The class serving `layout`: requests up to [`MAX_CLASS_REQUEST_BYTES`] aligned at most
    /// 16. `None` for anything else.
    #[inline(always)]
    pub fn class_of(layout: Layout) -> Option<usize> {
        if layout.size() > MAX_CLASS_REQUEST_BYTES || layout.align() > MAX_ALIGN_BYTES {
            return None;
        }
        let nb = request_to_size(layout.size())?;
        Some(class_of_chunk(nb))
    }

    /// The usable bytes of every block of `class` (0 for a class out of range).
    #[inline(always)]
    pub fn class_size(class: usize) -> usize {
        if class >= CLASS_COUNT {
            return 0;
        }
        class_chunk_bytes(class) - crate::chunk::SIZE_SZ
    }

    /// The class of a live block, from its chunk size; `None` for mmapped and larger chunks.
    ///
    /// # Safety
    /// `ptr` is a live block of this heap.
    #[inline(always)]
    pub unsafe fn class_of_block(&self, ptr: NonNull<u8>) -> Option<usize> {
        // SAFETY: a live block's header is readable.
        let h = unsafe { head(from_mem(ptr.as_ptr())) };
        let chunk_bytes = h & !FLAG_MASK;
        if h & IS_MMAPPED != 0 || chunk_bytes > MAX_CLASS_CHUNK_BYTES {
            return None;
        }
        Some(class_of_chunk(chunk_bytes))
    }

    /// Allocates up to `out.len()` blocks of `class` (each of exactly the class's chunk size),
    /// writes their addresses to the front of `out` and returns how many (0 when out of
    /// memory or `class` is out of range).
    pub fn allocate_batch(&self, class: usize, out: &mut [*mut u8]) -> usize {
        if class >= CLASS_COUNT {
            return 0;
        }
        let nb = class_chunk_bytes(class);
        let mut got = self.take_exact(nb, out);
        while got < out.len() {
            let carved = self.carve(nb, &mut out[got..]);
            if carved == 0 {
                break;
            }
            got += carved;
        }
        for &mem in &out[..got] {
            self.note_alloc(from_mem(mem));
        }
        got
    }

    /// Frees blocks of `class`, past the tcache (the caller is a cache already, and freed
    /// blocks that coalesce keep the heap compact).
    ///
    /// # Safety
    /// Every pointer is a live block of this heap of class `class`, none twice.
    pub unsafe fn deallocate_batch(&self, class: usize, blocks: &[*mut u8]) {
        for &mem in blocks {
            debug_assert!(!mem.is_null());
            // SAFETY: forwarded from the caller.
            unsafe {
                debug_assert_eq!(
                    self.class_of_block(NonNull::new_unchecked(mem)),
                    Some(class)
                );
                self.free_block_uncached(NonNull::new_unchecked(mem));
            }
        }
    }

    /// Fills `out` from chunks of exactly `nb` bytes that are free already: the tcache bin,
    /// exact fits met while sorting the unsorted bin, then the small bin (glibc stashes what
    /// it meets on both paths into its tcache).
    fn take_exact(&self, nb: usize, out: &mut [*mut u8]) -> usize {
        let mut got = 0;
        while got < out.len() {
            // SAFETY: nb is a class size, inside the tcache's range.
            let Some(p) = (unsafe { self.tcache.pop(tcache_index(nb)) }) else {
                break;
            };
            out[got] = to_mem(p);
            got += 1;
        }
        if self.area.get().is_null() {
            return got;
        }
        // SAFETY: the heap is initialised; small-bin members are free chunks of size nb.
        unsafe {
            while got < out.len() {
                let Some(p) = self.scan_unsorted(nb) else {
                    break;
                };
                debug_assert_eq!(size(p), nb);
                out[got] = to_mem(p);
                got += 1;
            }
            let bin = self.bin(smallbin_index(nb));
            while got < out.len() {
                let p = bk(bin);
                if p == bin {
                    break;
                }
                debug_assert_eq!(size(p), nb);
                unlink(p);
                set_taken(p, nb);
                out[got] = to_mem(p);
                got += 1;
            }
        }
        got
    }

    /// The last resort of a carve: one chunk of `nb`, kept only if it is exactly that size.
    fn take_one_exact(&self, nb: usize, out: &mut [*mut u8]) -> usize {
        let Ok(p) = self.malloc_heap(nb) else {
            return 0;
        };
        // SAFETY: `p` is a fresh in-use heap chunk.
        unsafe {
            if size(p) != nb {
                self.free_uncached(p);
                return 0;
            }
        }
        out[0] = to_mem(p);
        1
    }

    /// Takes one chunk of several blocks' worth from the heap and cuts it into blocks of `nb`
    /// bytes. Returns how many it wrote to `out` (0 when out of memory).
    fn carve(&self, nb: usize, out: &mut [*mut u8]) -> usize {
        debug_assert!(!out.is_empty());
        // At least two blocks, so that a 16-byte sliver on the chunk still leaves a block
        // after it becomes part of the tail. Near exhaustion, ask for less.
        let mut blocks = out.len().clamp(2, CARVE_BLOCKS_MAX);
        let p = loop {
            if let Ok(p) = self.malloc_heap(blocks * nb) {
                break p;
            }
            if blocks == 2 {
                return self.take_one_exact(nb, out);
            }
            blocks /= 2;
        };
        // SAFETY: `p` is a fresh in-use heap chunk of at least blocks x nb bytes; every cut
        // lies inside it.
        unsafe {
            let p_size = size(p);
            debug_assert!(p_size >= blocks * nb && p_size - blocks * nb < MIN_CHUNK_BYTES);
            let whole = if p_size == blocks * nb {
                blocks
            } else {
                blocks - 1
            };
            let used = whole.min(out.len());
            set_head(p, nb | (head(p) & PREV_INUSE));
            out[0] = to_mem(p);
            for (i, slot) in out.iter_mut().enumerate().take(used).skip(1) {
                let block = at(p, i * nb);
                set_head(block, nb | PREV_INUSE);
                *slot = to_mem(block);
            }
            let tail_size = p_size - used * nb;
            if tail_size > 0 {
                debug_assert!(tail_size >= MIN_CHUNK_BYTES);
                let tail = at(p, used * nb);
                set_head(tail, tail_size | PREV_INUSE);
                self.free_uncached(tail);
            }
            used
        }
    }
}
