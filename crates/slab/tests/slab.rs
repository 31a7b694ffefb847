//! Slab-specific behaviour: classes, batches, in-place resizing, purging, bad input.

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::{
    Allocator, BatchAllocator, Introspect, PageSource, UnsizedAllocator, WORD_BYTES,
};
use heapkit_pages::BufferPages;
use heapkit_slab::{
    class_of_layout, class_of_size, class_usable_bytes, natural_align, Slab, SlotKind,
    CANARY_BYTES, CHUNK_BYTES, CLASS_BYTES, CLASS_COUNT, LARGE_MAX_BYTES, MAX_ALIGN_SERVED_BYTES,
    SLOT_BYTES, SMALL_MAX_BYTES,
};
use heapkit_testkit::test_pages;

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

fn slab(len_bytes: usize) -> Slab<BufferPages<'static>> {
    Slab::new(test_pages(len_bytes))
}

fn live_bytes<P: PageSource>(s: &Slab<P>) -> usize {
    s.stats().unwrap().live_bytes
}

// The tests hold in every build: what a request gets is asked of the slab's public queries (the
// class of a request, a class's usable size), not taken from the class table. With `hardened`
// the last word of every small block is its canary (`CANARY_BYTES`): a request takes the class
// of its size plus that reserve, and the usable sizes leave the canary out. Without it,
// `CANARY_BYTES` is 0 and every figure below is the class table's own.

/// The largest request of alignment 16 that `s` serves from `class`, or `None` when no request
/// lands there (with `hardened`, the 16-byte class: it has no room for a canary). Without
/// canaries, the class size itself.
fn largest_request(s: &impl BatchAllocator, class: usize) -> Option<usize> {
    let request = (1..=s.class_size(class))
        .rev()
        .find(|&size| s.class_of(layout(size, 16)) == Some(class));
    if CANARY_BYTES == 0 {
        assert_eq!(request, Some(CLASS_BYTES[class] as usize));
    }
    request
}

/// The layout of the largest small request `s` serves (16 KiB without canaries): a block of
/// the largest class.
fn largest_small(s: &impl BatchAllocator) -> Layout {
    layout(largest_request(s, CLASS_COUNT - 1).unwrap(), 16)
}

/// The smallest class a request takes (class 0 without canaries).
fn smallest_class(s: &impl BatchAllocator) -> usize {
    s.class_of(layout(1, 1)).unwrap()
}

/// The class `s` serves a `size`-byte, `align`-aligned request from, checked against what every
/// build promises: it is `class_of_layout`'s, its usable size holds the request, its blocks are
/// aligned enough, and its usable size is its block size less the canary's reserve.
fn class_serving(s: &impl BatchAllocator, size: usize, align: usize) -> usize {
    let class = s.class_of(layout(size, align)).unwrap();
    assert_eq!(Some(class), class_of_layout(size, align));
    assert!(s.class_size(class) >= size, "{size} B fit their class");
    assert!(natural_align(CLASS_BYTES[class] as usize) >= align);
    assert_eq!(
        s.class_size(class),
        CLASS_BYTES[class] as usize - CANARY_BYTES
    );
    assert_eq!(s.class_size(class), class_usable_bytes(class));
    class
}

#[test]
fn every_class_serves_aligned_disjoint_blocks() {
    let s = slab(8 << 20);
    let per_class = if cfg!(miri) { 2 } else { 8 };
    let mut blocks = Vec::new();
    let mut served = 0;
    for (class, &block_bytes) in CLASS_BYTES.iter().enumerate() {
        let Some(request) = largest_request(&s, class) else {
            continue;
        };
        served += 1;
        let bytes = s.class_size(class);
        for _ in 0..per_class {
            let b = s.allocate(layout(request, 16)).unwrap();
            assert_eq!(b.len(), bytes);
            let addr = b.cast::<u8>().as_ptr() as usize;
            assert_eq!(
                addr % natural_align(block_bytes as usize),
                0,
                "natural alignment"
            );
            // SAFETY: a fresh block of `bytes` bytes.
            unsafe {
                b.cast::<u8>().as_ptr().write_bytes(class as u8, bytes);
                assert_eq!(s.usable_size(b.cast()), bytes);
                assert_eq!(s.class_of_block(b.cast()), Some(class));
                assert_eq!(s.bin_of_block(b.cast()), Some(class));
            }
            blocks.push((b.cast::<u8>(), bytes, class as u8));
        }
        s.check().unwrap();
    }
    // Every class serves requests but, with canaries, those with no room for one after the two
    // words a free block's link and mark take (the 16-byte class).
    let too_small = CLASS_BYTES
        .iter()
        .filter(|&&bytes| CANARY_BYTES != 0 && (bytes as usize) < 2 * WORD_BYTES + CANARY_BYTES)
        .count();
    assert_eq!(served, CLASS_COUNT - too_small);
    blocks.sort_by_key(|b| b.0.as_ptr() as usize);
    for w in blocks.windows(2) {
        assert!(
            w[0].0.as_ptr() as usize + w[0].1 <= w[1].0.as_ptr() as usize,
            "overlap"
        );
    }
    for (ptr, bytes, fill) in blocks {
        // SAFETY: live blocks of ours.
        unsafe {
            assert!(core::slice::from_raw_parts(ptr.as_ptr(), bytes)
                .iter()
                .all(|&b| b == fill));
            s.deallocate_unsized(ptr);
        }
    }
    s.check().unwrap();
    assert_eq!(live_bytes(&s), 0);
}

