//! The checks of a `#[global_allocator]` over a `static` buffer (talc's use): each test binary
//! that installs one (heapkit-bins', heapkit-slab's) runs these against it.

use std::alloc::{GlobalAlloc, Layout};
use std::boxed::Box;
use std::string::{String, ToString};
use std::vec::Vec;

/// `Vec`, `String` and `Box` work, and their memory lies in the buffer (`in_buffer`). Call it
/// from a test binary whose `#[global_allocator]` is the allocator over the buffer.
///
/// # Panics
/// When a check fails (a test assertion).
pub fn collections_come_from_the_buffer(in_buffer: impl Fn(*const u8) -> bool) {
    let v: Vec<u64> = (0..10_000).collect();
    let s = String::from("no OS underneath: ") + &v.len().to_string();
    let b = Box::new([7u8; 100]);
    assert!(
        in_buffer(v.as_ptr().cast()),
        "the Vec is outside the buffer"
    );
    assert!(in_buffer(s.as_ptr()), "the String is outside the buffer");
    assert!(in_buffer(b.as_ptr()), "the Box is outside the buffer");
    assert_eq!(
        (v.iter().sum::<u64>(), s.as_str(), b[99]),
        (49_995_000, "no OS underneath: 10000", 7)
    );
}

/// A request larger than the buffer is a clean failure — `try_reserve` gives `Err`, `alloc`
/// gives null — and the allocator still serves afterwards.
///
/// # Panics
/// When a check fails (a test assertion).
pub fn exhaustion_is_a_clean_error(
    global: &impl GlobalAlloc,
    buffer_bytes: usize,
    in_buffer: impl Fn(*const u8) -> bool,
) {
    let mut too_big: Vec<u8> = Vec::new();
    assert!(too_big.try_reserve_exact(buffer_bytes).is_err());
    let layout = Layout::from_size_align(buffer_bytes, 16).expect("a valid layout");
    // SAFETY: a non-zero layout; the result is only compared with null.
    let block = unsafe { global.alloc(layout) };
    assert!(block.is_null(), "more than the buffer was handed out");
    let after = std::vec![1u32; 1000];
    assert!(
        in_buffer(after.as_ptr().cast()),
        "no service after the refusal"
    );
}
