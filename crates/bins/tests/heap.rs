//! Scenario tests of the algorithm (coalescing, bins, top, segments, mmapped chunks, realloc)
//! and a model-based proptest that calls `check()` after every operation.

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_bins::{Bins, ChunkState, Config};
use heapkit_core::{AllocError, Allocator, Introspect, PageSource, UnsizedAllocator};
use heapkit_pages::{BufferPages, FailingPages};
use proptest::prelude::*;

const PAGE: usize = 4096;

fn pages(len_bytes: usize) -> BufferPages<'static> {
    BufferPages::owned(len_bytes, PAGE).unwrap()
}

/// The bare arena: every free coalesces at once, so the scenarios below see exact shapes.
fn no_fast() -> Config {
    Config::NO_CACHES
}

/// Fast bins without the tcache in front of them.
fn fast_only() -> Config {
    Config {
        tcache_count: 0,
        ..Config::FAST_BINS
    }
}

fn small_pad(config: Config) -> Config {
    Config {
        top_pad_bytes: 0,
        ..config
    }
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn alloc<P: PageSource>(heap: &Bins<P>, size: usize) -> NonNull<u8> {
    let block = heap.allocate(layout(size)).unwrap();
    assert!(block.len() >= size);
    heap.check().unwrap();
    block.cast()
}

fn free<P: PageSource>(heap: &Bins<P>, ptr: NonNull<u8>) {
    // SAFETY: the tests free only live blocks of `heap`.
    unsafe { heap.deallocate_unsized(ptr) };
    heap.check().unwrap();
}

fn state_at<P: PageSource>(heap: &Bins<P>, ptr: NonNull<u8>) -> ChunkState {
    let addr = ptr.as_ptr() as usize - 16;
    heap.heap_map()
        .find(|c| c.addr == addr)
        .map(|c| c.state)
        .expect("chunk on the map")
}

#[test]
fn neighbours_coalesce_and_merge_into_top() {
    let heap = Bins::with_config(pages(1 << 20), no_fast());
    let a = alloc(&heap, 200);
    let b = alloc(&heap, 200);
    let c = alloc(&heap, 200);
    let guard = alloc(&heap, 200);
    free(&heap, a);
    free(&heap, c);
    assert!(matches!(state_at(&heap, a), ChunkState::Free { bin: 1 }));
    free(&heap, b);
    // a, b and c are one free chunk now.
    let merged = heap
        .heap_map()
        .find(|ch| ch.addr == a.as_ptr() as usize - 16)
        .unwrap();
    assert_eq!(merged.size_bytes, 3 * 208);
    free(&heap, guard);
    // Everything merged into top: one chunk left.
    assert_eq!(heap.heap_map().count(), 1);
    assert_eq!(heap.stats().unwrap().live_blocks, 0);
}

#[test]
fn small_bins_reuse_exact_sizes_and_large_bins_best_fit() {
    let heap = Bins::with_config(pages(1 << 20), no_fast());
    let mut keep = Vec::new();
    let mut freed = Vec::new();
    for size in [100, 2000, 3000, 2500, 100] {
        freed.push(alloc(&heap, size));
        keep.push(alloc(&heap, 16));
    }
    for &p in &freed {
        free(&heap, p);
    }
    // A small request of the same size reuses a freed small chunk.
    let again = alloc(&heap, 100);
    assert!(freed.contains(&again));
    // A 2400-byte request takes the best fit (the 2500 chunk), not the 3000 one.
    let best = alloc(&heap, 2400);
    assert_eq!(best, freed[3]);
    for p in keep.into_iter().chain([again, best]) {
        free(&heap, p);
    }
}

#[test]
fn fast_bins_defer_coalescing_until_consolidation() {
    let heap = Bins::with_config(pages(1 << 20), fast_only());
    let a = alloc(&heap, 40);
    let b = alloc(&heap, 40);
    let guard = alloc(&heap, 40);
    free(&heap, a);
    free(&heap, b);
    assert_eq!(state_at(&heap, a), ChunkState::Fast { bin: 1 });
    assert_eq!(heap.fast_bin_chunks(1).count(), 2);
    // LIFO: the last freed comes back first.
    assert_eq!(alloc(&heap, 40), b);
    free(&heap, b);
    // A large request consolidates: a and b become one free chunk.
    let big = alloc(&heap, 2000);
    assert_eq!(heap.fast_bin_chunks(1).count(), 0);
    let merged = heap
        .heap_map()
        .find(|ch| ch.addr == a.as_ptr() as usize - 16)
        .unwrap();
    assert!(matches!(merged.state, ChunkState::Free { .. }));
    assert_eq!(merged.size_bytes, 96);
    free(&heap, big);
    free(&heap, guard);
}

#[test]
fn huge_requests_are_mmapped_and_raise_the_threshold() {
    let heap = Bins::new(pages(4 << 20));
    let before = heap.pages().mapped_bytes();
    let big = alloc(&heap, 200 * 1024);
    assert!(heap.pages().mapped_bytes() >= before + 200 * 1024);
    assert_eq!(heap.fragmentation().mmapped_bytes, 51 * PAGE);
    free(&heap, big);
    assert_eq!(heap.fragmentation().mmapped_bytes, 0);
    assert!(
        heap.mmap_threshold_bytes() > 200 * 1024,
        "dynamic threshold"
    );
    // The same size now comes from the heap.
    let again = alloc(&heap, 200 * 1024);
    assert_eq!(heap.fragmentation().mmapped_bytes, 0);
    free(&heap, again);
}

#[test]
fn over_aligned_requests_split_off_the_lead() {
    let heap = Bins::new(pages(4 << 20));
    let mut live = Vec::new();
    for (i, align) in [32usize, 64, 256, 4096, 65536].into_iter().enumerate() {
        let l = Layout::from_size_align(24 + i * 100, align).unwrap();
        let block = heap.allocate(l).unwrap();
        assert_eq!(block.cast::<u8>().as_ptr() as usize % align, 0);
        heap.check().unwrap();
        live.push((block.cast::<u8>(), l));
    }
    let huge = Layout::from_size_align(300 * 1024, 8192).unwrap();
    let block = heap.allocate(huge).unwrap();
    assert_eq!(block.cast::<u8>().as_ptr() as usize % 8192, 0);
    live.push((block.cast(), huge));
    for (p, l) in live {
        // SAFETY: live blocks with their layouts.
        unsafe { heap.deallocate(p, l) };
        heap.check().unwrap();
    }
    assert!(heap
        .allocate(Layout::from_size_align(8, 1 << 31).unwrap())
        .is_err());
}

#[test]
fn realloc_grows_in_place_into_top_and_free_neighbours() {
    let heap = Bins::with_config(pages(1 << 20), no_fast());
    let a = alloc(&heap, 100);
    // SAFETY: `a` is live with layout(100); contents are kept.
    unsafe {
        a.as_ptr().write_bytes(7, 100);
        let grown = heap.grow(a, layout(100), layout(5000)).unwrap();
        assert_eq!(grown.cast::<u8>(), a, "grew into top");
        heap.check().unwrap();
        let b = alloc(&heap, 100);
        let c = alloc(&heap, 100);
        let guard = alloc(&heap, 100);
        free(&heap, c);
        let grown_b = heap.grow(b, layout(100), layout(200)).unwrap();
        assert_eq!(grown_b.cast::<u8>(), b, "grew into the free neighbour");
        heap.check().unwrap();
        let shrunk = heap.shrink(a, layout(5000), layout(50)).unwrap();
        assert_eq!(shrunk.cast::<u8>(), a);
        assert!(shrunk.len() < 100, "tail split off");
        assert_eq!(*a.as_ptr().add(49), 7);
        heap.check().unwrap();
        // b cannot grow in place past the guard: it moves, contents intact.
        b.as_ptr().write_bytes(9, 200);
        let moved = heap.grow(b, layout(200), layout(4000)).unwrap();
        assert_ne!(moved.cast::<u8>(), b);
        assert_eq!(*moved.cast::<u8>().as_ptr().add(199), 9);
        heap.check().unwrap();
        for p in [a, moved.cast(), guard] {
            free(&heap, p);
        }
    }
    assert_eq!(heap.stats().unwrap().live_bytes, 0);
}

#[test]
fn a_blocked_heap_opens_a_new_segment_with_fenceposts() {
    let source = pages(2 << 20);
    let heap = Bins::with_config(&source, small_pad(no_fast()));
    let first = alloc(&heap, 100);
    // Take the page right after the heap so that `extend` must fail.
    let blocker = source.map(PAGE, PAGE).unwrap();
    let mut more = Vec::new();
    for _ in 0..6 {
        more.push(alloc(&heap, 1500));
    }
    assert!(heap.segments().count() >= 2, "a second segment was mapped");
    assert!(heap.heap_map().any(|c| c.state == ChunkState::Fence));
    // Free everything: blocks in the retired segment coalesce up to the fence, never past it.
    for p in more {
        free(&heap, p);
    }
    free(&heap, first);
    // SAFETY: the blocker page is ours.
    unsafe { source.unmap(blocker, PAGE) };
    heap.check().unwrap();
    assert_eq!(heap.stats().unwrap().live_blocks, 0);
}

#[test]
fn trim_returns_empty_retired_segments_to_the_source() {
    let source = pages(2 << 20);
    let heap = Bins::with_config(&source, small_pad(no_fast()));
    let first = alloc(&heap, 100);
    let blocker = source.map(PAGE, PAGE).unwrap();
    // Fill the first segment, then force a second.
    let mut blocks = Vec::new();
    while heap.segments().count() < 2 {
        blocks.push(alloc(&heap, 1000));
    }
    // A third segment: the second becomes retired.
    let blocker2 = {
        let seg = heap.segments().next().unwrap();
        let end = seg.base_addr + seg.size_bytes;
        // Map pages until one lands right after the newest segment (first fit: it will).
        let run = source.map(PAGE, PAGE).unwrap();
        assert_eq!(run.as_ptr() as usize, end);
        run
    };
    while heap.segments().count() < 3 {
        blocks.push(alloc(&heap, 1000));
    }
    let mapped_before = source.mapped_bytes();
    for p in blocks {
        free(&heap, p);
    }
    assert_eq!(
        heap.segments().count(),
        3,
        "free keeps empty segments for reuse"
    );
    assert!(heap.trim(0) > 0);
    heap.check().unwrap();
    assert_eq!(
        heap.segments().count(),
        2,
        "trim unmapped the retired middle segment"
    );
    assert!(source.mapped_bytes() < mapped_before);
    free(&heap, first);
    // SAFETY: the blockers are ours.
    unsafe {
        source.unmap(blocker, PAGE);
        source.unmap(blocker2, PAGE);
    }
}

#[test]
fn top_is_trimmed_past_the_threshold() {
    let config = Config {
        trim_threshold_bytes: 64 * 1024,
        top_pad_bytes: 0,
        // Cached chunks next to top would keep it from shrinking (as in glibc).
        ..Config::NO_CACHES
    };
    let heap = Bins::with_config(pages(4 << 20), config);
    let blocks: Vec<_> = (0..100).map(|_| alloc(&heap, 1000)).collect();
    let grown = heap.fragmentation().heap_bytes;
    assert!(grown >= 100 * 1000);
    for p in blocks.into_iter().rev() {
        free(&heap, p);
    }
    assert!(
        heap.fragmentation().heap_bytes < 64 * 1024 + 4 * PAGE,
        "trimmed"
    );
}

/// A page source that cannot `extend` (as `MmapPages`), over a buffer.
struct NoExtend(BufferPages<'static>);

// SAFETY: every call is forwarded to a sound source; `extend` keeps the refusing default.
unsafe impl PageSource for NoExtend {
    fn page_size(&self) -> usize {
        self.0.page_size()
    }
    fn map(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        self.0.map(len_bytes, align_bytes)
    }
    unsafe fn unmap(&self, ptr: NonNull<u8>, len_bytes: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.unmap(ptr, len_bytes) }
    }
    unsafe fn purge(&self, ptr: NonNull<u8>, len_bytes: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.purge(ptr, len_bytes) }
    }
    fn maps_zeroed(&self) -> bool {
        self.0.maps_zeroed()
    }
    fn mapped_bytes(&self) -> usize {
        self.0.mapped_bytes()
    }
}

