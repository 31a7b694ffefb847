//! The malloc path (glibc's `_int_malloc`): the tcache, the fast bins, the exact small bin,
//! then the slow path — the unsorted bin sorted into the bins, best fit in a large bin, the
//! bitmap's next non-empty bin, splitting, and finally the top chunk and growth.

use crate::binlist::{
    bin_index, bk, bk_nextsize, fd, in_smallbin_range, insert_large, largebin_index, link_between,
    set_bk, set_bk_nextsize, set_fd, set_fd_nextsize, smallbin_index, unlink, BINMAP_WORDS, NBINS,
    UNSORTED,
};
use crate::chunk::{at, head, set_head, set_taken, size, ChunkPtr, MIN_CHUNK_BYTES, PREV_INUSE};
use crate::heap::Bins;
use crate::tcache::{tcache_index, TCACHE_MAX_CHUNK_BYTES};
use core::ptr;
use heapkit_core::{AllocError, PageSource};

/// How many unsorted chunks one `malloc` sorts at most (glibc's `MAX_ITERS`): bounds the
/// latency of a single call.
const MAX_UNSORTED_ITERS: usize = 10_000;

const _: () = assert!(BINMAP_WORDS == 2, "only_top_fits reads two bitmap words");

impl<P: PageSource> Bins<P> {
    /// Serves a chunk of `nb` bytes (a value of `request_to_size`), in use on return.
    #[inline]
    pub(crate) fn malloc_chunk(&self, nb: usize) -> Result<ChunkPtr, AllocError> {
        debug_assert!(nb >= MIN_CHUNK_BYTES && nb % 16 == 0);
        if nb <= TCACHE_MAX_CHUNK_BYTES {
            // SAFETY: the index is in range; cached chunks are valid (the bins are empty
            // before the heap exists).
            if let Some(p) = unsafe { self.tcache.pop(tcache_index(nb)) } {
                return Ok(p);
            }
        }
        self.malloc_uncached(nb)
    }

    /// [`malloc_chunk`](Self::malloc_chunk) past the tcache: `_int_malloc`.
    #[inline]
    pub(crate) fn malloc_uncached(&self, nb: usize) -> Result<ChunkPtr, AllocError> {
        if self.area.get().is_null() {
            self.init(nb)?;
        }
        // SAFETY: the heap is initialised, so bins, top and segments are valid.
        unsafe {
            if nb <= self.fast_max_bytes {
                if let Some(p) = self.fast_pop(nb) {
                    return Ok(p);
                }
            }
            if !in_smallbin_range(nb) && nb >= self.mmap_threshold_bytes.get() {
                return self.mmap_chunk(nb);
            }
            self.malloc_in_heap(nb)
        }
    }

    /// A chunk of `nb` bytes carved from the heap: never mmapped, never from the tcache or the
    /// fast bins (batches cut it into blocks).
    pub(crate) fn malloc_heap(&self, nb: usize) -> Result<ChunkPtr, AllocError> {
        if self.area.get().is_null() {
            self.init(nb)?;
        }
        // SAFETY: the heap is initialised.
        unsafe { self.malloc_in_heap(nb) }
    }

    /// The exact small bin, else the slow path (consolidating first for a large request).
    ///
    /// # Safety
    /// The heap is initialised.
    #[inline(always)]
    unsafe fn malloc_in_heap(&self, nb: usize) -> Result<ChunkPtr, AllocError> {
        // SAFETY: the heap is initialised, so bins are valid lists.
        unsafe {
            if in_smallbin_range(nb) {
                let bin = self.bin(smallbin_index(nb));
                let victim = bk(bin);
                if victim != bin {
                    unlink(victim);
                    set_taken(victim, nb);
                    return Ok(victim);
                }
            } else if self.have_fast.get() {
                self.consolidate();
            }
            if self.only_top_fits(nb) {
                if let Some(p) = self.split_top(nb) {
                    return Ok(p);
                }
            }
            self.malloc_slow(nb)
        }
    }

    /// Whether no bin can serve `nb`: the unsorted bin is empty, no fast chunks wait, and no
    /// bin from `nb`'s own up is marked. Then the slow path would end at top anyway, so a
    /// heap that only grows and shrinks at its end (LIFO) skips it. A stale bit just means
    /// the slow path runs and clears it.
    ///
    /// # Safety
    /// The heap is initialised.
    #[inline(always)]
    unsafe fn only_top_fits(&self, nb: usize) -> bool {
        // SAFETY: the heap is initialised.
        let unsorted = unsafe { self.bin(UNSORTED) };
        // SAFETY: the sentinel's links are valid.
        if unsafe { bk(unsorted) } != unsorted || self.have_fast.get() {
            return false;
        }
        let index = bin_index(nb);
        let (low, high) = (self.binmap[0].get(), self.binmap[1].get());
        if index < 64 {
            low >> index == 0 && high == 0
        } else {
            high >> (index - 64) == 0
        }
    }

