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
