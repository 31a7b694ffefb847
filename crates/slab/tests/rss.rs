//! After a program frees everything, its resident memory must drop. Alone in its own test
//! binary so that no other test's allocations move the process's RSS.

use core::alloc::Layout;
use heapkit_core::{Allocator, PageSource};
use heapkit_pages::MmapPages;
use heapkit_slab::{Slab, CHUNK_BYTES, DEFAULT_PURGE_THRESHOLD_BYTES};

/// Resident bytes of this process, from /proc/self/statm (second field, in pages).
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * heapkit_pages::os_page_size()
}

#[test]
#[cfg_attr(miri, ignore)] // needs mmap and /proc
fn rss_drops_after_everything_is_freed() {
    const TOTAL_BYTES: usize = 128 << 20;
    let slab = Slab::new(MmapPages::new());
    let before = rss_bytes();
    let mut blocks = Vec::new();
    let mut total_bytes = 0;
    for size in [64usize, 1024, 16384, 200_000].iter().cycle() {
        if total_bytes >= TOTAL_BYTES {
            break;
        }
        total_bytes += size;
        let layout = Layout::from_size_align(*size, 16).unwrap();
        let block = slab.allocate(layout).unwrap();
        // SAFETY: a fresh block; touching it makes its pages resident.
        unsafe { block.cast::<u8>().as_ptr().write_bytes(1, *size) };
        blocks.push((block.cast::<u8>(), layout));
    }
    let peak = rss_bytes();
    assert!(
        peak - before > 64 << 20,
        "the test did not make enough memory resident"
    );
    for (ptr, layout) in blocks.drain(..) {
        // SAFETY: live blocks.
        unsafe { slab.deallocate(ptr, layout) };
    }
    drop(blocks);
    // Without any call: dirty slots beyond the threshold were purged, empty chunks unmapped.
    let after_free = rss_bytes();
    let allowed = DEFAULT_PURGE_THRESHOLD_BYTES + 2 * CHUNK_BYTES + (4 << 20);
    assert!(
        after_free.saturating_sub(before) <= allowed,
        "RSS before {before} B, peak {peak} B, after free {after_free} B"
    );
    // trim() gives back the rest.
    slab.trim();
    let after_trim = rss_bytes();
    assert!(
        after_trim.saturating_sub(before) <= 4 << 20,
        "after trim {after_trim} B"
    );
    assert_eq!(slab.pages().mapped_bytes(), 0);
    println!(
        "RSS before {} MiB, peak {} MiB, after free {} MiB, after trim {} MiB",
        before >> 20,
        peak >> 20,
        after_free >> 20,
        after_trim >> 20
    );
}
