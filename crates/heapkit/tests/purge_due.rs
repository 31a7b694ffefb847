//! `HeapKit::purge_due`: the decay a background purger asks for reaches the retaining layer.

#![cfg(not(miri))] // maps with mmap

use core::alloc::Layout;
use heapkit::HeapKit;
use heapkit_core::{Allocator, Introspect};

#[test]
#[cfg_attr(
    feature = "hardened",
    ignore = "hardened holds a freed huge block in its quarantine before the retaining layer"
)]
fn purge_due_gives_back_a_freed_huge_block_with_no_further_call() {
    let heap = HeapKit::new();
    heap.set_purge_delay_ms(u64::MAX);
    heap.set_purge_threshold_bytes(1 << 30); // above the block: only the delay purges it
    let layout = Layout::from_size_align(16 << 20, 16).unwrap();
    let block = heap.allocate(layout).unwrap().cast::<u8>();
    // SAFETY: live, allocated above with this layout.
    unsafe { heap.deallocate(block, layout) };
    let retained = || heap.cache().backend().pages().retained();
    assert!(retained().dirty_bytes >= 16 << 20, "{:?}", retained());
    heap.purge_due();
    assert!(retained().dirty_bytes >= 16 << 20, "never: nothing is due");
    // A delay of 0: everything is due now (no clock edge to wait for); the purged runs are
    // then ten delays (0 ms) old, so they are unmapped too.
    heap.set_purge_delay_ms(0);
    heap.purge_due();
    let seen = retained();
    assert_eq!((seen.dirty_bytes, seen.runs), (0, 0), "{seen:?}");
    heap.check().unwrap();
}
