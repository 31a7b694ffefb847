//! With the `secure` feature, the free mark turns a double free into an abort, and a cached
//! block whose link was overwritten (its mark no longer fits) stops the process when it is
//! popped.
//! Each fault is committed in a child process (this binary re-run), whose death the parent
//! checks.
#![cfg(all(feature = "secure", not(miri)))]

mod support;

use heapkit_core::Allocator;
use heapkit_tcache::ThreadCache;
use heapkit_testkit::child::{assert_aborts_with, is_child};
use std::alloc::Layout;
use support::Pow2;

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
    assert_aborts_with("double_free_aborts", CHILD, "double free");
}

/// A cache with two blocks cached, and the first word of the most recently cached one (where
/// its link lives), for a test that plays a use after free on it.
fn cache_with_a_cached_link() -> (ThreadCache<Pow2>, *mut usize) {
    let cache = ThreadCache::new(Pow2::new());
    let a = cache.allocate(layout(32)).unwrap().cast::<u8>();
    let b = cache.allocate(layout(32)).unwrap().cast::<u8>();
    // SAFETY: live blocks, each freed once with its layout.
    unsafe {
        cache.deallocate(a, layout(32));
        cache.deallocate(b, layout(32));
    }
    (cache, b.as_ptr().cast::<usize>())
}

/// Lets `overwrite` write over the link of a cached block, then pops it, which must abort.
fn pop_after_overwriting_a_cached_link(overwrite: impl FnOnce(*mut usize)) -> ! {
    let (cache, link) = cache_with_a_cached_link();
    // Deliberately wrong: the write through the dangling block is the bug under test.
    overwrite(link);
    // Popping the block checks its mark before it follows its link.
    let _ = cache.allocate(layout(32));
    unreachable!("popping the block with the overwritten link must abort");
}

#[test]
fn an_overwritten_cached_link_aborts() {
    const CHILD: &str = "HEAPKIT_TCACHE_SECURE_CORRUPTED_LINK";
    if is_child(CHILD) {
        // SAFETY: (not sound: the fault under test) `link` is the first word of a cached
        // block; the flip of its lowest bit is the use after free.
        pop_after_overwriting_a_cached_link(|link| unsafe { link.write(link.read() ^ 1) });
    }
    assert_aborts_with("an_overwritten_cached_link_aborts", CHILD, "corrupted");
}

/// The overwrite that an alignment test of the decoded link missed one time in eight: a planted
/// address, whatever it decodes to, no longer fits the block's free mark.
#[test]
fn a_planted_link_aborts_whatever_it_decodes_to() {
    const CHILD: &str = "HEAPKIT_TCACHE_SECURE_PLANTED_LINK";
    static TARGET: [u64; 8] = [0; 8];
    if is_child(CHILD) {
        // SAFETY: (not sound: the fault under test) `link` is the first word of a cached
        // block; planting the address of a static there is the use after free.
        pop_after_overwriting_a_cached_link(|link| unsafe { link.write(TARGET.as_ptr() as usize) });
    }
    assert_aborts_with(
        "a_planted_link_aborts_whatever_it_decodes_to",
        CHILD,
        "thread cache list corrupted",
    );
}

/// `check()` reports an overwritten cached link as an error (it does not stop the process, as a
/// pop would).
#[test]
fn check_reports_an_overwritten_cached_link() {
    let (cache, link) = cache_with_a_cached_link();
    // SAFETY: the test plays a use after free on the cached block's link, and undoes it below
    // before anything follows the link.
    unsafe { link.write(link.read() ^ 1) };
    let error = heapkit_core::Introspect::check(&cache).unwrap_err();
    assert!(
        format!("{error}").contains("free mark does not fit"),
        "{error}"
    );
    // SAFETY: as above: the flip is undone, so the cache's own walk at drop is sound again.
    unsafe { link.write(link.read() ^ 1) };
    heapkit_core::Introspect::check(&cache).unwrap();
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
