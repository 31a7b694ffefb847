//! Segments: the runs of pages the heap lives in, how the heap grows and shrinks, and the
//! chunks that bypass the heap (mmapped chunks).
//!
//! ```text
//!   first segment (the arena)                          a later segment
//!   ┌────────┬──────────────┬───────┬─────┬────────┐   ┌────────┬───────┬───────┬─────────┐
//!   │ header │ bin sentinels│ chunk │ ... │  top   │   │ header │ chunk │  ...  │ f1 │ f2 │
//!   └────────┴──────────────┴───────┴─────┴────────┘   └────────┴───────┴───────┴─────────┘
//!    grows in place with PageSource::extend (brk)        retired: two fenceposts close it so
//!    while it can; else a new segment is mapped          coalescing never runs off its end
//! ```
//!
//! Only the newest segment has a top chunk. When it cannot grow in place, the old top is cut
//! into a free chunk plus two fenceposts (glibc's non-contiguous `sbrk` path), and a new
//! segment with a fresh top is mapped.
//!
//! A source that cannot `extend` (mmap) gets runs larger than each growth (a quarter of the
//! heap, so segments stay few), but only the growth itself (the request plus the top pad)
//! becomes the segment: the rest waits after it as the *reserve*, taken a top pad at a time as
//! `brk` would give it, and trimming hands the top's tail back to the reserve, purged. So the
//! heap's size follows its use as glibc's `brk` arena does, instead of jumping by a quarter
//! (after the benchmark's random workload: 1.08x the live bytes, as glibc; 1.20x before).
//! glibc reserves its mmapped heaps the same way (`new_heap` maps `HEAP_MAX_SIZE`,
//! `grow_heap` makes it accessible piece by piece). A retired segment that becomes entirely free stays (its
//! free chunk serves later requests) until [`Bins::trim`] gives it back to the page source.

use crate::binlist::{init_area, unlink, BIN_AREA_BYTES};
use crate::chunk::{
    at, head, prev_size, set_head, set_prev_size, size, ChunkPtr, FENCE_BYTES, HEADER_BYTES,
    IS_FENCE, IS_MMAPPED, MIN_CHUNK_BYTES, PREV_INUSE, SIZE_SZ,
};
use crate::heap::Bins;
use core::ptr::{self, NonNull};
use heapkit_core::{align_down, align_up, AllocError, PageSource};

/// The header at the start of every segment.
#[repr(C)]
pub(crate) struct Segment {
    /// The next older segment (null for the first).
    pub(crate) next: *mut Segment,
    /// Bytes in the run, header included.
    pub(crate) size_bytes: usize,
}

/// Bytes before the first chunk of a segment other than the first.
pub(crate) const SEGMENT_HEADER_BYTES: usize = core::mem::size_of::<Segment>();
/// Bytes before the first chunk of the first segment: the bin sentinels, which start at the
/// segment's base and overlap its header with the never-touched words of bin 0.
pub(crate) const ARENA_HEADER_BYTES: usize = BIN_AREA_BYTES;
/// Both fenceposts of a retired segment.
const FENCES_BYTES: usize = 2 * FENCE_BYTES;
/// Most segments a heap may have at once; growth past it fails cleanly.
pub(crate) const MAX_SEGMENTS: usize = 1 << 16;
/// New segments are at least 1/GROWTH_DIVISOR of the heap, so a heap over a source that never
/// extends (mmap) needs only logarithmically many segments.
const GROWTH_DIVISOR: usize = 4;
/// ... but never larger than this because of that rule.
const MAX_GROWTH_BYTES: usize = 64 * 1024 * 1024;

const _: () = assert!(SEGMENT_HEADER_BYTES == 16 && SEGMENT_HEADER_BYTES % 16 == 0);
const _: () = assert!(ARENA_HEADER_BYTES % 16 == 0);
// Bin 0's fd/bk (area bytes 16..32) must not overlap the segment header.
const _: () = assert!(SEGMENT_HEADER_BYTES <= 16);
const _: () = assert!(
    FENCES_BYTES <= MIN_CHUNK_BYTES,
    "a top chunk can always be retired"
);

