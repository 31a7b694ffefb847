//! The `hardened` feature's cache of guarded mappings. A huge block that leaves the quarantine
//! (`huge_quarantine.rs`) is still scrubbed and inaccessible from its front guard to its end;
//! instead of lifting that protection and giving the mapping back to the source (one
//! `mprotect` and an `munmap` or a retained run), it is kept here as it is. The next huge
//! allocation that fits one of these mappings takes it and makes only its block's pages
//! accessible again: one `mprotect`, where a new mapping cost a map and two (its guards), and
//! no page faults, since the scrubbed pages stay resident.
//!
//! ```text
//!   quarantine ──leaves──► cache [ m | m | · | m ]  (all PROT_NONE past the header page)
//!                                     │ fits: block pages made accessible, right-aligned
//!                                     ▼            against the same tail guard
//!   ┌──────────┬───── guard ✗ (front, grows) ─────┬──── block ────┬──────────┐
//!   │ Huge hdr │ (old block pages, zeroed, ✗)    │               │ guard ✗  │
//!   └──────────┴─────────────────────────────────┴───────────────┴──────────┘
//! ```
//!
//! What `docs/security.md` claims stays true: the block is right-aligned against a guard, a
//! guard (at least a page) is before it, a freed block faults while quarantined — and now also
//! while cached — and it is zero when handed out (the cache takes a mapping only where it is
//! known to read as zero: `Huge::clean_from_bytes`). The mapping reused is not predictable
//! from the free that made it: it has come through the quarantine's random choice.
//!
//! A mapping fits a request when the request's block, right-aligned against the mapping's
//! tail guard, leaves a whole guard page after the header and is at most twice the
//! mapping the block needs (`WASTE_SHIFT`; the front guard grows by the difference,
//! inaccessible but resident). The cache holds at most [`ENTRIES`] mappings and [`MAX_BYTES`]; past that the oldest entry is
//! unprotected and goes back to the source.

use crate::geometry::CHUNK_BYTES;
use crate::heap::Slab;
use crate::huge::{guarded_geometry, header_end, Huge, HugeGeometry, HugeList};
use core::alloc::Layout;
use core::ptr::{self, addr_of, NonNull};
use heapkit_core::{PageSource, MAX_ALIGN_BYTES};

/// Mappings kept at most.
const ENTRIES: usize = 16;
/// Mapped bytes the cache may hold together: what it may add to the resident set beyond the
/// quarantine (its mappings stay resident, zeroed, and the rest of the heap cannot reuse their
/// pages). No larger than the quarantine's bound, so that every mapping offered was protected
/// by it (a larger block skips the quarantine). On the README's python3 script (perf stat,
/// page faults and `mprotect`+`mmap`+`munmap` calls; without the cache 34,195 and 4,296):
/// 2 MiB and up to twice the need 34,405 and 3,753; 4 MiB and up to 1.5× 34,416 and 3,500;
/// 8 MiB and up to twice 35,897 and 3,212 (peak RSS +5%). Under `stress transfer 16 200000
/// 120` (a few blocks of 160 KiB-10 MiB among small ones) 4 MiB raised the peak RSS by about
/// as much as the cache holds, against a 30 MiB heap: 2 MiB keeps most of the gain.
const MAX_BYTES: usize = 2 << 20;

/// A mapping serves a block that needs `need` bytes of mapping when it is at most
/// `need + (need >> WASTE_SHIFT)` long: up to twice as long. Replaying the large blocks of the
/// README's python3 script (434 of them, 18-700 KiB, mostly growing strings and tables)
/// through the quarantine and this cache, a mapping up to a quarter longer was reused for 194
/// of them, up to half for 273, up to twice for 356 (four times: 370).
const WASTE_SHIFT: u32 = 0;

const _: () = assert!(MAX_BYTES <= crate::huge_quarantine::MAX_BYTES);

