//! Zeroed allocations skip the memset over memory known fresh from a zeroing source; these
//! tests check they are still zero after every way memory gets reused: a freed or shrunk last
//! block, a rewind, a reset (whose chunks come back dirty). Every block handed out is filled
//! with 0xAA at once, so a block wrongly believed zero shows up. The source here zeroes its
//! chunks (`alloc_zeroed`) and says so, which is what turns the skip on, under Miri too.

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_bump::{Arena, Checkpoint, ChunkSource};
use heapkit_core::{AllocError, Allocator, Introspect};
use proptest::prelude::*;

/// Chunks from the global allocator's `alloc_zeroed`, reported as zeroed.
#[derive(Default)]
struct ZeroingSource;

// SAFETY: blocks of the global allocator are valid, aligned and disjoint until deallocated,
// which only `free_chunk` does, with the layout they were allocated with.
unsafe impl ChunkSource for ZeroingSource {
    fn granule_bytes(&self) -> usize {
        64
    }

    fn alloc_chunk(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        let layout = Layout::from_size_align(len_bytes, align_bytes).map_err(|_| AllocError)?;
        // SAFETY: the layout is non-zero-sized (chunks are never empty).
        NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).ok_or(AllocError)
    }

    unsafe fn free_chunk(&self, ptr: NonNull<u8>, len_bytes: usize, align_bytes: usize) {
        // SAFETY: `alloc_chunk` built this layout and allocated `ptr` with it.
        unsafe {
            std::alloc::dealloc(
                ptr.as_ptr(),
                Layout::from_size_align_unchecked(len_bytes, align_bytes),
            )
        }
    }

    fn chunks_zeroed(&self) -> bool {
        true
    }
}

const DIRT: u8 = 0xAA;

/// Allocates zeroed, checks the bytes, then dirties them as a caller would.
fn zeroed(arena: &Arena<ZeroingSource>, layout: Layout) -> Result<NonNull<u8>, TestCaseError> {
    let block = arena.allocate_zeroed(layout).unwrap().cast::<u8>();
    // SAFETY: a fresh block of `layout.size()` bytes.
    let bytes = unsafe { core::slice::from_raw_parts_mut(block.as_ptr(), layout.size()) };
    prop_assert!(
        bytes.iter().all(|&b| b == 0),
        "zeroed block of {} bytes holds old bytes",
        layout.size()
    );
    bytes.fill(DIRT);
    Ok(block)
}

#[derive(Clone, Debug)]
enum Op {
    Zeroed { size_bytes: usize, align_shift: u32 },
    Dirty { size_bytes: usize },
    FreeLast,
    ShrinkLast,
    GrowLast,
    Checkpoint,
    Rewind,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let max_size_bytes: usize = if cfg!(miri) { 300 } else { 6000 };
    prop_oneof![
        6 => (1usize..max_size_bytes, 0u32..7).prop_map(|(size_bytes, align_shift)| Op::Zeroed { size_bytes, align_shift }),
        4 => (1usize..max_size_bytes).prop_map(|size_bytes| Op::Dirty { size_bytes }),
        2 => Just(Op::FreeLast),
        1 => Just(Op::ShrinkLast),
        1 => Just(Op::GrowLast),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Rewind),
        1 => Just(Op::Reset),
    ]
}

