//! Property tests for checkpoints, rewinds and resets: random programs of allocations,
//! checkpoints, rewinds and resets against a model of which blocks must still hold their bytes.

use core::alloc::Layout;
use heapkit_bump::{Arena, Checkpoint};
use heapkit_core::Introspect;
use heapkit_pages::BufferPages;
use heapkit_testkit::test_pages;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Alloc { size_bytes: usize, align_shift: u32 },
    Checkpoint,
    Rewind,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let max_size_bytes: usize = if cfg!(miri) { 512 } else { 20_000 };
    prop_oneof![
        8 => (1usize..max_size_bytes, 0u32..8).prop_map(|(size_bytes, align_shift)| Op::Alloc { size_bytes, align_shift }),
        2 => Just(Op::Checkpoint),
        2 => Just(Op::Rewind),
        1 => Just(Op::Reset),
    ]
}

/// A block the model expects intact: address, length, fill byte, and how many checkpoints
/// were open when it was allocated (a rewind to depth d frees the blocks above d).
struct Block {
    ptr: core::ptr::NonNull<u8>,
    addr: usize,
    len: usize,
    fill: u8,
    depth: usize,
}

/// Bounded per case: a few hundred ops over a 64 MiB owned buffer (touched only where used).
const MAX_OPS: usize = if cfg!(miri) { 24 } else { 200 };

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut arena: Arena<BufferPages<'static>> = Arena::with_source(test_pages(64 << 20));
    let mut blocks: Vec<Block> = Vec::new();
    let mut checkpoints: Vec<(Checkpoint, usize)> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Alloc {
                size_bytes,
                align_shift,
            } => {
                let layout = Layout::from_size_align(size_bytes, 1 << align_shift).unwrap();
                let block = arena.try_alloc_layout(layout).unwrap();
                let addr = block.as_ptr() as usize;
                prop_assert_eq!(addr % layout.align(), 0);
                for other in &blocks {
                    prop_assert!(addr + size_bytes <= other.addr || other.addr + other.len <= addr);
                }
                let fill = step as u8;
                // SAFETY: a fresh block of `size_bytes`.
                unsafe { block.as_ptr().write_bytes(fill, size_bytes) };
                blocks.push(Block {
                    ptr: block,
                    addr,
                    len: size_bytes,
                    fill,
                    depth: checkpoints.len(),
                });
            }
            Op::Checkpoint => checkpoints.push((arena.checkpoint(), arena.used_bytes())),
            Op::Rewind => {
                if let Some((checkpoint, used_bytes)) = checkpoints.pop() {
                    arena.rewind(checkpoint);
                    prop_assert_eq!(arena.used_bytes(), used_bytes);
                    let depth = checkpoints.len();
                    blocks.retain(|b| b.depth <= depth);
                }
            }
            Op::Reset => {
                arena.reset();
                prop_assert_eq!(arena.used_bytes(), 0);
                prop_assert!(arena.chunk_count() <= 1);
                blocks.clear();
                checkpoints.clear();
            }
        }
        if let Err(e) = arena.check() {
            return Err(TestCaseError::fail(format!(
                "check() after step {step}: {e}"
            )));
        }
        prop_assert_eq!(
            arena.allocated_bytes(),
            heapkit_core::PageSource::mapped_bytes(arena.source())
        );
        for b in &blocks {
            // SAFETY: the model says the block is live, so its bytes are readable.
            let bytes = unsafe { core::slice::from_raw_parts(b.ptr.as_ptr(), b.len) };
            prop_assert!(
                bytes.iter().all(|&x| x == b.fill),
                "block at {:#x} was overwritten",
                b.addr
            );
        }
    }
    Ok(())
}

proptest! {
    // No failure persistence: it needs the current directory, which Miri's isolation hides.
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 128 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn rewind_and_reset_keep_exactly_the_older_blocks(ops in proptest::collection::vec(op(), 1..MAX_OPS)) {
        run(ops)?;
    }
}