#[test]
fn a_source_that_cannot_extend_grows_the_heap_by_its_reserve() {
    // Enough for a newest segment whose top, once free, passes the 64 KiB at which free
    // considers trimming.
    let size = 3000;
    let count = if cfg!(miri) { 128 } else { 1000 };
    // A small pad and threshold, so that a heap small enough for Miri still trims.
    let pad = 16 * 1024;
    let config = Config {
        top_pad_bytes: pad,
        trim_threshold_bytes: 2 * pad,
        ..Config::NO_CACHES
    };
    let heap = Bins::with_config(NoExtend(pages(16 << 20)), config);
    let mapped = || heap.pages().mapped_bytes();
    // Checked at each milestone, not after every call: Miri walks the heap slowly.
    let grow = || -> Vec<NonNull<u8>> {
        let blocks = (0..count)
            .map(|_| heap.allocate(layout(size)).unwrap().cast())
            .collect();
        heap.check().unwrap();
        blocks
    };
    let release = |blocks: Vec<NonNull<u8>>| {
        for p in blocks.into_iter().rev() {
            // SAFETY: live blocks of `heap`.
            unsafe { heap.deallocate_unsized(p) };
        }
        heap.check().unwrap();
    };
    let blocks = grow();
    let grown = heap.fragmentation();
    assert_eq!(heap.stats().unwrap().mapped_bytes, mapped());
    // The heap holds what was asked for plus about one top pad, not a quarter more.
    let live = count * (size + 16);
    assert!(grown.heap_bytes <= live + pad + 64 * 1024, "{grown:?}");
    assert!(
        grown.reserved_bytes > 0,
        "later segments came with a reserve"
    );
    let segments = heap.segments().count();
    release(blocks);
    let shrunk = heap.fragmentation();
    assert!(
        shrunk.heap_bytes < grown.heap_bytes,
        "top went back to the reserve"
    );
    assert_eq!(
        shrunk.heap_bytes + shrunk.reserved_bytes,
        grown.heap_bytes + grown.reserved_bytes
    );
    assert_eq!(heap.stats().unwrap().mapped_bytes, mapped());
    // Growing again takes the reserve back: no new segment.
    let again = grow();
    assert_eq!(heap.segments().count(), segments);
    // A block at the end of the heap grows in place from the reserve instead of moving.
    let last = alloc(&heap, 20_000);
    let room = heap.fragmentation().reserved_bytes >= 4 * pad;
    assert!(room || cfg!(miri), "the newest segment has a reserve");
    if room {
        // SAFETY: `last` is live with that layout.
        let grown_last = unsafe { heap.grow(last, layout(20_000), layout(20_000 + 3 * pad)) };
        assert_eq!(grown_last.unwrap().cast::<u8>(), last, "grown in place");
        heap.check().unwrap();
    }
    free(&heap, last);
    release(again);
    let before = mapped();
    heap.trim(0);
    heap.check().unwrap();
    assert_eq!(heap.fragmentation().reserved_bytes, 0);
    assert!(mapped() < before);
    assert_eq!(heap.stats().unwrap().mapped_bytes, mapped());
}

