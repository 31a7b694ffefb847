//! A thread cache in front of a slab, watched from the back end, step by step: refills grow,
//! a full bin flushes, a block freed by another thread lands in *that* thread's bin, and once
//! the process has threads a full bin shelves whole batches that another thread's refills take.
//! The book's chapter 5 quotes this output.
//!
//! `cargo run -p heapkit --example tcache_walkthrough`

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::{Allocator, BatchAllocator};
use heapkit_pages::BufferPages;
use heapkit_slab::Slab;
use heapkit_tcache::ThreadCache;

type Cache = ThreadCache<Slab<BufferPages<'static>>>;

/// The back end's view of the class: blocks it handed out, got back, and has live; and the
/// blocks waiting on the shelves.
fn backend(cache: &Cache, class: usize) -> String {
    let s = cache.backend().class_stats(class);
    format!(
        "back end: {:>4} handed out, {:>4} returned, {:>4} live (held by the program, a bin or \
         the shelf); shelf: {:>3}",
        s.allocations,
        s.deallocations,
        s.live_blocks,
        cache.shelved_blocks()
    )
}

/// Sends a pointer to another thread (the block is owned by whoever holds it).
struct Block(NonNull<u8>);
// SAFETY: a heap block is plain memory; ownership moves with the value.
unsafe impl Send for Block {}

fn main() {
    let cache: Cache = ThreadCache::new(Slab::new(
        BufferPages::owned(16 << 20, 4096).expect("buffer"),
    ));
    let layout = Layout::from_size_align(32, 8).unwrap();
    let class = cache.backend().class_of(layout).expect("32 B has a class");
    println!(
        "32 B blocks are class {class} ({} B)",
        cache.backend().class_size(class)
    );

    let mut blocks = Vec::new();
    let mut last = 0;
    for i in 1..=2000usize {
        blocks.push(cache.allocate(layout).unwrap().cast::<u8>());
        let handed = cache.backend().class_stats(class).allocations;
        if handed != last {
            println!(
                "malloc #{i:<3} missed the bin: refill of {:>3} blocks | {}",
                handed - last,
                backend(&cache, class)
            );
            last = handed;
        }
    }
    let (mut returned, mut shelved) = (0, 0);
    for (i, b) in blocks.drain(..).enumerate() {
        // SAFETY: each block is live and freed once with its layout.
        unsafe { cache.deallocate(b, layout) };
        let back = cache.backend().class_stats(class).deallocations;
        let shelf = cache.shelved_blocks();
        if back != returned || shelf != shelved {
            println!(
                "free #{:<4} found the bin full: {:>3} blocks shelved, {:>3} to the back end | {}",
                i + 1,
                shelf - shelved,
                back - returned,
                backend(&cache, class)
            );
            (returned, shelved) = (back, shelf);
        }
    }
    println!("all 2000 freed | {}", backend(&cache, class));

    // Cross-thread frees, producer and consumer: thread A allocates and stays alive; thread B
    // frees A's blocks into B's own bin, whose flushes shelve whole batches; A's next refills
    // take them off the shelf.
    let shared = &cache;
    std::thread::scope(|s| {
        let (to_consumer, blocks) = std::sync::mpsc::channel::<Vec<Block>>();
        let (to_producer, done) = std::sync::mpsc::channel::<()>();
        s.spawn(move || {
            let cache = shared;
            let made: Vec<Block> = (0..600)
                .map(|_| Block(cache.allocate(layout).unwrap().cast()))
                .collect();
            println!("thread A allocated 600 | {}", backend(cache, class));
            to_consumer.send(made).unwrap();
            done.recv().unwrap();
            let flushed = cache.flush_thread();
            let again: Vec<Block> = (0..64)
                .map(|_| Block(cache.allocate(layout).unwrap().cast()))
                .collect();
            println!(
                "thread A flushed its bin ({flushed} blocks), allocated 64: its refills took \
                 batches off the shelf | {}",
                backend(cache, class)
            );
            for Block(b) in again {
                // SAFETY: each block is live and freed once with its layout.
                unsafe { cache.deallocate(b, layout) };
            }
            // Before exiting: the exit hook only frees the slot (see `reclaim_idle`).
            cache.flush_thread();
        });
        s.spawn(move || {
            let cache = shared;
            for Block(b) in blocks.recv().unwrap() {
                // SAFETY: each block is live; any thread may free it.
                unsafe { cache.deallocate(b, layout) };
            }
            println!(
                "thread B freed them into its own bin; its flushes shelved whole batches | {}",
                backend(cache, class)
            );
            cache.flush_thread();
            to_producer.send(()).unwrap();
        });
    });
    let reclaimed = cache.reclaim_idle();
    let flushed = cache.flush_thread();
    let drained = cache.drain_depots();
    println!(
        "main: reclaim_idle() {reclaimed} + flush_thread() {flushed} + drain_depots() {drained} \
         blocks | {}",
        backend(&cache, class)
    );
}