#[test]
fn batches_fill_and_flush_with_one_call() {
    // 1000 blocks of 16 KiB need 16 MiB.
    let s = slab(if cfg!(miri) { 8 << 20 } else { 24 << 20 });
    let n = if cfg!(miri) { 40 } else { 1000 };
    for class in [smallest_class(&s), 7, 19, CLASS_COUNT - 1] {
        let mut out = vec![core::ptr::null_mut(); n];
        let got = s.allocate_batch(class, &mut out);
        assert_eq!(got, n);
        s.check().unwrap();
        assert_eq!(s.class_stats(class).live_blocks, n);
        for &p in &out {
            assert_eq!(
                // SAFETY: live blocks from the batch.
                unsafe { s.class_of_block(NonNull::new(p).unwrap()) },
                Some(class)
            );
        }
        // Free half in a batch, half one by one: both paths serve the same slabs.
        let (a, b) = out.split_at(n / 2);
        // SAFETY: live blocks of `class`, each once.
        unsafe {
            s.deallocate_batch(class, a);
            for &p in b {
                s.deallocate(NonNull::new(p).unwrap(), layout(s.class_size(class), 16));
            }
        }
        s.check().unwrap();
        assert_eq!(s.class_stats(class).live_blocks, 0);
    }
    assert_eq!(
        s.allocate_batch(CLASS_COUNT, &mut [core::ptr::null_mut(); 4]),
        0
    );
    assert_eq!(live_bytes(&s), 0);
}

#[test]
fn class_queries_agree_with_the_table() {
    let s = slab(1 << 20);
    assert_eq!(s.class_count(), CLASS_COUNT);
    let for_100 = class_serving(&s, 100, 8);
    let for_24_aligned_32 = class_serving(&s, 24, 32);
    let for_10_aligned_4096 = class_serving(&s, 10, 4096);
    assert_eq!(s.class_size(class_of_size(100)), 112 - CANARY_BYTES);
    assert_eq!(
        s.class_size(for_10_aligned_4096),
        4096 - CANARY_BYTES,
        "the first class aligned to 4096"
    );
    if CANARY_BYTES == 0 {
        // Without canaries a request takes the smallest class that holds it: the table's.
        assert_eq!(for_100, class_of_size(100));
        assert_eq!(s.class_size(for_24_aligned_32), 32);
    }
    assert_eq!(s.class_of(layout(SMALL_MAX_BYTES + 1, 8)), None);
    assert_eq!(s.class_of(layout(8, 32768)), None);
    assert_eq!(s.class_size(CLASS_COUNT), 0);
}

#[test]
fn small_blocks_resize_in_place_within_their_class() {
    let s = slab(8 << 20);
    let b = s.allocate(layout(20, 8)).unwrap().cast::<u8>();
    // The most the block's class holds (32 bytes without canaries, 24 with hardened's).
    let top = s.class_size(s.class_of(layout(20, 8)).unwrap());
    assert!(top > 20);
    // SAFETY: live block fitted by the old layouts.
    unsafe {
        b.as_ptr().write_bytes(7, 20);
        let g = s.grow(b, layout(20, 8), layout(top, 8)).unwrap();
        assert_eq!(
            g.cast::<u8>(),
            b,
            "20 → the class's usable size stays in place"
        );
        let moved = s
            .grow(b, layout(top, 8), layout(200, 8))
            .unwrap()
            .cast::<u8>();
        assert_ne!(moved, b);
        assert!(core::slice::from_raw_parts(moved.as_ptr(), 20)
            .iter()
            .all(|&x| x == 7));
        let shrunk = s.shrink(moved, layout(200, 8), layout(193, 8)).unwrap();
        assert_eq!(shrunk.cast::<u8>(), moved, "same class: in place");
        let smaller = s
            .shrink(moved, layout(193, 8), layout(16, 8))
            .unwrap()
            .cast::<u8>();
        assert_ne!(
            smaller, moved,
            "a smaller class moves so the big block is not pinned"
        );
        s.deallocate(smaller, layout(16, 8));
    }
    s.check().unwrap();
    assert_eq!(live_bytes(&s), 0);
}

