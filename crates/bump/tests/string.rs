//! `ArenaString` and `format_in!`: growth in place, failure that loses nothing, `fmt::Write`.

use core::fmt::Write;
use heapkit_bump::{format_in, try_format_in, Arena, ArenaString, GLOBAL_CHUNKS};
use heapkit_core::Introspect;

#[test]
fn the_newest_string_grows_in_place() {
    let arena = Arena::with_source(GLOBAL_CHUNKS);
    let mut s = ArenaString::new_in(&arena);
    s.push('a');
    let start = s.as_ptr();
    for _ in 0..200 {
        s.push_str("bc");
    }
    assert_eq!(s.len(), 401);
    assert_eq!(
        s.as_ptr(),
        start,
        "no copy while the string is the newest block"
    );
    assert!(s.starts_with("abcbc") && s.ends_with("bc"));
    arena.check().unwrap();
}

#[test]
fn a_string_behind_another_block_is_copied_once_and_keeps_its_text() {
    let arena = Arena::with_source(GLOBAL_CHUNKS);
    let mut s = ArenaString::from_str_in("héllo", &arena);
    let _other = arena.alloc(1u64);
    let capacity_bytes = s.capacity();
    s.push_str(&"x".repeat(capacity_bytes));
    assert!(s.starts_with("héllo"));
    assert_eq!(s.len(), "héllo".len() + capacity_bytes);
    assert!(s.capacity() >= 2 * capacity_bytes);
}

#[test]
fn a_refused_push_leaves_the_string_as_it_was() {
    let arena = Arena::with_source(GLOBAL_CHUNKS);
    let mut s = ArenaString::from_str_in("kept", &arena);
    arena.set_allocation_limit(Some(arena.allocated_bytes()));
    let huge = "y".repeat(1 << 20);
    assert!(s.try_push_str(&huge).is_err());
    assert!(s.try_reserve(usize::MAX).is_err());
    assert_eq!(s, "kept");
    assert!(write!(s, "{huge}").is_err());
    assert_eq!(
        try_format_in!(&arena, "{huge}").map(|s| s.len()),
        Err(heapkit_bump::AllocError)
    );
    arena.set_allocation_limit(None);
    s.try_push_str("!").unwrap();
    assert!(s.starts_with("kept"));
}

#[test]
fn format_in_builds_text_in_the_arena() {
    let arena = Arena::with_source(GLOBAL_CHUNKS);
    let before = arena.used_bytes();
    let s = format_in!(&arena, "{:>5}|{:#x}|{}", "ab", 255, 1.5);
    assert_eq!(s, "   ab|0xff|1.5");
    assert!(arena.owns(s.as_ptr()));
    assert!(arena.used_bytes() > before);
    let frozen: &str = s.into_str();
    assert_eq!(frozen, "   ab|0xff|1.5");
    let mut upper = ArenaString::from_str_in("abc", &arena);
    upper.make_ascii_uppercase();
    assert_eq!(format!("{upper} {upper:?}"), "ABC \"ABC\"");
}

#[test]
fn dropping_the_newest_string_gives_its_bytes_back() {
    let arena = Arena::with_source(GLOBAL_CHUNKS);
    let _first = arena.alloc(0u64);
    let used_bytes = arena.used_bytes();
    {
        let s = format_in!(&arena, "{}", "z".repeat(100));
        assert_eq!(s.len(), 100);
    }
    assert_eq!(arena.used_bytes(), used_bytes);
}