#[test]
#[cfg(all(debug_assertions, not(feature = "checked")))]
#[should_panic(expected = "double free")]
fn double_free_after_merging_backward_is_caught() {
    let heap = Bins::with_config(pages(1 << 20), no_fast());
    let a = alloc(&heap, 300);
    let b = alloc(&heap, 300);
    let _guard = alloc(&heap, 300);
    free(&heap, a);
    free(&heap, b); // merges into a's chunk; b's header is left inside it
                    // SAFETY: deliberately wrong: the second free is the bug under test.
    unsafe { heap.deallocate_unsized(b) };
}

#[test]
fn out_of_memory_is_an_error_and_loses_nothing() {
    let heap = Bins::new(FailingPages::new(pages(1 << 20)));
    let plan = heap.pages().plan();
    let a = alloc(&heap, 64);
    // SAFETY: `a` is live.
    unsafe { a.as_ptr().write_bytes(3, 64) };
    plan.fail_every_map();
    assert!(heap.allocate(layout(512 * 1024)).is_err());
    assert!(heap.allocate(layout(900 * 1024)).is_err());
    heap.check().unwrap();
    assert_eq!(heap.stats().unwrap().failures, 2);
    plan.heal();
    let b = alloc(&heap, 300 * 1024);
    // SAFETY: `a` is still live and untouched.
    assert_eq!(unsafe { *a.as_ptr().add(63) }, 3);
    free(&heap, a);
    free(&heap, b);
    // Exhaustion of the buffer itself is also just an error.
    let c = heap.allocate(layout(2 << 20));
    assert!(c.is_err());
    heap.check().unwrap();
}

