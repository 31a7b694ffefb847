//! talc's main use: a `#[global_allocator]` over a `static` byte array, with no OS underneath.
//! This test binary's every allocation — the test harness's own included — comes from a
//! `LockedBins` over `StaticPages`, built in a `const` initializer.

use heapkit_bins::LockedBins;
use heapkit_core::GlobalAdapter;
use heapkit_pages::{PageSource, StaticBuffer, StaticPages};
use std::alloc::{GlobalAlloc, Layout};

const ARENA_BYTES: usize = 8 << 20;

static ARENA: StaticBuffer<ARENA_BYTES> = StaticBuffer::new();

#[global_allocator]
static GLOBAL: GlobalAdapter<LockedBins<StaticPages>> =
    GlobalAdapter::new(LockedBins::new(StaticPages::new(&ARENA)));

#[test]
fn vec_string_and_box_come_from_the_static_buffer() {
    let v: Vec<u64> = (0..10_000).collect();
    let s = String::from("no OS underneath: ") + &v.len().to_string();
    let b = Box::new([7u8; 100]);
    assert!(ARENA.contains(v.as_ptr().cast()));
    assert!(ARENA.contains(s.as_ptr()));
    assert!(ARENA.contains(b.as_ptr()));
    assert_eq!(
        (v.iter().sum::<u64>(), s.as_str(), b[99]),
        (49_995_000, "no OS underneath: 10000", 7)
    );
    assert!(GLOBAL.inner().lock().pages().mapped_bytes() > 0);
}

#[test]
fn exhaustion_is_a_clean_error() {
    let mut too_big: Vec<u8> = Vec::new();
    assert!(too_big.try_reserve_exact(ARENA_BYTES).is_err());
    let layout = Layout::from_size_align(ARENA_BYTES, 16).unwrap();
    // SAFETY: a non-zero layout; a null result is checked and nothing is freed.
    let block = unsafe { GLOBAL.alloc(layout) };
    assert!(block.is_null());
    // The heap still serves after the refusal.
    let after = vec![1u32; 1000];
    assert!(ARENA.contains(after.as_ptr().cast()));
}
