//! Huge blocks: one mapping each, chunk-aligned, with a small header at the front so that the
//! same pointer masking that finds a chunk header finds it (`chunk::block_header`).
//!
//! ```text
//!   mapping (chunk-aligned)
//!   ┌──────────┬─────────── … ───────────────────────────┐
//!   │ Huge hdr │ block (offset = header rounded up to the │
//!   │ magic,.. │ block's alignment, < CHUNK_BYTES)         │
//!   └──────────┴─────────── … ───────────────────────────┘
//!
//!   over-aligned (alignment ≥ CHUNK_BYTES, up to MAX_ALIGN_SERVED_BYTES):
//!   map(lead + CHUNK + size, align)    lead = align - CHUNK, unmapped at once
//!   ┌ ─ lead ─ ┬──────────┬─ … ─┬──────────── … ────────┐
//!              │ Huge hdr │     │ block (offset = CHUNK, │
//!   └ ─ ─ ─ ─ ─┴──────────┴─ … ─┴ aligned to align) ─────┘
//!              ▲ chunk-aligned   ▲ = block_header(block) + CHUNK
//! ```
//!
//! With `hardened` the block is right-aligned between two inaccessible guard pages, so the
//! first byte past its end (or before its first page) faults:
//!
//! ```text
//!   ┌──────────┬─────────┬ ─ slack ─┬──── block ────┬──────────┐
//!   │ Huge hdr │ guard ✗ │ (< page) │ (end ≤ 15 B → │ guard ✗  │
//!   └──────────┴─────────┴ ─ ─ ─ ─ ─┴ from guard)───┴──────────┘
//! ```
//!
//! The guards are `PageSource::protect`ed pages of the block's own mapping (not holes left
//! unmapped): a hole could be handed to another mapping by the kernel, and the retained source
//! could give it out again as part of a run; a protected page stays ours and is lifted before
//! the mapping goes back to the source, so a retained run is never guarded (`retained.rs`).
//! A block aligned to more than 16 bytes starts on its boundary and ends less than a page
//! before the guard; `usable_bytes` reports the bytes up to the guard.
//!
//! The header's `next`/`prev` links (guarded by the chunk lock) chain all huge blocks for
//! `check`, `heap_map`, statistics and `Drop`. Its other fields are read without a lock by
//! the block's owner (`free`, `usable_size`), and change only when that owner resizes it.

use crate::chunk::{ChunkHead, HUGE_MAGIC};
use crate::geometry::CHUNK_BYTES;
use crate::geometry::MAX_ALIGN_SERVED_BYTES;
use crate::heap::Slab;
use core::alloc::Layout;
use core::ptr::{self, addr_of, addr_of_mut, NonNull};
use heapkit_core::{align_up, AllocError, PageSource, MAX_ALIGN_BYTES};

/// The header at the front of a huge block's mapping.
#[repr(C)]
pub(crate) struct Huge {
    pub head: ChunkHead,
    /// Length of the mapping, header included.
    pub map_bytes: usize,
    /// Distance from the mapping's start to the block.
    pub offset_bytes: usize,
    /// The guard page at the mapping's end (0 without guards): the block ends before it.
    pub guard_bytes: usize,
    /// From here to the tail guard the mapping read as zero when it was made, or was scrubbed
    /// since (`hardened`'s cache of guarded mappings reuses a mapping for a block only there).
    #[cfg(feature = "hardened")]
    pub clean_from_bytes: usize,
    /// The function family that allocated the block (`hardened`: `huge_family.rs`).
    #[cfg(feature = "hardened")]
    pub family: crate::canary::Family,
    pub next: *mut Huge,
    pub prev: *mut Huge,
}

const _: () = assert!(core::mem::offset_of!(Huge, head) == 0);

