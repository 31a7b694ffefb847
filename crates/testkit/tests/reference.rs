//! The suite passes a correct allocator: the page-run reference, alone and through the core
//! adapters (so `Counting`, `Locked` and the zero-size handling are covered too).

use heapkit_core::{Counting, Locked};
use heapkit_pages::{BufferPages, MmapPages};
use heapkit_testkit::{test_pages, PageRunAllocator, Suite};

#[test]
fn reference_over_a_buffer_conforms() {
    Suite::new("page-run/buffer")
        .run(|| Counting::new(PageRunAllocator::new(test_pages(32 << 20))));
}

#[test]
#[cfg_attr(miri, ignore = "mmap is not available under Miri")]
fn reference_over_mmap_conforms() {
    Suite::new("page-run/mmap").run(|| Counting::new(PageRunAllocator::new(MmapPages::new())));
}

#[test]
fn reference_conforms_under_threads() {
    Suite::new("page-run/locked")
        .run_threads(|| Counting::new(Locked::new(PageRunAllocator::new(test_pages(256 << 20)))));
}

#[test]
fn reference_survives_out_of_memory() {
    Suite::new("page-run/oom").run_out_of_memory(|| test_pages(64 << 20), PageRunAllocator::new);
}

#[test]
fn reference_over_a_borrowed_buffer_conforms() {
    let mut buffer = vec![0u8; 16 << 20];
    let buffer_ptr = buffer.as_mut_ptr();
    let len = buffer.len();
    Suite::new("page-run/borrowed").cases(32).run(|| {
        // SAFETY: each case's allocator is dropped before the next is made, so one source at a
        // time borrows the buffer, which outlives the suite run.
        let slice = unsafe { std::slice::from_raw_parts_mut(buffer_ptr, len) };
        Counting::new(PageRunAllocator::new(BufferPages::new(slice)))
    });
    drop(buffer);
}