/// One segment as seen from outside, for [`Bins::segments`](crate::Bins::segments).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Address of the run.
    pub base_addr: usize,
    /// Bytes in the run.
    pub size_bytes: usize,
    /// Whether this segment holds the top chunk (the newest).
    pub current: bool,
}

impl<P: PageSource> Bins<P> {
    fn page_round(&self, bytes: usize) -> Result<usize, AllocError> {
        align_up(bytes, self.pages.page_size()).ok_or(AllocError)
    }

    /// Maps `want_bytes`, or `min_bytes` if that fails.
    fn map_run(&self, want_bytes: usize, min_bytes: usize) -> Result<(*mut u8, usize), AllocError> {
        let page = self.pages.page_size();
        if let Ok(run) = self.pages.map(want_bytes, page) {
            return Ok((run.as_ptr(), want_bytes));
        }
        let run = self.pages.map(min_bytes, page)?;
        Ok((run.as_ptr(), min_bytes))
    }

    /// The first chunk of a segment.
    ///
    /// # Safety
    /// `seg` is a live segment of this heap.
    pub(crate) unsafe fn first_chunk(&self, seg: *mut Segment) -> ChunkPtr {
        let header = if seg.cast::<u8>() == self.area.get() {
            ARENA_HEADER_BYTES
        } else {
            SEGMENT_HEADER_BYTES
        };
        // SAFETY: every segment is longer than its header plus a minimum chunk.
        unsafe { seg.cast::<u8>().add(header).cast() }
    }

    /// One past the last byte of a segment.
    ///
    /// # Safety
    /// `seg` is a live segment of this heap.
    pub(crate) unsafe fn segment_end(seg: *mut Segment) -> *mut u8 {
        // SAFETY: the run is size_bytes long.
        unsafe { seg.cast::<u8>().add((*seg).size_bytes) }
    }

    /// Maps the first segment and sets up the bins and top (on the first allocation).
    #[cold]
    pub(crate) fn init(&self, nb: usize) -> Result<(), AllocError> {
        let page = self.pages.page_size();
        if page < MIN_CHUNK_BYTES || !page.is_power_of_two() {
            return Err(AllocError);
        }
        let min_bytes = self.page_round(ARENA_HEADER_BYTES + nb + MIN_CHUNK_BYTES)?;
        let want_bytes = self.page_round(min_bytes + self.config.top_pad_bytes)?;
        let (base, len) = self.map_run(want_bytes, min_bytes)?;
        // SAFETY: the run is fresh, writable, page-aligned and longer than the arena header
        // plus a minimum chunk.
        unsafe {
            init_area(base);
            let seg = base.cast::<Segment>();
            (*seg).next = ptr::null_mut();
            (*seg).size_bytes = len;
            self.area.set(base);
            self.newest_segment.set(seg);
            self.purged_from.set(base as usize + len);
            let top: ChunkPtr = base.add(ARENA_HEADER_BYTES).cast();
            set_head(top, (len - ARENA_HEADER_BYTES) | PREV_INUSE);
            self.top.set(top);
        }
        self.counters.heap_bytes.set(len);
        self.counters.segment_count.set(1);
        Ok(())
    }

    /// Makes the top chunk at least `nb + MIN_CHUNK_BYTES` long: extends the newest segment in
    /// place if the source allows, else maps a new segment (glibc's `sysmalloc`).
    pub(crate) fn grow_heap(&self, nb: usize) -> Result<(), AllocError> {
        if self.grow_top_in_place(nb)? {
            return Ok(());
        }
        self.extendable.set(false);
        // SAFETY: the heap is initialised (malloc_chunk did it).
        unsafe { self.new_segment(nb) }
    }