    /// The bins, then growth; when the page source is exhausted, the tcache's chunks go back
    /// to the bins (where they may coalesce into a fit) for one more try.
    ///
    /// # Safety
    /// The heap is initialised.
    #[inline(never)]
    unsafe fn malloc_slow(&self, nb: usize) -> Result<ChunkPtr, AllocError> {
        // SAFETY: the heap is initialised.
        unsafe {
            if let Some(p) = self.malloc_from_bins(nb) {
                return Ok(p);
            }
            if self.grow_heap(nb).is_ok() {
                return self.split_top(nb).ok_or(AllocError);
            }
            if self.flush_tcache() == 0 {
                return Err(AllocError);
            }
            self.malloc_from_bins(nb).ok_or(AllocError)
        }
    }

    /// Gives every tcache chunk back to the bins (coalescing it); returns how many.
    pub(crate) fn flush_tcache(&self) -> usize {
        let mut flushed = 0;
        self.tcache.drain(|p| {
            // SAFETY: a cached chunk is a chunk of this heap marked in use and in no bin.
            unsafe { self.merge_free(p, size(p)) };
            flushed += 1;
        });
        flushed
    }

    /// Sorts the unsorted bin, then best fit, then the bitmap, then top.
    ///
    /// # Safety
    /// The heap is initialised.
    unsafe fn malloc_from_bins(&self, nb: usize) -> Option<ChunkPtr> {
        // At most two rounds: the second runs only after consolidating the fast bins, which
        // leaves none behind.
        for _round in 0..2 {
            // SAFETY: the heap is initialised.
            unsafe {
                if let Some(p) = self.scan_unsorted(nb) {
                    return Some(p);
                }
                if !in_smallbin_range(nb) {
                    if let Some(p) = self.large_best_fit(nb) {
                        return Some(p);
                    }
                }
                if let Some(p) = self.search_binmap(nb) {
                    return Some(p);
                }
                if let Some(p) = self.split_top(nb) {
                    return Some(p);
                }
                if !self.have_fast.get() {
                    break;
                }
                self.consolidate();
            }
        }
        None
    }

    /// Takes chunks off the unsorted bin: returns an exact fit, or the last remainder for a
    /// small request, and files every other chunk into its bin.
    ///
    /// # Safety
    /// The heap is initialised.
    pub(crate) unsafe fn scan_unsorted(&self, nb: usize) -> Option<ChunkPtr> {
        // SAFETY: every chunk on the unsorted list is free and valid.
        unsafe {
            let unsorted = self.bin(UNSORTED);
            for _ in 0..MAX_UNSORTED_ITERS {
                let victim = bk(unsorted);
                if victim == unsorted {
                    break;
                }
                let victim_size = size(victim);
                let bck = bk(victim);
                if in_smallbin_range(nb)
                    && bck == unsorted
                    && victim == self.last_remainder.get()
                    && victim_size > nb + MIN_CHUNK_BYTES
                {
                    // Locality: consecutive small requests carve one remainder.
                    let remainder = at(victim, nb);
                    let remainder_size = victim_size - nb;
                    set_fd(unsorted, remainder);
                    set_bk(unsorted, remainder);
                    set_fd(remainder, unsorted);
                    set_bk(remainder, unsorted);
                    self.set_free_head(remainder, remainder_size);
                    if !in_smallbin_range(remainder_size) {
                        set_fd_nextsize(remainder, ptr::null_mut());
                        set_bk_nextsize(remainder, ptr::null_mut());
                    }
                    self.last_remainder.set(remainder);
                    set_head(victim, nb | PREV_INUSE);
                    return Some(victim);
                }
                set_bk(unsorted, bck);
                set_fd(bck, unsorted);
                if victim_size == nb {
                    set_taken(victim, victim_size);
                    return Some(victim);
                }
                self.file_into_bin(victim, victim_size);
            }
            None
        }
    }

    /// Puts a free chunk into its small or large bin.
    ///
    /// # Safety
    /// `p` is a free chunk in no list.
    #[inline]
    unsafe fn file_into_bin(&self, p: ChunkPtr, p_size: usize) {
        // SAFETY: forwarded from the caller; bins are valid lists.
        unsafe {
            let index = bin_index(p_size);
            let bin = self.bin(index);
            if in_smallbin_range(p_size) {
                link_between(p, bin, fd(bin));
            } else {
                insert_large(bin, p);
            }
            self.mark_bin(index);
        }
    }

