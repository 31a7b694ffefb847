//! The cache's own behaviour over the test backend: reuse, refill and flush in batches,
//! resizing, drop, cross-thread frees, thread churn and producer/consumer memory bounds.

mod support;

use heapkit_core::{Allocator, BatchAllocator, Introspect, UnsizedAllocator};
use heapkit_tcache::{ThreadCache, BIN_BLOCKS_MAX};
use std::alloc::{GlobalAlloc, Layout};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use support::{Pow2, CHUNK_BYTES};

fn live(cache: &ThreadCache<Pow2>) -> usize {
    cache.backend().counters.live_blocks.load(Ordering::Relaxed)
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// A block handed to another thread to free: the pointer itself, provenance and all (an address
/// sent as `usize` would not be a pointer there under Miri's strict provenance).
struct SentBlock(NonNull<u8>);

// SAFETY: (test) the receiving thread is the block's only user from then on.
unsafe impl Send for SentBlock {}

#[test]
fn a_freed_block_is_the_next_one_served() {
    let cache = ThreadCache::new(Pow2::new());
    let a = cache.allocate(layout(40)).unwrap();
    assert_eq!(a.len(), 64, "the slice reports the class size");
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    unsafe { cache.deallocate(a.cast(), layout(40)) };
    let b = cache.allocate(layout(64)).unwrap();
    assert_eq!(a.cast::<u8>(), b.cast::<u8>());
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    unsafe { cache.deallocate(b.cast(), layout(64)) };
    cache.check().unwrap();
}

#[test]
fn refills_and_flushes_go_in_batches() {
    let cache = ThreadCache::new(Pow2::new());
    let calls = || cache.backend().counters.batch_calls.load(Ordering::Relaxed);
    let n = if cfg!(miri) { 300 } else { 3000 };
    let blocks: Vec<_> = (0..n)
        .map(|_| cache.allocate(layout(16)).unwrap())
        .collect();
    cache.check().unwrap();
    let refills = calls();
    // Refills double from 8 blocks up to half a bin; each backend call moves up to 128.
    assert!(
        refills <= n / 128 + 12,
        "{refills} backend calls for {n} blocks"
    );
    for b in &blocks {
        // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
        // fits it; reads and writes stay within the block.
        unsafe { cache.deallocate(b.cast(), layout(16)) };
    }
    cache.check().unwrap();
    let flushes = calls() - refills;
    // Half a bin at first; then (no refills meanwhile) whole bins with the limit halving down
    // to 32 blocks.
    assert!(
        flushes <= n / 32 + 8,
        "{flushes} backend calls to flush {n} blocks"
    );
    assert!(
        live(&cache) <= BIN_BLOCKS_MAX as usize + 1,
        "the bin keeps at most its limit (+ the magazine)"
    );
    let flushed = cache.flush_thread();
    assert!(flushed > 0);
    // A flush of whole bins shelves batches first (for another thread's refill): they stay
    // live in the backend until a refill takes them or the shelves are drained.
    let shelved = cache.shelved_blocks();
    // Miri's 300 blocks fit in the bin (its limit grows to 1024 with the refills): no flush.
    assert!(
        shelved > 0 || cfg!(miri),
        "the frees' flushes shelved batches"
    );
    assert_eq!(cache.drain_depots(), shelved);
    assert_eq!(live(&cache), 1, "only the magazine itself is live");
}

#[test]
fn dropping_the_cache_returns_every_block() {
    let cache = ThreadCache::new(Pow2::new());
    let counters = Arc::clone(&cache.backend().counters);
    for size in [8, 16, 100, 1000, 4096] {
        let blocks: Vec<_> = (0..50)
            .map(|_| cache.allocate(layout(size)).unwrap())
            .collect();
        for b in blocks {
            // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
            // fits it; reads and writes stay within the block.
            unsafe { cache.deallocate(b.cast(), layout(size)) };
        }
    }
    assert!(counters.live_blocks.load(Ordering::Relaxed) > 1);
    drop(cache);
    assert_eq!(counters.live_blocks.load(Ordering::Relaxed), 0);
}

#[test]
fn a_moved_cache_keeps_working() {
    let cache = ThreadCache::new(Pow2::new());
    let a = cache.allocate(layout(32)).unwrap();
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    unsafe { cache.deallocate(a.cast(), layout(32)) };
    let moved = Box::new(cache);
    let b = moved.allocate(layout(32)).unwrap();
    assert_eq!(
        a.cast::<u8>(),
        b.cast::<u8>(),
        "the magazine moved with the cache"
    );
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    unsafe { moved.deallocate(b.cast(), layout(32)) };
    moved.check().unwrap();
}

#[test]
fn two_caches_on_one_thread_keep_separate_magazines() {
    let first = ThreadCache::new(Pow2::new());
    let second = ThreadCache::new(Pow2::new());
    let a = first.allocate(layout(16)).unwrap();
    let b = second.allocate(layout(16)).unwrap();
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    unsafe {
        first.deallocate(a.cast(), layout(16));
        second.deallocate(b.cast(), layout(16));
    }
    assert_eq!(
        first.allocate(layout(16)).unwrap().cast::<u8>(),
        a.cast::<u8>()
    );
    assert_eq!(
        second.allocate(layout(16)).unwrap().cast::<u8>(),
        b.cast::<u8>()
    );
}

#[test]
fn large_layouts_go_to_the_backend() {
    let cache = ThreadCache::new(Pow2::new());
    let big = Layout::from_size_align(10_000, 64).unwrap();
    let block = cache.allocate_zeroed(big).unwrap();
    assert!(block.len() >= 10_000);
    assert!(
        // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
        // fits it; reads and writes stay within the block.
        unsafe { std::slice::from_raw_parts(block.cast::<u8>().as_ptr(), 10_000) }
            .iter()
            .all(|&b| b == 0)
    );
    assert_eq!(
        // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
        // fits it; reads and writes stay within the block.
        unsafe { cache.backend().class_of_block(block.cast()) },
        None
    );
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    unsafe { cache.deallocate(block.cast(), big) };
    assert_eq!(live(&cache), 0, "nothing cached, no magazine made");
}

#[test]
fn resizing_stays_in_place_within_a_class_and_moves_across() {
    let cache = ThreadCache::new(Pow2::new());
    let block = cache.allocate(layout(20)).unwrap().cast::<u8>();
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    unsafe { block.as_ptr().write_bytes(7, 20) };
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    let same = unsafe { cache.grow(block, layout(20), layout(30)) }.unwrap();
    assert_eq!(
        same.cast::<u8>(),
        block,
        "20 B and 30 B share the 32 B class"
    );
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    let moved = unsafe { cache.grow(same.cast(), layout(30), layout(300)) }.unwrap();
    assert_ne!(moved.cast::<u8>(), block);
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    let bytes = unsafe { std::slice::from_raw_parts(moved.cast::<u8>().as_ptr(), 20) };
    assert!(bytes.iter().all(|&b| b == 7));
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    let shrunk = unsafe { cache.shrink(moved.cast(), layout(300), layout(10)) }.unwrap();
    assert_eq!(shrunk.len(), 16);
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    unsafe { cache.deallocate(shrunk.cast(), layout(10)) };
    cache.check().unwrap();
}

#[test]
fn unsized_frees_find_the_class_from_the_pointer() {
    let cache = ThreadCache::new(Pow2::new());
    let block = cache.allocate(layout(100)).unwrap().cast::<u8>();
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    assert_eq!(unsafe { cache.usable_size(block) }, 128);
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    unsafe { cache.deallocate_unsized(block) };
    assert_eq!(cache.allocate(layout(128)).unwrap().cast::<u8>(), block);
}

#[test]
fn unsized_frees_of_large_blocks_pass_through_the_uncached_bin() {
    let cache = ThreadCache::new(Pow2::new());
    let counters = cache.backend().counters.clone();
    // A small block first, so the thread has a magazine and the large frees meet its uncached
    // bin rather than the shared empty magazine.
    let small = cache.allocate(layout(32)).unwrap().cast::<u8>();
    for _ in 0..3 {
        let live_before = counters.live_blocks.load(Ordering::Relaxed);
        let large = cache.allocate(layout(64 * 1024)).unwrap().cast::<u8>();
        // SAFETY: (test) a live large block of this allocator, freed once.
        unsafe { cache.deallocate_unsized(large) };
        // The backend has it back at once: a block of no class is never cached.
        assert_eq!(counters.live_blocks.load(Ordering::Relaxed), live_before);
        cache.check().unwrap();
    }
    // SAFETY: (test) a live small block of this allocator, freed once.
    unsafe { cache.deallocate_unsized(small) };
    cache.check().unwrap();
}

#[test]
fn global_alloc_realloc_keeps_contents() {
    let cache = ThreadCache::new(Pow2::new());
    // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
    // fits it; reads and writes stay within the block.
    unsafe {
        let p = cache.alloc(layout(24));
        assert!(!p.is_null());
        p.write_bytes(3, 24);
        let q = cache.realloc(p, layout(24), 5000);
        assert!(!q.is_null());
        assert!(std::slice::from_raw_parts(q, 24).iter().all(|&b| b == 3));
        let r = cache.realloc(q, Layout::from_size_align(5000, 8).unwrap(), 8);
        assert!(std::slice::from_raw_parts(r, 8).iter().all(|&b| b == 3));
        cache.dealloc(r, layout(8));
        let z = cache.alloc_zeroed(layout(64));
        assert!(std::slice::from_raw_parts(z, 64).iter().all(|&b| b == 0));
        cache.dealloc(z, layout(64));
    }
}

#[test]
fn blocks_freed_by_another_thread_return_to_the_backend() {
    let cache = ThreadCache::new(Pow2::new());
    let counters = Arc::clone(&cache.backend().counters);
    let n = if cfg!(miri) { 50 } else { 5000 };
    let blocks: Vec<SentBlock> = (0..n)
        .map(|i| SentBlock(cache.allocate(layout(8 + i % 500)).unwrap().cast::<u8>()))
        .collect();
    let cache_ref = &cache;
    std::thread::scope(|s| {
        s.spawn(move || {
            let cache = cache_ref;
            for (i, block) in blocks.into_iter().enumerate() {
                // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
                // fits it; reads and writes stay within the block.
                unsafe { cache.deallocate(block.0, layout(8 + i % 500)) };
            }
            cache.check().unwrap();
        });
    });
    drop(cache);
    assert_eq!(counters.live_blocks.load(Ordering::Relaxed), 0);
}

#[test]
fn another_threads_frees_refill_this_thread_through_the_shelf() {
    let cache = ThreadCache::new(Pow2::new());
    let calls = || cache.backend().counters.batch_calls.load(Ordering::Relaxed);
    let blocks: Vec<SentBlock> = (0..256)
        .map(|_| SentBlock(cache.allocate(layout(64)).unwrap().cast::<u8>()))
        .collect();
    let sent: std::collections::HashSet<usize> =
        blocks.iter().map(|b| b.0.as_ptr() as usize).collect();
    let cache_ref = &cache;
    std::thread::scope(|s| {
        s.spawn(move || {
            for block in blocks {
                // SAFETY: (test) a live block of this allocator, freed with its layout.
                unsafe { cache_ref.deallocate(block.0, layout(64)) };
            }
        })
        // An explicit join waits for the thread's exit (its slot freed, its exit counted).
        .join()
        .unwrap();
    });
    // The consumer's magazine goes back to the backend now rather than at this thread's next
    // refill (see `reclaim_exited`), so that the refills below count no backend call of its.
    cache.reclaim_idle();
    let shelved = cache.shelved_blocks();
    assert!(
        shelved >= 64,
        "the consumer's flushes shelved whole batches ({shelved})"
    );
    // This thread's bin is empty; drain it so that every refill must come from elsewhere.
    cache.flush_thread();
    let before = calls();
    let again: Vec<_> = (0..shelved)
        .map(|_| cache.allocate(layout(64)).unwrap())
        .collect();
    assert_eq!(
        calls(),
        before,
        "no backend call: every refill came off the shelf"
    );
    assert!(
        again
            .iter()
            .all(|b| sent.contains(&(b.cast::<u8>().as_ptr() as usize))),
        "a refill from the shelf hands out the consumer's blocks"
    );
    assert_eq!(cache.shelved_blocks(), 0);
    for b in again {
        // SAFETY: (test) a live block of this allocator, freed with its layout.
        unsafe { cache.deallocate(b.cast(), layout(64)) };
    }
    let mut cache = cache;
    cache.check_depots().unwrap();
    cache.check().unwrap();
}

#[test]
fn a_full_shelf_sends_the_rest_to_the_backend() {
    let mut cache = ThreadCache::new(Pow2::new());
    // 1 KiB blocks: a bin holds at most 256 of them, so even Miri's 600 flush several times.
    let n = if cfg!(miri) { 600 } else { 6000 };
    let blocks: Vec<_> = (0..n)
        .map(|_| cache.allocate(layout(1024)).unwrap())
        .collect();
    for b in blocks {
        // SAFETY: (test) a live block of this allocator, freed with its layout.
        unsafe { cache.deallocate(b.cast(), layout(1024)) };
    }
    // The shelf of one class is bounded (at most eight batches, and at most 256 KiB).
    let shelved = cache.shelved_blocks();
    assert!(shelved > 0 && shelved <= 8 * 32, "{shelved} blocks shelved");
    cache.check_depots().unwrap();
    cache.check().unwrap();
}

#[test]
#[cfg_attr(miri, ignore)] // thousands of threads
fn thread_churn_keeps_memory_bounded() {
    // `'static` so that plain `spawn` + `join` can be used: `join` returns only after the
    // thread's thread-local destructors (which give its slot back) have run; a scope does not
    // wait for those.
    let cache: &'static ThreadCache<Pow2> = Box::leak(Box::new(ThreadCache::new(Pow2::new())));
    // Leaking each thread's cached blocks would map ~20 MiB over the run; reusing magazines
    // (and their slots) keeps it to a few chunks per class, whatever other tests do meanwhile.
    let bound_bytes = 48 * CHUNK_BYTES;
    for round in 0..2000 {
        std::thread::spawn(move || {
            let blocks: Vec<_> = (0..64)
                .map(|i| cache.allocate(layout(16 << (i % 6))).unwrap())
                .collect();
            for (i, b) in blocks.into_iter().enumerate() {
                // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
                // fits it; reads and writes stay within the block.
                unsafe { cache.deallocate(b.cast(), layout(16 << (i % 6))) };
            }
        })
        .join()
        .unwrap();
        let mapped = cache
            .backend()
            .counters
            .mapped_bytes
            .load(Ordering::Relaxed);
        assert!(
            mapped <= bound_bytes,
            "round {round}: mapped {mapped} bytes"
        );
    }
    // Exited threads' magazines are reclaimed, except those of slots that threads of other
    // tests running in parallel hold right now (at most a few magazines).
    cache.reclaim_idle();
    let left = live(cache);
    assert!(left < 4 * 610, "{left} blocks still cached after reclaim");
}

#[test]
#[cfg_attr(miri, ignore)] // a million blocks
fn producer_consumer_keeps_memory_bounded() {
    let cache = ThreadCache::new(Pow2::new());
    let (tx, rx) = std::sync::mpsc::sync_channel::<SentBlock>(1024);
    let total = 1_000_000;
    let cache_ref = &cache;
    std::thread::scope(|s| {
        s.spawn(move || {
            let cache = cache_ref;
            for i in 0..total {
                let b = cache.allocate(layout(16 + i % 200)).unwrap();
                tx.send(SentBlock(b.cast::<u8>())).unwrap();
            }
            drop(tx);
        });
        s.spawn(move || {
            let cache = cache_ref;
            let mut i = 0;
            while let Ok(block) = rx.recv() {
                // SAFETY: (test) each pointer is a live block of this allocator, passed with a layout that
                // fits it; reads and writes stay within the block.
                unsafe { cache.deallocate(block.0, layout(16 + i % 200)) };
                i += 1;
            }
        });
    });
    let mapped = cache
        .backend()
        .counters
        .mapped_bytes
        .load(Ordering::Relaxed);
    // In flight: the channel (1024 blocks) plus two threads' bins; a few chunks per class.
    assert!(
        mapped <= 64 * CHUNK_BYTES,
        "producer/consumer mapped {mapped} bytes"
    );
}

#[test]
fn bin_state_reports_the_calling_threads_bin() {
    let cache = ThreadCache::new(Pow2::new());
    assert_eq!(cache.bin_state(0), None, "no magazine before the first use");
    let a = cache.allocate(layout(16)).unwrap();
    let state = cache.bin_state(0).unwrap();
    // The first refill took 8 blocks and handed one out; the next refill asks for more.
    assert_eq!(state.count, 7);
    assert!(state.limit >= 8 && state.refill > 8, "{state:?}");
    // SAFETY: (test) a live block freed once with its layout.
    unsafe { cache.deallocate(a.cast(), layout(16)) };
    assert_eq!(cache.bin_state(0).unwrap().count, 8);
    assert_eq!(cache.bin_state(support::CLASS_COUNT), None, "out of range");
    let other = std::thread::scope(|s| s.spawn(|| cache.bin_state(0)).join().unwrap());
    assert_eq!(other, None, "another thread has no magazine here");
    cache.check().unwrap();
}
