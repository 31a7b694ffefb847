//! `Bins<P>`: the heap's state and the two core paths, malloc and free (glibc's `_int_malloc`
//! and `_int_free`).

use crate::binlist::{
    bin_at, bin_index, bk, bk_nextsize, fd, fd_nextsize, in_smallbin_range, insert_large,
    largebin_index, link_between, set_bk, set_bk_nextsize, set_fd, set_fd_nextsize, smallbin_index,
    unlink, BINMAP_WORDS, NBINS, UNSORTED,
};
use crate::chunk::{
    at, before, clear_inuse_at, head, inuse_at, is_mmapped, kind, prev_inuse, prev_size, set_foot,
    set_head, set_taken, size, ChunkPtr, FLAG_MASK, IS_FENCE, IS_FREE, IS_MMAPPED, KIND_MASK,
    MIN_CHUNK_BYTES, PREV_INUSE,
};
use crate::config::{Config, MAX_FAST_BIN_BYTES, MAX_MMAP_THRESHOLD_BYTES};
use crate::report::{bad_free, Misuse};
use crate::segment::Segment;
use crate::tcache::{tcache_index, Tcache, TCACHE_MAX_CHUNK_BYTES};
use core::cell::Cell;
use core::ptr;
use heapkit_core::{AllocError, PageSource};

/// How many unsorted chunks one `malloc` sorts at most (glibc's `MAX_ITERS`): bounds the
/// latency of a single call.
const MAX_UNSORTED_ITERS: usize = 10_000;
/// Freeing a chunk at least this large (after coalescing) consolidates the fast bins and
/// considers trimming (glibc's `FASTBIN_CONSOLIDATION_THRESHOLD`).
const CONSOLIDATION_THRESHOLD_BYTES: usize = 64 * 1024;
/// Number of fast bins: chunk sizes 32, 48, .. MAX_FAST_BIN_BYTES.
pub(crate) const NFASTBINS: usize = fastbin_index(MAX_FAST_BIN_BYTES) + 1;

const _: () = assert!(NFASTBINS == 9);
const _: () = assert!(BINMAP_WORDS == 2, "only_top_fits reads two bitmap words");
const _: () = assert!(CONSOLIDATION_THRESHOLD_BYTES > MAX_FAST_BIN_BYTES);

/// The fast bin of a chunk size.
#[inline(always)]
pub(crate) const fn fastbin_index(size_bytes: usize) -> usize {
    (size_bytes >> 4) - 2
}

/// Counters kept for `stats()` and `check()`.
///
/// `repr(C)`, with every counter the malloc and free paths bump next to one they do not: the
/// compiler fuses two adjacent counters changed together into one 16-byte vector update, and
/// when the other path changes one of them with an 8-byte store, that 16-byte load cannot be
/// forwarded from it — a store-forwarding stall on every call (the same trap heapkit-slab's
/// class lists fell into).
#[repr(C)]
pub(crate) struct Counters {
    pub(crate) live_bytes: Cell<usize>,
    pub(crate) failures: Cell<usize>,
    pub(crate) live_blocks: Cell<usize>,
    /// Bytes of all heap segments (runs from the page source holding chunks).
    pub(crate) heap_bytes: Cell<usize>,
    pub(crate) allocations: Cell<usize>,
    /// Bytes and count of live mmapped chunks.
    pub(crate) mmapped_bytes: Cell<usize>,
    pub(crate) deallocations: Cell<usize>,
    pub(crate) mmapped_blocks: Cell<usize>,
    pub(crate) peak_bytes: Cell<usize>,
    /// Number of segments.
    pub(crate) segment_count: Cell<usize>,
    pub(crate) reallocations: Cell<usize>,
}

impl Counters {
    const fn new() -> Self {
        Counters {
            live_bytes: Cell::new(0),
            live_blocks: Cell::new(0),
            peak_bytes: Cell::new(0),
            allocations: Cell::new(0),
            deallocations: Cell::new(0),
            reallocations: Cell::new(0),
            failures: Cell::new(0),
            heap_bytes: Cell::new(0),
            mmapped_bytes: Cell::new(0),
            mmapped_blocks: Cell::new(0),
            segment_count: Cell::new(0),
        }
    }

