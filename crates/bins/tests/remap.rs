//! Growing mmapped blocks with `PageSource::remap` (glibc's `mremap_chunk`): no second run, no
//! copy, contents kept, `mapped_bytes()` exact, and the block may move.
//!
//! The tests over `MmapPages` need a real kernel's `mremap` (Miri's mmap shim has none), so
//! they are ignored under Miri; the fallback over `BufferPages` (no remap) runs everywhere.

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_bins::{Bins, Config};
use heapkit_core::{Allocator, Introspect, PageSource};
use heapkit_pages::{BufferPages, FailingPages, MmapPages};

const KIB: usize = 1024;

fn layout(size_bytes: usize, align_bytes: usize) -> Layout {
    Layout::from_size_align(size_bytes, align_bytes).unwrap()
}

/// The run an mmapped chunk of `request_bytes` (no alignment lead) takes: its chunk plus the
/// next chunk's header word, in whole pages.
fn run_bytes_for(request_bytes: usize, page_bytes: usize) -> usize {
    (heapkit_bins::chunk_size_for(request_bytes).unwrap() + 8).next_multiple_of(page_bytes)
}

/// Fills a block with a pattern derived from each byte's offset.
///
/// # Safety
/// `ptr` is a live block of at least `len` bytes.
unsafe fn fill(ptr: NonNull<u8>, len: usize) {
    for i in (0..len).step_by(251) {
        // SAFETY: i < len (the caller's promise).
        unsafe { ptr.as_ptr().add(i).write(i as u8 ^ 0x5A) };
    }
}

/// Whether a block still holds [`fill`]'s pattern over its first `len` bytes.
///
/// # Safety
/// `ptr` is a live block of at least `len` bytes.
unsafe fn holds_pattern(ptr: NonNull<u8>, len: usize) -> bool {
    (0..len).step_by(251).all(|i| {
        // SAFETY: i < len (the caller's promise).
        let byte = unsafe { ptr.as_ptr().add(i).read() };
        byte == i as u8 ^ 0x5A
    })
}

