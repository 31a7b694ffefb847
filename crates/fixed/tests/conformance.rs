//! The heapkit conformance suite over the region's bump partition (the region's `Allocator`)
//! and over `StaticAllocator` in `Init`, where it must behave exactly like what it wraps.

use heapkit_core::PageSource;
use heapkit_fixed::{Prefault, Region, RegionLayout, StaticAllocator};
use heapkit_testkit::{test_pages, Suite};

/// Smaller under Miri, where every byte checked costs.
const PAGES_BYTES: usize = if cfg!(miri) { 1 << 20 } else { 8 << 20 };
/// The bump partition: most of the pages, leaving room for a pool beside it.
const BUMP_BYTES: usize = if cfg!(miri) { 768 << 10 } else { 6 << 20 };

fn bump_region<P: PageSource>(pages: P) -> Region<P> {
    let mut layout = RegionLayout::new();
    layout.pool::<u64>("beside", 1024);
    layout.bump("init", BUMP_BYTES);
    Region::new(layout, pages, Prefault::Lazy).unwrap()
}

#[test]
fn conformance_bump_partition() {
    Suite::new("fixed-bump")
        .fixed_capacity()
        .run(|| bump_region(test_pages(PAGES_BYTES)));
}

#[test]
fn conformance_static_allocator_in_init() {
    Suite::new("fixed-static-init")
        .fixed_capacity()
        .run(|| StaticAllocator::new(bump_region(test_pages(PAGES_BYTES))));
}

#[test]
#[cfg_attr(miri, ignore)] // threads at scale
fn threads_bump_partition_lock_free() {
    // The arena is lock-free (one atomic word), so the region is shared without `Locked`.
    Suite::new("fixed-bump")
        .fixed_capacity()
        .run_threads(|| bump_region(test_pages(PAGES_BYTES)));
}

// `Suite::run_out_of_memory` is not run: it expects an allocator that maps lazily and recovers
// when the page source heals, while a region maps everything in `Region::new` (a failing
// source is a `StartupError`, tested in tests/region.rs) and its bump partition is exhausted by
// capacity, not by the source. The capacity case is tested here instead.
#[test]
fn exhausted_bump_partition_keeps_live_blocks() {
    use core::alloc::Layout;
    use heapkit_core::{Allocator, Introspect};
    let region = bump_region(test_pages(PAGES_BYTES));
    let layout =
        Layout::from_size_align(if cfg!(miri) { 256 << 10 } else { 64 << 10 }, 16).unwrap();
    let mut blocks = Vec::new();
    while let Ok(block) = region.allocate(layout) {
        // SAFETY: a fresh block of `layout.size()` bytes.
        unsafe {
            block
                .cast::<u8>()
                .write_bytes(blocks.len() as u8, layout.size())
        };
        blocks.push(block);
        assert!(
            blocks.len() <= BUMP_BYTES / layout.size(),
            "allocated past the capacity"
        );
    }
    assert_eq!(blocks.len(), BUMP_BYTES / layout.size());
    region.check().unwrap();
    // SAFETY: the block is live.
    assert!(unsafe {
        region.grow(
            blocks[0].cast(),
            layout,
            Layout::from_size_align(1 << 20, 16).unwrap(),
        )
    }
    .is_err());
    for (i, block) in blocks.iter().enumerate() {
        let bytes =
            // SAFETY: live blocks of `layout.size()` bytes, filled above.
            unsafe { core::slice::from_raw_parts(block.cast::<u8>().as_ptr(), layout.size()) };
        // A slice comparison (one memcmp) rather than a per-byte loop: Miri interprets a loop
        // over 768 KiB one step at a time, for minutes.
        let expected = vec![i as u8; layout.size()];
        assert!(bytes == expected.as_slice(), "block {i} was overwritten");
    }
    for block in blocks.iter().rev() {
        // SAFETY: live blocks with `layout`.
        unsafe { region.deallocate(block.cast(), layout) };
    }
    assert_eq!(region.stats().unwrap().live_bytes, 0);
    assert!(
        region.allocate(layout).is_ok(),
        "freed capacity is reusable"
    );
}
