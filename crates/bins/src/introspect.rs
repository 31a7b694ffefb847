//! Looking inside: `check()` (the full heap walk), `heap_map()` (chunks for pictures),
//! fragmentation figures and `stats()`. None of it allocates.

use crate::binlist::{bin_index, bk, fd, in_smallbin_range, NBINS, NSMALLBINS, UNSORTED};
use crate::chunk::{
    at, is_fence, is_free, is_mmapped, kind, prev_inuse, prev_size, size, ChunkPtr, FENCE_BYTES,
    HEADER_BYTES, MIN_CHUNK_BYTES, SIZE_SZ,
};
use crate::heap::{fastbin_index, Bins, NFASTBINS};
use crate::segment::{Segment, MAX_SEGMENTS};
use crate::tcache::{
    tcache_chunk_bytes, tcache_index, Tcache, TCACHE_BINS, TCACHE_MAX_CHUNK_BYTES,
};
use heapkit_core::{Introspect, InvariantError, PageSource, Stats};

/// What a chunk is, as [`Bins::heap_map`] reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ChunkState {
    /// A live block.
    Used,
    /// Free and filed in bin `bin` (1 = unsorted, 2..=63 small, 64.. large).
    Free {
        /// The bin index.
        bin: usize,
    },
    /// Freed into fast bin `bin` (still marked in use; not coalesced yet).
    Fast {
        /// The fast bin index (chunk size / 16 - 2).
        bin: usize,
    },
    /// Freed into tcache bin `bin` (still marked in use; not coalesced).
    Cached {
        /// The tcache bin index (chunk size / 16 - 2).
        bin: usize,
    },
    /// The top chunk: free space at the end of the newest segment.
    Top,
    /// A fencepost closing a retired segment.
    Fence,
}

/// One chunk of the heap.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Index of the segment, 0 = newest.
    pub segment: usize,
    /// Distance from the segment's start.
    pub offset_bytes: usize,
    /// Address of the chunk header.
    pub addr: usize,
    /// Chunk size, header included.
    pub size_bytes: usize,
    /// What the chunk is.
    pub state: ChunkState,
}

/// Fragmentation figures, the counterparts of glibc's `mallinfo2` fields.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Fragmentation {
    /// Bytes in heap segments (`arena`).
    pub heap_bytes: usize,
    /// Bytes mapped after the newest segment that the heap has not taken into it yet: never
    /// touched, or purged (no physical memory). Only over a source that cannot `extend`, which
    /// gets runs larger than each growth (glibc reserves its non-main heaps the same way).
    pub reserved_bytes: usize,
    /// Bytes in mmapped chunks (`hblkhd`).
    pub mmapped_bytes: usize,
    /// Bytes in live heap chunks, headers included (`uordblks`).
    pub used_bytes: usize,
    /// Bytes in free chunks, fast-bin and tcache chunks and top included (`fordblks`; glibc
    /// counts its tcache chunks as used).
    pub free_bytes: usize,
    /// Free chunks, top excluded (`ordblks` - 1).
    pub free_chunks: usize,
    /// The largest free chunk, top included.
    pub largest_free_bytes: usize,
    /// The top chunk (`keepcost`).
    pub top_bytes: usize,
}

impl Fragmentation {
    /// External fragmentation: the share of free memory that is not in the largest free
    /// chunk (0 = all free memory is one chunk, near 1 = free memory is in crumbs).
    pub fn external(&self) -> f64 {
        if self.free_bytes == 0 {
            return 0.0;
        }
        1.0 - self.largest_free_bytes as f64 / self.free_bytes as f64
    }
}

/// Iterator over the chunks of a heap, newest segment first. See [`Bins::heap_map`].
pub struct HeapMap<'a, P: PageSource> {
    heap: &'a Bins<P>,
    seg: *mut Segment,
    seg_index: usize,
    chunk: ChunkPtr,
}

