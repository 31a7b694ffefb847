//! The `hardened` feature's quarantine of freed huge blocks (and, in that build, every block
//! above the small classes is huge: `large.rs`). A freed block is scrubbed (zeroed, or its
//! pages dropped), made inaccessible (`PageSource::protect`: a write or read after free faults)
//! and put into a random entry of a small array; the block it displaces, or the oldest ones
//! when the array holds too many bytes, go on, still inaccessible, to the cache of guarded
//! mappings (`huge_cache.rs`), which a later block of a fitting size reuses. So "free, then
//! allocate the same size" does not get the same address back, and when a block's address
//! comes back is not predictable (GrapheneOS hardened_malloc keeps large allocations in a
//! quarantine of the same kind).
//!
//! ```text
//!   free(p) ─► scrub p ─► protect p ─► entries [ a | p | c | … ] ─► displaced: huge_cache.rs
//!                                        random entry ▲ swap
//! ```
//!
//! The entries live under the chunk lock (`HugeList`); the syscalls happen outside it.

use crate::heap::Slab;
use crate::huge::Huge;
use core::ptr::{self, addr_of, NonNull};
use heapkit_core::PageSource;

/// Freed blocks up to this many bytes are zeroed with a `memset`: their pages stay resident,
/// and the next block made from them (after the quarantine, through the retained source, as in
/// the normal build) reuses them without faults. Larger ones have their pages dropped
/// (`PageSource::purge`, `MADV_DONTNEED`): a `memset` would fault in every page the program
/// never touched. Measured here (docs/security.md): zeroing 256 KiB took 17 µs where dropping
/// and faulting the pages back took 709 µs; 16 MiB, 11 ms against 73 ms.
pub(crate) const SCRUB_ZERO_MAX_BYTES: usize = 64 << 20;

/// Entries at most.
const ENTRIES: usize = 16;
/// Mapped bytes the entries may hold together (a block larger than this alone is not kept):
/// what the quarantine may add to the resident memory, since its blocks stay resident, zeroed.
pub(crate) const MAX_BYTES: usize = 8 << 20;

const _: () = assert!(ENTRIES.is_power_of_two());

/// The quarantine: `ENTRIES` headers of freed huge blocks (null when empty).
pub(crate) struct HugeQuarantine {
    entries: [*mut Huge; ENTRIES],
    /// The mapped bytes of the blocks held.
    pub bytes: usize,
    /// Blocks held.
    pub count: usize,
    /// Frees so far: mixed with the process key into each free's random entry.
    draws: usize,
}

impl HugeQuarantine {
    pub(crate) const fn new() -> Self {
        HugeQuarantine {
            entries: [ptr::null_mut(); ENTRIES],
            bytes: 0,
            count: 0,
            draws: 0,
        }
    }

    /// Puts `huge` (freed, scrubbed and protected, `map_bytes` long) into a random entry and
    /// returns the block it displaced (null when the entry was empty). A block larger than the
    /// whole quarantine is returned at once. The caller then calls [`evict_excess`] until it
    /// returns null, and releases each block returned.
    ///
    /// [`evict_excess`]: Self::evict_excess
    pub(crate) fn exchange(&mut self, huge: *mut Huge, map_bytes: usize) -> *mut Huge {
        if !Self::takes(map_bytes) {
            return huge;
        }
        self.draws = self.draws.wrapping_add(1);
        let draw = heapkit_core::secure::mix(self.draws ^ heapkit_core::secure::key());
        let index = draw & (ENTRIES - 1);
        let displaced = core::mem::replace(&mut self.entries[index], huge);
        self.bytes += map_bytes;
        self.count += 1;
        if !displaced.is_null() {
            self.forget(displaced);
        }
        displaced
    }

    /// Whether a block mapping `map_bytes` goes into the quarantine (larger ones go back to the
    /// source at once).
    pub(crate) const fn takes(map_bytes: usize) -> bool {
        map_bytes <= MAX_BYTES
    }

    /// Takes one block out while the quarantine holds more than its bytes (null when it no
    /// longer does).
    pub(crate) fn evict_excess(&mut self) -> *mut Huge {
        if self.bytes <= MAX_BYTES {
            return ptr::null_mut();
        }
        self.take_any()
    }

    /// Takes any block out (null when empty): for trimming and dropping.
    pub(crate) fn take_any(&mut self) -> *mut Huge {
        let start = heapkit_core::secure::mix(self.draws ^ heapkit_core::secure::key());
        for step in 0..ENTRIES {
            let index = (start + step) & (ENTRIES - 1);
            let huge = core::mem::replace(&mut self.entries[index], ptr::null_mut());
            if !huge.is_null() {
                self.forget(huge);
                return huge;
            }
        }
        ptr::null_mut()
    }