    #[inline(always)]
    pub(crate) fn add_live(&self, usable_bytes: usize) {
        let live = self.live_bytes.get() + usable_bytes;
        self.live_bytes.set(live);
        if live > self.peak_bytes.get() {
            self.peak_bytes.set(live);
        }
    }

    #[inline(always)]
    pub(crate) fn sub_live(&self, usable_bytes: usize) {
        debug_assert!(self.live_bytes.get() >= usable_bytes);
        self.live_bytes.set(self.live_bytes.get() - usable_bytes);
    }
}

/// A boundary-tag heap with bins: glibc ptmalloc2's arena design over any [`PageSource`].
///
/// `Bins` is `!Sync`; share one with [`heapkit_core::Locked`]. See the crate docs for the
/// algorithm and a picture of the heap.
pub struct Bins<P: PageSource> {
    pub(crate) pages: P,
    pub(crate) config: Config,
    /// Start of the first segment, which holds the bin sentinels; null until the first
    /// allocation.
    pub(crate) area: Cell<*mut u8>,
    /// The top chunk: the free space at the end of the newest segment, never in a bin.
    pub(crate) top: Cell<ChunkPtr>,
    /// Newest segment first; the newest holds `top`.
    pub(crate) newest_segment: Cell<*mut Segment>,
    /// One bit per bin: set when the bin may be non-empty (cleared lazily by searches).
    pub(crate) binmap: [Cell<u64>; BINMAP_WORDS],
    /// glibc's tcache: bounded per-size LIFOs of freed chunks, consulted first.
    pub(crate) tcache: Tcache,
    /// LIFO singly linked lists (through `fd`) of chunks that still look in use.
    pub(crate) fastbins: [Cell<ChunkPtr>; NFASTBINS],
    pub(crate) fast_max_bytes: usize,
    pub(crate) have_fast: Cell<bool>,
    /// The remainder of the last split for a small request (a locality hint only).
    pub(crate) last_remainder: Cell<ChunkPtr>,
    pub(crate) mmap_threshold_bytes: Cell<usize>,
    pub(crate) trim_threshold_bytes: Cell<usize>,
    /// Whether the last growth could extend the newest segment in place.
    pub(crate) extendable: Cell<bool>,
    /// Bytes mapped right after the newest segment's end and not yet part of it: a source that
    /// cannot `extend` gets a run larger than the growth needs, and the heap takes it into the
    /// segment a top pad at a time, as `brk` would (see `segment.rs`). Never touched, or
    /// purged before it was given back.
    pub(crate) reserve_bytes: Cell<usize>,
    /// Pages of the newest segment (and its reserve) from this address on are purged (or never
    /// touched).
    pub(crate) purged_from: Cell<usize>,
    pub(crate) counters: Counters,
}

// SAFETY: a `Bins` owns its heap exclusively (no other value points into it), so moving it to
// another thread moves the whole heap; the page source moves with it and must be `Send`.
unsafe impl<P: PageSource + Send> Send for Bins<P> {}
// A `Bins` is single-threaded (its per-thread cache included): share it as `LockedBins`.
// Checked in test builds: naming a page source here keeps heapkit-pages a dev-dependency.
#[cfg(test)]
static_assertions::assert_impl_all!(Bins<heapkit_pages::MmapPages>: Send);
#[cfg(test)]
static_assertions::assert_not_impl_any!(Bins<heapkit_pages::MmapPages>: Sync);

impl<P: PageSource> Bins<P> {
    /// A heap over `pages` with glibc's default tunables. Nothing is mapped until the first
    /// allocation, so this is `const` and a `static` can hold it.
    pub const fn new(pages: P) -> Self {
        Self::with_config(pages, Config::DEFAULT)
    }

    /// A heap over `pages` with the given tunables (clamped into range).
    pub const fn with_config(pages: P, config: Config) -> Self {
        let config = config.sanitized();
        Bins {
            pages,
            config,
            area: Cell::new(ptr::null_mut()),
            top: Cell::new(ptr::null_mut()),
            newest_segment: Cell::new(ptr::null_mut()),
            binmap: [const { Cell::new(0) }; BINMAP_WORDS],
            tcache: Tcache::new(config.tcache_count),
            fastbins: [const { Cell::new(ptr::null_mut()) }; NFASTBINS],
            fast_max_bytes: config.fast_bin_max_bytes,
            have_fast: Cell::new(false),
            last_remainder: Cell::new(ptr::null_mut()),
            mmap_threshold_bytes: Cell::new(config.mmap_threshold_bytes),
            trim_threshold_bytes: Cell::new(config.trim_threshold_bytes),
            extendable: Cell::new(true),
            reserve_bytes: Cell::new(0),
            purged_from: Cell::new(0),
            counters: Counters::new(),
        }
    }