impl<P: PageSource> Iterator for HeapMap<'_, P> {
    type Item = ChunkInfo;

    fn next(&mut self) -> Option<ChunkInfo> {
        if self.seg.is_null() || self.seg_index >= MAX_SEGMENTS {
            return None;
        }
        let heap = self.heap;
        let c = self.chunk;
        // SAFETY: the heap is consistent (check() verifies what this walk relies on) and
        // borrowed for the iterator's life, so no chunk changes under it.
        unsafe {
            let seg_end = Bins::<P>::segment_end(self.seg);
            let c_size = size(c);
            let state = heap.state_of(c, c_size);
            let info = ChunkInfo {
                segment: self.seg_index,
                offset_bytes: c as usize - self.seg as usize,
                addr: c as usize,
                size_bytes: c_size,
                state,
            };
            let next = c.cast::<u8>().wrapping_add(c_size);
            if state == ChunkState::Top || next >= seg_end || c_size == 0 {
                self.seg = (*self.seg).next;
                self.seg_index += 1;
                if !self.seg.is_null() {
                    self.chunk = heap.first_chunk(self.seg);
                }
            } else {
                self.chunk = next.cast();
            }
            Some(info)
        }
    }
}

impl<P: PageSource> Bins<P> {
    /// Iterates the chunks of every segment (newest first): offset, size, state and bin. For
    /// pictures and tests; classifying a free chunk walks the unsorted and fast lists, so this
    /// is O(chunks x list length).
    pub fn heap_map(&self) -> HeapMap<'_, P> {
        let seg = if self.area.get().is_null() {
            core::ptr::null_mut()
        } else {
            self.newest_segment.get()
        };
        HeapMap {
            heap: self,
            seg,
            seg_index: 0,
            chunk: self.first_chunk_or_null(seg),
        }
    }

    fn first_chunk_or_null(&self, seg: *mut Segment) -> ChunkPtr {
        if seg.is_null() {
            return core::ptr::null_mut();
        }
        // SAFETY: a non-null segment taken from the list is live.
        unsafe { self.first_chunk(seg) }
    }

    /// # Safety
    /// `c` is a chunk of this heap of `c_size` bytes.
    unsafe fn state_of(&self, c: ChunkPtr, c_size: usize) -> ChunkState {
        // SAFETY: forwarded from the caller; a non-fence, non-top chunk has a next header.
        unsafe {
            if c == self.top.get() {
                return ChunkState::Top;
            }
            if is_fence(c) {
                return ChunkState::Fence;
            }
            if !prev_inuse(at(c, c_size)) {
                let in_unsorted = self.list_contains(self.bin(UNSORTED), c);
                let bin = if in_unsorted {
                    UNSORTED
                } else {
                    bin_index(c_size)
                };
                return ChunkState::Free { bin };
            }
            if c_size <= TCACHE_MAX_CHUNK_BYTES {
                let index = tcache_index(c_size);
                let mut q = self.tcache.head(index);
                for _ in 0..self.tcache.count(index) {
                    if q == c {
                        return ChunkState::Cached { bin: index };
                    }
                    q = fd(q);
                }
            }
            if c_size <= self.fast_max_bytes {
                let index = fastbin_index(c_size);
                let mut q = self.fastbins[index].get();
                let mut steps = 0;
                while !q.is_null() && steps < MAX_LIST_STEPS {
                    if q == c {
                        return ChunkState::Fast { bin: index };
                    }
                    q = fd(q);
                    steps += 1;
                }
            }
            ChunkState::Used
        }
    }

    /// # Safety
    /// `bin` is a sentinel of this heap.
    unsafe fn list_contains(&self, bin: ChunkPtr, c: ChunkPtr) -> bool {
        // SAFETY: bin lists are valid circular lists.
        unsafe {
            let mut q = fd(bin);
            let mut steps = 0;
            while q != bin && steps < MAX_LIST_STEPS {
                if q == c {
                    return true;
                }
                q = fd(q);
                steps += 1;
            }
            false
        }
    }

    /// The chunk addresses in bin `index` (1 = unsorted), front to back.
    pub fn bin_chunks(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        let ok = !self.area.get().is_null() && index > 0 && index < NBINS;
        let (bin, mut q) = if ok {
            // SAFETY: checked above: the heap is initialised and the index valid.
            unsafe { (self.bin(index), fd(self.bin(index))) }
        } else {
            (core::ptr::null_mut(), core::ptr::null_mut())
        };
        let mut steps = 0;
        core::iter::from_fn(move || {
            if !ok || q == bin || steps >= MAX_LIST_STEPS {
                return None;
            }
            let addr = q as usize;
            // SAFETY: members of a bin list are valid free chunks.
            q = unsafe { fd(q) };
            steps += 1;
            Some(addr)
        })
    }

    /// The chunk addresses in fast bin `index` (chunk size `32 + 16 * index`), top first.
    pub fn fast_bin_chunks(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        let mut q = if index < NFASTBINS {
            self.fastbins[index].get()
        } else {
            core::ptr::null_mut()
        };
        let mut steps = 0;
        core::iter::from_fn(move || {
            if q.is_null() || steps >= MAX_LIST_STEPS {
                return None;
            }
            let addr = q as usize;
            // SAFETY: fast-bin members are valid chunks linked through fd.
            q = unsafe { fd(q) };
            steps += 1;
            Some(addr)
        })
    }

    /// Totals over the whole heap (one walk; no allocation).
    pub fn fragmentation(&self) -> Fragmentation {
        let mut f = Fragmentation {
            heap_bytes: self.counters.heap_bytes.get(),
            reserved_bytes: self.reserve_bytes.get(),
            mmapped_bytes: self.counters.mmapped_bytes.get(),
            ..Fragmentation::default()
        };
        for chunk in self.heap_map() {
            match chunk.state {
                ChunkState::Used => f.used_bytes += chunk.size_bytes,
                ChunkState::Fence => {}
                ChunkState::Free { .. }
                | ChunkState::Fast { .. }
                | ChunkState::Cached { .. }
                | ChunkState::Top => {
                    f.free_bytes += chunk.size_bytes;
                    f.largest_free_bytes = f.largest_free_bytes.max(chunk.size_bytes);
                    if chunk.state == ChunkState::Top {
                        f.top_bytes = chunk.size_bytes;
                    } else {
                        f.free_chunks += 1;
                    }
                }
            }
        }
        f
    }

    /// Walks one segment and adds its figures to `tally`.
    ///
    /// # Safety
    /// `seg` is a live segment of this heap.
    unsafe fn check_segment(
        &self,
        seg: *mut Segment,
        current: bool,
        tally: &mut Tally,
    ) -> Result<(), InvariantError> {
        let err = |what, addr: ChunkPtr| Err(InvariantError::new(what, addr as usize));
        // SAFETY: every chunk reached is inside the segment (checked before each step).
        unsafe {
            let page = self.pages.page_size();
            if seg as usize % page != 0 || (*seg).size_bytes % page != 0 {
                return err("segment not page-aligned", seg.cast());
            }
            let end = Self::segment_end(seg) as usize;
            let mut c = self.first_chunk(seg);
            let mut prev_free = false;
            if !prev_inuse(c) {
                return err("first chunk of a segment says its predecessor is free", c);
            }
            for _ in 0..(*seg).size_bytes / FENCE_BYTES {
                if current && c == self.top.get() {
                    let top_size = size(c);
                    if top_size < MIN_CHUNK_BYTES || c as usize + top_size != end {
                        return err("top chunk does not end its segment", c);
                    }
                    if kind(c) != 0 || is_mmapped(c) {
                        return err("top chunk flagged other than P", c);
                    }
                    if prev_free || !prev_inuse(c) {
                        return err("free chunk before top", c);
                    }
                    return Ok(());
                }
                if is_fence(c) {
                    return self.check_fences(c, end, current);
                }
                let c_size = size(c);
                if c_size < MIN_CHUNK_BYTES || c as usize + c_size + HEADER_BYTES > end {
                    return err("chunk size out of range", c);
                }
                if prev_inuse(c) == prev_free {
                    return err("boundary tags disagree (P bit vs previous chunk)", c);
                }
                let next = at(c, c_size);
                let free = !prev_inuse(next);
                if free {
                    if prev_free {
                        return err("two adjacent free chunks", c);
                    }
                    if prev_size(next) != c_size {
                        return err("free chunk's footer differs from its size", c);
                    }
                    tally.free_chunks += 1;
                } else {
                    tally.used_chunks += 1;
                    tally.used_usable_bytes += c_size - SIZE_SZ;
                    tally.flagged_cached += usize::from(Tcache::contains(c));
                }
                if free && Tcache::contains(c) {
                    return err("free chunk flagged as cached", c);
                }
                if free != is_free(c) {
                    return err("kind bits disagree with the next chunk's P bit", c);
                }
                if is_mmapped(c) {
                    return err("heap chunk flagged mmapped", c);
                }
                prev_free = free;
                c = next;
            }
            err("segment walk did not end", c)
        }
    }

    /// # Safety
    /// `fence1` is a fence chunk inside a segment ending at `end`.
    unsafe fn check_fences(
        &self,
        fence1: ChunkPtr,
        end: usize,
        current: bool,
    ) -> Result<(), InvariantError> {
        // SAFETY: fences are two headers at the end of the segment.
        unsafe {
            let fence2 = at(fence1, FENCE_BYTES);
            let ok = !current
                && size(fence1) == FENCE_BYTES
                && fence2 as usize + HEADER_BYTES <= end
                && is_fence(fence2)
                && prev_inuse(fence2)
                && fence2 as usize + size(fence2) == end;
            if ok {
                Ok(())
            } else {
                Err(InvariantError::new("bad fenceposts", fence1 as usize))
            }
        }
    }

    /// Checks every bin: members are free, in their bin's range, linked both ways, and large
    /// bins are sorted. Returns the number of binned chunks.
    ///
    /// # Safety
    /// The heap is initialised.
    unsafe fn check_bins(&self, limit: usize) -> Result<usize, InvariantError> {
        let mut binned = 0;
        for index in UNSORTED..NBINS {
            // SAFETY: index < NBINS; the heap is initialised.
            let bin = unsafe { self.bin(index) };
            // SAFETY: as above.
            let count = unsafe { self.check_bin(index, bin, limit)? };
            if count > 0 && index != UNSORTED {
                let bit = self.binmap[index / 64].get() >> (index % 64) & 1;
                if bit == 0 {
                    return Err(InvariantError::new(
                        "non-empty bin not in the bitmap",
                        bin as usize,
                    ));
                }
            }
            binned += count;
        }
        Ok(binned)
    }

    /// # Safety
    /// `bin` is the sentinel of bin `index`.
    unsafe fn check_bin(
        &self,
        index: usize,
        bin: ChunkPtr,
        limit: usize,
    ) -> Result<usize, InvariantError> {
        let err = |what, addr: ChunkPtr| Err(InvariantError::new(what, addr as usize));
        let mut count = 0;
        let mut prev = bin;
        let mut prev_size_bytes = usize::MAX;
        // SAFETY: each member is verified to lie in a segment before its header is read.
        unsafe {
            let mut q = fd(bin);
            while q != bin {
                if count > limit {
                    return err("bin list longer than the heap (cycle?)", bin);
                }
                if bk(q) != prev {
                    return err("bin list links disagree (fd/bk)", q);
                }
                let q_size = size(q);
                if !self.in_some_segment(q, q_size) || q as usize % 16 != 0 {
                    return err("binned chunk outside the heap", q);
                }
                if prev_inuse(at(q, q_size)) || !is_free(q) {
                    return err("binned chunk is not free", q);
                }
                let in_range = index == UNSORTED || bin_index(q_size) == index;
                if !in_range {
                    return err("chunk in the wrong bin for its size", q);
                }
                if index >= NSMALLBINS {
                    if q_size > prev_size_bytes {
                        return err("large bin not sorted", q);
                    }
                    prev_size_bytes = q_size;
                    let first_of_size = prev == bin || size(prev) != q_size;
                    let (fns, bns) = Self::nextsize(q);
                    if first_of_size == fns.is_null() || first_of_size == bns.is_null() {
                        return err("large bin skip list broken", q);
                    }
                }
                if index == UNSORTED && !in_smallbin_range(q_size) && !Self::nextsize(q).0.is_null()
                {
                    return err("unsorted large chunk with skip-list links", q);
                }
                count += 1;
                prev = q;
                q = fd(q);
            }
            if bk(bin) != prev {
                return err("bin sentinel's bk is not the last chunk", bin);
            }
        }
        Ok(count)
    }

    /// # Safety
    /// The heap is initialised.
    unsafe fn check_fast_bins(&self, limit: usize) -> Result<(usize, usize), InvariantError> {
        let (mut count, mut usable) = (0, 0);
        for (index, slot) in self.fastbins.iter().enumerate() {
            let mut q = slot.get();
            while !q.is_null() {
                if count > limit {
                    return Err(InvariantError::new(
                        "fast bin longer than the heap",
                        q as usize,
                    ));
                }
                // SAFETY: q is verified to be in a segment before its header is read.
                unsafe {
                    let q_size = size(q);
                    if fastbin_index(q_size.max(MIN_CHUNK_BYTES)) != index
                        || q_size > self.fast_max_bytes
                        || !self.in_some_segment(q, q_size)
                    {
                        return Err(InvariantError::new(
                            "fast-bin chunk of the wrong size",
                            q as usize,
                        ));
                    }
                    if !prev_inuse(at(q, q_size)) {
                        return Err(InvariantError::new(
                            "fast-bin chunk marked free",
                            q as usize,
                        ));
                    }
                    count += 1;
                    usable += q_size - SIZE_SZ;
                    q = Self::fast_next(q);
                }
            }
        }
        Ok((count, usable))
    }

    /// Every tcache bin: as long as its count (at most the limit), members of its exact size,
    /// inside the heap, marked in use and flagged. Returns (chunks, usable bytes).
    ///
    /// # Safety
    /// The heap is initialised.
    unsafe fn check_tcache(&self) -> Result<(usize, usize), InvariantError> {
        let err = |what, addr: ChunkPtr| Err(InvariantError::new(what, addr as usize));
        let (mut total, mut usable) = (0, 0);
        for index in 0..TCACHE_BINS {
            let count = self.tcache.count(index);
            if count > self.tcache.limit() {
                return err("tcache bin above its limit", self.tcache.head(index));
            }
            let want = tcache_chunk_bytes(index);
            let mut q = self.tcache.head(index);
            for _ in 0..count {
                if q.is_null() || q as usize % 16 != 0 || !self.in_some_segment(q, want) {
                    return err("tcache chunk outside the heap", q);
                }
                // SAFETY: q lies in a segment with room for its size and the next header.
                unsafe {
                    if size(q) != want || is_fence(q) || q == self.top.get() {
                        return err("tcache chunk of the wrong size", q);
                    }
                    if !prev_inuse(at(q, want)) {
                        return err("tcache chunk marked free", q);
                    }
                    if !Tcache::contains(q) {
                        return err("tcache chunk without its flag", q);
                    }
                    q = fd(q);
                }
                usable += want - SIZE_SZ;
            }
            if !q.is_null() && count > 0 || count == 0 && !self.tcache.head(index).is_null() {
                return err("tcache list longer than its count", q);
            }
            total += count;
        }
        Ok((total, usable))
    }

    fn check_all(&self) -> Result<(), InvariantError> {
        let c = &self.counters;
        if self.area.get().is_null() {
            let idle = c.live_blocks.get() == 0 && c.heap_bytes.get() == 0;
            return if idle {
                Ok(())
            } else {
                Err(InvariantError::new(
                    "uninitialised heap with live blocks",
                    0,
                ))
            };
        }
        let mut tally = Tally::default();
        let mut seg = self.newest_segment.get();
        let (mut segments, mut heap_bytes) = (0, 0);
        while !seg.is_null() {
            if segments >= MAX_SEGMENTS {
                return Err(InvariantError::new("segment list too long", seg as usize));
            }
            // SAFETY: `seg` is on the segment list.
            unsafe {
                self.check_segment(seg, segments == 0, &mut tally)?;
                heap_bytes += (*seg).size_bytes;
                seg = (*seg).next;
            }
            segments += 1;
        }
        if self.reserve_bytes.get() % self.pages.page_size() != 0 {
            return Err(InvariantError::new("reserve not whole pages", 0));
        }
        if segments != c.segment_count.get() || heap_bytes != c.heap_bytes.get() {
            return Err(InvariantError::new(
                "segment sizes do not sum to the heap",
                0,
            ));
        }
        let limit = heap_bytes / MIN_CHUNK_BYTES;
        // SAFETY: the heap is initialised.
        let binned = unsafe { self.check_bins(limit)? };
        if binned != tally.free_chunks {
            return Err(InvariantError::new(
                "free chunks and binned chunks differ",
                0,
            ));
        }
        // SAFETY: the heap is initialised.
        let (fast_count, fast_usable) = unsafe { self.check_fast_bins(limit)? };
        // SAFETY: the heap is initialised.
        let (cached_count, cached_usable) = unsafe { self.check_tcache()? };
        if tally.flagged_cached != cached_count {
            return Err(InvariantError::new(
                "chunks flagged as cached differ from the tcache's",
                0,
            ));
        }
        if fast_count > 0 && !self.have_fast.get() {
            return Err(InvariantError::new(
                "fast chunks present but have_fast is false",
                0,
            ));
        }
        // Fast-bin and tcache chunks look in use to the walk but are not live blocks.
        let (idle_count, idle_usable) = (fast_count + cached_count, fast_usable + cached_usable);
        if idle_count > tally.used_chunks || idle_usable > tally.used_usable_bytes {
            return Err(InvariantError::new("more idle chunks than used ones", 0));
        }
        let live_heap_blocks = tally.used_chunks - idle_count;
        if live_heap_blocks + c.mmapped_blocks.get() != c.live_blocks.get() {
            return Err(InvariantError::new(
                "live block count differs from the heap walk",
                0,
            ));
        }
        if tally.used_usable_bytes - idle_usable > c.live_bytes.get() {
            return Err(InvariantError::new("live bytes below the heap walk's", 0));
        }
        Ok(())
    }
}

