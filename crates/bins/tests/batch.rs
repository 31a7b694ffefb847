//! Size classes and batches (the `BatchAllocator` side), and mmapped blocks that shrink.

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_bins::{Bins, Config, LockedBins, CLASS_COUNT, MAX_CLASS_REQUEST_BYTES};
use heapkit_core::{Allocator, BatchAllocator, Introspect, PageSource, UnsizedAllocator};
use heapkit_pages::BufferPages;

const PAGE: usize = 4096;

fn pages(len_bytes: usize) -> BufferPages<'static> {
    BufferPages::owned(len_bytes, PAGE).unwrap()
}

#[test]
fn classes_are_the_small_bins() {
    let heap = LockedBins::new(pages(1 << 20));
    assert_eq!(heap.class_count(), CLASS_COUNT);
    assert_eq!(heap.class_size(0), 24);
    assert_eq!(heap.class_size(CLASS_COUNT - 1), MAX_CLASS_REQUEST_BYTES);
    assert_eq!(heap.class_size(CLASS_COUNT), 0);
    for size in 1..=MAX_CLASS_REQUEST_BYTES {
        for align in [1, 8, 16] {
            let layout = Layout::from_size_align(size, align).unwrap();
            let class = heap.class_of(layout).unwrap();
            assert!(heap.class_size(class) >= size);
            assert!(
                class == 0 || heap.class_size(class - 1) < size,
                "smallest fit"
            );
        }
    }
    let big = Layout::from_size_align(MAX_CLASS_REQUEST_BYTES + 1, 8).unwrap();
    assert_eq!(heap.class_of(big), None);
    assert_eq!(
        heap.class_of(Layout::from_size_align(64, 32).unwrap()),
        None
    );
}

#[test]
fn batches_have_exact_class_sizes_and_round_trip() {
    let heap = LockedBins::new(pages(8 << 20));
    let mut live = Vec::new();
    // Under Miri, a sample of the classes and sizes keeps the run short.
    let (class_step, wants): (usize, &[usize]) = if cfg!(miri) {
        (13, &[1, 7, 64])
    } else {
        (1, &[1, 2, 7, 64, 100])
    };
    for class in (0..CLASS_COUNT).step_by(class_step) {
        for &want in wants {
            let mut out = vec![core::ptr::null_mut(); want];
            let got = heap.allocate_batch(class, &mut out);
            assert_eq!(got, want);
            for &p in &out {
                let p = NonNull::new(p).unwrap();
                assert_eq!(p.as_ptr() as usize % 16, 0);
                // SAFETY: a live block of the heap.
                unsafe {
                    assert_eq!(heap.class_of_block(p), Some(class));
                    assert_eq!(heap.usable_size(p), heap.class_size(class));
                    p.as_ptr().write_bytes(0xA5, heap.class_size(class));
                }
            }
            heap.check().unwrap();
            live.push((class, out));
        }
    }
    let stats = heap.stats().unwrap();
    assert_eq!(stats.live_blocks, live.iter().map(|(_, v)| v.len()).sum());
    for (class, blocks) in live.into_iter().rev() {
        // SAFETY: live blocks of `class`, each once.
        unsafe { heap.deallocate_batch(class, &blocks) };
        heap.check().unwrap();
    }
    assert_eq!(heap.stats().unwrap().live_blocks, 0);
}

#[test]
fn batches_take_free_chunks_of_the_size_first() {
    let heap = Bins::with_config(pages(1 << 20), Config::NO_CACHES);
    let layout = Layout::from_size_align(100, 8).unwrap();
    let blocks: Vec<_> = (0..6).map(|_| heap.allocate(layout).unwrap()).collect();
    // Free every other block: three free 112-byte chunks with used neighbours.
    for b in blocks.iter().step_by(2) {
        // SAFETY: live blocks.
        unsafe { heap.deallocate(b.cast(), layout) };
    }
    heap.check().unwrap();
    let class = Bins::<BufferPages>::class_of(layout).unwrap();
    let mut out = [core::ptr::null_mut(); 3];
    assert_eq!(heap.allocate_batch(class, &mut out), 3);
    let mut reused: Vec<_> = out.iter().map(|&p| p as usize).collect();
    let mut freed: Vec<_> = blocks
        .iter()
        .step_by(2)
        .map(|b| b.cast::<u8>().as_ptr() as usize)
        .collect();
    reused.sort_unstable();
    freed.sort_unstable();
    assert_eq!(reused, freed);
    heap.check().unwrap();
}

