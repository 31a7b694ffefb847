//! The primary magazine word: one cache per process reads each thread's magazine from a
//! thread-local word of its own. Its own test binary, because the claim lasts for the process.

mod support;

use heapkit_core::{Allocator, Introspect, UnsizedAllocator};
use heapkit_tcache::ThreadCache;
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::OnceLock;
use support::Pow2;

/// The two caches of the test, in statics: the primary word must never outlive its cache,
/// and memory reachable from a static is not a leak to Miri.
static PRIMARY: OnceLock<ThreadCache<Pow2>> = OnceLock::new();
static OTHER: OnceLock<ThreadCache<Pow2>> = OnceLock::new();

fn static_cache(cell: &'static OnceLock<ThreadCache<Pow2>>) -> &'static ThreadCache<Pow2> {
    cell.get_or_init(|| ThreadCache::new(Pow2::new()))
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 16).unwrap()
}

/// Allocates through the primary hit path and, on a miss, syncs the word and takes the full
/// path (the C library's path for the sizes the direct table does not cover; its small miss,
/// `allocate_small_primary_slow`, has its own test below).
fn primary_malloc(cache: &'static ThreadCache<Pow2>, size: usize) -> NonNull<u8> {
    // SAFETY: (test) `cache` is the process's only primary claimant in this binary.
    let block = unsafe { cache.allocate_cached_small_primary(size) };
    if let Some(block) = NonNull::new(block) {
        return block;
    }
    cache.sync_primary();
    cache.allocate(layout(size)).unwrap().cast()
}

#[test]
fn one_cache_claims_the_word_and_its_threads_hit_through_it() {
    let primary = static_cache(&PRIMARY);
    let other = static_cache(&OTHER);
    assert!(primary.claim_primary());
    assert!(primary.claim_primary(), "claiming again keeps it");
    assert!(!other.claim_primary(), "a second cache cannot take it");

    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                // A new thread's word is the empty magazine: the fast path misses at first.
                // SAFETY: (test) as in `primary_malloc`.
                assert!(unsafe { primary.allocate_cached_small_primary(32) }.is_null());
                let first = primary_malloc(primary, 32);
                // SAFETY: (test) a live block of this cache, freed once.
                unsafe { primary.deallocate_unsized_primary(first) };
                // The free went to this thread's bin, and the word now finds it.
                // SAFETY: (test) as in `primary_malloc`.
                let again = unsafe { primary.allocate_cached_small_primary(32) };
                assert_eq!(again, first.as_ptr());
                primary.check().unwrap();
                let blocks: Vec<_> = (0..500)
                    .map(|i| primary_malloc(primary, 1 + i % 1024))
                    .collect();
                for block in blocks {
                    // SAFETY: (test) live blocks of this cache, each freed once.
                    unsafe { primary.deallocate_unsized_primary(block) };
                }
                // SAFETY: (test) the block popped above, freed once.
                unsafe { primary.deallocate_unsized_primary(NonNull::new(again).unwrap()) };
                primary.check().unwrap();
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // The exited threads' slots (and magazines) are taken by new threads, whose words start
    // empty again: the exit reset the word before giving the slot back.
    for _ in 0..3 {
        std::thread::spawn(move || {
            // SAFETY: (test) as in `primary_malloc`.
            assert!(unsafe { primary.allocate_cached_small_primary(64) }.is_null());
            let block = primary_malloc(primary, 64);
            // SAFETY: (test) a live block, freed once.
            unsafe { primary.deallocate_unsized_primary(block) };
            primary.check().unwrap();
        })
        .join()
        .unwrap();
    }
    primary.check().unwrap();
    other.check().unwrap();
}

/// The C library's miss path in one call: it claims the word, attaches the thread's magazine,
/// points the word at it and serves the size from the bin the direct table names.
#[test]
fn the_small_miss_path_attaches_sets_the_word_and_refills() {
    let primary = static_cache(&PRIMARY);
    let other = static_cache(&OTHER);
    assert!(primary.claim_primary());
    std::thread::spawn(move || {
        // SAFETY: (test) `primary` is the process's only primary claimant in this binary.
        assert!(unsafe { primary.allocate_cached_small_primary(48) }.is_null());
        let first = NonNull::new(primary.allocate_small_primary_slow(48)).unwrap();
        primary.check().unwrap();
        // SAFETY: (test) a live block of this cache, freed once.
        unsafe { primary.deallocate_unsized_primary(first) };
        // The word names the thread's magazine now: the hit path finds the freed block.
        // SAFETY: (test) as above.
        let again = unsafe { primary.allocate_cached_small_primary(48) };
        assert_eq!(again, first.as_ptr());
        let blocks: Vec<_> = (1..=1024)
            .map(|size| {
                let block = primary.allocate_small_primary_slow(size);
                assert!(!block.is_null() && block as usize % 16 == 0, "size {size}");
                (NonNull::new(block).unwrap(), size)
            })
            .collect();
        for (block, size) in blocks {
            // SAFETY: (test) a live block of this cache.
            assert!(unsafe { primary.usable_size(block) } >= size);
            // SAFETY: (test) a live block of this cache, freed once.
            unsafe { primary.deallocate_unsized_primary(block) };
        }
        // SAFETY: (test) the block popped above, freed once.
        unsafe { primary.deallocate_unsized_primary(NonNull::new(again).unwrap()) };
        assert!(primary.allocate_small_primary_slow(0).is_null());
        assert!(primary.allocate_small_primary_slow(1025).is_null());
        primary.check().unwrap();
        // A cache that does not hold the word serves through its table and leaves the word
        // alone (the primary cache's check compares the word with its own table).
        let block = NonNull::new(other.allocate_small_primary_slow(64)).unwrap();
        primary.check().unwrap();
        other.check().unwrap();
        // SAFETY: (test) a live block of `other`, freed once with a layout that fits it.
        unsafe { other.deallocate(block, layout(64)) };
    })
    .join()
    .unwrap();
}