#[test]
#[cfg_attr(
    feature = "hardened",
    ignore = "the normal layout: hardened puts every large block in its own guarded mapping"
)]
fn spans_grow_and_shrink_in_place() {
    let s = slab(8 << 20);
    let l = layout(SMALL_MAX_BYTES + 1, 16);
    let b = s.allocate(l).unwrap();
    assert_eq!(b.len(), SLOT_BYTES);
    let p = b.cast::<u8>();
    // SAFETY: live block; layouts fit it.
    unsafe {
        p.as_ptr().write_bytes(3, l.size());
        let g = s.grow(p, l, layout(3 * SLOT_BYTES, 16)).unwrap();
        assert_eq!(g.cast::<u8>(), p, "the next slots are free: grows in place");
        assert_eq!(g.len(), 3 * SLOT_BYTES);
        s.check().unwrap();
        let sh = s
            .shrink(p, layout(3 * SLOT_BYTES, 16), layout(SLOT_BYTES + 1, 16))
            .unwrap();
        assert_eq!((sh.cast::<u8>(), sh.len()), (p, 2 * SLOT_BYTES));
        s.check().unwrap();
        assert!(core::slice::from_raw_parts(p.as_ptr(), l.size())
            .iter()
            .all(|&x| x == 3));
        assert_eq!(s.usable_size(p), 2 * SLOT_BYTES);
        assert_eq!(s.class_of_block(p), None);
        // A large block's slot holds no class: the thread cache's uncached bin.
        assert_eq!(s.bin_of_block(p), Some(CLASS_COUNT));
        s.deallocate(p, layout(SLOT_BYTES + 1, 16));
    }
    s.check().unwrap();
    assert_eq!(live_bytes(&s), 0);
}

/// Whether the `len` bytes at `ptr` all equal `byte`: one slice comparison (a `memcmp`, which
/// Miri runs natively) rather than a byte loop, so megabytes stay cheap under Miri.
///
/// # Safety
/// `len` bytes at `ptr` are readable.
unsafe fn all_bytes_are(ptr: *const u8, len: usize, byte: u8) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { core::slice::from_raw_parts(ptr, len) == vec![byte; len].as_slice() }
}

#[test]
#[cfg_attr(
    feature = "hardened",
    ignore = "the normal layout: hardened puts every large block in its own guarded mapping"
)]
fn huge_blocks_have_their_own_mapping() {
    let s = slab(16 << 20);
    let l = layout(LARGE_MAX_BYTES + 1, 16);
    let b = s.allocate_zeroed(l).unwrap();
    assert!(b.len() >= l.size());
    let p = b.cast::<u8>();
    // SAFETY: live block; layouts fit it.
    unsafe {
        assert!(all_bytes_are(p.as_ptr(), b.len(), 0));
        // A huge block is in no slab chunk: the first test already says "no class".
        assert_eq!(s.bin_of_block(p), None);
        p.as_ptr().write_bytes(9, l.size());
        let mapped = s.stats().unwrap().mapped_bytes;
        // BufferPages can extend a run in place, so the huge block grows without moving.
        let g = s.grow(p, l, layout(3 << 20, 16)).unwrap();
        assert_eq!(g.cast::<u8>(), p);
        assert!(s.stats().unwrap().mapped_bytes > mapped);
        let sh = s
            .shrink(p, layout(3 << 20, 16), layout(LARGE_MAX_BYTES + 4096, 16))
            .unwrap();
        assert_eq!(sh.cast::<u8>(), p);
        assert!(s.stats().unwrap().mapped_bytes < mapped + (1 << 20));
        s.check().unwrap();
        assert!(all_bytes_are(p.as_ptr(), l.size(), 9));
        let mut seen = 0;
        s.heap_map(|slot| seen += usize::from(matches!(slot.kind, SlotKind::Huge { .. })));
        assert_eq!(seen, 1);
        s.deallocate(p, layout(LARGE_MAX_BYTES + 4096, 16));
    }
    s.check().unwrap();
    assert_eq!(s.stats().unwrap().mapped_bytes, 0);
    assert_eq!(s.pages().mapped_bytes(), 0);
}

#[test]
#[cfg_attr(
    feature = "hardened",
    ignore = "the normal layout: hardened puts every large block in its own guarded mapping"
)]
fn alignments_pick_the_right_path() {
    let s = slab(16 << 20);
    for (size, align) in [
        (10, 4096),
        (8, 32768),
        (100, 65536),
        (10, 1 << 19),
        (200_000, 1 << 20),
        (8, 2 << 20),
        (100, 4 << 20),
        (3 << 20, 4 << 20),
    ] {
        let l = layout(size, align);
        let b = s.allocate(l).unwrap();
        assert_eq!(
            b.cast::<u8>().as_ptr() as usize % align,
            0,
            "{size} B aligned {align}"
        );
        s.check().unwrap();
        // SAFETY: just allocated with `l`.
        unsafe { s.deallocate(b.cast(), l) };
    }
    assert!(
        s.allocate(layout(8, MAX_ALIGN_SERVED_BYTES * 2)).is_err(),
        "alignment above 1 GiB is refused"
    );
    assert!(s.allocate(layout(isize::MAX as usize - 4096, 16)).is_err());
    s.check().unwrap();
    assert_eq!(s.stats().unwrap().failures, 2);
}