/// Maps the page right after `run_end` (never replacing a mapping), so that a run ending there
/// cannot grow in place. Returns the blocker to unmap, if one was placed.
#[cfg(target_os = "linux")]
fn block_growth_at(run_end: usize) -> Option<usize> {
    let page = heapkit_pages::os_page_size();
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; if the address is taken
    // the call fails, and the run cannot grow there either.
    let addr = unsafe {
        libc::mmap(
            run_end as *mut libc::c_void,
            page,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return None;
    }
    Some(addr as usize)
}

#[cfg(target_os = "linux")]
fn unblock(blocker: Option<usize>) {
    if let Some(addr) = blocker {
        // SAFETY: our own one-page mapping from `block_growth_at`.
        unsafe { libc::munmap(addr as *mut libc::c_void, heapkit_pages::os_page_size()) };
    }
}

#[test]
#[cfg_attr(miri, ignore)] // needs the kernel's mremap
fn mmapped_growth_remaps_within_a_budget_a_copy_could_not_meet() {
    let source = FailingPages::new(MmapPages::new());
    let plan = source.plan();
    let heap = Bins::with_config(
        &source,
        Config {
            dynamic_mmap_threshold: false,
            ..Config::DEFAULT
        },
    );
    let old = layout(256 * KIB, 16);
    let block = heap.allocate(old).unwrap().cast::<u8>();
    let run_bytes = heap.fragmentation().mmapped_bytes;
    assert!(run_bytes >= 256 * KIB);
    // SAFETY: live with `old`.
    unsafe { fill(block, old.size()) };
    let mapped_before = source.mapped_bytes();
    let new = layout(1024 * KIB, 16);
    let grown_run_bytes = run_bytes_for(new.size(), source.page_size());
    // Room for the growth alone: allocate-copy-free would need both runs at once.
    plan.limit_mapped_bytes(mapped_before + (grown_run_bytes - run_bytes));
    // SAFETY: live with `old`.
    let grown = unsafe { heap.grow(block, old, new) }.expect("remap needs no second run");
    plan.heal();
    assert!(grown.len() >= new.size());
    assert_eq!(heap.fragmentation().mmapped_bytes, grown_run_bytes);
    assert_eq!(
        source.mapped_bytes(),
        mapped_before + grown_run_bytes - run_bytes,
        "mapped_bytes moves by the growth exactly"
    );
    assert_eq!(
        heap.stats().unwrap().mapped_bytes,
        source.mapped_bytes(),
        "the heap's figure agrees with the source's"
    );
    heap.check().unwrap();
    // SAFETY: live with `new`; the old contents came along and the new bytes are writable.
    unsafe {
        assert!(holds_pattern(grown.cast(), old.size()));
        grown.cast::<u8>().as_ptr().add(new.size() - 1).write(1);
        heap.deallocate(grown.cast(), new);
    }
    heap.check().unwrap();
    assert_eq!(heap.fragmentation().mmapped_bytes, 0);
    assert_eq!(heap.stats().unwrap().live_blocks, 0);
    assert_eq!(heap.stats().unwrap().mapped_bytes, source.mapped_bytes());
}

#[test]
#[cfg(target_os = "linux")]
#[cfg_attr(miri, ignore)] // needs the kernel's mremap and MAP_FIXED_NOREPLACE
fn a_remapped_block_may_move_and_keeps_its_contents_and_alignment() {
    let source = MmapPages::new();
    let heap = Bins::new(&source);
    // Page alignment (the most remap keeps) with a lead before the chunk.
    for align in [16, 4096] {
        let old = layout(300 * KIB, align);
        let block = heap.allocate(old).unwrap().cast::<u8>();
        // SAFETY: live with `old`.
        unsafe { fill(block, old.size()) };
        // The run starts at the page below the chunk header (any alignment lead is under a
        // page for these alignments) and is whole pages long.
        let run_bytes = heap.fragmentation().mmapped_bytes;
        let run_base = (block.as_ptr() as usize - 16) & !(source.page_size() - 1);
        let run_end = run_base + run_bytes;
        let blocker = block_growth_at(run_end);
        let new = layout(900 * KIB, align);
        // SAFETY: live with `old`.
        let grown = unsafe { heap.grow(block, old, new) }.unwrap().cast::<u8>();
        assert_ne!(
            grown, block,
            "the page after the run is taken: the block moved"
        );
        assert_eq!(grown.as_ptr() as usize % align, 0, "alignment kept");
        heap.check().unwrap();
        // SAFETY: live with `new`.
        unsafe {
            assert!(holds_pattern(grown, old.size()));
            heap.deallocate(grown, new);
        }
        unblock(blocker);
        heap.check().unwrap();
    }
    assert_eq!(heap.fragmentation().mmapped_bytes, 0);
}

#[test]
#[cfg_attr(miri, ignore)] // needs the kernel's mremap
fn blocks_aligned_past_a_page_are_moved_by_copy_not_remapped() {
    let source = MmapPages::new();
    let heap = Bins::new(&source);
    let align = 64 * KIB;
    let old = layout(300 * KIB, align);
    let block = heap.allocate(old).unwrap().cast::<u8>();
    // SAFETY: live with `old`.
    unsafe { fill(block, old.size()) };
    let new = layout(1200 * KIB, align);
    // SAFETY: live with `old`.
    let grown = unsafe { heap.grow(block, old, new) }.unwrap().cast::<u8>();
    assert_eq!(grown.as_ptr() as usize % align, 0);
    // SAFETY: live with `new`.
    unsafe {
        assert!(holds_pattern(grown, old.size()));
        heap.deallocate(grown, new);
    }
    heap.check().unwrap();
    assert_eq!(heap.fragmentation().mmapped_bytes, 0);
}

#[test]
fn mmapped_growth_over_a_source_without_remap_copies() {
    let source = BufferPages::owned(if cfg!(miri) { 2048 } else { 4096 } * KIB, 4096).unwrap();
    let heap = Bins::with_config(
        &source,
        Config {
            dynamic_mmap_threshold: false,
            ..Config::DEFAULT
        },
    );
    let old = layout(200 * KIB, 16);
    let block = heap.allocate(old).unwrap().cast::<u8>();
    // SAFETY: live with `old`.
    unsafe { fill(block, old.size()) };
    let new = layout(600 * KIB, 16);
    // SAFETY: live with `old`.
    let grown = unsafe { heap.grow(block, old, new) }.unwrap().cast::<u8>();
    heap.check().unwrap();
    assert_eq!(heap.stats().unwrap().mapped_bytes, source.mapped_bytes());
    assert_eq!(
        heap.fragmentation().mmapped_bytes,
        run_bytes_for(new.size(), 4096)
    );
    // SAFETY: live with `new`.
    unsafe {
        assert!(holds_pattern(grown, old.size()));
        heap.deallocate(grown, new);
    }
    heap.check().unwrap();
    assert_eq!(heap.stats().unwrap().live_blocks, 0);
}
