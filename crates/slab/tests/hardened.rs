//! The `hardened` build's huge blocks: the cache of guarded mappings (`huge_cache.rs`) and
//! the allocation family kept in a huge block's header (`huge_family.rs`).
#![cfg(feature = "hardened")]

use core::alloc::Layout;
use heapkit_core::{Allocator, Introspect};
use heapkit_slab::Slab;

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

/// `hardened`: a huge block's mapping comes back from the quarantine into the cache of guarded
/// mappings and serves a later block of a fitting size; every block handed out reads as zero,
/// and the heap stays consistent (the cache's bytes count as mapped, trim gives them back).
#[test]
fn hardened_reuses_guarded_mappings_zeroed_for_fitting_sizes() {
    let s = Slab::new(heapkit_pages::Retained::new(heapkit_pages::MmapPages::new()));
    for round in 0..200usize {
        // Sizes that wander within a factor of 1.5, unaligned to pages, as growing buffers do.
        let l = layout((40 << 10) + (round * 7919) % (20 << 10), 16);
        let b = s.allocate(l).unwrap().cast::<u8>();
        // SAFETY: a live block of `l.size()` bytes, filled and freed once.
        unsafe {
            let bytes = core::slice::from_raw_parts(b.as_ptr(), l.size());
            assert!(bytes.iter().all(|&x| x == 0), "round {round}");
            b.as_ptr().write_bytes(0xA5, l.size());
            s.deallocate(b, l);
        }
        if round % 50 == 0 {
            s.check().unwrap();
        }
    }
    // Each map call is a new guarded mapping (a map and two `mprotect`s); a cached one costs one.
    let retained = s.pages().retained();
    let maps = retained.reused_maps + retained.fresh_maps;
    assert!(maps < 50, "{maps} of 200 blocks needed a new mapping");
    s.check().unwrap();
    s.trim();
    assert_eq!(s.stats().unwrap().mapped_bytes, 0, "trim empties the cache");
}

/// `hardened`: a huge block records the family that allocated it; small blocks keep theirs in
/// the canary, so the huge accessors leave them alone.
#[test]
fn hardened_huge_blocks_keep_their_family_in_the_header() {
    use heapkit_slab::Family;
    let s = Slab::new(heapkit_pages::MmapPages::new());
    let l = layout(256 << 10, 16);
    let b = s.allocate(l).unwrap().cast::<u8>();
    let small = s.allocate(layout(64, 16)).unwrap().cast::<u8>();
    // SAFETY: live blocks of this slab, owned here, each freed once.
    unsafe {
        assert_eq!(s.huge_family(b), Some(Family::Malloc));
        s.set_huge_family(b, Family::NewArray);
        assert_eq!(s.huge_family(b), Some(Family::NewArray));
        s.set_huge_family(b, Family::Malloc);
        s.check_huge_free(b);
        assert_eq!(s.huge_family(small), None);
        s.set_huge_family(small, Family::New);
        s.deallocate(small, layout(64, 16));
        s.deallocate(b, l);
    }
    s.check().unwrap();
}
