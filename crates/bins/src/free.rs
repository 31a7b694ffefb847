//! The free path (glibc's `_int_free`): the tcache, the fast bins, coalescing with free
//! neighbours into the unsorted bin or top, consolidation of the fast bins, the cheap checks
//! of a bad free, and mmapped chunks going straight back to the page source.

use crate::binlist::{fd, set_fd, unlink};
use crate::chunk::{
    at, before, clear_inuse_at, head, inuse_at, is_mmapped, kind, prev_inuse, prev_size, set_head,
    size, ChunkPtr, FLAG_MASK, IS_FENCE, IS_FREE, IS_MMAPPED, KIND_MASK, MIN_CHUNK_BYTES,
    PREV_INUSE,
};
use crate::config::{MAX_FAST_BIN_BYTES, MAX_MMAP_THRESHOLD_BYTES};
use crate::heap::Bins;
use crate::report::{bad_free, Misuse};
use crate::tcache::{tcache_index, TCACHE_MAX_CHUNK_BYTES};
use core::ptr;
use heapkit_core::PageSource;

/// Freeing a chunk at least this large (after coalescing) consolidates the fast bins and
/// considers trimming (glibc's `FASTBIN_CONSOLIDATION_THRESHOLD`).
const CONSOLIDATION_THRESHOLD_BYTES: usize = 64 * 1024;

const _: () = assert!(CONSOLIDATION_THRESHOLD_BYTES > MAX_FAST_BIN_BYTES);

impl<P: PageSource> Bins<P> {
    /// Coalesces every fast-bin chunk with its free neighbours and files the results in the
    /// unsorted bin (glibc's `malloc_consolidate`).
    ///
    /// # Safety
    /// The heap is initialised.
    pub(crate) unsafe fn consolidate(&self) {
        self.have_fast.set(false);
        for slot in &self.fastbins {
            let mut p = slot.replace(ptr::null_mut());
            while !p.is_null() {
                // SAFETY: fast-bin members are valid chunks that look in use.
                unsafe {
                    let next_in_list = fd(p);
                    self.merge_free(p, size(p));
                    p = next_in_list;
                }
            }
        }
    }

    /// Frees a live chunk.
    ///
    /// # Safety
    /// `p` is a live chunk of this heap (checked cheaply; misuse is reported, not acted on).
    #[inline]
    pub(crate) unsafe fn free_chunk(&self, p: ChunkPtr) {
        // SAFETY: forwarded from the caller (and validated by `validate_free`); a heap chunk
        // of tcache size may be cached as it is.
        unsafe {
            let head = head(p);
            if head & IS_MMAPPED == 0
                && head <= TCACHE_MAX_CHUNK_BYTES | FLAG_MASK
                && self.tcache.push(tcache_index(head & !FLAG_MASK), p)
            {
                return;
            }
            self.free_uncached(p);
        }
    }

    /// [`free_chunk`](Self::free_chunk) past the tcache: `_int_free` without it.
    ///
    /// # Safety
    /// As for `free_chunk`.
    #[inline]
    pub(crate) unsafe fn free_uncached(&self, p: ChunkPtr) {
        // SAFETY: forwarded from the caller.
        unsafe {
            if is_mmapped(p) {
                self.munmap_chunk(p);
                return;
            }
            let p_size = size(p);
            if p_size <= self.fast_max_bytes {
                let slot = self.fastbin(p_size);
                debug_assert!(slot.get() != p, "double free (fast bin top)");
                set_fd(p, slot.get());
                slot.set(p);
                self.have_fast.set(true);
                return;
            }
            let merged_size = self.merge_free(p, p_size);
            if merged_size >= CONSOLIDATION_THRESHOLD_BYTES {
                if self.have_fast.get() {
                    self.consolidate();
                }
                // Tested here so that a LIFO heap breathing at its end skips the call.
                if size(self.top.get()) >= self.trim_threshold_bytes.get() {
                    self.trim_top();
                }
            }
        }
    }

    /// Checks a chunk about to be freed; reports misuse and returns false if it is bad.
    ///
    /// # Safety
    /// `p`'s header is readable (the caller's claim that it is a live chunk).
    #[inline(always)]
    pub(crate) unsafe fn validate_free(&self, p: ChunkPtr) -> bool {
        // SAFETY: forwarded from the caller.
        let result = unsafe {
            if p as usize % 16 != 0 {
                Err(Misuse::InvalidPointer)
            } else if is_mmapped(p) {
                self.check_mmapped(p)
            } else {
                self.quick_check(p, size(p))
            }
        };
        match result {
            Ok(()) => true,
            Err(misuse) => {
                bad_free(misuse, crate::chunk::to_mem(p) as usize);
                false
            }
        }
    }

