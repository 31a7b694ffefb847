//! Thread exit returns memory: after many threads that each allocated and freed 1 MiB have
//! exited, one refill by any other thread gives their magazines back, and the bytes left in the
//! cache are at most one thread's worth. Alone in its binary, so that no other test's threads
//! hold slots or count exits meanwhile.
#![cfg(not(miri))] // 64 threads and 64 MiB

mod support;

use heapkit_core::{Allocator, BatchAllocator};
use heapkit_tcache::{ThreadCache, BIN_TARGET_BYTES};
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use support::{Pow2, CLASS_COUNT};

/// Threads that exit together.
const THREADS: usize = 64;

/// What each thread allocates (all live at once) and then frees.
const BYTES_PER_THREAD: usize = 1 << 20;

/// The workload's sizes: Pow2's classes from 16 B to 1 KiB, in turn.
const WORKLOAD_CLASSES: usize = 7;

/// A size no workload thread uses (Pow2's 4 KiB class): its bin is empty in every magazine, so
/// allocating it refills.
const UNUSED_SIZE_BYTES: usize = 4096;

/// Pow2's class of `UNUSED_SIZE_BYTES` (16 B is class 0).
const UNUSED_CLASS: usize = 8;

fn layout(size_bytes: usize) -> Layout {
    Layout::from_size_align(size_bytes, 8).unwrap()
}

fn size_of_block(index: usize) -> usize {
    16 << (index % WORKLOAD_CLASSES)
}

/// Allocates `BYTES_PER_THREAD` in blocks of the workload's sizes, then frees them all.
fn allocate_and_free_1_mib(cache: &ThreadCache<Pow2>) {
    let mut blocks: Vec<NonNull<u8>> = Vec::new();
    let mut total_bytes = 0;
    while total_bytes < BYTES_PER_THREAD {
        let size_bytes = size_of_block(blocks.len());
        blocks.push(cache.allocate(layout(size_bytes)).unwrap().cast());
        total_bytes += size_bytes;
    }
    for (index, block) in blocks.into_iter().enumerate() {
        // SAFETY: each block is live, freed once with the layout it was allocated with.
        unsafe { cache.deallocate(block, layout(size_of_block(index))) };
    }
}

/// Runs the workload on a new thread and records the most bytes any such thread's magazine
/// held at its end ("one thread's worth") in `worth_bytes`; `before_exit` runs after that.
fn spawn_worker(
    cache: &'static ThreadCache<Pow2>,
    worth_bytes: &'static AtomicUsize,
    before_exit: impl FnOnce() + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        allocate_and_free_1_mib(cache);
        worth_bytes.fetch_max(cache.thread_cached_bytes(), Ordering::Relaxed);
        before_exit();
    })
}

#[test]
fn exited_threads_caches_go_back_within_one_refill() {
    // `'static` and plain `join`: `join` returns after the thread's thread-local destructors
    // (which free its slot and count its exit) have run.
    let cache: &'static ThreadCache<Pow2> = Box::leak(Box::new(ThreadCache::new(Pow2::new())));
    let worth_bytes: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));

    // 64 threads at once: none exits before all are done, so none refills after another's
    // exit, and 64 magazines are left idle.
    let done = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let done = Arc::clone(&done);
            spawn_worker(cache, worth_bytes, move || {
                done.wait();
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let one_thread_bytes = worth_bytes.load(Ordering::Relaxed);
    let idle_bytes = cache.idle_cached_bytes();
    assert!(
        idle_bytes > THREADS / 2 * one_thread_bytes / 2,
        "{idle_bytes} B idle after {THREADS} exits (one thread's worth {one_thread_bytes} B): \
         the exits left little behind, so this test shows nothing"
    );
    // for_each_cached walks what the byte figures count, block by block: with every worker
    // gone, the exited threads' magazines and the shelves (this thread has no magazine).
    let mut walked_bytes = 0;
    cache.for_each_cached(|class, blocks| {
        walked_bytes += blocks * cache.backend().class_size(class);
    });
    assert_eq!(
        walked_bytes,
        idle_bytes + cache.thread_cached_bytes() + cache.shelved_bytes()
    );

    // One refill by another thread gives every exited thread's magazine back. That thread
    // takes a free slot and may inherit the magazine left there (one thread's worth, which
    // it now uses as its own).
    let (idle_now, own_bytes, shelved_bytes) = std::thread::spawn(move || {
        let block = cache.allocate(layout(UNUSED_SIZE_BYTES)).unwrap();
        // SAFETY: a live block, freed once with its layout.
        unsafe { cache.deallocate(block.cast(), layout(UNUSED_SIZE_BYTES)) };
        let refilled = cache.bin_state(UNUSED_CLASS).unwrap().count * UNUSED_SIZE_BYTES;
        (
            cache.idle_cached_bytes(),
            cache.thread_cached_bytes() - refilled,
            cache.shelved_bytes(),
        )
    })
    .join()
    .unwrap();
    println!(
        "one thread's worth {one_thread_bytes} B; after {THREADS} exits {idle_bytes} B idle; \
         after one refill {idle_now} B idle, {own_bytes} B in the refilling thread's \
         magazine, {shelved_bytes} B shelved"
    );
    assert_eq!(
        idle_now, 0,
        "a refill after the exits left exited threads' magazines cached"
    );
    assert!(
        own_bytes <= one_thread_bytes,
        "{own_bytes} B in one magazine, more than one thread's worth ({one_thread_bytes} B)"
    );
    // The shelves are bounded whatever the number of threads.
    assert!(shelved_bytes <= CLASS_COUNT * BIN_TARGET_BYTES);
}