impl Huge {
    /// # Safety
    /// `this` is a live huge header.
    pub(crate) unsafe fn block_start(this: *mut Huge) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { this.cast::<u8>().add(addr_of!((*this).offset_bytes).read()) }
    }
    /// # Safety
    /// `this` is a live huge header.
    pub(crate) unsafe fn usable_bytes(this: *mut Huge) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe {
            addr_of!((*this).map_bytes).read()
                - addr_of!((*this).offset_bytes).read()
                - addr_of!((*this).guard_bytes).read()
        }
    }
    /// # Safety
    /// `this` is a live huge header.
    pub(crate) unsafe fn map_bytes(this: *mut Huge) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { addr_of!((*this).map_bytes).read() }
    }
    /// # Safety
    /// `this` is a live huge header and the chunk lock is held (or `&mut Slab`).
    pub(crate) unsafe fn next(this: *mut Huge) -> *mut Huge {
        // SAFETY: forwarded from the caller.
        unsafe { addr_of!((*this).next).read() }
    }
}

/// The huge blocks of a slab (part of the chunk lock's state).
pub(crate) struct HugeList {
    pub head: *mut Huge,
    pub count: usize,
    pub mapped_bytes: usize,
    pub usable_bytes: usize,
    /// Freed blocks held back, inaccessible, before their pages go back to the source.
    #[cfg(feature = "hardened")]
    pub quarantine: crate::huge_quarantine::HugeQuarantine,
    /// Mappings out of the quarantine, still inaccessible and guarded, kept for reuse.
    #[cfg(feature = "hardened")]
    pub cache: crate::huge_cache::HugeCache,
}

impl HugeList {
    pub(crate) const fn new() -> Self {
        HugeList {
            head: ptr::null_mut(),
            count: 0,
            mapped_bytes: 0,
            usable_bytes: 0,
            #[cfg(feature = "hardened")]
            quarantine: crate::huge_quarantine::HugeQuarantine::new(),
            #[cfg(feature = "hardened")]
            cache: crate::huge_cache::HugeCache::new(),
        }
    }

    /// Bytes mapped for freed blocks still held, in the quarantine or the cache of guarded
    /// mappings (0 without `hardened`).
    pub(crate) fn quarantined_bytes(&self) -> usize {
        #[cfg(feature = "hardened")]
        return self.quarantine.bytes + self.cache.bytes;
        #[cfg(not(feature = "hardened"))]
        0
    }

    /// # Safety
    /// `huge` is a live, unlinked header; the chunk lock is held.
    unsafe fn push(&mut self, huge: *mut Huge) {
        // SAFETY: forwarded from the caller; `head`, if any, is a live linked header.
        unsafe {
            addr_of_mut!((*huge).prev).write(ptr::null_mut());
            addr_of_mut!((*huge).next).write(self.head);
            if !self.head.is_null() {
                addr_of_mut!((*self.head).prev).write(huge);
            }
        }
        self.head = huge;
        self.count += 1;
    }

    /// # Safety
    /// `huge` is a live, linked header; the chunk lock is held.
    unsafe fn unlink(&mut self, huge: *mut Huge) {
        // SAFETY: forwarded from the caller; neighbours are live linked headers.
        unsafe {
            let prev = addr_of!((*huge).prev).read();
            let next = addr_of!((*huge).next).read();
            if prev.is_null() {
                self.head = next;
            } else {
                addr_of_mut!((*prev).next).write(next);
            }
            if !next.is_null() {
                addr_of_mut!((*next).prev).write(prev);
            }
        }
        self.count -= 1;
    }
}

/// The end of a guarded mapping's header: its first page boundary past the header (the
/// front guard starts there).
pub(crate) fn header_end(page_bytes: usize) -> usize {
    align_up(core::mem::size_of::<Huge>(), page_bytes).unwrap_or(page_bytes)
}

/// Where a huge block goes in its mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HugeGeometry {
    /// From the header (the kept mapping's start) to the block.
    pub offset_bytes: usize,
    /// The kept mapping, header included.
    pub map_bytes: usize,
    /// Mapped in front of the header to reach the alignment, and unmapped at once.
    pub lead_bytes: usize,
    /// The alignment of the whole run asked of the source (header at `lead_bytes` into it).
    pub map_align_bytes: usize,
    /// The guard page at the end of the kept mapping (0 without guards); the guard before the
    /// block runs from the header's page end to the block's first page.
    pub guard_bytes: usize,
}

/// Whether huge blocks sit between guard pages (`hardened`).
const GUARDED: bool = cfg!(feature = "hardened");