#[test]
fn usable_size_and_zeroed_allocation() {
    let heap = Bins::new(pages(1 << 20));
    let a = alloc(&heap, 100);
    // SAFETY: a is live.
    unsafe {
        assert_eq!(heap.usable_size(a), 104);
        a.as_ptr().write_bytes(0xAB, 104);
    }
    free(&heap, a);
    let z = heap.allocate_zeroed(layout(100)).unwrap();
    assert!(
        // SAFETY: z is live with z.len() bytes.
        unsafe { core::slice::from_raw_parts(z.cast::<u8>().as_ptr(), z.len()) }
            .iter()
            .all(|&b| b == 0)
    );
    free(&heap, z.cast());
}

#[test]
fn heap_can_move_after_first_use() {
    let heap = Bins::new(pages(1 << 20));
    let a = alloc(&heap, 100);
    let moved = Box::new(heap);
    moved.check().unwrap();
    free(&moved, a);
    let b = alloc(&moved, 5000);
    free(&moved, b);
}

#[test]
#[cfg(all(debug_assertions, not(feature = "checked")))]
#[should_panic(expected = "double free")]
fn double_free_is_caught() {
    let heap = Bins::with_config(pages(1 << 20), no_fast());
    let a = alloc(&heap, 300);
    let _guard = alloc(&heap, 300);
    // SAFETY: deliberately wrong: the second free is the bug under test.
    unsafe {
        heap.deallocate_unsized(a);
        heap.deallocate_unsized(a);
    }
}

