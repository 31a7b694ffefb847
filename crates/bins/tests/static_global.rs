//! talc's main use: a `#[global_allocator]` over a `static` byte array, with no OS underneath.
//! This test binary's every allocation — the test harness's own included — comes from a
//! `LockedBins` over `StaticPages`, built in a `const` initializer.

use heapkit_bins::LockedBins;
use heapkit_core::GlobalAdapter;
use heapkit_pages::{PageSource, StaticBuffer, StaticPages};
use heapkit_testkit::static_global;

const ARENA_BYTES: usize = 8 << 20;

static ARENA: StaticBuffer<ARENA_BYTES> = StaticBuffer::new();

#[global_allocator]
static GLOBAL: GlobalAdapter<LockedBins<StaticPages>> =
    GlobalAdapter::new(LockedBins::new(StaticPages::new(&ARENA)));

#[test]
fn vec_string_and_box_come_from_the_static_buffer() {
    static_global::collections_come_from_the_buffer(|p| ARENA.contains(p));
    assert!(GLOBAL.inner().lock().pages().mapped_bytes() > 0);
}

#[test]
fn exhaustion_is_a_clean_error() {
    static_global::exhaustion_is_a_clean_error(&GLOBAL, ARENA_BYTES, |p| ARENA.contains(p));
}
