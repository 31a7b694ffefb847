//! A `Slab` as the `#[global_allocator]` over a `static` byte array, with no OS underneath:
//! this test binary's every allocation comes from it. The buffer holds a few 2 MiB chunks
//! (they are chunk-aligned inside it).

use heapkit_core::GlobalAdapter;
use heapkit_pages::{PageSource, StaticBuffer, StaticPages};
use heapkit_slab::Slab;
use heapkit_testkit::static_global;

const ARENA_BYTES: usize = 16 << 20;

static ARENA: StaticBuffer<ARENA_BYTES> = StaticBuffer::new();

#[global_allocator]
static GLOBAL: GlobalAdapter<Slab<StaticPages>> =
    GlobalAdapter::new(Slab::new(StaticPages::new(&ARENA)));

#[test]
fn vec_string_and_box_come_from_the_static_buffer() {
    static_global::collections_come_from_the_buffer(|p| ARENA.contains(p));
    assert!(GLOBAL.inner().pages().mapped_bytes() > 0);
}

#[test]
fn exhaustion_is_a_clean_error() {
    static_global::exhaustion_is_a_clean_error(&GLOBAL, ARENA_BYTES, |p| ARENA.contains(p));
}
