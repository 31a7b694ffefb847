//! allocator-api2 0.2 (hashbrown's and bumpalo's) and 0.4 (talc's) side by side: a heapkit
//! allocator serves the collections of both, so a program that depends on either version by
//! `cargo add allocator-api2` gets a `Vec::new_in(&arena)` that compiles.

use heapkit::bump::Arena;

#[test]
fn vec_of_allocator_api2_02_lives_in_the_arena() {
    let arena = Arena::new();
    let mut v = allocator_api2::vec::Vec::new_in(&arena);
    v.extend(0..1000u32);
    assert_eq!((v.len(), v[999]), (1000, 999));
    assert!(arena.used_bytes() >= 1000 * 4);
}

#[test]
fn vec_of_allocator_api2_04_lives_in_the_arena() {
    let arena = Arena::new();
    let mut v = allocator_api2_04::vec::Vec::new_in(&arena);
    v.extend(0..1000u32);
    assert_eq!((v.len(), v[999]), (1000, 999));
    assert!(arena.used_bytes() >= 1000 * 4);
}

#[test]
fn the_re_exported_version_is_the_one_implemented() {
    // With both features on, `heapkit_core::allocator_api2` is 0.2, the default.
    let arena = Arena::new();
    let mut v = heapkit::core::allocator_api2::vec::Vec::new_in(&arena);
    v.push(7u8);
    let boxed = heapkit::core::allocator_api2_04::boxed::Box::new_in(9u64, &arena);
    assert_eq!((v[0], *boxed), (7, 9));
}
