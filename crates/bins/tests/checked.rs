//! With the `checked` feature, a double free aborts the process with a clear message.
//! The test re-runs its own binary in a child process, which performs the double free.
#![cfg(all(feature = "checked", not(miri)))]

use core::alloc::Layout;
use heapkit_bins::Bins;
use heapkit_core::{Allocator, UnsizedAllocator};
use heapkit_pages::BufferPages;
use std::process::Command;

const CHILD_ENV: &str = "HEAPKIT_BINS_DOUBLE_FREE_CHILD";

#[test]
fn double_free_aborts_with_a_message() {
    if std::env::var_os(CHILD_ENV).is_some() {
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
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "double_free_aborts_with_a_message",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("heapkit-bins: double free at 0x"),
        "stderr was: {stderr}"
    );
}