/// The geometry of a huge block for `layout`: the header at the chunk-aligned start and the
/// block at the header rounded up to its alignment; or, from a chunk's alignment up, the block
/// one chunk past its header on a boundary of its alignment (the lead before the header is
/// what reaching that boundary costs). `None` past [`MAX_ALIGN_SERVED_BYTES`] or on overflow.
fn huge_geometry(layout: Layout, page_bytes: usize, guarded: bool) -> Option<HugeGeometry> {
    let align = layout.align().max(MAX_ALIGN_BYTES);
    if align > MAX_ALIGN_SERVED_BYTES {
        return None;
    }
    if guarded {
        return guarded_geometry(layout.size(), align, page_bytes);
    }
    let offset_bytes = align_up(core::mem::size_of::<Huge>(), align)?.min(CHUNK_BYTES);
    let map_bytes = align_up(offset_bytes.checked_add(layout.size())?, page_bytes)?;
    let lead_bytes = align.saturating_sub(CHUNK_BYTES);
    lead_bytes.checked_add(map_bytes)?;
    Some(HugeGeometry {
        offset_bytes,
        map_bytes,
        lead_bytes,
        map_align_bytes: align.max(CHUNK_BYTES),
        guard_bytes: 0,
    })
}

/// The `hardened` geometry: header page(s), a guard page, the block right-aligned in its pages
/// (as far right as its alignment allows), a guard page. The block stays within a chunk of
/// the header (`block_header` masks it back) as in [`huge_geometry`].
pub(crate) fn guarded_geometry(
    size: usize,
    align: usize,
    page_bytes: usize,
) -> Option<HugeGeometry> {
    let header_end = align_up(core::mem::size_of::<Huge>(), page_bytes)?;
    let first_free = header_end + page_bytes; // after the front guard
    let (offset_bytes, tail_end) = if align <= page_bytes {
        let tail_end = align_up(first_free.checked_add(size)?, page_bytes)?;
        ((tail_end - size) & !(align - 1), tail_end)
    } else {
        let offset = if align >= CHUNK_BYTES {
            CHUNK_BYTES
        } else {
            align_up(first_free, align)?
        };
        (offset, align_up(offset.checked_add(size)?, page_bytes)?)
    };
    let map_bytes = tail_end.checked_add(page_bytes)?;
    let lead_bytes = align.saturating_sub(CHUNK_BYTES);
    lead_bytes.checked_add(map_bytes)?;
    debug_assert!(offset_bytes >= first_free && offset_bytes <= CHUNK_BYTES);
    Some(HugeGeometry {
        offset_bytes,
        map_bytes,
        lead_bytes,
        map_align_bytes: align.max(CHUNK_BYTES),
        guard_bytes: page_bytes,
    })
}

impl<P: PageSource> Slab<P> {
    /// After the source ran out of memory: gives the huge quarantine's blocks and the cached
    /// mappings back (`hardened`) and tells whether there were any, so that a retry may
    /// succeed.
    pub(crate) fn empty_huge_quarantine_for_retry(&self) -> bool {
        #[cfg(feature = "hardened")]
        {
            let held = {
                let chunks = self.chunks.lock();
                chunks.huge.quarantine.count + chunks.huge.cache.count
            };
            if held > 0 {
                self.empty_huge_quarantine();
                return true;
            }
        }
        false
    }

    /// Maps a huge block; when the source is out of memory, once more after the huge
    /// quarantine gave its blocks back.
    pub(crate) fn alloc_huge(
        &self,
        layout: Layout,
    ) -> Result<(NonNull<u8>, usize, bool), AllocError> {
        self.alloc_huge_once(layout).or_else(|e| {
            if self.empty_huge_quarantine_for_retry() {
                self.alloc_huge_once(layout)
            } else {
                Err(e)
            }
        })
    }