#[test]
fn zeroed_blocks_read_zero_even_when_reused() {
    let s = slab(8 << 20);
    let l = layout(256, 16);
    let a = s.allocate(l).unwrap().cast::<u8>();
    // SAFETY: live block.
    unsafe {
        a.as_ptr().write_bytes(0xAB, 256);
        s.deallocate(a, l);
    }
    let z = s.allocate_zeroed(l).unwrap();
    assert_eq!(z.cast::<u8>(), a, "LIFO reuse");
    // SAFETY: live block of z.len() bytes.
    unsafe {
        assert!(
            core::slice::from_raw_parts(z.cast::<u8>().as_ptr(), z.len())
                .iter()
                .all(|&x| x == 0)
        );
        s.deallocate(z.cast(), l);
    }
}

#[test]
#[cfg_attr(
    feature = "hardened",
    ignore = "the normal layout: hardened puts every large block in its own guarded mapping"
)]
fn memory_goes_back_to_the_source() {
    let s = slab(24 << 20);
    let n = if cfg!(miri) { 200 } else { 4000 };
    let l = layout(1024, 16);
    let blocks: Vec<_> = (0..n)
        .map(|_| s.allocate(l).unwrap().cast::<u8>())
        .collect();
    // 30 spans of 2 slots + the slabs need more than the 62 free slots of two chunks.
    let spans: Vec<_> = (0..30)
        .map(|_| s.allocate(layout(100_000, 16)).unwrap().cast::<u8>())
        .collect();
    let peak = s.pages().mapped_bytes();
    assert!(peak >= 3 * CHUNK_BYTES);
    for b in blocks {
        // SAFETY: live blocks.
        unsafe { s.deallocate(b, l) };
    }
    for b in spans {
        // SAFETY: live blocks.
        unsafe { s.deallocate(b, layout(100_000, 16)) };
    }
    s.check().unwrap();
    // Empty chunks beyond the retained one were unmapped as they emptied.
    // The class keeps one empty slab (its chunk stays), and one empty chunk is retained.
    assert!(
        s.pages().mapped_bytes() <= 2 * CHUNK_BYTES,
        "{} B still mapped",
        s.pages().mapped_bytes()
    );
    assert_eq!(s.stats().unwrap().mapped_bytes, s.pages().mapped_bytes());
    s.trim();
    s.check().unwrap();
    assert_eq!(s.pages().mapped_bytes(), 0, "trim unmaps everything empty");
    let (dirty, _) = s.dirty_and_purged_bytes();
    assert_eq!(dirty, 0);
}

#[test]
fn dirty_slots_are_purged_past_the_threshold() {
    let s = slab(8 << 20);
    s.set_purge_threshold_bytes(2 * SLOT_BYTES);
    let blocks = fill_16k_slabs(&s, 10);
    free_all(&s, &blocks);
    let (dirty, purged) = s.dirty_and_purged_bytes();
    assert!(dirty <= 2 * SLOT_BYTES, "dirty {dirty}");
    assert!(purged >= 6 * SLOT_BYTES, "purged {purged}");
    s.check().unwrap();
}

#[test]
fn a_static_slab_needs_no_runtime_setup() {
    static SLAB: Slab<heapkit_pages::MmapPages> = Slab::new(heapkit_pages::MmapPages::new());
    if cfg!(miri) {
        return; // no mmap under Miri
    }
    let b = SLAB.allocate(layout(64, 8)).unwrap();
    // SAFETY: just allocated.
    unsafe { SLAB.deallocate(b.cast(), layout(64, 8)) };
    SLAB.check().unwrap();
}

#[test]
// `secure` hands never-used blocks out in a shuffled order (and guards the slot's last page),
// so the order and capacities below differ; `secure_mode_shuffles_and_marks_free_blocks` and
// `guard_pages_outlive_their_slabs_and_give_way_to_large_spans` cover that build.
#[cfg(not(feature = "secure"))]
fn heap_map_shows_slabs_and_free_blocks() {
    let s = slab(8 << 20);
    let l = layout(48, 16);
    let blocks: Vec<_> = (0..5)
        .map(|_| s.allocate(l).unwrap().cast::<u8>())
        .collect();
    // SAFETY: live blocks.
    unsafe {
        s.deallocate(blocks[1], l);
        s.deallocate(blocks[3], l);
    }
    let mut found = false;
    s.heap_map(|slot| {
        if let SlotKind::Small {
            block_bytes: 48,
            live,
            capacity,
            untouched,
            ..
        } = slot.kind
        {
            assert_eq!((live, capacity - untouched), (3, 5));
            let mut free = Vec::new();
            slot.for_each_free_block(|i| free.push(i));
            assert_eq!(&free[..2], &[3, 1], "most recently freed first");
            assert_eq!(free.len(), capacity - 3);
            found = true;
        }
    });
    assert!(found);
    for i in [0, 2, 4] {
        // SAFETY: live blocks.
        unsafe { s.deallocate(blocks[i], l) };
    }
    s.check().unwrap();
}