#[test]
#[cfg(all(debug_assertions, not(feature = "checked")))]
#[should_panic(expected = "not a live block")]
fn interior_pointer_is_caught() {
    let heap = Bins::with_config(pages(1 << 20), no_fast());
    let a = alloc(&heap, 300);
    // SAFETY: `a` is live; then deliberately wrong: a pointer into the middle of a block.
    unsafe {
        a.as_ptr().write_bytes(0, 300);
        heap.deallocate_unsized(NonNull::new_unchecked(a.as_ptr().add(64)));
    }
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(usize, u32),
    Free(usize),
    Realloc(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let max = if cfg!(miri) { 3000 } else { 300_000 };
    prop_oneof![
        4 => (1usize..2048, 0u32..8).prop_map(|(s, a)| Op::Alloc(s, a)),
        1 => (2048usize..max, 0u32..8).prop_map(|(s, a)| Op::Alloc(s, a)),
        4 => any::<usize>().prop_map(Op::Free),
        2 => (any::<usize>(), 1usize..9000).prop_map(|(i, s)| Op::Realloc(i, s)),
    ]
}

fn model_pages() -> BufferPages<'static> {
    pages(if cfg!(miri) { 1 << 20 } else { 16 << 20 })
}

fn run_model(config: Config, ops: &[Op]) -> Result<(), TestCaseError> {
    run_model_over(model_pages(), config, ops)
}