#[test]
fn a_carve_leaves_no_sliver() {
    // Over a heap whose free chunk is 16 bytes past a whole number of blocks, every block
    // handed out still has the class's exact size.
    let heap = Bins::with_config(pages(1 << 20), Config::NO_CACHES);
    let small = Layout::from_size_align(200, 8).unwrap();
    let a = heap.allocate(small).unwrap(); // 208-byte chunk
    let guard = heap
        .allocate(Layout::from_size_align(24, 8).unwrap())
        .unwrap();
    // SAFETY: live block.
    unsafe { heap.deallocate(a.cast(), small) };
    // A 208-byte free chunk: three 64-byte chunks (192) leave a 16-byte sliver that must not
    // ride along with the third block.
    let class = Bins::<BufferPages>::class_of(Layout::from_size_align(56, 8).unwrap()).unwrap();
    assert_eq!(Bins::<BufferPages>::class_size(class), 56); // chunk 64
    let mut out = [core::ptr::null_mut(); 3];
    assert_eq!(heap.allocate_batch(class, &mut out), 3);
    for &p in &out {
        // SAFETY: live blocks.
        unsafe { assert_eq!(heap.class_of_block(NonNull::new(p).unwrap()), Some(class)) };
    }
    heap.check().unwrap();
    // SAFETY: live blocks of the class.
    unsafe {
        heap.deallocate_batch(class, &out);
        heap.deallocate(guard.cast(), Layout::from_size_align(24, 8).unwrap());
    }
    heap.check().unwrap();
    assert_eq!(heap.stats().unwrap().live_blocks, 0);
}

#[test]
fn an_out_of_memory_batch_returns_what_it_has() {
    let heap = Bins::with_config(pages(64 * 1024), Config::NO_CACHES);
    let mut out = vec![core::ptr::null_mut(); 100];
    let class = CLASS_COUNT - 1;
    let mut total = 0;
    loop {
        let got = heap.allocate_batch(class, &mut out);
        heap.check().unwrap();
        if got == 0 {
            break;
        }
        total += got;
        assert!(total < 100);
    }
    assert!(total >= 50, "most of 64 KiB in 1008-byte blocks: {total}");
    assert_eq!(heap.stats().unwrap().live_blocks, total);
}

#[test]
fn a_shrunk_mmapped_block_returns_its_tail_pages() {
    let source = pages(4 << 20);
    let heap = Bins::new(&source);
    let old = Layout::from_size_align(512 * 1024, 8).unwrap();
    let block = heap.allocate(old).unwrap();
    let mapped_big = source.mapped_bytes();
    let new = Layout::from_size_align(200 * 1024, 8).unwrap();
    // SAFETY: a live block with layout `old`; it stays put.
    let shrunk = unsafe { heap.shrink(block.cast(), old, new) }.unwrap();
    assert_eq!(shrunk.cast::<u8>(), block.cast::<u8>());
    assert!(shrunk.len() >= new.size() && shrunk.len() < new.size() + PAGE);
    let returned = mapped_big - source.mapped_bytes();
    assert_eq!(returned, (512 - 200) * 1024, "whole pages of the tail");
    heap.check().unwrap();
    // SAFETY: the shrunk block is live with `new`.
    unsafe {
        shrunk.cast::<u8>().as_ptr().write_bytes(7, new.size());
        heap.deallocate(shrunk.cast(), new);
    }
    heap.check().unwrap();
    assert_eq!(heap.stats().unwrap().live_blocks, 0);
}

#[test]
fn an_aligned_mmapped_block_shrinks_below_a_page() {
    let source = pages(4 << 20);
    let heap = Bins::new(&source);
    let old = Layout::from_size_align(300 * 1024, 8192).unwrap();
    let block = heap.allocate(old).unwrap();
    assert_eq!(block.cast::<u8>().as_ptr() as usize % 8192, 0);
    let new = Layout::from_size_align(100, 8192).unwrap();
    let before = source.mapped_bytes();
    // SAFETY: a live block with layout `old`.
    let shrunk = unsafe { heap.shrink(block.cast(), old, new) }.unwrap();
    assert!(source.mapped_bytes() < before);
    heap.check().unwrap();
    // SAFETY: live with `new`.
    unsafe { heap.deallocate_unsized(shrunk.cast()) };
    heap.check().unwrap();
    assert_eq!(heap.stats().unwrap().live_blocks, 0);
}