    /// The smallest chunk in `nb`'s own large bin that fits.
    ///
    /// # Safety
    /// The heap is initialised; `nb` is a large size.
    unsafe fn large_best_fit(&self, nb: usize) -> Option<ChunkPtr> {
        // SAFETY: members of a large bin are free chunks with valid skip lists.
        unsafe {
            let bin = self.bin(largebin_index(nb));
            let first = fd(bin);
            if first == bin || size(first) < nb {
                return None;
            }
            let mut victim = bk_nextsize(first);
            while size(victim) < nb {
                victim = bk_nextsize(victim);
            }
            // Prefer a second chunk of the same size: its removal leaves the skip list alone.
            if victim != bk(bin) && size(fd(victim)) == size(victim) {
                victim = fd(victim);
            }
            let victim_size = size(victim);
            unlink(victim);
            self.split(victim, victim_size, nb, false);
            Some(victim)
        }
    }

    /// The first non-empty bin above `nb`'s: any of its chunks fits.
    ///
    /// # Safety
    /// The heap is initialised.
    unsafe fn search_binmap(&self, nb: usize) -> Option<ChunkPtr> {
        let mut index = bin_index(nb) + 1;
        while index < NBINS {
            let word_index = index / 64;
            let word = self.binmap[word_index].get() & (!0u64 << (index % 64));
            if word == 0 {
                index = (word_index + 1) * 64;
                continue;
            }
            index = word_index * 64 + word.trailing_zeros() as usize;
            // SAFETY: index < NBINS; the heap is initialised.
            unsafe {
                let bin = self.bin(index);
                let victim = bk(bin);
                if victim == bin {
                    // A stale bit: clear it and keep looking.
                    let cell = &self.binmap[word_index];
                    cell.set(cell.get() & !(1 << (index % 64)));
                    index += 1;
                    continue;
                }
                let victim_size = size(victim);
                debug_assert!(victim_size >= nb);
                unlink(victim);
                self.split(victim, victim_size, nb, in_smallbin_range(nb));
                return Some(victim);
            }
        }
        None
    }

    /// Marks `victim` (unlinked, `victim_size` bytes) in use as a chunk of `nb`, returning the
    /// rest to the unsorted bin when it can stand alone.
    ///
    /// # Safety
    /// `victim` is a free chunk just taken out of its bin, `victim_size >= nb`.
    #[inline]
    unsafe fn split(&self, victim: ChunkPtr, victim_size: usize, nb: usize, remember: bool) {
        // SAFETY: forwarded from the caller; the remainder lies inside the victim.
        unsafe {
            let remainder_size = victim_size - nb;
            if remainder_size < MIN_CHUNK_BYTES {
                set_taken(victim, victim_size);
                return;
            }
            let remainder = at(victim, nb);
            set_head(victim, nb | PREV_INUSE);
            self.set_free_head(remainder, remainder_size);
            self.push_unsorted(remainder, remainder_size);
            if remember {
                self.last_remainder.set(remainder);
            }
        }
    }

    /// Splits `nb` bytes off the top chunk, if it keeps at least a minimum chunk.
    ///
    /// # Safety
    /// The heap is initialised.
    #[inline]
    pub(crate) unsafe fn split_top(&self, nb: usize) -> Option<ChunkPtr> {
        // SAFETY: top is a valid chunk spanning to its segment's end.
        unsafe {
            let victim = self.top.get();
            let top_size = size(victim);
            if top_size < nb + MIN_CHUNK_BYTES {
                return None;
            }
            let remainder = at(victim, nb);
            set_head(remainder, (top_size - nb) | PREV_INUSE);
            set_head(victim, nb | (head(victim) & PREV_INUSE));
            self.top.set(remainder);
            self.note_top_dirty(remainder);
            Some(victim)
        }
    }

    /// # Safety
    /// The heap is initialised; `nb <= fast_max_bytes`.
    #[inline(always)]
    unsafe fn fast_pop(&self, nb: usize) -> Option<ChunkPtr> {
        let slot = self.fastbin(nb);
        let p = slot.get();
        if p.is_null() {
            return None;
        }
        // SAFETY: fast-bin members are chunks that still look in use; their fd is the link.
        unsafe {
            debug_assert!(size(p) == nb, "fast bin member of the wrong size");
            slot.set(fd(p));
        }
        Some(p)
    }
}
