//! With the `secure` feature, the free mark turns a double free into an abort and an encoded
//! link that was overwritten while its block was cached stops the process when it is followed.
//! Each fault is committed in a child process (this binary re-run), whose death the parent
//! checks.
#![cfg(all(feature = "secure", not(miri)))]

mod support;

use heapkit_core::Allocator;
use heapkit_tcache::ThreadCache;
use std::alloc::Layout;
use support::{assert_aborted_with, is_child, run_in_child, Pow2};

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

#[test]
fn double_free_aborts() {
    const CHILD: &str = "HEAPKIT_TCACHE_SECURE_DOUBLE_FREE";
    if is_child(CHILD) {
        let cache = ThreadCache::new(Pow2::new());
        let a = cache.allocate(layout(32)).unwrap().cast::<u8>();
        // SAFETY: deliberately wrong: the second free is the bug under test.
        unsafe {
            cache.deallocate(a, layout(32));
            cache.deallocate(a, layout(32));
        }
        unreachable!("the double free must abort");
    }
    let (status, stderr) = run_in_child("double_free_aborts", CHILD);
    assert_aborted_with(status, &stderr, "double free");
}

#[test]
fn an_overwritten_cached_link_aborts() {
    const CHILD: &str = "HEAPKIT_TCACHE_SECURE_CORRUPTED_LINK";
    if is_child(CHILD) {
        let cache = ThreadCache::new(Pow2::new());
        let a = cache.allocate(layout(32)).unwrap().cast::<u8>();
        let b = cache.allocate(layout(32)).unwrap().cast::<u8>();
        // SAFETY: deliberately wrong: a write through `b` after it was freed (a use after
        // free) flips the lowest bit of its encoded link, so the decoded link is misaligned.
        unsafe {
            cache.deallocate(a, layout(32));
            cache.deallocate(b, layout(32));
            let link = b.as_ptr().cast::<usize>();
            link.write(link.read() ^ 1);
        }
        // Popping `b` follows its link.
        let _ = cache.allocate(layout(32));
        unreachable!("following the corrupted link must abort");
    }
    let (status, stderr) = run_in_child("an_overwritten_cached_link_aborts", CHILD);
    assert_aborted_with(status, &stderr, "corrupted");
}

#[test]
fn cached_blocks_come_back_clean() {
    let cache = ThreadCache::new(Pow2::new());
    let a = cache.allocate(layout(32)).unwrap().cast::<u8>();
    // SAFETY: live block, freed once with its layout, then taken again from the bin.
    unsafe { cache.deallocate(a, layout(32)) };
    let again = cache.allocate(layout(32)).unwrap().cast::<u8>();
    assert_eq!(again, a, "the freed block is the next one served");
    // SAFETY: a fresh 32-byte block: its first two words are readable.
    let words = unsafe { again.as_ptr().cast::<[usize; 2]>().read() };
    assert_eq!(
        words,
        [0, 0],
        "no link or mark is left for the program to see"
    );
    // SAFETY: live block, freed once.
    unsafe { cache.deallocate(again, layout(32)) };
    heapkit_core::Introspect::check(&cache).unwrap();
}
