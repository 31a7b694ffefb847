//! The thread's chunk stash: once warm, an arena per request on one thread takes its first
//! chunk from the stash, not the global allocator; `release_thread_chunks` and thread exit
//! give it back. A counting global allocator counts the calls of the first chunk's shape
//! (4 KiB aligned to 16), which nothing else in this test binary makes. One test: the counts
//! are process-wide.

use core::alloc::{GlobalAlloc, Layout};
use heapkit_bump::{release_thread_chunks, Arena};
use std::alloc::System;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `System`, counting the allocations and frees of first chunks.
struct Counting;

static CHUNK_ALLOCS: AtomicUsize = AtomicUsize::new(0);
static CHUNK_FREES: AtomicUsize = AtomicUsize::new(0);

fn is_chunk(layout: Layout) -> bool {
    layout.size() == 4096 && layout.align() == 16
}

// SAFETY: forwards to `System`, which keeps `GlobalAlloc`'s contract; counting changes nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_chunk(layout) {
            CHUNK_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_chunk(layout) {
            CHUNK_FREES.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One request: a fresh arena, 64 blocks of 64 B written (a 4 KiB chunk, then an 8 KiB one,
/// which the global allocator serves every time), dropped.
fn request() {
    let arena = Arena::new();
    for index in 0..64u8 {
        arena.alloc([index; 64]);
    }
    assert_eq!(arena.chunk_count(), 2);
}

fn counts() -> (usize, usize) {
    (
        CHUNK_ALLOCS.load(Ordering::Relaxed),
        CHUNK_FREES.load(Ordering::Relaxed),
    )
}

#[test]
fn warm_requests_take_their_chunks_from_the_threads_stash() {
    request();
    let warm = counts();
    for _ in 0..1000 {
        request();
    }
    assert_eq!(
        counts(),
        warm,
        "a warm request took a first chunk from the global allocator"
    );

    assert_eq!(release_thread_chunks(), 4096);
    assert_eq!(release_thread_chunks(), 0);
    let (allocs, frees) = counts();
    assert_eq!(allocs, frees, "every chunk went back");

    // A thread's stash goes back when the thread exits.
    std::thread::spawn(|| {
        request();
        request();
    })
    .join()
    .unwrap();
    let (allocs, frees) = counts();
    assert_eq!(allocs, frees, "the exited thread's stash went back");
}