    fn alloc_huge_once(&self, layout: Layout) -> Result<(NonNull<u8>, usize, bool), AllocError> {
        #[cfg(feature = "hardened")]
        if let Some(reused) = self.alloc_huge_cached(layout) {
            return Ok(reused);
        }
        let Some(at) = huge_geometry(layout, self.pages.page_size(), GUARDED) else {
            self.chunks.lock().failures += 1;
            return Err(AllocError);
        };
        let (offset, map_bytes) = (at.offset_bytes, at.map_bytes);
        // Mapped without the chunk lock: a slow mmap must not stall other threads' refills.
        let (raw, zeroed) = match self
            .pages
            .map_reporting_zero(at.lead_bytes + map_bytes, at.map_align_bytes)
        {
            Ok(mapped) => mapped,
            Err(e) => {
                self.chunks.lock().failures += 1;
                return Err(e);
            }
        };
        if at.lead_bytes > 0 {
            // SAFETY: the head of the run just mapped, page-aligned (a multiple of a chunk);
            // nothing uses it.
            unsafe { self.pages.unmap(raw, at.lead_bytes) };
        }
        // SAFETY: `lead_bytes` is inside the run just mapped.
        let raw = unsafe { NonNull::new_unchecked(raw.as_ptr().add(at.lead_bytes)) };
        let huge = raw.as_ptr().cast::<Huge>();
        let page_bytes = self.pages.page_size();
        // A fresh run from the OS reads as zero past its header; a reused one only where the
        // program will have written and the scrub will have zeroed: the block's pages.
        let clean_from = if zeroed {
            header_end(page_bytes)
        } else {
            offset & !(page_bytes - 1)
        };
        // SAFETY: a fresh, chunk-aligned mapping of `map_bytes` ≥ the header's size.
        let (block, usable) = unsafe { self.install_huge(huge, at, clean_from) };
        if at.guard_bytes > 0 {
            // SAFETY: the header just written; nothing of the new mapping is in use yet.
            unsafe { self.set_guards(huge, false) };
        }
        Ok((block, usable, zeroed))
    }

    /// Writes the header of a huge block laid out as `at` at `huge` (the mapping's start),
    /// links it and counts it; returns the block and its usable bytes.
    ///
    /// # Safety
    /// `huge` starts a chunk-aligned mapping of `at.map_bytes` that the caller owns, not linked.
    pub(crate) unsafe fn install_huge(
        &self,
        huge: *mut Huge,
        at: HugeGeometry,
        clean_from_bytes: usize,
    ) -> (NonNull<u8>, usize) {
        let owner_id = self.owner_id();
        // Only the cache of guarded mappings reads it.
        #[cfg(not(feature = "hardened"))]
        let _ = clean_from_bytes;
        // SAFETY: forwarded from the caller: the header page is ours and readable.
        unsafe {
            huge.write(Huge {
                head: ChunkHead {
                    magic: HUGE_MAGIC,
                    owner_id,
                    small_tag: 0,
                },
                map_bytes: at.map_bytes,
                offset_bytes: at.offset_bytes,
                guard_bytes: at.guard_bytes,
                #[cfg(feature = "hardened")]
                clean_from_bytes,
                #[cfg(feature = "hardened")]
                family: crate::canary::Family::Malloc,
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
            })
        };
        let usable = at.map_bytes - at.offset_bytes - at.guard_bytes;
        {
            let mut chunks = self.chunks.lock();
            crate::chunk_map::insert(huge as usize);
            // SAFETY: the header was just written; the chunk lock is held.
            unsafe { chunks.huge.push(huge) };
            chunks.huge.mapped_bytes += at.map_bytes;
            chunks.huge.usable_bytes += usable;
            self.live.grow(usable);
        }
        // SAFETY: `offset < map_bytes`, inside the mapping.
        let block = unsafe { NonNull::new_unchecked(huge.cast::<u8>().add(at.offset_bytes)) };
        (block, usable)
    }

    /// Makes the guards of a guarded huge block inaccessible (`accessible == false`) or lifts
    /// them: the page(s) between the header and the block's first page, and the last page. A
    /// source that cannot protect pages leaves the block without guards.
    ///
    /// # Safety
    /// `huge` is a live header with `guard_bytes > 0`; when protecting, nothing in the guard
    /// pages is in use.
    unsafe fn set_guards(&self, huge: *mut Huge, accessible: bool) {
        let page_bytes = self.pages.page_size();
        // SAFETY: forwarded from the caller.
        let (map_bytes, offset, guard) = unsafe {
            (
                Huge::map_bytes(huge),
                addr_of!((*huge).offset_bytes).read(),
                addr_of!((*huge).guard_bytes).read(),
            )
        };
        let front = header_end(page_bytes);
        let front_end = offset & !(page_bytes - 1);
        let base = huge.cast::<u8>();
        // Failures are ignored: the source then gives no guards, and the block still works.
        // SAFETY: both ranges are page-aligned, inside the mapping, and hold no block bytes
        // (the front ends at the block's first page, the back starts at its last page's end).
        unsafe {
            let _ = self.pages.protect(
                NonNull::new_unchecked(base.add(front)),
                front_end - front,
                accessible,
            );
            let _ = self.pages.protect(
                NonNull::new_unchecked(base.add(map_bytes - guard)),
                guard,
                accessible,
            );
        }
    }

