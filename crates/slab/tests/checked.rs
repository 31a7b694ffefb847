//! With the `checked` feature a bad free aborts the process with a clear message on stderr.
//! Each case re-runs this test binary as a child that commits the bad free.
#![cfg(feature = "checked")]

use core::alloc::Layout;
use heapkit_core::Allocator;
use heapkit_slab::Slab;
use heapkit_testkit::child;

const CHILD_ENV: &str = "HEAPKIT_SLAB_CHECKED_CHILD";

#[test]
#[cfg_attr(miri, ignore)] // spawns a process
fn double_free_aborts_with_a_message() {
    if child::is_child(CHILD_ENV) {
        let slab = Slab::new(heapkit_testkit::test_pages(4 << 20));
        let layout = Layout::new::<u64>();
        let a = slab.allocate(layout).unwrap().cast::<u8>();
        let _b = slab.allocate(layout).unwrap();
        // SAFETY: the second free is the bad input under test; the process aborts there.
        unsafe {
            slab.deallocate(a, layout);
            slab.deallocate(a, layout);
        }
        unreachable!("the double free must abort");
    }
    child::assert_aborts_with(
        "double_free_aborts_with_a_message",
        CHILD_ENV,
        "heapkit-slab: double free of a small block at 0x",
    );
}

#[test]
#[cfg_attr(miri, ignore)] // spawns a process
fn foreign_pointer_aborts_with_a_message() {
    if child::is_child(CHILD_ENV) {
        let slab = Slab::new(heapkit_testkit::test_pages(4 << 20));
        let other = Slab::new(heapkit_testkit::test_pages(4 << 20));
        let layout = Layout::new::<u64>();
        let _own = slab.allocate(layout).unwrap();
        let foreign = other.allocate(layout).unwrap();
        // SAFETY: deliberately the wrong allocator; the process aborts there.
        unsafe { slab.deallocate(foreign.cast(), layout) };
        unreachable!("the foreign free must abort");
    }
    child::assert_aborts_with(
        "foreign_pointer_aborts_with_a_message",
        CHILD_ENV,
        "(foreign pointer) at 0x",
    );
}

/// The child's side of the huge double-free tests: a huge block of a slab over `pages`, freed
/// twice; the process must abort at the second free.
fn free_a_huge_block_twice<P: heapkit_core::PageSource>(pages: P) -> ! {
    let slab = Slab::new(pages);
    let layout = Layout::from_size_align(heapkit_slab::LARGE_MAX_BYTES + 1, 16).unwrap();
    let huge = slab.allocate(layout).unwrap().cast::<u8>();
    // SAFETY: the second free is the bad input under test; the process aborts there.
    unsafe {
        slab.deallocate(huge, layout);
        slab.deallocate(huge, layout);
    }
    unreachable!("the double free must abort");
}

/// Over a retaining page source (heapkit's default, `Retained<MmapPages>`) the first free of a
/// huge block keeps its mapping, with the header's magic word cleared: the second free finds no
/// magic and is reported as a pointer with no heapkit magic, without a fault (the README's "Bad
/// input" table). `secure` reports it from its chunk map first, with its own message.
#[test]
#[cfg(not(feature = "secure"))]
#[cfg_attr(miri, ignore)] // spawns a process
fn a_double_free_of_a_retained_huge_block_is_reported() {
    if child::is_child(CHILD_ENV) {
        free_a_huge_block_twice(heapkit_pages::Retained::new(heapkit_pages::MmapPages::new()));
    }
    child::assert_aborts_with(
        "a_double_free_of_a_retained_huge_block_is_reported",
        CHILD_ENV,
        "free of a pointer whose chunk has no heapkit magic (foreign pointer) at 0x",
    );
}

/// Only `secure` can judge a free of a huge block whose mapping is gone: its chunk map says no
/// slab holds the address, so the header is never read. Without it the read faults (see the
/// README's "Bad input").
#[test]
#[cfg(feature = "secure")]
#[cfg_attr(miri, ignore)] // spawns a process
fn secure_reports_a_double_free_of_a_huge_block() {
    if child::is_child(CHILD_ENV) {
        free_a_huge_block_twice(heapkit_pages::MmapPages::new());
    }
    child::assert_aborts_with(
        "secure_reports_a_double_free_of_a_huge_block",
        CHILD_ENV,
        "no chunk of any Slab holds (foreign pointer, or a huge block freed twice) at 0x",
    );
}

/// A use after free that flips one bit of a free block's stored link — the bit worth one block
/// — makes the link decode to the block next to its old target: still a block of this slab,
/// so the link's own test passes, and the allocator would hand out a block it does not own
/// (possibly a live one). Only the free mark, which no longer fits the changed link, tells.
#[test]
#[cfg(feature = "secure")]
#[cfg_attr(miri, ignore)] // spawns a process
fn secure_stops_a_free_list_link_moved_by_one_block() {
    const BLOCK_BYTES: usize = 64;
    if child::is_child(CHILD_ENV) {
        let slab = Slab::new(heapkit_testkit::test_pages(4 << 20));
        let layout = Layout::from_size_align(BLOCK_BYTES, 16).unwrap();
        let blocks: Vec<_> = (0..8)
            .map(|_| slab.allocate(layout).unwrap().cast::<u8>())
            .collect();
        let (a, b) = (blocks[2], blocks[3]);
        // SAFETY: deliberately wrong: after the frees, a write through the dangling `b` flips
        // the bit of its link worth one block.
        unsafe {
            slab.deallocate(a, layout);
            slab.deallocate(b, layout);
            let link = b.as_ptr().cast::<usize>();
            link.write(link.read() ^ BLOCK_BYTES);
        }
        let _ = slab.allocate(layout);
        unreachable!("popping the block with the changed link must abort");
    }
    child::assert_aborts_with(
        "secure_stops_a_free_list_link_moved_by_one_block",
        CHILD_ENV,
        "heapkit-slab: free list corrupted: a freed block was overwritten (a write after free) at 0x",
    );
}