    /// An mmapped chunk's run must be page-aligned at both ends.
    ///
    /// Out of line: the page size may cost a call (the OS is asked once), and a call inlined
    /// into `free` makes every free save and restore six registers for it.
    ///
    /// # Safety
    /// `p`'s header is readable.
    #[cold]
    #[inline(never)]
    unsafe fn check_mmapped(&self, p: ChunkPtr) -> Result<(), Misuse> {
        // SAFETY: forwarded from the caller.
        let (offset, p_size) = unsafe { (prev_size(p), size(p)) };
        let page = self.pages.page_size();
        let base = (p as usize).wrapping_sub(offset);
        // The run (offset + size) is whole pages; the chunk itself may be shorter than a page
        // when an alignment lead precedes it and it was shrunk.
        let run_ok = p_size
            .checked_add(offset)
            .is_some_and(|run| run >= page && run & (page - 1) == 0);
        let ok =
            p_size >= MIN_CHUNK_BYTES && run_ok && base & (page - 1) == 0 && base <= p as usize;
        if ok {
            Ok(())
        } else {
            Err(Misuse::InvalidPointer)
        }
    }

    /// The checks glibc's `free` makes before touching anything: the size is plausible and the
    /// chunk is marked in use. Also, in debug builds or with `checked`, that it lies in a
    /// segment.
    ///
    /// # Safety
    /// `p` is readable as a chunk header (the caller's claim that it is a live chunk).
    #[inline(always)]
    unsafe fn quick_check(&self, p: ChunkPtr, p_size: usize) -> Result<(), Misuse> {
        if p as usize % 16 != 0 || p_size < MIN_CHUNK_BYTES || p == self.top.get() {
            return Err(if p == self.top.get() {
                Misuse::DoubleFree
            } else {
                Misuse::InvalidPointer
            });
        }
        if cfg!(any(debug_assertions, feature = "checked")) && !self.in_some_segment(p, p_size) {
            return Err(Misuse::InvalidPointer);
        }
        if p_size <= self.fast_max_bytes && self.fastbin(p_size).get() == p {
            return Err(Misuse::DoubleFree);
        }
        // A cached or binned chunk, or one merged into its free predecessor, says so in its
        // own header: no need to read the next one, which a tcache free never touches.
        // SAFETY: the header is readable (the caller's claim).
        match unsafe { kind(p) } {
            0 => {}
            IS_FENCE => return Err(Misuse::InvalidPointer),
            _ => return Err(Misuse::DoubleFree),
        }
        // SAFETY: the size is plausible; the next header lies in the same segment (verified
        // above in these builds).
        if cfg!(any(debug_assertions, feature = "checked")) && unsafe { !inuse_at(p, p_size) } {
            return Err(Misuse::DoubleFree);
        }
        Ok(())
    }

    /// Coalesces a chunk that is being freed with its free neighbours and files the result
    /// in the unsorted bin, or merges it into top. Returns the merged size.
    ///
    /// # Safety
    /// `p` is a chunk of `p_size` bytes marked in use (the next chunk's P bit is set) and in
    /// no bin.
    pub(crate) unsafe fn merge_free(&self, mut p: ChunkPtr, mut p_size: usize) -> usize {
        // SAFETY: boundary tags are consistent (the heap invariant), so neighbours found
        // through them are valid chunks of the same segment.
        unsafe {
            let next = at(p, p_size);
            let next_head = head(next);
            if !prev_inuse(p) {
                // Left behind inside the merged chunk, the header still tells a second free
                // of `p` that it is not live.
                set_head(p, head(p) | IS_FREE);
                let prev_bytes = prev_size(p);
                p = before(p, prev_bytes);
                debug_assert!(size(p) == prev_bytes, "corrupted size vs. prev_size");
                p_size += prev_bytes;
                unlink(p);
            }
            if next == self.top.get() {
                p_size += next_head & !FLAG_MASK;
                set_head(p, p_size | PREV_INUSE);
                self.top.set(p);
                return p_size;
            }
            // The kind in next's own header, not the P bit one header further: one cache
            // miss fewer (the boundary tags agree; `check()` verifies it).
            if next_head & KIND_MASK == IS_FREE {
                debug_assert!(!inuse_at(next, next_head & !FLAG_MASK));
                unlink(next);
                p_size += next_head & !FLAG_MASK;
            } else {
                clear_inuse_at(next, 0);
            }
            self.set_free_head(p, p_size);
            self.push_unsorted(p, p_size);
            p_size
        }
    }

    /// Gives an mmapped chunk's run back to the page source, raising the mmap threshold as
    /// glibc does (a program that frees large blocks will likely ask for them again; serving
    /// them from the heap avoids a map/unmap pair each time).
    ///
    /// # Safety
    /// `p` is a live mmapped chunk of this heap.
    unsafe fn munmap_chunk(&self, p: ChunkPtr) {
        // SAFETY: an mmapped chunk's prev_size is its offset into its run; the run is
        // offset + size bytes long.
        unsafe {
            let offset = prev_size(p);
            let p_size = size(p);
            let total = offset + p_size;
            let base = before(p, offset);
            if self.config.dynamic_mmap_threshold
                && p_size > self.mmap_threshold_bytes.get()
                && p_size <= MAX_MMAP_THRESHOLD_BYTES
            {
                self.mmap_threshold_bytes.set(p_size);
                self.trim_threshold_bytes.set(2 * p_size);
            }
            self.counters
                .mmapped_bytes
                .set(self.counters.mmapped_bytes.get() - total);
            self.counters
                .mmapped_blocks
                .set(self.counters.mmapped_blocks.get() - 1);
            self.pages
                .unmap(core::ptr::NonNull::new_unchecked(base.cast()), total);
        }
    }
}
