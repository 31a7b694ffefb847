//! C's `malloc` path through the facade: every size the thread cache's direct table covers
//! (`1..=1024`) has one cached class, so once a miss has refilled the size's bin, a request
//! of the size hits the table. In the hardened build too, whose class lookup adds the
//! canary's 8 bytes to every request: the table's 16-byte steps are shifted by them
//! (`BatchAllocator::CLASS_SIZE_OFFSET_BYTES`), so no step is split between two classes.
//! Its own test binary: the primary word's claim lasts for the process.

use heapkit::c_library::CLibraryEntry as _;
use heapkit::core::UnsizedAllocator;
use heapkit::HeapKit;
use std::ptr::NonNull;

static HEAP: HeapKit = HeapKit::new();

#[test]
#[cfg_attr(miri, ignore = "maps 2 MiB chunks: too slow under Miri")]
fn every_size_of_the_direct_table_hits_after_a_miss() {
    for size in 1..=1024 {
        // The miss path refills the size's bin; a hit can still find it empty again (the
        // hardened build's frees go to its quarantine, not the bin), so a few rounds. A size
        // whose entry is the uncached bin never hits: that bin is always empty.
        let mut blocks = Vec::new();
        let mut hit = false;
        for _ in 0..4 {
            blocks.push(HEAP.allocate_small_primary_slow(size));
            // SAFETY: HEAP is the only heap of this test binary, so the only one that claims
            // the primary word (the slow path above claimed it).
            let block = unsafe { HEAP.allocate_cached_small_primary(size) };
            if !block.is_null() {
                blocks.push(block);
                hit = true;
                break;
            }
        }
        assert!(
            hit,
            "size {size}: the direct table names no cached class for it"
        );
        for block in blocks {
            let block = NonNull::new(block).expect("out of memory");
            // SAFETY: a live block of HEAP, freed once below.
            assert!(unsafe { HEAP.usable_size(block) } >= size, "size {size}");
            // SAFETY: as above; the primary word is HEAP's.
            unsafe { HEAP.deallocate_unsized_primary(block) };
        }
    }
}