/// The cache: headers of scrubbed, inaccessible huge mappings (null when empty).
pub(crate) struct HugeCache {
    entries: [*mut Huge; ENTRIES],
    /// When each entry came in (a count of puts), for evicting the oldest.
    ages: [usize; ENTRIES],
    puts: usize,
    /// The mapped bytes held.
    pub bytes: usize,
    /// Mappings held.
    pub count: usize,
}

/// Where a block of `size` bytes at `align` (at most a page) goes in a cached mapping of
/// `map_bytes` that reads as zero from `clean_from` to its tail guard, or `None` when it does
/// not fit (too small, too wasteful, not clean there, or too far from the header for
/// `block_header` to find it). `need_map_bytes` is what a new mapping for it would take.
fn fit(
    map_bytes: usize,
    clean_from: usize,
    size: usize,
    align: usize,
    page_bytes: usize,
    need_map_bytes: usize,
) -> Option<HugeGeometry> {
    if map_bytes < need_map_bytes || map_bytes - need_map_bytes > need_map_bytes >> WASTE_SHIFT {
        return None;
    }
    let tail_end = map_bytes - page_bytes;
    let offset = tail_end.checked_sub(size)? & !(align - 1);
    let first_page = offset & !(page_bytes - 1);
    let fits = first_page >= clean_from
        && first_page >= header_end(page_bytes) + page_bytes
        && offset <= CHUNK_BYTES;
    fits.then_some(HugeGeometry {
        offset_bytes: offset,
        map_bytes,
        lead_bytes: 0,
        map_align_bytes: CHUNK_BYTES,
        guard_bytes: page_bytes,
    })
}

impl HugeCache {
    pub(crate) const fn new() -> Self {
        HugeCache {
            entries: [ptr::null_mut(); ENTRIES],
            ages: [0; ENTRIES],
            puts: 0,
            bytes: 0,
            count: 0,
        }
    }

    /// Keeps `huge` (out of the quarantine: scrubbed, inaccessible past its header page) and
    /// returns a mapping to give back to the source: null, the oldest entry when the cache
    /// was full, or `huge` itself when it is larger than the whole cache. The caller then
    /// calls [`evict_excess`](Self::evict_excess) until it returns null.
    pub(crate) fn put(&mut self, huge: *mut Huge) -> *mut Huge {
        // SAFETY: a cached or quarantined header page stays mapped and readable.
        let map_bytes = unsafe { Huge::map_bytes(huge) };
        if map_bytes > MAX_BYTES {
            return huge;
        }
        let index = match self.entries.iter().position(|e| e.is_null()) {
            Some(free) => free,
            None => self.oldest(),
        };
        let evicted = self.remove(index);
        self.puts = self.puts.wrapping_add(1);
        self.entries[index] = huge;
        self.ages[index] = self.puts;
        self.bytes += map_bytes;
        self.count += 1;
        evicted
    }

    /// Takes the oldest mapping out while the cache holds more than its bytes (null when it
    /// no longer does).
    pub(crate) fn evict_excess(&mut self) -> *mut Huge {
        if self.bytes <= MAX_BYTES {
            return ptr::null_mut();
        }
        let index = self.oldest();
        self.remove(index)
    }

    /// Takes any mapping out (null when empty): for trimming, dropping, and a retry after the
    /// source ran out of memory.
    pub(crate) fn take_any(&mut self) -> *mut Huge {
        match self.entries.iter().position(|e| !e.is_null()) {
            Some(index) => self.remove(index),
            None => ptr::null_mut(),
        }
    }