#[test]
#[cfg(all(debug_assertions, not(feature = "checked")))]
#[should_panic(expected = "double free")]
fn double_free_is_caught_in_debug_builds() {
    let s = slab(8 << 20);
    let l = layout(64, 8);
    let a = s.allocate(l).unwrap().cast::<u8>();
    let _keep = s.allocate(l).unwrap();
    let b = s.allocate(l).unwrap().cast::<u8>();
    // SAFETY: the first free is valid; the second is the bad input under test.
    unsafe {
        s.deallocate(a, l);
        s.deallocate(b, l);
        s.deallocate(a, l); // not the list head: only the live bitmap sees it
    }
}

#[test]
#[cfg(all(debug_assertions, not(feature = "checked")))]
#[should_panic(expected = "foreign pointer")]
fn pointers_of_another_slab_are_caught() {
    let s = slab(4 << 20);
    let other = slab(4 << 20);
    let l = layout(64, 8);
    let _own = s.allocate(l).unwrap();
    let foreign = other.allocate(l).unwrap();
    // SAFETY: deliberately the wrong allocator: the bad input under test.
    unsafe { s.deallocate(foreign.cast(), l) };
}

#[test]
#[cfg(all(debug_assertions, not(feature = "checked")))]
#[should_panic(expected = "middle of a small block")]
fn interior_pointers_are_caught() {
    let s = slab(4 << 20);
    let l = layout(64, 8);
    let a = s.allocate(l).unwrap().cast::<u8>();
    // SAFETY: deliberately an interior pointer: the bad input under test.
    unsafe { s.deallocate(NonNull::new_unchecked(a.as_ptr().add(16)), l) };
}

#[test]
fn threads_share_classes_through_batches() {
    let s = slab(if cfg!(miri) { 8 << 20 } else { 32 << 20 });
    let rounds = if cfg!(miri) { 3 } else { 300 };
    std::thread::scope(|scope| {
        for t in 0..4 {
            let s = &s;
            scope.spawn(move || {
                let class = smallest_class(s) + t % 2 * 5;
                let mut out = [core::ptr::null_mut(); 64];
                for round in 0..rounds {
                    let n = s.allocate_batch(class, &mut out);
                    assert_eq!(n, out.len());
                    for &p in &out {
                        // SAFETY: live blocks of the class.
                        unsafe { p.write_bytes(round as u8, s.class_size(class)) };
                    }
                    // SAFETY: live blocks of `class`, each once.
                    unsafe { s.deallocate_batch(class, &out) };
                }
            });
        }
    });
    s.check().unwrap();
    assert_eq!(live_bytes(&s), 0);
}

#[test]
#[cfg(feature = "secure")]
fn secure_mode_shuffles_and_marks_free_blocks() {
    let s = slab(8 << 20);
    let l = layout(64, 16);
    let blocks: Vec<_> = (0..32)
        .map(|_| s.allocate(l).unwrap().cast::<u8>())
        .collect();
    let ascending = blocks.windows(2).all(|w| w[0] < w[1]);
    assert!(!ascending, "fresh blocks come out in a shuffled order");
    // SAFETY: live blocks, each freed once; the second word of a free block is readable.
    unsafe {
        s.deallocate(blocks[5], l);
        let words = blocks[5].cast::<[usize; 2]>().as_ptr().read();
        assert_eq!(
            words[1],
            heapkit_core::secure::free_mark(words[0]),
            "a free block carries the mark of its link"
        );
        assert_ne!(
            words[0], 0,
            "the link is stored encoded, not as a plain null"
        );
        for &b in blocks.iter().filter(|&&b| b != blocks[5]) {
            s.deallocate(b, l);
        }
    }
    s.check().unwrap();
}