    /// Makes the top chunk at least `nb + MIN_CHUNK_BYTES` long without moving it: from the
    /// reserve, else by extending the source. `Ok(false)` when neither can.
    pub(crate) fn grow_top_in_place(&self, nb: usize) -> Result<bool, AllocError> {
        // SAFETY: the heap is initialised, so top and segments are valid.
        unsafe {
            let top = self.top.get();
            let top_size = size(top);
            let seg = self.newest_segment.get();
            let need = nb
                .checked_add(MIN_CHUNK_BYTES)
                .ok_or(AllocError)?
                .saturating_sub(top_size);
            let min_extra = self.page_round(need)?;
            let want_extra = self.page_round(need + self.config.top_pad_bytes)?;
            let reserve = self.reserve_bytes.get();
            if reserve >= min_extra {
                let extra = want_extra.min(reserve);
                self.reserve_bytes.set(reserve - extra);
                self.commit(seg, top, top_size, extra);
                return Ok(true);
            }
            let end = NonNull::new_unchecked(Self::segment_end(seg));
            for extra in [want_extra, min_extra] {
                if self.pages.extend(end, extra).is_ok() {
                    self.commit(seg, top, top_size, extra);
                    self.extendable.set(true);
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }

    /// Adds `extra_bytes` (mapped right after the newest segment) to that segment and to top.
    ///
    /// # Safety
    /// `seg` is the newest segment, `top` its top chunk of `top_size` bytes; the `extra_bytes`
    /// after the segment's end are mapped and belong to no one else.
    unsafe fn commit(&self, seg: *mut Segment, top: ChunkPtr, top_size: usize, extra_bytes: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            (*seg).size_bytes += extra_bytes;
            set_head(top, (top_size + extra_bytes) | PREV_INUSE);
        }
        self.counters
            .heap_bytes
            .set(self.counters.heap_bytes.get() + extra_bytes);
    }

    /// Maps a new segment and retires the current one.
    ///
    /// # Safety
    /// The heap is initialised.
    unsafe fn new_segment(&self, nb: usize) -> Result<(), AllocError> {
        if self.counters.segment_count.get() >= MAX_SEGMENTS {
            return Err(AllocError);
        }
        let min_bytes = self.page_round(SEGMENT_HEADER_BYTES + nb + MIN_CHUNK_BYTES)?;
        let commit_bytes = self.page_round(min_bytes + self.config.top_pad_bytes)?;
        let geometric = (self.counters.heap_bytes.get() / GROWTH_DIVISOR).min(MAX_GROWTH_BYTES);
        let want_bytes = self.page_round(commit_bytes.max(geometric))?;
        let (base, len) = self.map_run(want_bytes, min_bytes)?;
        // Only the growth is the segment; the rest of the run waits after it (`grow_heap`
        // takes it a top pad at a time), so the heap keeps glibc's footprint.
        let commit_bytes = commit_bytes.min(len);
        // SAFETY: the old top is valid; the new run is fresh and long enough.
        unsafe {
            self.retire_current_segment();
            let seg = base.cast::<Segment>();
            (*seg).next = self.newest_segment.get();
            (*seg).size_bytes = commit_bytes;
            self.newest_segment.set(seg);
            self.reserve_bytes.set(len - commit_bytes);
            self.purged_from.set(base as usize + commit_bytes);
            let top: ChunkPtr = base.add(SEGMENT_HEADER_BYTES).cast();
            set_head(top, (commit_bytes - SEGMENT_HEADER_BYTES) | PREV_INUSE);
            self.top.set(top);
        }
        self.counters
            .heap_bytes
            .set(self.counters.heap_bytes.get() + commit_bytes);
        self.counters
            .segment_count
            .set(self.counters.segment_count.get() + 1);
        Ok(())
    }

    /// Cuts the top chunk into a free chunk (if there is room) and two fenceposts.
    ///
    /// # Safety
    /// The heap is initialised; a new top is installed right after.
    unsafe fn retire_current_segment(&self) {
        self.release_reserve();
        // SAFETY: top spans to the segment's end and is at least MIN_CHUNK_BYTES >= 2 fences.
        unsafe {
            let top = self.top.get();
            let top_size = size(top);
            let spare = top_size - FENCES_BYTES;
            let free_bytes = if spare >= MIN_CHUNK_BYTES { spare } else { 0 };
            let fence1 = at(top, free_bytes);
            let fence1_prev = if free_bytes == 0 { PREV_INUSE } else { 0 };
            set_head(fence1, FENCE_BYTES | IS_FENCE | fence1_prev);
            let fence2 = at(fence1, FENCE_BYTES);
            set_head(
                fence2,
                (top_size - free_bytes - FENCE_BYTES) | IS_FENCE | PREV_INUSE,
            );
            if free_bytes > 0 {
                self.set_free_head(top, free_bytes);
                self.push_unsorted(top, free_bytes);
            }
        }
    }

    /// Returns the top's page-aligned tail to the page source once top exceeds the trim
    /// threshold (glibc's `systrim`), keeping `top_pad_bytes` for the next growth.
    ///
    /// A source that can extend gets the tail unmapped (as `brk` shrinks): growing back is one
    /// cheap call. A source that cannot (mmap) would force a new segment on the next growth,
    /// so there the tail goes back to the reserve, *purged* (its physical pages dropped, its
    /// addresses kept), which is what glibc's mmapped heaps do with `MADV_DONTNEED` in
    /// `shrink_heap`.
    pub(crate) fn trim_top(&self) {
        self.trim_top_keeping(self.config.top_pad_bytes);
    }

    /// [`trim_top`](Self::trim_top) keeping `pad_bytes` of top.
    fn trim_top_keeping(&self, pad_bytes: usize) {
        // SAFETY: the heap is initialised (only free paths and `trim` call this); top ends
        // its segment.
        unsafe {
            let top = self.top.get();
            let top_size = size(top);
            if top_size < self.trim_threshold_bytes.get() {
                return;
            }
            let keep = MIN_CHUNK_BYTES + pad_bytes;
            if top_size <= keep {
                return;
            }
            let page = self.pages.page_size();
            let extra = align_down(top_size - keep, page);
            if extra == 0 {
                return;
            }
            let seg = self.newest_segment.get();
            (*seg).size_bytes -= extra;
            set_head(top, (top_size - extra) | PREV_INUSE);
            self.counters
                .heap_bytes
                .set(self.counters.heap_bytes.get() - extra);
            let tail = at(top, top_size - extra);
            if self.extendable.get() {
                self.purged_from
                    .set(self.purged_from.get().min(tail as usize));
                self.pages.unmap(NonNull::new_unchecked(tail.cast()), extra);
                return;
            }
            // Growing back could not extend the source, so the tail stays mapped, as the
            // reserve after the segment, its dirty pages purged (glibc's `shrink_heap` keeps
            // its mmapped heaps' tails the same way, with MADV_DONTNEED).
            self.purge_from(tail.cast());
            self.reserve_bytes.set(self.reserve_bytes.get() + extra);
        }
    }

    /// Unmaps the reserve after the newest segment (before it retires, or on `trim`).
    pub(crate) fn release_reserve(&self) {
        let reserve = self.reserve_bytes.replace(0);
        if reserve == 0 {
            return;
        }
        // SAFETY: the reserve is the mapped, unused tail of the newest segment's run.
        unsafe {
            let end = Self::segment_end(self.newest_segment.get());
            self.pages.unmap(NonNull::new_unchecked(end), reserve);
        }
    }

    /// Purges the pages from `start` (page-aligned, in the newest segment's run, past the top
    /// chunk's header) to the purged watermark, so each dirty page is purged once.
    ///
    /// # Safety
    /// `start..` up to the watermark holds no chunk's bytes (free space or reserve).
    unsafe fn purge_from(&self, start: *mut u8) {
        debug_assert!(start as usize % self.pages.page_size() == 0);
        let clean = self.purged_from.get();
        if start as usize >= clean {
            return;
        }
        self.purged_from.set(start as usize);
        // SAFETY: start..clean lies in the newest segment's run, page-aligned; its contents
        // are free space.
        unsafe {
            self.pages
                .purge(NonNull::new_unchecked(start), clean - start as usize);
        }
    }

    /// Gives memory back to the page source (glibc's `malloc_trim`): empties the tcache (as
    /// glibc does when a thread exits), consolidates the fast bins, unmaps every retired
    /// segment that is entirely free, and trims the top chunk down to `pad_bytes` (plus a
    /// minimum chunk). Returns the bytes released from the heap.
    ///
    /// `free` never unmaps a retired segment by itself: like the free chunks in the middle of
    /// glibc's main heap, an empty segment stays to serve the next allocations. Releasing it
    /// at once made a heap that breathes (realloc growth) map, fault in and unmap the same
    /// memory every cycle: 8x the page faults and 3x glibc's time on the realloc benchmark.
    pub fn trim(&self, pad_bytes: usize) -> usize {
        if self.area.get().is_null() {
            return 0;
        }
        let before = self.counters.heap_bytes.get();
        // SAFETY: the heap is initialised.
        unsafe {
            self.flush_tcache();
            self.consolidate();
            self.release_empty_segments();
            let saved = (self.trim_threshold_bytes.get(), self.config.top_pad_bytes);
            self.trim_threshold_bytes.set(0);
            self.trim_top_keeping(pad_bytes.min(MAX_GROWTH_BYTES));
            self.trim_threshold_bytes.set(saved.0);
            self.release_reserve();
        }
        before - self.counters.heap_bytes.get()
    }

    /// Unmaps every retired segment (not the first, which holds the bins) whose chunks are one
    /// free chunk.
    ///
    /// # Safety
    /// The heap is initialised and the fast bins are empty.
    unsafe fn release_empty_segments(&self) {
        let mut prev = self.newest_segment.get();
        // SAFETY: the segment list is valid; the newest segment (holding top) is skipped.
        unsafe {
            let mut seg = (*prev).next;
            let mut steps = 0;
            while !seg.is_null() && steps < MAX_SEGMENTS {
                steps += 1;
                let next = (*seg).next;
                let p = self.first_chunk(seg);
                let is_arena = seg.cast::<u8>() == self.area.get();
                let p_size = size(p);
                let empty = !is_arena
                    && !crate::chunk::is_fence(p)
                    && !crate::chunk::inuse_at(p, p_size)
                    && crate::chunk::is_fence(at(p, p_size));
                if !empty {
                    prev = seg;
                    seg = next;
                    continue;
                }
                unlink(p);
                if self.last_remainder.get() == p {
                    self.last_remainder.set(ptr::null_mut());
                }
                (*prev).next = next;
                let len = (*seg).size_bytes;
                self.counters
                    .heap_bytes
                    .set(self.counters.heap_bytes.get() - len);
                self.counters
                    .segment_count
                    .set(self.counters.segment_count.get() - 1);
                self.pages.unmap(NonNull::new_unchecked(seg.cast()), len);
                seg = next;
            }
        }
    }

    /// Whether `p..p + p_size` plus the next header lies inside some segment's chunk area.
    pub(crate) fn in_some_segment(&self, p: ChunkPtr, p_size: usize) -> bool {
        let addr = p as usize;
        let Some(end) = addr
            .checked_add(p_size)
            .and_then(|e| e.checked_add(HEADER_BYTES))
        else {
            return false;
        };
        let mut seg = self.newest_segment.get();
        let mut steps = 0;
        while !seg.is_null() && steps < MAX_SEGMENTS {
            // SAFETY: the segment list is valid.
            let (first, seg_end) = unsafe {
                (
                    self.first_chunk(seg) as usize,
                    Self::segment_end(seg) as usize,
                )
            };
            if addr >= first && end <= seg_end {
                return true;
            }
            // SAFETY: as above.
            seg = unsafe { (*seg).next };
            steps += 1;
        }
        false
    }

    /// A chunk that is a run of its own (requests at or above the mmap threshold).
    pub(crate) fn mmap_chunk(&self, nb: usize) -> Result<ChunkPtr, AllocError> {
        let len = self.page_round(nb + SIZE_SZ)?;
        let page = self.pages.page_size();
        let base = self.pages.map(len, page)?;
        let p: ChunkPtr = base.as_ptr().cast();
        // SAFETY: the run is fresh and at least a page long.
        unsafe {
            set_prev_size(p, 0);
            set_head(p, len | IS_MMAPPED);
            debug_assert!(head(p) & PREV_INUSE == 0);
        }
        self.counters
            .mmapped_bytes
            .set(self.counters.mmapped_bytes.get() + len);
        self.counters
            .mmapped_blocks
            .set(self.counters.mmapped_blocks.get() + 1);
        Ok(p)
    }

    /// Returns the whole pages past what `nb` needs of an mmapped chunk to the page source
    /// (glibc shrinks them with `mremap`): the chunk stays put, its run ends earlier.
    ///
    /// # Safety
    /// `p` is a live mmapped chunk of this heap; `nb` is a chunk size no larger than its own.
    pub(crate) unsafe fn shrink_mmapped(&self, p: ChunkPtr, nb: usize) {
        // SAFETY: an mmapped chunk's prev_size is its offset into its run, which is
        // offset + size bytes long; the unmapped tail is a page-aligned suffix of that run.
        unsafe {
            let offset = prev_size(p);
            let total = offset + size(p);
            let Ok(keep) = self.page_round(offset + nb + SIZE_SZ) else {
                return;
            };
            if keep >= total {
                return;
            }
            debug_assert!((keep - offset) % 16 == 0 && keep - offset >= nb);
            set_head(p, (keep - offset) | IS_MMAPPED);
            self.counters
                .mmapped_bytes
                .set(self.counters.mmapped_bytes.get() - (total - keep));
            let base = p.cast::<u8>().sub(offset);
            self.pages
                .unmap(NonNull::new_unchecked(base.add(keep)), total - keep);
        }
    }

    /// Grows an mmapped chunk to `nb` bytes with [`PageSource::remap`] (glibc's
    /// `mremap_chunk`): the kernel moves page table entries instead of the block's bytes, so
    /// growing a large block costs no copy. Returns the chunk (which may have moved), or `None`
    /// (nothing changed) when the source cannot remap.
    ///
    /// The run keeps its offset (an aligned block's lead) and a moved run is page-aligned, so
    /// the block keeps any alignment up to a page; callers with larger alignments move it.
    ///
    /// # Safety
    /// `p` is a live mmapped chunk of this heap; `nb` is the chunk size of a request larger
    /// than its usable size.
    pub(crate) unsafe fn remap_mmapped(&self, p: ChunkPtr, nb: usize) -> Option<ChunkPtr> {
        // SAFETY: an mmapped chunk's prev_size is its offset into its run, which is
        // offset + size bytes long and page-aligned at both ends (check_mmapped); the caller
        // holds no reference into it across the remap.
        unsafe {
            let offset = prev_size(p);
            let total = offset + size(p);
            let new_total = self
                .page_round(offset.checked_add(nb)?.checked_add(SIZE_SZ)?)
                .ok()?;
            // The caller grows past the usable size, which leaves no spare page in the run.
            debug_assert!(new_total > total);
            let base = NonNull::new_unchecked(p.cast::<u8>().sub(offset));
            let new_base = self.pages.remap(base, total, new_total).ok()?;
            debug_assert!(new_base.as_ptr() as usize % self.pages.page_size() == 0);
            let q: ChunkPtr = new_base.as_ptr().add(offset).cast();
            debug_assert!(prev_size(q) == offset && head(q) & IS_MMAPPED != 0);
            set_head(q, (new_total - offset) | IS_MMAPPED);
            self.counters
                .mmapped_bytes
                .set(self.counters.mmapped_bytes.get() + (new_total - total));
            Some(q)
        }
    }

    /// The heap's segments, newest first (no allocation: an iterator over the in-heap list).
    pub fn segments(&self) -> impl Iterator<Item = SegmentInfo> + '_ {
        let mut seg = self.newest_segment.get();
        let mut first = true;
        core::iter::from_fn(move || {
            if seg.is_null() {
                return None;
            }
            // SAFETY: the segment list is valid while `self` is borrowed.
            let (size_bytes, next) = unsafe { ((*seg).size_bytes, (*seg).next) };
            let info = SegmentInfo {
                base_addr: seg as usize,
                size_bytes,
                current: first,
            };
            first = false;
            seg = next;
            Some(info)
        })
    }
}