const MAX_OPS: usize = if cfg!(miri) { 30 } else { 200 };

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut arena = Arena::with_source(ZeroingSource);
    // The most recent block, while it still is (frees, grows and shrinks act on it).
    let mut last: Option<(NonNull<u8>, Layout)> = None;
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Zeroed {
                size_bytes,
                align_shift,
            } => {
                let layout = Layout::from_size_align(size_bytes, 1 << align_shift).unwrap();
                last = Some((zeroed(&arena, layout)?, layout));
            }
            Op::Dirty { size_bytes } => {
                let layout = Layout::from_size_align(size_bytes, 8).unwrap();
                let block = arena.allocate(layout).unwrap().cast::<u8>();
                // SAFETY: a fresh block of `size_bytes`.
                unsafe { block.as_ptr().write_bytes(DIRT, size_bytes) };
                last = Some((block, layout));
            }
            Op::FreeLast => {
                if let Some((block, layout)) = last.take() {
                    // SAFETY: a live block of this arena with its layout.
                    unsafe { arena.deallocate(block, layout) };
                }
            }
            Op::ShrinkLast => {
                if let Some((block, layout)) = last.take() {
                    let smaller = Layout::from_size_align(layout.size() / 2 + 1, 1).unwrap();
                    // SAFETY: a live block of this arena, shrunk to a smaller size.
                    let moved = unsafe { arena.shrink(block, layout, smaller) }.unwrap();
                    last = Some((moved.cast::<u8>(), smaller));
                }
            }
            Op::GrowLast => {
                if let Some((block, layout)) = last.take() {
                    let larger =
                        Layout::from_size_align(layout.size() * 2, layout.align()).unwrap();
                    // SAFETY: a live block of this arena, grown to a larger size.
                    let moved = unsafe { arena.grow(block, layout, larger) }.unwrap();
                    // SAFETY: the grown block has `larger.size()` bytes.
                    unsafe { moved.cast::<u8>().as_ptr().write_bytes(DIRT, larger.size()) };
                    last = Some((moved.cast::<u8>(), larger));
                }
            }
            Op::Checkpoint => checkpoints.push(arena.checkpoint()),
            Op::Rewind => {
                if let Some(checkpoint) = checkpoints.pop() {
                    arena.rewind(checkpoint);
                    last = None;
                }
            }
            Op::Reset => {
                arena.reset();
                last = None;
                checkpoints.clear();
            }
        }
        if let Err(e) = arena.check() {
            return Err(TestCaseError::fail(format!(
                "check() after step {step}: {e}"
            )));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 128 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn zeroed_blocks_are_zero_after_any_reuse(ops in proptest::collection::vec(op(), 1..MAX_OPS)) {
        run(ops)?;
    }
}

/// Whether the first `len` bytes of a live block are zero.
fn all_zero(block: NonNull<u8>, len: usize) -> bool {
    // SAFETY: callers pass a live block of at least `len` bytes.
    let bytes = unsafe { core::slice::from_raw_parts(block.as_ptr(), len) };
    bytes.iter().all(|&b| b == 0)
}

#[test]
fn fresh_memory_is_not_written_and_reused_memory_is_cleared() {
    let mut arena = Arena::with_source(ZeroingSource);
    let layout = Layout::from_size_align(1024, 8).unwrap();
    let first = arena.try_alloc_layout_zeroed(layout).unwrap();
    // SAFETY: 1024 fresh bytes.
    unsafe { first.as_ptr().write_bytes(DIRT, 1024) };
    // SAFETY: the last block, with its layout.
    unsafe { arena.deallocate(first, layout) };
    let again = arena.try_alloc_layout_zeroed(layout).unwrap();
    assert_eq!(again, first, "the freed last block is reused");
    assert!(all_zero(again, 1024));
    // SAFETY: 1024 bytes of a live block.
    unsafe { again.as_ptr().write_bytes(DIRT, 1024) };
    arena.reset();
    let after_reset = arena.try_alloc_layout_zeroed(layout).unwrap();
    assert!(all_zero(after_reset, 1024));
    arena.check().unwrap();
}

/// The point of the skip: a big zeroed block in a fresh `mmap` chunk touches no page until the
/// caller does.
#[test]
#[cfg_attr(miri, ignore = "mmap is not available under Miri")]
fn a_fresh_mmap_chunk_is_not_touched_by_a_zeroed_allocation() {
    let arena = Arena::with_source(heapkit_pages::MmapPages::new());
    let layout = Layout::from_size_align(8 << 20, 8).unwrap();
    let block = arena.try_alloc_layout_zeroed(layout).unwrap();
    // SAFETY: a live block of 8 MiB; reading untouched anonymous memory maps the zero page.
    let bytes = unsafe { core::slice::from_raw_parts(block.as_ptr(), layout.size()) };
    assert!(bytes.iter().step_by(4096).all(|&b| b == 0));
    arena.check().unwrap();
}

/// The chunk cache reports per chunk: a fresh run skips the memset, a reused one (holding the
/// bytes a dropped arena left) is cleared.
#[test]
#[cfg_attr(
    miri,
    ignore = "the chunk cache maps with mmap, which Miri does not model"
)]
fn the_chunk_cache_zeroes_reused_chunks_only() {
    let layout = Layout::from_size_align(1 << 20, 8).unwrap();
    for _ in 0..3 {
        let arena = Arena::new();
        let block = arena.try_alloc_layout_zeroed(layout).unwrap();
        assert!(all_zero(block, layout.size()));
        // SAFETY: a live block of `layout.size()` bytes, dirtied for the next arena.
        unsafe { block.as_ptr().write_bytes(0xA5, layout.size()) };
        arena.check().unwrap();
    }
    assert!(heapkit_bump::CHUNK_CACHE.retained().reused_maps >= 2);
}