#[test]
fn peak_bytes_is_exact_for_one_class_and_for_large_and_huge_blocks() {
    let s = slab(8 << 20);
    // 16 KiB blocks: ten of them cross the fold granule (64 KiB) in both directions. Live bytes
    // count block sizes (a canary's reserve included).
    let l = largest_small(&s);
    let n = 10;
    let blocks: Vec<_> = (0..n)
        .map(|_| s.allocate(l).unwrap().cast::<u8>())
        .collect();
    assert_eq!(s.stats().unwrap().peak_bytes, n * SMALL_MAX_BYTES);
    for b in blocks {
        // SAFETY: live blocks.
        unsafe { s.deallocate(b, l) };
    }
    let stats = s.stats().unwrap();
    assert_eq!(
        (stats.live_bytes, stats.peak_bytes),
        (0, n * SMALL_MAX_BYTES)
    );
    // A peak between two `stats` calls is kept: up and down again without looking.
    let small = layout(64, 8);
    let small_block_bytes = CLASS_BYTES[class_serving(&s, 64, 8)] as usize;
    let many = if cfg!(miri) { 1100 } else { 3000 };
    let blocks: Vec<_> = (0..many)
        .map(|_| s.allocate(small).unwrap().cast::<u8>())
        .collect();
    for b in blocks {
        // SAFETY: live blocks.
        unsafe { s.deallocate(b, small) };
    }
    assert_eq!(
        s.stats().unwrap().peak_bytes,
        (many * small_block_bytes).max(n * SMALL_MAX_BYTES)
    );
    // Large and huge blocks count exactly, as they come and go.
    let large = layout(100_000, 16);
    let huge = layout(LARGE_MAX_BYTES + 1, 16);
    let a = s.allocate(large).unwrap();
    let b = s.allocate(huge).unwrap();
    let together = a.len() + b.len();
    assert!(together > n * SMALL_MAX_BYTES);
    // SAFETY: live blocks with their layouts.
    unsafe {
        s.deallocate(a.cast(), large);
        s.deallocate(b.cast(), huge);
    }
    s.check().unwrap();
    let stats = s.stats().unwrap();
    assert_eq!((stats.live_bytes, stats.peak_bytes), (0, together));
}

#[test]
fn peak_bytes_across_classes_is_within_the_documented_granularity() {
    use heapkit_slab::PEAK_GRANULE_BYTES;
    let s = slab(8 << 20);
    // A few blocks in many classes (none reaches a fold), then a huge block on top of them.
    let mut blocks = Vec::new();
    let mut small_bytes = 0;
    for (class, &bytes) in CLASS_BYTES.iter().enumerate().step_by(3) {
        let Some(request) = largest_request(&s, class) else {
            continue;
        };
        let l = layout(request, 16);
        blocks.push((s.allocate(l).unwrap().cast::<u8>(), l));
        small_bytes += bytes as usize;
        s.check().unwrap();
    }
    let huge = layout(LARGE_MAX_BYTES + 1, 16);
    let h = s.allocate(huge).unwrap();
    let true_peak = small_bytes + h.len();
    // SAFETY: live blocks with their layouts.
    unsafe {
        s.deallocate(h.cast(), huge);
        for (b, l) in blocks {
            s.deallocate(b, l);
        }
    }
    s.check().unwrap();
    let peak = s.stats().unwrap().peak_bytes;
    assert!(peak <= true_peak, "{peak} > {true_peak}");
    assert!(
        peak + (CLASS_COUNT - 1) * PEAK_GRANULE_BYTES >= true_peak,
        "{peak} too far below {true_peak}"
    );
    assert!(peak >= h.len(), "the huge block alone is counted exactly");
}

/// Allocates `slabs` slabs' worth of 16 KiB blocks (4 per slab).
fn fill_16k_slabs<P: PageSource + Sync>(s: &Slab<P>, slabs: usize) -> Vec<NonNull<u8>> {
    let l = largest_small(s);
    (0..slabs * 4)
        .map(|_| s.allocate(l).unwrap().cast::<u8>())
        .collect()
}

fn free_all<P: PageSource + Sync>(s: &Slab<P>, blocks: &[NonNull<u8>]) {
    let l = largest_small(s);
    for &b in blocks {
        // SAFETY: live blocks of this layout.
        unsafe { s.deallocate(b, l) };
    }
}

#[test]
fn dirty_slots_wait_for_the_purge_delay() {
    let s = slab(8 << 20);
    assert_eq!(s.purge_delay_ms(), heapkit_slab::DEFAULT_PURGE_DELAY_MS);
    s.set_purge_delay_ms(3_600_000); // an hour: nothing expires during the test
    let blocks = fill_16k_slabs(&s, 10);
    free_all(&s, &blocks);
    // The first slab emptied stays with its class; the other nine went back dirty.
    assert_eq!(s.dirty_and_purged_bytes(), (9 * SLOT_BYTES, 0));
    // A refill of another class reuses one dirty slot and purges nothing.
    let other = s.allocate(layout(64, 8)).unwrap();
    assert_eq!(s.dirty_and_purged_bytes(), (8 * SLOT_BYTES, 0));
    s.check().unwrap();
    // Once the delay is short and has passed, the next refill purges every expired slot.
    s.set_purge_delay_ms(20);
    std::thread::sleep(std::time::Duration::from_millis(60));
    let third = s.allocate(layout(128, 8)).unwrap();
    assert_eq!(s.dirty_and_purged_bytes(), (0, 7 * SLOT_BYTES));
    s.check().unwrap();
    // SAFETY: live blocks with their layouts.
    unsafe {
        s.deallocate(other.cast(), layout(64, 8));
        s.deallocate(third.cast(), layout(128, 8));
    }
    s.check().unwrap();
}