    /// Gives a dead huge block's whole mapping back to the source, its guards (or, after a
    /// quarantine, its protection) lifted first so that no retained run stays guarded.
    ///
    /// # Safety
    /// `huge` heads a mapping made by `alloc_huge` whose block is dead and unlinked.
    pub(crate) unsafe fn unmap_huge(&self, huge: *mut Huge) {
        // SAFETY: forwarded from the caller: the header page is never protected.
        let map_bytes = unsafe { Huge::map_bytes(huge) };
        // SAFETY: as above.
        let guard = unsafe { addr_of!((*huge).guard_bytes).read() };
        if guard > 0 {
            let page_bytes = self.pages.page_size();
            let front = header_end(page_bytes);
            // SAFETY: page-aligned, inside the mapping; lifting protection harms nothing.
            let _ = unsafe {
                self.pages.protect(
                    NonNull::new_unchecked(huge.cast::<u8>().add(front)),
                    map_bytes - front,
                    true,
                )
            };
        }
        // SAFETY: the whole mapping made by `alloc_huge`; its only block is dead.
        unsafe {
            self.pages
                .unmap(NonNull::new_unchecked(huge.cast()), map_bytes)
        };
    }

    /// Unmaps a huge block (with `hardened`: scrubs it and puts it into the quarantine).
    ///
    /// # Safety
    /// `huge` is the live header `locate` found for the block being freed.
    pub(crate) unsafe fn free_huge(&self, huge: *mut Huge) {
        #[cfg(feature = "hardened")]
        // SAFETY: forwarded from the caller.
        unsafe {
            crate::huge_family::check_free(huge)
        };
        // SAFETY: forwarded from the caller.
        let (map_bytes, usable) = unsafe { (Huge::map_bytes(huge), Huge::usable_bytes(huge)) };
        {
            let mut chunks = self.chunks.lock();
            // SAFETY: a live, linked header; the chunk lock is held.
            unsafe { chunks.huge.unlink(huge) };
            chunks.huge.mapped_bytes -= map_bytes;
            chunks.huge.usable_bytes -= usable;
            self.live.shrink(usable);
            // SAFETY: still mapped; a stale pointer to it now fails the magic check.
            unsafe { addr_of_mut!((*huge).head.magic).write(0) };
            crate::chunk_map::remove(huge as usize);
        }
        #[cfg(feature = "hardened")]
        // SAFETY: the block is dead and unlinked; the header stays as it was.
        unsafe {
            self.quarantine_huge(huge)
        };
        #[cfg(not(feature = "hardened"))]
        // SAFETY: the whole mapping made by `alloc_huge`; its only block is dead and unlinked.
        unsafe {
            self.unmap_huge(huge)
        };
    }