    /// The page source.
    pub fn pages(&self) -> &P {
        &self.pages
    }

    /// The tunables in force (after clamping).
    pub fn config(&self) -> Config {
        self.config
    }

    /// The current mmap threshold (it rises as large blocks are freed).
    pub fn mmap_threshold_bytes(&self) -> usize {
        self.mmap_threshold_bytes.get()
    }

    /// # Safety
    /// The heap is initialised; `index < NBINS`.
    #[inline(always)]
    pub(crate) unsafe fn bin(&self, index: usize) -> ChunkPtr {
        // SAFETY: forwarded from the caller.
        unsafe { bin_at(self.area.get(), index) }
    }

    #[inline(always)]
    fn mark_bin(&self, index: usize) {
        let word = &self.binmap[index / 64];
        word.set(word.get() | 1 << (index % 64));
    }

    // ---------------------------------------------------------------- malloc

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

    /// The pages below the new top's header may be written from now on: lower the purged
    /// watermark past them.
    #[inline(always)]
    pub(crate) fn note_top_dirty(&self, new_top: ChunkPtr) {
        let dirty_end = new_top as usize + crate::chunk::HEADER_BYTES;
        if dirty_end > self.purged_from.get() {
            let page = self.pages.page_size();
            self.purged_from.set((dirty_end + page - 1) & !(page - 1));
        }
    }

    /// Writes the header (kind free) and footer of a free chunk whose previous chunk is in use.
    ///
    /// # Safety
    /// `p..p + p_size` is a chunk followed by a chunk header.
    #[inline(always)]
    pub(crate) unsafe fn set_free_head(&self, p: ChunkPtr, p_size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            set_head(p, p_size | IS_FREE | PREV_INUSE);
            set_foot(p, p_size);
        }
    }

    /// Puts a free chunk at the front of the unsorted bin.
    ///
    /// # Safety
    /// `p` is a free chunk in no list, with its header and footer written.
    #[inline(always)]
    pub(crate) unsafe fn push_unsorted(&self, p: ChunkPtr, p_size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            if !in_smallbin_range(p_size) {
                set_fd_nextsize(p, ptr::null_mut());
                set_bk_nextsize(p, ptr::null_mut());
            }
            let unsorted = self.bin(UNSORTED);
            link_between(p, unsorted, fd(unsorted));
        }
    }

    // ---------------------------------------------------------------- fast bins

    /// The fast bin of a chunk size up to `fast_max_bytes`. The index is clamped, not
    /// bounds-checked: the allocation paths carry no panic branch (`fast_max_bytes` is at most
    /// `MAX_FAST_BIN_BYTES`, so the clamp never acts).
    #[inline(always)]
    fn fastbin(&self, size_bytes: usize) -> &Cell<ChunkPtr> {
        debug_assert!(size_bytes <= self.fast_max_bytes && size_bytes <= MAX_FAST_BIN_BYTES);
        &self.fastbins[fastbin_index(size_bytes).min(NFASTBINS - 1)]
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

    // ---------------------------------------------------------------- free

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

    /// Unused chunk-kind helper kept for the check module: the fd of a fast-bin member.
    ///
    /// # Safety
    /// `p` is a fast-bin member.
    #[inline(always)]
    pub(crate) unsafe fn fast_next(p: ChunkPtr) -> ChunkPtr {
        // SAFETY: forwarded from the caller.
        unsafe { fd(p) }
    }

    /// Reads `fd_nextsize` for the checker.
    ///
    /// # Safety
    /// `p` is a free large chunk.
    #[inline(always)]
    pub(crate) unsafe fn nextsize(p: ChunkPtr) -> (ChunkPtr, ChunkPtr) {
        // SAFETY: forwarded from the caller.
        unsafe { (fd_nextsize(p), bk_nextsize(p)) }
    }
}