#[test]
fn a_release_purges_the_slots_that_expired_before_it() {
    let s = slab(8 << 20);
    s.set_purge_delay_ms(30);
    let blocks = fill_16k_slabs(&s, 6);
    free_all(&s, &blocks[..16]); // slab 1 stays with its class; slabs 2-4 go back dirty
    assert_eq!(s.dirty_and_purged_bytes(), (3 * SLOT_BYTES, 0));
    std::thread::sleep(std::time::Duration::from_millis(80));
    free_all(&s, &blocks[16..20]); // slab 5 goes back: the three old slots are purged
    assert_eq!(s.dirty_and_purged_bytes(), (SLOT_BYTES, 3 * SLOT_BYTES));
    s.check().unwrap();
    // A delay of 0 purges at once, whatever the threshold says.
    s.set_purge_delay_ms(0);
    free_all(&s, &blocks[20..]);
    assert_eq!(s.dirty_and_purged_bytes(), (0, 5 * SLOT_BYTES));
    s.check().unwrap();
}

#[test]
fn purge_due_purges_expired_slots_without_an_allocator_call() {
    let s = slab(8 << 20);
    s.set_purge_delay_ms(u64::MAX);
    let blocks = fill_16k_slabs(&s, 4);
    free_all(&s, &blocks); // slab 1 stays with its class; three slots go back dirty
    s.purge_due();
    assert_eq!(
        s.dirty_and_purged_bytes(),
        (3 * SLOT_BYTES, 0),
        "a delay of never: nothing is due"
    );
    // A delay of 0 makes every dirty slot due with no wait (the test reads no clock edge).
    s.set_purge_delay_ms(0);
    s.purge_due();
    assert_eq!(s.dirty_and_purged_bytes(), (0, 3 * SLOT_BYTES));
    s.check().unwrap();
    s.purge_due();
    assert_eq!(
        s.dirty_and_purged_bytes(),
        (0, 3 * SLOT_BYTES),
        "idempotent"
    );
}

#[test]
fn the_threshold_still_purges_before_the_delay() {
    let s = slab(8 << 20);
    s.set_purge_delay_ms(u64::MAX);
    s.set_purge_threshold_bytes(2 * SLOT_BYTES);
    let blocks = fill_16k_slabs(&s, 5);
    free_all(&s, &blocks); // four slots go back; the third pushes dirty past the threshold
    let (dirty, purged) = s.dirty_and_purged_bytes();
    assert_eq!((dirty, purged), (SLOT_BYTES, 3 * SLOT_BYTES));
    s.check().unwrap();
}

/// `check()` reports a free block whose link was overwritten (its mark no longer fits) as an
/// error; only a pop would stop the process on it.
#[test]
#[cfg(feature = "secure")]
fn secure_check_reports_an_overwritten_free_block() {
    let s = Slab::new(heapkit_testkit::test_pages(4 << 20));
    let l = layout(64, 16);
    let blocks: Vec<_> = (0..4)
        .map(|_| s.allocate(l).unwrap().cast::<u8>())
        .collect();
    let link = blocks[1].as_ptr().cast::<usize>();
    // SAFETY: live blocks, freed once; then the test plays a use after free on a freed block's
    // link and undoes it before anything follows the link.
    unsafe {
        s.deallocate(blocks[1], l);
        link.write(link.read() ^ 64);
    }
    let error = s.check().unwrap_err();
    assert!(format!("{error}").contains("mark does not fit"), "{error}");
    // SAFETY: as above.
    unsafe { link.write(link.read() ^ 64) };
    s.check().unwrap();
    for &b in blocks.iter().filter(|&&b| b != blocks[1]) {
        // SAFETY: live blocks, freed once.
        unsafe { s.deallocate(b, l) };
    }
    s.check().unwrap();
}

/// The capacity of every small slab of `s` (in heap-map order).
#[cfg(feature = "secure")]
fn slab_capacities<P: PageSource>(s: &Slab<P>) -> Vec<usize> {
    let mut capacities = Vec::new();
    s.heap_map(|slot| {
        if let SlotKind::Small { capacity, .. } = slot.kind {
            capacities.push(capacity);
        }
    });
    capacities
}

