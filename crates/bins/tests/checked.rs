//! With the `checked` feature, a double free aborts the process with a clear message.
//! The test re-runs its own binary in a child process, which performs the double free.
#![cfg(all(feature = "checked", not(miri)))]

use core::alloc::Layout;
use heapkit_bins::Bins;
use heapkit_core::{Allocator, UnsizedAllocator};
use heapkit_pages::BufferPages;
use heapkit_testkit::child;

const CHILD_ENV: &str = "HEAPKIT_BINS_DOUBLE_FREE_CHILD";

#[test]
fn double_free_aborts_with_a_message() {
    if child::is_child(CHILD_ENV) {
        let heap = Bins::new(BufferPages::owned(1 << 20, 4096).unwrap());
        let layout = Layout::from_size_align(300, 8).unwrap();
        let a = heap.allocate(layout).unwrap().cast::<u8>();
        let _guard = heap.allocate(layout).unwrap();
        // SAFETY: deliberately wrong: the second free is the bug under test.
        unsafe {
            heap.deallocate_unsized(a);
            heap.deallocate_unsized(a);
        }
        unreachable!("the double free must abort");
    }
    child::assert_aborts_with(
        "double_free_aborts_with_a_message",
        CHILD_ENV,
        "heapkit-bins: double free at 0x",
    );
}