fn run_model_over<P: PageSource>(
    source: P,
    config: Config,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let heap = Bins::with_config(source, config);
    let mut live: Vec<(NonNull<u8>, Layout, u8)> = Vec::new();
    // SAFETY: (both closures) called only on live blocks of at least `n` bytes.
    let fill = |p: NonNull<u8>, n: usize, v: u8| unsafe { p.as_ptr().write_bytes(v, n) };
    // SAFETY: as above.
    let verify = |p: NonNull<u8>, n: usize, v: u8| unsafe {
        core::slice::from_raw_parts(p.as_ptr(), n)
            .iter()
            .all(|&b| b == v)
    };
    for (step, op) in ops.iter().enumerate() {
        let tag = step as u8 | 1;
        match *op {
            Op::Alloc(size, align_shift) => {
                let l = Layout::from_size_align(size, 1 << (align_shift + 1)).unwrap();
                if let Ok(block) = heap.allocate(l) {
                    let p = block.cast::<u8>();
                    prop_assert_eq!(p.as_ptr() as usize % l.align(), 0);
                    fill(p, size, tag);
                    live.push((p, l, tag));
                }
            }
            Op::Free(i) if !live.is_empty() => {
                let (p, l, v) = live.swap_remove(i % live.len());
                prop_assert!(verify(p, l.size(), v));
                // SAFETY: a live block with its layout.
                unsafe { heap.deallocate(p, l) };
            }
            Op::Realloc(i, new_size) if !live.is_empty() => {
                let index = i % live.len();
                let (p, l, v) = live[index];
                let new_l = Layout::from_size_align(new_size, l.align()).unwrap();
                // SAFETY: a live block with its layout.
                let result = unsafe {
                    if new_size >= l.size() {
                        heap.grow(p, l, new_l)
                    } else {
                        heap.shrink(p, l, new_l)
                    }
                };
                if let Ok(block) = result {
                    let q = block.cast::<u8>();
                    prop_assert!(verify(q, l.size().min(new_size), v));
                    fill(q, new_size, tag);
                    live[index] = (q, new_l, tag);
                }
            }
            _ => {}
        }
        if let Err(e) = heap.check() {
            return Err(TestCaseError::fail(format!("step {step} {op:?}: {e}")));
        }
    }
    for (p, l, v) in live.drain(..) {
        prop_assert!(verify(p, l.size(), v));
        // SAFETY: a live block with its layout.
        unsafe { heap.deallocate(p, l) };
        heap.check()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    let stats = heap.stats().unwrap();
    prop_assert_eq!((stats.live_bytes, stats.live_blocks), (0, 0));
    prop_assert_eq!(stats.mapped_bytes, heap.pages().mapped_bytes());
    Ok(())
}

fn proptest_config() -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 64 });
    if cfg!(miri) {
        // Persisting failures needs the file system, which Miri isolates.
        config.failure_persistence = None;
    }
    config
}

proptest! {
    #![proptest_config(proptest_config())]
    #[test]
    fn model_with_fast_bins(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 300 })) {
        run_model(Config::FAST_BINS, &ops)?;
    }

    #[test]
    fn model_without_caches(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 300 })) {
        run_model(Config::NO_CACHES, &ops)?;
    }

    #[test]
    fn model_over_a_source_that_cannot_extend(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 300 })) {
        let config = Config { trim_threshold_bytes: 16 * 1024, ..Config::DEFAULT };
        run_model_over(NoExtend(model_pages()), config, &ops)?;
    }

    #[test]
    fn model_without_fast_bins_and_small_thresholds(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 300 })) {
        let config = Config {
            fast_bin_max_bytes: 0,
            mmap_threshold_bytes: 8 * 1024,
            trim_threshold_bytes: 16 * 1024,
            top_pad_bytes: 0,
            tcache_count: 2,
            ..Config::DEFAULT
        };
        run_model(config, &ops)?;
    }
}