#[test]
#[cfg(feature = "secure")]
#[cfg_attr(miri, ignore)] // mmap and mprotect
fn guard_pages_outlive_their_slabs_and_give_way_to_large_spans() {
    let s = Slab::new(heapkit_pages::MmapPages::new());
    let l = layout(64, 16);
    let slot_blocks = SLOT_BYTES / 64;
    // Three slabs' worth: every slab ends in a guard page, so it holds fewer blocks.
    let blocks: Vec<_> = (0..3 * slot_blocks)
        .map(|_| s.allocate(l).unwrap().cast::<u8>())
        .collect();
    let capacities = slab_capacities(&s);
    assert!(capacities.len() >= 3);
    assert!(
        capacities.iter().all(|&c| c < slot_blocks),
        "{capacities:?}"
    );
    for &b in &blocks {
        // SAFETY: live blocks, freed once.
        unsafe { s.deallocate(b, l) };
        s.check().unwrap();
    }
    // The released slots keep their guards (the class keeps one empty slab; the others went
    // back to the chunk). A large span there lifts the guards first, as does growing a span in
    // place over them: every byte stays writable (a guard left inside would fault here).
    let one_slot = layout(SLOT_BYTES, 16);
    let span = s.allocate(one_slot).unwrap();
    // SAFETY: a live block of `span.len()` bytes.
    unsafe { core::ptr::write_bytes(span.cast::<u8>().as_ptr(), 0xa5, span.len()) };
    s.check().unwrap();
    let three_slots = layout(3 * SLOT_BYTES, 16);
    // SAFETY: `span` is live with `one_slot`.
    let grown = unsafe { s.grow(span.cast(), one_slot, three_slots).unwrap() };
    // SAFETY: a live block of `grown.len()` bytes.
    unsafe { core::ptr::write_bytes(grown.cast::<u8>().as_ptr(), 0x5a, grown.len()) };
    s.check().unwrap();
    let spans: Vec<_> = (0..4)
        .map(|_| {
            let span = s.allocate(three_slots).unwrap();
            // SAFETY: a live block of `span.len()` bytes.
            unsafe { core::ptr::write_bytes(span.cast::<u8>().as_ptr(), 0x3c, span.len()) };
            s.check().unwrap();
            span.cast::<u8>()
        })
        .collect();
    // SAFETY: live blocks, freed once.
    unsafe {
        s.deallocate(grown.cast(), three_slots);
        for span in spans {
            s.deallocate(span, three_slots);
        }
    }
    // Small slabs over those slots are guarded again.
    let again: Vec<_> = (0..2 * slot_blocks)
        .map(|_| s.allocate(l).unwrap().cast::<u8>())
        .collect();
    assert!(slab_capacities(&s).iter().all(|&c| c < slot_blocks));
    for b in again {
        // SAFETY: live blocks, freed once.
        unsafe { s.deallocate(b, l) };
    }
    s.check().unwrap();
}

#[test]
#[cfg_attr(
    feature = "hardened",
    ignore = "the normal layout: hardened puts every large block in its own guarded mapping"
)]
fn retained_huge_blocks_and_chunks_are_reused_and_zeroed_when_asked() {
    let s = Slab::new(heapkit_pages::Retained::new(test_pages(16 << 20)));
    let l = layout(3 << 20, 16);
    let a = s.allocate(l).unwrap().cast::<u8>();
    // SAFETY: a live block, freed once.
    unsafe {
        a.as_ptr().write_bytes(0xAB, l.size());
        s.deallocate(a, l);
    }
    assert!(
        s.pages().retained().dirty_bytes >= l.size(),
        "kept, not unmapped"
    );
    let z = s.allocate_zeroed(l).unwrap();
    assert_eq!(z.cast::<u8>(), a, "the retained run is reused");
    // SAFETY: a live block of `z.len()` bytes.
    unsafe {
        assert!(all_bytes_are(z.cast::<u8>().as_ptr(), z.len(), 0));
        s.deallocate(z.cast(), l);
    }
    // Chunks: two chunks' worth of 16 KiB blocks dirtied and freed; the second empty chunk goes
    // to the layer, and a zeroed block from it again must read zero.
    let small = layout(16 << 10, 16);
    let per_chunk = CHUNK_BYTES / (16 << 10);
    let blocks: Vec<_> = (0..2 * per_chunk)
        .map(|_| {
            let b = s.allocate(small).unwrap().cast::<u8>();
            // SAFETY: a live block of 16 KiB.
            unsafe { b.as_ptr().write_bytes(0xCD, 16 << 10) };
            b
        })
        .collect();
    free_all(&s, &blocks);
    let zeroed: Vec<_> = (0..2 * per_chunk)
        .map(|_| {
            let b = s.allocate_zeroed(small).unwrap().cast::<u8>();
            // SAFETY: a live block of 16 KiB.
            assert!(unsafe { all_bytes_are(b.as_ptr(), 16 << 10, 0) });
            b
        })
        .collect();
    free_all(&s, &zeroed);
    s.check().unwrap();
    s.pages().check().unwrap();
    s.trim();
    assert_eq!(
        s.pages().mapped_bytes(),
        0,
        "trim releases the retained runs too"
    );
}
