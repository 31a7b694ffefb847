//! With the `checked` feature, a double free into a thread cache and a free with a layout of
//! another size class abort the process with a message. Each test re-runs its own binary in a
//! child process, which commits the fault; the parent checks how the child died.
#![cfg(all(feature = "checked", not(miri)))]

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
fn double_free_into_the_cache_aborts() {
    const CHILD: &str = "HEAPKIT_TCACHE_CHECKED_DOUBLE_FREE";
    if is_child(CHILD) {
        let cache = ThreadCache::new(Pow2::new());
        let a = cache.allocate(layout(64)).unwrap().cast::<u8>();
        let _other = cache.allocate(layout(64)).unwrap();
        // SAFETY: deliberately wrong: the second free is the bug under test.
        unsafe {
            cache.deallocate(a, layout(64));
            cache.deallocate(a, layout(64));
        }
        unreachable!("the double free must abort");
    }
    assert_aborts_with(
        "double_free_into_the_cache_aborts",
        CHILD,
        "heapkit-tcache: double free: block is already in the thread cache at 0x",
    );
}

#[test]
fn free_with_a_layout_of_another_class_aborts() {
    const CHILD: &str = "HEAPKIT_TCACHE_CHECKED_WRONG_CLASS";
    if is_child(CHILD) {
        let cache = ThreadCache::new(Pow2::new());
        let a = cache.allocate(layout(16)).unwrap().cast::<u8>();
        // SAFETY: deliberately wrong: a 16-byte block freed as a 64-byte one.
        unsafe { cache.deallocate(a, layout(64)) };
        unreachable!("the wrong-class free must abort");
    }
    assert_aborts_with(
        "free_with_a_layout_of_another_class_aborts",
        CHILD,
        "heapkit-tcache: block freed with a layout of another size class at 0x",
    );
}

#[test]
fn correct_frees_do_not_abort() {
    let cache = ThreadCache::new(Pow2::new());
    let blocks: Vec<_> = (0..100)
        .map(|_| cache.allocate(layout(48)).unwrap())
        .collect();
    for b in blocks {
        // SAFETY: each block is live and freed once with the layout it was allocated with.
        unsafe { cache.deallocate(b.cast(), layout(48)) };
    }
    heapkit_core::Introspect::check(&cache).unwrap();
}