    /// Takes the smallest mapping a block of `size` at `align` fits (see [`fit`]), with the
    /// block's place in it; `None` when none does.
    fn take_fitting(
        &mut self,
        size: usize,
        align: usize,
        page_bytes: usize,
        need_map_bytes: usize,
    ) -> Option<(*mut Huge, HugeGeometry)> {
        let mut best: Option<(usize, HugeGeometry)> = None;
        for (index, &huge) in self.entries.iter().enumerate() {
            if huge.is_null() {
                continue;
            }
            // SAFETY: a cached header page stays mapped and readable; nothing changes it.
            let (map_bytes, clean_from) = unsafe {
                (
                    Huge::map_bytes(huge),
                    addr_of!((*huge).clean_from_bytes).read(),
                )
            };
            let Some(at) = fit(
                map_bytes,
                clean_from,
                size,
                align,
                page_bytes,
                need_map_bytes,
            ) else {
                continue;
            };
            if best.is_none_or(|(_, b)| at.map_bytes < b.map_bytes) {
                best = Some((index, at));
            }
        }
        let (index, at) = best?;
        Some((self.remove(index), at))
    }

    /// The index of the entry that came in first (0 when empty).
    fn oldest(&self) -> usize {
        // Ages wrap with the count of puts: compare their distance from the newest.
        (0..ENTRIES)
            .filter(|&index| !self.entries[index].is_null())
            .max_by_key(|&index| self.puts.wrapping_sub(self.ages[index]))
            .unwrap_or(0)
    }

    /// Empties entry `index` and returns what it held (null if nothing).
    fn remove(&mut self, index: usize) -> *mut Huge {
        let huge = core::mem::replace(&mut self.entries[index], ptr::null_mut());
        if !huge.is_null() {
            // SAFETY: as in `put`.
            self.bytes -= unsafe { Huge::map_bytes(huge) };
            self.count -= 1;
        }
        huge
    }
}

impl<P: PageSource> Slab<P> {
    /// Serves `layout` from a cached guarded mapping if one fits: makes the block's pages
    /// accessible and installs the header. `None` when none fits (or the pages could not be
    /// made accessible: the mapping then goes back to the source).
    pub(crate) fn alloc_huge_cached(&self, layout: Layout) -> Option<(NonNull<u8>, usize, bool)> {
        let page_bytes = self.pages.page_size();
        let align = layout.align().max(MAX_ALIGN_BYTES);
        if align > page_bytes {
            return None;
        }
        let need = guarded_geometry(layout.size(), align, page_bytes)?.map_bytes;
        let (huge, at) = {
            let mut chunks = self.chunks.lock();
            if chunks.huge.cache.count == 0 {
                return None;
            }
            chunks
                .huge
                .cache
                .take_fitting(layout.size(), align, page_bytes, need)?
        };
        let first_page = at.offset_bytes & !(page_bytes - 1);
        // SAFETY: page-aligned, inside the mapping (the block's pages up to the tail guard);
        // the mapping is ours, taken off the cache.
        let opened = unsafe {
            self.pages.protect(
                NonNull::new_unchecked(huge.cast::<u8>().add(first_page)),
                at.map_bytes - at.guard_bytes - first_page,
                true,
            )
        };
        if opened.is_err() {
            // SAFETY: a dead mapping made by `alloc_huge`, no longer cached.
            unsafe { self.unmap_huge(huge) };
            return None;
        }
        // SAFETY: as above; the clean range only moves with a fresh mapping.
        let clean_from = unsafe { addr_of!((*huge).clean_from_bytes).read() };
        // SAFETY: a chunk-aligned mapping of `at.map_bytes`, ours and unlinked.
        let (block, usable) = unsafe { self.install_huge(huge, at, clean_from) };
        // `fit` took it only where it reads as zero.
        Some((block, usable, true))
    }

    /// Keeps a mapping that leaves the quarantine in the cache, and gives back to the source
    /// what the cache lets go.
    ///
    /// # Safety
    /// `huge` heads a mapping made by `alloc_huge`, out of the quarantine: dead, unlinked,
    /// scrubbed, and inaccessible past its header page when it is at most the quarantine's
    /// bound.
    pub(crate) unsafe fn retire_huge(&self, huge: *mut Huge) {
        let leaving = self.chunks.lock().huge.cache.put(huge);
        if !leaving.is_null() {
            // SAFETY: a dead, unlinked mapping made by `alloc_huge`, out of the cache.
            unsafe { self.unmap_huge(leaving) };
        }
        self.unmap_huge_while(|held| held.cache.evict_excess());
    }

