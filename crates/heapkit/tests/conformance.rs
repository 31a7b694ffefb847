//! The workspace conformance suite for the composed allocator: directly, through its
//! `GlobalAlloc` implementation, under threads, out of memory, and over a buffer (Miri).

use heapkit::core::{Counting, FromGlobal};
use heapkit::pages::BufferPages;
use heapkit::slab::Slab;
use heapkit::tcache::ThreadCache;
use heapkit::HeapKit;
use heapkit_testkit::{test_pages, Suite};

// `FromGlobal` drives an allocator through its `GlobalAlloc` methods only (`alloc`,
// `alloc_zeroed`, `dealloc`, `realloc`), so the suite checks the path a `#[global_allocator]`
// takes.

#[test]
#[cfg_attr(miri, ignore)] // mmap
fn conformance() {
    Suite::new("heapkit").run(|| Counting::new(HeapKit::new()));
}

#[test]
#[cfg_attr(miri, ignore)] // mmap
fn conformance_through_global_alloc() {
    Suite::new("heapkit-global-alloc").run(|| Counting::new(FromGlobal(HeapKit::new())));
}

#[test]
#[cfg_attr(miri, ignore)] // mmap
fn threads() {
    Suite::new("heapkit").run_threads(|| Counting::new(HeapKit::new()));
}

/// The buffer the buffer tests give the allocator. The hardened build needs more of it for the
/// same blocks: every large block (above 16 KiB) is a chunk-aligned mapping of its own between
/// guard pages (at least 2 MiB of the buffer, where the other builds pack large blocks into
/// a chunk's slots), freed ones wait in the quarantine, and a chunk has three header slots.
const fn buffer_bytes(normal_bytes: usize) -> usize {
    if cfg!(feature = "hardened") {
        normal_bytes * 8
    } else {
        normal_bytes
    }
}

#[test]
fn conformance_over_a_buffer() {
    Suite::new("tcache-over-slab-buffer").run(|| {
        Counting::new(ThreadCache::new(Slab::new(test_pages(buffer_bytes(
            8 << 20,
        )))))
    });
}

#[test]
fn out_of_memory() {
    Suite::new("tcache-over-slab").run_out_of_memory(
        || test_pages(8 << 20),
        |pages| Counting::new(ThreadCache::new(Slab::new(pages))),
    );
}

#[test]
fn threads_over_a_buffer() {
    Suite::new("tcache-over-slab-buffer").run_threads(|| {
        Counting::new(ThreadCache::new(Slab::<BufferPages<'static>>::new(
            test_pages(buffer_bytes(32 << 20)),
        )))
    });
}

#[test]
#[cfg_attr(miri, ignore)] // mmap: a 1 GiB alignment needs the address space
fn large_alignments() {
    Suite::new("heapkit").run_large_alignments(|| Counting::new(HeapKit::new()));
    Suite::new("heapkit-global-alloc")
        .run_large_alignments(|| Counting::new(FromGlobal(HeapKit::new())));
}
