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
        unsafe { addr_of!((*this).map_bytes).read() - addr_of!((*this).offset_bytes).read() }
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
}

impl HugeList {
    pub(crate) const fn new() -> Self {
        HugeList {
            head: ptr::null_mut(),
            count: 0,
            mapped_bytes: 0,
            usable_bytes: 0,
        }
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

/// Where a huge block goes in its mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HugeGeometry {
    /// From the header (the kept mapping's start) to the block.
    offset_bytes: usize,
    /// The kept mapping, header included.
    map_bytes: usize,
    /// Mapped in front of the header to reach the alignment, and unmapped at once.
    lead_bytes: usize,
    /// The alignment of the whole run asked of the source (header at `lead_bytes` into it).
    map_align_bytes: usize,
}

/// The geometry of a huge block for `layout`: the header at the chunk-aligned start and the
/// block at the header rounded up to its alignment; or, from a chunk's alignment up, the block
/// one chunk past its header on a boundary of its alignment (the lead before the header is
/// what reaching that boundary costs). `None` past [`MAX_ALIGN_SERVED_BYTES`] or on overflow.
fn huge_geometry(layout: Layout, page_bytes: usize) -> Option<HugeGeometry> {
    let align = layout.align().max(MAX_ALIGN_BYTES);
    if align > MAX_ALIGN_SERVED_BYTES {
        return None;
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
    })
}

impl<P: PageSource> Slab<P> {
    /// Maps a huge block.
    pub(crate) fn alloc_huge(
        &self,
        layout: Layout,
    ) -> Result<(NonNull<u8>, usize, bool), AllocError> {
        let owner_id = self.owner_id();
        let Some(at) = huge_geometry(layout, self.pages.page_size()) else {
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
        // SAFETY: a fresh, chunk-aligned mapping of `map_bytes` ≥ the header's size.
        unsafe {
            huge.write(Huge {
                head: ChunkHead {
                    magic: HUGE_MAGIC,
                    owner_id,
                    small_tag: 0,
                },
                map_bytes,
                offset_bytes: offset,
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
            })
        };
        let usable = map_bytes - offset;
        {
            let mut chunks = self.chunks.lock();
            crate::chunk_map::insert(huge as usize);
            // SAFETY: the header was just written; the chunk lock is held.
            unsafe { chunks.huge.push(huge) };
            chunks.huge.mapped_bytes += map_bytes;
            chunks.huge.usable_bytes += usable;
            self.live.grow(usable);
        }
        // SAFETY: `offset < map_bytes`, inside the mapping.
        let block = unsafe { NonNull::new_unchecked(raw.as_ptr().add(offset)) };
        Ok((block, usable, zeroed))
    }

    /// Unmaps a huge block.
    ///
    /// # Safety
    /// `huge` is the live header `locate` found for the block being freed.
    pub(crate) unsafe fn free_huge(&self, huge: *mut Huge) {
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
        // SAFETY: the whole mapping made by `alloc_huge`; its only block is dead.
        unsafe {
            self.pages
                .unmap(NonNull::new_unchecked(huge.cast()), map_bytes)
        };
    }

    /// Resizes a huge block in place to at least `new_size` bytes: shrinking unmaps whole
    /// pages at the tail; growing asks the source to extend the mapping (`brk`-like sources
    /// can, `mmap` cannot). Returns the new usable length, or `None`.
    ///
    /// # Safety
    /// `huge` is the live header of a block the caller owns.
    pub(crate) unsafe fn resize_huge(&self, huge: *mut Huge, new_size: usize) -> Option<usize> {
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
        huge_geometry(Layout::from_size_align(size, align).unwrap(), 4096)
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
    fn alignments_past_the_limit_are_refused() {
        assert_eq!(geometry(100, MAX_ALIGN_SERVED_BYTES * 2), None);
        assert_eq!(geometry(100, 1 << 62), None);
    }
}