    /// Gives back to the source every mapping `take` takes out of the huge list's holdings
    /// (under the chunk lock, one at a time, until it returns null); the unmapping happens
    /// outside the lock.
    pub(crate) fn unmap_huge_while(&self, mut take: impl FnMut(&mut HugeList) -> *mut Huge) {
        loop {
            let huge = take(&mut self.chunks.lock().huge);
            if huge.is_null() {
                return;
            }
            // SAFETY: `take` hands out only dead, unlinked mappings made by `alloc_huge` that
            // it no longer holds (the quarantine's and the cache's).
            unsafe { self.unmap_huge(huge) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    fn need(size: usize) -> usize {
        guarded_geometry(size, 16, PAGE).unwrap().map_bytes
    }

    #[test]
    fn a_block_fits_a_mapping_made_for_its_size_right_aligned() {
        for size in [PAGE, 20 << 10, (256 << 10) + 1, 3 << 20] {
            let made = guarded_geometry(size, 16, PAGE).unwrap();
            let at = fit(made.map_bytes, 2 * PAGE, size, 16, PAGE, need(size)).unwrap();
            assert_eq!(at.offset_bytes, made.offset_bytes, "{size}");
            assert!(at.map_bytes - at.guard_bytes - at.offset_bytes - size < 16);
        }
    }

    #[test]
    fn a_smaller_block_takes_a_mapping_at_most_twice_its_need_keeping_a_front_guard() {
        let size = 200 << 10;
        let map = need(395 << 10);
        let at = fit(map, 2 * PAGE, size, 16, PAGE, need(size)).unwrap();
        assert_eq!(at.offset_bytes + size, map - PAGE);
        assert!(at.offset_bytes >= 2 * PAGE);
        assert_eq!(
            fit(need(430 << 10), 2 * PAGE, size, 16, PAGE, need(size)),
            None
        );
        assert_eq!(
            fit(need(100 << 10), 2 * PAGE, size, 16, PAGE, need(size)),
            None
        );
    }

    #[test]
    fn a_block_is_placed_only_where_the_mapping_reads_as_zero() {
        let size = 200 << 10;
        let map = need(280 << 10);
        let first_page = (map - PAGE - size) & !(PAGE - 1);
        assert!(fit(map, first_page, size, 16, PAGE, need(size)).is_some());
        assert_eq!(
            fit(map, first_page + PAGE, size, 16, PAGE, need(size)),
            None
        );
    }

    #[test]
    fn put_evicts_the_oldest_when_full_and_bytes_stay_bounded() {
        use std::boxed::Box;
        use std::vec::Vec;
        let mut cache = HugeCache::new();
        let headers: Vec<*mut Huge> = (0..40)
            .map(|i| {
                let map_bytes = if i % 3 == 0 { 4 << 20 } else { 64 << 10 };
                crate::huge_quarantine::tests::header(map_bytes)
            })
            .collect();
        let mut out = Vec::new();
        for &h in &headers {
            let first = cache.put(h);
            if !first.is_null() {
                out.push(first);
            }
            loop {
                let e = cache.evict_excess();
                if e.is_null() {
                    break;
                }
                out.push(e);
            }
            assert!(cache.bytes <= MAX_BYTES && cache.count <= ENTRIES);
        }
        assert_eq!(out.len() + cache.count, headers.len());
        // The first ones went first.
        assert_eq!(out[0], headers[0]);
        while !cache.take_any().is_null() {}
        assert_eq!((cache.count, cache.bytes), (0, 0));
        for h in headers {
            // SAFETY: made by `header` above, each once.
            drop(unsafe { Box::from_raw(h) });
        }
    }
}