    /// Resizes a huge block in place to at least `new_size` bytes: shrinking unmaps whole
    /// pages at the tail; growing asks the source to extend the mapping (`brk`-like sources
    /// can, `mmap` cannot). Returns the new usable length, or `None`.
    ///
    /// # Safety
    /// `huge` is the live header of a block the caller owns.
    pub(crate) unsafe fn resize_huge(&self, huge: *mut Huge, new_size: usize) -> Option<usize> {
        if GUARDED {
            // The block ends at its guard page: it moves instead (`realloc` copies).
            return None;
        }
        let page_bytes = self.pages.page_size();
        let (old_map, offset) =
            // SAFETY: forwarded from the caller.
            unsafe { (Huge::map_bytes(huge), addr_of!((*huge).offset_bytes).read()) };
        let new_map = align_up(offset.checked_add(new_size)?, page_bytes)?;
        if new_map < old_map {
            // SAFETY: the tail pages hold nothing the (shrunk) block still uses.
            unsafe {
                self.pages.unmap(
                    NonNull::new_unchecked(huge.cast::<u8>().add(new_map)),
                    old_map - new_map,
                )
            };
        } else if new_map > old_map {
            // SAFETY: the mapping's end is inside or one past the mapping.
            let end = unsafe { NonNull::new_unchecked(huge.cast::<u8>().add(old_map)) };
            self.pages.extend(end, new_map - old_map).ok()?;
        }
        let mut chunks = self.chunks.lock();
        // Add before subtracting: each total includes this block's old figure.
        chunks.huge.mapped_bytes = chunks.huge.mapped_bytes + new_map - old_map;
        chunks.huge.usable_bytes = chunks.huge.usable_bytes + new_map - old_map;
        if new_map > old_map {
            self.live.grow(new_map - old_map);
        } else {
            self.live.shrink(old_map - new_map);
        }
        // SAFETY: the header is live; only the block's owner (the caller) resizes it.
        unsafe { addr_of_mut!((*huge).map_bytes).write(new_map) };
        Some(new_map - offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(size: usize, align: usize) -> Option<HugeGeometry> {
        huge_geometry(Layout::from_size_align(size, align).unwrap(), 4096, false)
    }

    #[test]
    fn below_a_chunk_the_block_sits_past_the_header_in_a_chunk_aligned_run() {
        let header = align_up(core::mem::size_of::<Huge>(), 16).unwrap();
        let at = geometry(3 << 20, 16).unwrap();
        assert_eq!(
            (at.offset_bytes, at.lead_bytes, at.map_align_bytes),
            (header, 0, CHUNK_BYTES)
        );
        assert_eq!(at.map_bytes, align_up(header + (3 << 20), 4096).unwrap());
        let at = geometry(100, 1 << 20).unwrap();
        assert_eq!((at.offset_bytes, at.lead_bytes), (1 << 20, 0));
    }

    #[test]
    fn from_a_chunk_up_the_block_is_one_chunk_past_the_header_on_its_boundary() {
        for align in [CHUNK_BYTES, 4 << 20, 64 << 20, MAX_ALIGN_SERVED_BYTES] {
            let at = geometry(100, align).unwrap();
            assert_eq!(at.offset_bytes, CHUNK_BYTES);
            assert_eq!(at.lead_bytes, align - CHUNK_BYTES);
            assert_eq!(at.map_align_bytes, align);
            // The run starts on `align`; the header `lead` later; the block a chunk after it.
            assert_eq!((at.lead_bytes + at.offset_bytes) % align, 0);
            assert_eq!(at.map_bytes, CHUNK_BYTES + 4096);
        }
    }

    #[test]
    fn guarded_blocks_end_at_most_15_bytes_before_the_tail_guard_and_keep_a_front_guard() {
        let page = 4096;
        for size in [
            1,
            15,
            16,
            17,
            4095,
            4096,
            4097,
            256 << 10,
            (256 << 10) + 1,
            3 << 20,
        ] {
            for align in [16, 64, 4096, 64 << 10, CHUNK_BYTES] {
                let layout = Layout::from_size_align(size, align).unwrap();
                let at = huge_geometry(layout, page, true).unwrap();
                let tail_guard = at.map_bytes - at.guard_bytes;
                let end = at.offset_bytes + size;
                assert_eq!(at.guard_bytes, page);
                assert_eq!(at.offset_bytes % align, 0, "{size} {align}");
                assert!(end <= tail_guard && tail_guard % page == 0);
                let slack = tail_guard - end;
                assert!(slack < align.clamp(16, page), "{size} {align}: {slack}");
                // A whole guard page between the header's page and the block's first page.
                assert!(at.offset_bytes >= 2 * page && at.offset_bytes <= CHUNK_BYTES);
            }
        }
    }

    #[test]
    fn alignments_past_the_limit_are_refused() {
        assert_eq!(geometry(100, MAX_ALIGN_SERVED_BYTES * 2), None);
        assert_eq!(geometry(100, 1 << 62), None);
    }
}
