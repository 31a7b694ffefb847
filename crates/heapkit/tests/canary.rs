//! The hardened build's canaries (heapkit-slab's `canary.rs`) through the facade: a usable size
//! leaves the canary out, and `check()` finds an overwritten one.
#![cfg(feature = "hardened")]

use heapkit::core::{Allocator, Introspect, UnsizedAllocator};
use heapkit::slab::{class_of_layout, class_usable_bytes, CANARY_BYTES, CLASS_BYTES};
use heapkit::HeapKit;
use std::alloc::Layout;

#[test]
#[cfg_attr(miri, ignore = "maps 2 MiB chunks: too slow under Miri")]
fn usable_sizes_leave_the_canary_out_and_check_finds_an_overwritten_one() {
    let heap = HeapKit::new();
    for size in [1, 8, 24, 100, 4096, 16_000] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let class = class_of_layout(size, 8).expect("a small size");
        let block = heap.allocate(layout).unwrap();
        let ptr = block.cast::<u8>();
        assert!(block.len() >= size, "{size}");
        assert_eq!(block.len(), class_usable_bytes(class), "{size}");
        assert_eq!(block.len() + CANARY_BYTES, CLASS_BYTES[class] as usize);
        // SAFETY: a live block of this heap.
        assert_eq!(unsafe { heap.usable_size(ptr) }, block.len(), "{size}");
        heap.check().unwrap();

        // One byte past the usable end: the canary's first byte, flipped and restored.
        // SAFETY: the canary lies inside the block's slot, which is mapped; restored below.
        let canary = unsafe { ptr.as_ptr().add(block.len()) };
        // SAFETY: as above.
        unsafe { canary.write(!canary.read()) };
        let error = heap.check().expect_err("an overwritten canary");
        assert!(format!("{error:?}").contains("canary"), "{error:?}");
        // SAFETY: as above.
        unsafe { canary.write(!canary.read()) };
        heap.check().unwrap();
        // SAFETY: allocated above with `layout`, freed once.
        unsafe { heap.deallocate(ptr, layout) };
    }
    // A request of the largest class size leaves no room for the canary: it is not small.
    assert!(class_of_layout(CLASS_BYTES[CLASS_BYTES.len() - 1] as usize, 8).is_none());
}

/// The access rights of the mapping that holds `addr`, from `/proc/self/maps` (`"rw-p"`).
fn protection_at(addr: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        (start..end)
            .contains(&addr)
            .then(|| fields.next().unwrap_or("").to_string())
    })
}

/// The first block of a slab has no block, and so no canary, before it: the byte before it is
/// a guard page (the previous slot's, the header slot's for the first slab of a chunk), so an
/// underflow of it faults at the write. `check()` asserts the same for every slab.
#[test]
#[cfg(target_os = "linux")]
#[cfg_attr(miri, ignore = "maps 2 MiB chunks and reads /proc")]
fn the_byte_before_a_slabs_first_block_is_a_guard_page() {
    const SLOT_BYTES: usize = 64 * 1024;
    let heap = HeapKit::new();
    let mut firsts = 0;
    for size in [8, 100, 1000, 4096] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let blocks: Vec<_> = (0..3 * SLOT_BYTES / size)
            .map(|_| heap.allocate(layout).unwrap().cast::<u8>())
            .collect();
        heap.check().unwrap();
        for block in blocks
            .iter()
            .filter(|b| b.as_ptr() as usize % SLOT_BYTES == 0)
        {
            let before = block.as_ptr() as usize - 1;
            assert_eq!(
                protection_at(before).as_deref().map(|p| &p[..3]),
                Some("---"),
                "the byte before the first block at {block:p} ({size} B)"
            );
            firsts += 1;
        }
        for block in blocks {
            // SAFETY: allocated above with `layout`, freed once.
            unsafe { heap.deallocate(block, layout) };
        }
    }
    assert!(firsts >= 4, "only {firsts} first blocks seen");
}