#[test]
fn tcache_serves_the_last_freed_chunk_of_a_size_first() {
    let heap = Bins::new(pages(1 << 20));
    let a = alloc(&heap, 100);
    let b = alloc(&heap, 100);
    let guard = alloc(&heap, 100);
    free(&heap, a);
    free(&heap, b);
    // Cached chunks stay marked in use: no coalescing with each other.
    assert_eq!(state_at(&heap, a), ChunkState::Cached { bin: 5 });
    assert_eq!(state_at(&heap, b), ChunkState::Cached { bin: 5 });
    assert_eq!(alloc(&heap, 100), b);
    assert_eq!(alloc(&heap, 104), a); // any request with the same chunk size
    free(&heap, a);
    free(&heap, b);
    free(&heap, guard);
    assert_eq!(heap.stats().unwrap().live_blocks, 0);
}

#[test]
fn tcache_bins_are_bounded_and_the_rest_coalesces() {
    let heap = Bins::new(pages(1 << 20));
    let blocks: Vec<_> = (0..10).map(|_| alloc(&heap, 200)).collect();
    let guard = alloc(&heap, 200);
    for &p in &blocks {
        free(&heap, p);
    }
    let count = |want: fn(&ChunkState) -> bool| heap.heap_map().filter(|c| want(&c.state)).count();
    assert_eq!(
        count(|s| matches!(s, ChunkState::Cached { bin: 11 })),
        heapkit_bins::DEFAULT_TCACHE_COUNT
    );
    // The three frees past the limit coalesced into one free chunk.
    assert_eq!(count(|s| matches!(s, ChunkState::Free { .. })), 1);
    free(&heap, guard);
}

#[test]
fn trim_empties_the_tcache() {
    let heap = Bins::new(pages(1 << 20));
    let a = alloc(&heap, 64);
    let b = alloc(&heap, 64);
    free(&heap, a);
    free(&heap, b);
    heap.trim(0);
    heap.check().unwrap();
    assert!(heap
        .heap_map()
        .all(|c| !matches!(c.state, ChunkState::Cached { .. } | ChunkState::Used)));
}

#[test]
fn out_of_memory_flushes_the_tcache_and_retries() {
    // A heap that cannot grow: 64 KiB, the whole of it mapped at once.
    let config = Config {
        top_pad_bytes: 0,
        ..Config::DEFAULT
    };
    let heap = Bins::with_config(pages(64 * 1024), config);
    let mut blocks = Vec::new();
    while let Ok(b) = heap.allocate(layout(1000)) {
        blocks.push(b.cast::<u8>());
        assert!(blocks.len() < 1000);
    }
    let n = blocks.len();
    assert!(n > 10);
    // Free a run of neighbours: 7 go to the tcache, so without the flush they could not
    // coalesce into room for a block of 3000 bytes.
    for p in blocks.drain(n - 8..) {
        free(&heap, p);
    }
    let big = alloc(&heap, 3000);
    free(&heap, big);
    for p in blocks {
        free(&heap, p);
    }
}

#[test]
#[cfg(all(debug_assertions, not(feature = "checked")))]
#[should_panic(expected = "double free")]
fn double_free_into_the_tcache_is_caught() {
    let heap = Bins::new(pages(1 << 20));
    let a = alloc(&heap, 300);
    let _guard = alloc(&heap, 300);
    // SAFETY: deliberately wrong: the second free is the bug under test.
    unsafe {
        heap.deallocate_unsized(a);
        heap.deallocate_unsized(a);
    }
}