/// Running totals of a heap walk.
#[derive(Default)]
struct Tally {
    free_chunks: usize,
    used_chunks: usize,
    used_usable_bytes: usize,
    /// Used chunks with the IN_TCACHE flag.
    flagged_cached: usize,
}

/// Bound on any list walk made for pictures.
const MAX_LIST_STEPS: usize = 1 << 24;

impl<P: PageSource> Introspect for Bins<P> {
    /// Walks every segment and bin: tags agree both ways, no two adjacent free chunks, every
    /// free chunk is in exactly one bin of its range, top ends the newest segment, fences
    /// close the others, segment sizes sum to the heap, and the block counts match.
    fn check(&self) -> Result<(), InvariantError> {
        self.check_all()
    }

    fn stats(&self) -> Option<Stats> {
        let c = &self.counters;
        Some(Stats {
            live_bytes: c.live_bytes.get(),
            live_blocks: c.live_blocks.get(),
            peak_bytes: c.peak_bytes.get(),
            mapped_bytes: c.heap_bytes.get() + self.reserve_bytes.get() + c.mmapped_bytes.get(),
            allocations: c.allocations.get(),
            deallocations: c.deallocations.get(),
            reallocations: c.reallocations.get(),
            failures: c.failures.get(),
        })
    }
}