    /// Accounts for `huge` leaving.
    fn forget(&mut self, huge: *mut Huge) {
        // SAFETY: a quarantined block's header page stays mapped and readable (only the pages
        // after it are protected), and nothing changes it while it is quarantined.
        let map_bytes = unsafe { Huge::map_bytes(huge) };
        self.bytes -= map_bytes;
        self.count -= 1;
    }
}

impl<P: PageSource> Slab<P> {
    /// Scrubs a dead, unlinked huge block, protects everything after its header, and puts it
    /// into the quarantine; gives back to the source the blocks that leave it.
    ///
    /// # Safety
    /// `huge` heads a mapping made by `alloc_huge` whose block is dead and unlinked.
    pub(crate) unsafe fn quarantine_huge(&self, huge: *mut Huge) {
        let page_bytes = self.pages.page_size();
        // SAFETY: forwarded from the caller; nobody else reads or writes the header now.
        let (map_bytes, offset, guard) = unsafe {
            (
                Huge::map_bytes(huge),
                addr_of!((*huge).offset_bytes).read(),
                addr_of!((*huge).guard_bytes).read(),
            )
        };
        let base = huge.cast::<u8>();
        let first_page = offset & !(page_bytes - 1);
        let scrub_bytes = map_bytes - guard - first_page;
        // SAFETY: the block's pages (from its first page to the tail guard) are inside the
        // mapping, page-aligned, and dead.
        unsafe {
            let pages = base.add(first_page);
            if scrub_bytes <= SCRUB_ZERO_MAX_BYTES {
                ptr::write_bytes(pages, 0, scrub_bytes);
            } else {
                self.pages.purge(NonNull::new_unchecked(pages), scrub_bytes);
            }
        }
        let header_end = crate::huge::header_end(page_bytes);
        if guard > 0 && HugeQuarantine::takes(map_bytes) {
            // SAFETY: page-aligned, inside the mapping, nothing of it in use (the block is dead;
            // the header page stays readable for the quarantine's bookkeeping).
            let _ = unsafe {
                self.pages.protect(
                    NonNull::new_unchecked(base.add(header_end)),
                    map_bytes - header_end,
                    false,
                )
            };
        }
        let mut leaving = self.chunks.lock().huge.quarantine.exchange(huge, map_bytes);
        while !leaving.is_null() {
            // SAFETY: a block out of the quarantine: dead, unlinked, made by `alloc_huge`,
            // scrubbed, and protected above when the quarantine took it.
            unsafe { self.retire_huge(leaving) };
            leaving = self.chunks.lock().huge.quarantine.evict_excess();
        }
    }

    /// Gives every quarantined huge block, and every cached mapping, back to the source
    /// (`trim`, `Drop`, a retry after the source ran out of memory).
    pub(crate) fn empty_huge_quarantine(&self) {
        self.unmap_huge_while(|held| held.quarantine.take_any());
        self.unmap_huge_while(|held| held.cache.take_any());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::chunk::ChunkHead;
    use std::boxed::Box;
    use std::vec::Vec;

    pub(crate) fn header(map_bytes: usize) -> *mut Huge {
        Box::into_raw(Box::new(Huge {
            head: ChunkHead {
                magic: 0,
                owner_id: 0,
                small_tag: 0,
            },
            map_bytes,
            offset_bytes: 0,
            guard_bytes: 0,
            clean_from_bytes: 0,
            family: crate::canary::Family::Malloc,
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
        }))
    }

    #[test]
    fn a_freed_block_is_not_handed_back_at_once_and_bytes_stay_bounded() {
        let mut q = HugeQuarantine::new();
        let mut all = Vec::new();
        let mut returned = 0;
        for _ in 0..100 {
            let h = header(8 << 20);
            all.push(h);
            let displaced = q.exchange(h, 8 << 20);
            assert_ne!(displaced, h, "the block just freed stays in");
            returned += usize::from(!displaced.is_null());
            while !q.evict_excess().is_null() {
                returned += 1;
            }
            assert!(q.bytes <= MAX_BYTES);
            assert_eq!(q.bytes, q.count * (8 << 20));
        }
        assert_eq!(returned + q.count, 100);
        while !q.take_any().is_null() {}
        assert_eq!((q.count, q.bytes), (0, 0));
        for h in all {
            // SAFETY: made by `header` above, freed once.
            drop(unsafe { Box::from_raw(h) });
        }
    }

    #[test]
    fn a_block_larger_than_the_quarantine_is_returned_at_once() {
        let mut q = HugeQuarantine::new();
        let h = header(MAX_BYTES + 4096);
        assert_eq!(q.exchange(h, MAX_BYTES + 4096), h);
        assert_eq!(q.count, 0);
        // SAFETY: made by `header` above.
        drop(unsafe { Box::from_raw(h) });
    }
}
