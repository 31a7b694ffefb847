//! The model-based property test: random operation sequences applied to the allocator and to a
//! model of what must be live, compared after every step.

use crate::pattern;
use crate::suite::{Suite, MAX_LIVE_BLOCKS};
use heapkit_core::{Allocator, Introspect};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::alloc::Layout;
use std::collections::BTreeMap;
use std::ptr::NonNull;

/// One step of a sequence. Indices pick a live block modulo the number of live blocks.
#[derive(Clone, Debug)]
pub enum Op {
    /// `allocate` (or `allocate_zeroed`).
    Alloc {
        size: usize,
        align_shift: u32,
        zeroed: bool,
    },
    /// `deallocate`, with the size asked for or (`returned_len`) the length returned.
    Free { index: usize, returned_len: bool },
    /// `grow` (or `grow_zeroed`) by `extra` bytes, optionally doubling the alignment.
    Grow {
        index: usize,
        extra: usize,
        zeroed: bool,
        more_aligned: bool,
    },
    /// `shrink` to `keep_per_mille` of the size (0 frees the block).
    Shrink { index: usize, keep_per_mille: usize },
}

/// A live block as the model knows it.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub ptr: NonNull<u8>,
    /// The layout it was asked for.
    pub layout: Layout,
    /// The length the allocator returned (at least `layout.size()`).
    pub len: usize,
    pub seed: u8,
}

/// The live blocks, keyed by address, and the checks that compare them with the allocator.
#[derive(Default)]
pub struct Model {
    live: BTreeMap<usize, Block>,
    zero_sized: Vec<Block>,
    next_seed: u8,
}

impl Model {
    pub fn len(&self) -> usize {
        self.live.len() + self.zero_sized.len()
    }

    fn seed(&mut self) -> u8 {
        self.next_seed = self.next_seed.wrapping_add(37);
        self.next_seed
    }

    /// Checks a fresh block (alignment, length, no overlap, zeroing), fills it, and records it.
    pub fn admit(
        &mut self,
        block: NonNull<[u8]>,
        layout: Layout,
        zeroed_from: Option<usize>,
    ) -> Result<Block, String> {
        let ptr = block.cast::<u8>();
        let addr = ptr.as_ptr() as usize;
        let len = block.len();
        if addr % layout.align() != 0 {
            return Err(format!(
                "block {addr:#x} is not aligned to {} ({layout:?})",
                layout.align()
            ));
        }
        if len < layout.size() {
            return Err(format!(
                "block {addr:#x} has {len} bytes, fewer than the {} asked",
                layout.size()
            ));
        }
        if len > 0 {
            self.check_no_overlap(addr, len)?;
            if let Some(from) = zeroed_from {
                // SAFETY: the allocator just handed out `len` bytes at `ptr`.
                if let Some(at) = unsafe { pattern::first_nonzero(ptr.as_ptr(), from, len) } {
                    return Err(format!(
                        "zeroed block {addr:#x} ({layout:?}) has a non-zero byte at {at}"
                    ));
                }
            }
        }
        let seed = self.seed();
        // SAFETY: the block is live and `len` bytes long: every byte must be writable.
        unsafe { pattern::fill(ptr.as_ptr(), len, seed) };
        let entry = Block {
            ptr,
            layout,
            len,
            seed,
        };
        if len > 0 {
            self.live.insert(addr, entry);
        } else {
            self.zero_sized.push(entry);
        }
        Ok(entry)
    }

    fn check_no_overlap(&self, addr: usize, len: usize) -> Result<(), String> {
        if let Some((&before, b)) = self.live.range(..=addr).next_back() {
            if before + b.len > addr {
                return Err(format!(
                    "block {addr:#x}+{len} overlaps live block {before:#x}+{}",
                    b.len
                ));
            }
        }
        if let Some((&after, b)) = self.live.range(addr..).next() {
            if addr + len > after {
                return Err(format!(
                    "block {addr:#x}+{len} overlaps live block {after:#x}+{}",
                    b.len
                ));
            }
        }
        Ok(())
    }

    /// Verifies that a live block still holds its pattern in its first `len` bytes.
    pub fn verify(block: &Block, len: usize) -> Result<(), String> {
        // SAFETY: the block is live (the model says so) and `len <= block.len`.
        match unsafe { pattern::first_mismatch(block.ptr.as_ptr(), len, block.seed) } {
            None => Ok(()),
            Some(at) => Err(format!(
                "block {:p} ({:?}) lost its contents at byte {at}",
                block.ptr.as_ptr(),
                block.layout
            )),
        }
    }

    /// Verifies every live block.
    pub fn verify_all(&self) -> Result<(), String> {
        self.live.values().try_for_each(|b| Self::verify(b, b.len))
    }

    /// Removes the block at position `index` (modulo the number of live blocks).
    pub fn take(&mut self, index: usize) -> Option<Block> {
        let count = self.len();
        if count == 0 {
            return None;
        }
        let index = index % count;
        if index < self.zero_sized.len() {
            return Some(self.zero_sized.swap_remove(index));
        }
        let addr = *self.live.keys().nth(index - self.zero_sized.len())?;
        self.live.remove(&addr)
    }

    /// Removes every block.
    pub fn drain(&mut self) -> Vec<Block> {
        let mut all: Vec<Block> = std::mem::take(&mut self.zero_sized);
        all.extend(std::mem::take(&mut self.live).into_values());
        all
    }
}

pub fn size_strategy(max_size_bytes: usize) -> BoxedStrategy<usize> {
    let cap = |n: usize| n.min(max_size_bytes);
    prop_oneof![
        1 => Just(0usize),
        10 => 1..=cap(64),
        6 => 1..=cap(1024),
        3 => 1..=cap(16 * 1024),
        1 => 1..=max_size_bytes,
    ]
    .boxed()
}

fn op_strategy(suite: &Suite) -> BoxedStrategy<Op> {
    let max_shift = suite.max_align_bytes.trailing_zeros();
    let small_shift = max_shift.min(4);
    let align_shift = prop_oneof![8 => 0..=small_shift, 1 => 0..=max_shift];
    let size = size_strategy(suite.max_size_bytes);
    let extra = size_strategy(suite.max_size_bytes / 2 + 1);
    prop_oneof![
        5 => (size, align_shift, any::<bool>()).prop_map(|(size, align_shift, zeroed)| Op::Alloc { size, align_shift, zeroed }),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(index, returned_len)| Op::Free { index, returned_len }),
        2 => (any::<usize>(), extra, any::<bool>(), prop::bool::weighted(0.1))
            .prop_map(|(index, extra, zeroed, more_aligned)| Op::Grow { index, extra, zeroed, more_aligned }),
        1 => (any::<usize>(), 0usize..=1000).prop_map(|(index, keep_per_mille)| Op::Shrink { index, keep_per_mille }),
    ]
    .boxed()
}

/// Checks the allocator's own invariants, naming the operation that broke them.
pub fn check_after<A: Introspect>(
    suite: &Suite,
    a: &A,
    what: &dyn std::fmt::Debug,
) -> Result<(), String> {
    a.check()
        .map_err(|e| format!("{}: check() failed after {what:?}: {e}", suite.name))
}

/// Frees every block of the model, then requires the stats (if any) to show nothing live.
pub fn free_all_and_check_stats<A: Allocator + Introspect>(
    suite: &Suite,
    a: &A,
    model: &mut Model,
) -> Result<(), String> {
    model.verify_all()?;
    for block in model.drain() {
        // SAFETY: the block is live and `layout` is the layout it was asked with.
        unsafe { a.deallocate(block.ptr, block.layout) };
        check_after(suite, a, &"final free")?;
    }
    if suite.live_accounting {
        if let Some(stats) = a.stats() {
            if stats.live_bytes != 0 || stats.live_blocks != 0 {
                return Err(format!(
                    "{}: everything was freed but stats say live: {stats}",
                    suite.name
                ));
            }
        }
    }
    Ok(())
}

struct Step<'a, A> {
    suite: &'a Suite,
    a: &'a A,
    model: &'a mut Model,
}

impl<A: Allocator + Introspect> Step<'_, A> {
    fn apply(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Alloc {
                size,
                align_shift,
                zeroed,
            } => self.alloc(size, 1 << align_shift, zeroed),
            Op::Free {
                index,
                returned_len,
            } => self.free(index, returned_len),
            Op::Grow {
                index,
                extra,
                zeroed,
                more_aligned,
            } => self.grow(index, extra, zeroed, more_aligned),
            Op::Shrink {
                index,
                keep_per_mille,
            } => self.shrink(index, keep_per_mille),
        }?;
        check_after(self.suite, self.a, op)
    }

    fn alloc(&mut self, size: usize, align: usize, zeroed: bool) -> Result<(), String> {
        if self.model.len() >= MAX_LIVE_BLOCKS {
            return self.free(0, false);
        }
        let layout = Layout::from_size_align(size, align).map_err(|e| e.to_string())?;
        let result = if zeroed {
            self.a.allocate_zeroed(layout)
        } else {
            self.a.allocate(layout)
        };
        match result {
            Ok(block) => self
                .model
                .admit(block, layout, zeroed.then_some(0))
                .map(drop),
            Err(_) if self.suite.must_succeed(size, align) => Err(format!(
                "{}: allocate({layout:?}) failed, but small requests must succeed",
                self.suite.name
            )),
            Err(_) => self.model.verify_all(),
        }
    }

    fn free(&mut self, index: usize, returned_len: bool) -> Result<(), String> {
        let Some(block) = self.model.take(index) else {
            return Ok(());
        };
        Model::verify(&block, block.len)?;
        let size = if returned_len {
            block.len
        } else {
            block.layout.size()
        };
        let layout =
            Layout::from_size_align(size, block.layout.align()).map_err(|e| e.to_string())?;
        // SAFETY: the block is live, and a layout with its alignment and a size between the size
        // asked and the length returned fits it.
        unsafe { self.a.deallocate(block.ptr, layout) };
        Ok(())
    }

    fn grow(
        &mut self,
        index: usize,
        extra: usize,
        zeroed: bool,
        more_aligned: bool,
    ) -> Result<(), String> {
        let Some(old) = self.model.take(index) else {
            return Ok(());
        };
        let align = if more_aligned {
            (old.layout.align() * 2).min(self.suite.max_align_bytes)
        } else {
            old.layout.align()
        };
        let size =
            (old.layout.size() + extra).min(self.suite.max_size_bytes.max(old.layout.size()));
        let new_layout = Layout::from_size_align(size, align).map_err(|e| e.to_string())?;
        // SAFETY: `old` is live with `old.layout`, and the new size is not smaller.
        let result = unsafe {
            if zeroed {
                self.a.grow_zeroed(old.ptr, old.layout, new_layout)
            } else {
                self.a.grow(old.ptr, old.layout, new_layout)
            }
        };
        self.replace(old, new_layout, result, zeroed)
    }

    fn shrink(&mut self, index: usize, keep_per_mille: usize) -> Result<(), String> {
        let Some(old) = self.model.take(index) else {
            return Ok(());
        };
        let size = old.layout.size() * keep_per_mille / 1000;
        let new_layout =
            Layout::from_size_align(size, old.layout.align()).map_err(|e| e.to_string())?;
        // SAFETY: `old` is live with `old.layout`, and the new size is not larger.
        let result = unsafe { self.a.shrink(old.ptr, old.layout, new_layout) };
        if size == 0 {
            return match result {
                Ok(block) if block.is_empty() => Ok(()),
                Ok(_) => Err(format!(
                    "{}: shrink to zero returned a non-empty block",
                    self.suite.name
                )),
                Err(_) => Err(format!("{}: shrink to zero failed", self.suite.name)),
            };
        }
        self.replace(old, new_layout, result, false)
    }

    /// Records the outcome of a grow or shrink: on success the new block must hold the old
    /// prefix (and zeros after it if asked); on failure the old block must be intact and live.
    fn replace(
        &mut self,
        old: Block,
        new_layout: Layout,
        result: Result<NonNull<[u8]>, heapkit_core::AllocError>,
        zeroed: bool,
    ) -> Result<(), String> {
        let kept = old.layout.size().min(new_layout.size());
        match result {
            Ok(block) => {
                let moved = Block {
                    ptr: block.cast(),
                    layout: new_layout,
                    len: block.len(),
                    seed: old.seed,
                };
                Model::verify(&moved, kept)?;
                let zeroed_from = zeroed.then_some(old.layout.size());
                self.model.admit(block, new_layout, zeroed_from).map(drop)
            }
            Err(_)
                if self
                    .suite
                    .must_succeed(new_layout.size(), new_layout.align()) =>
            {
                Err(format!(
                    "{}: resizing {:?} to {new_layout:?} failed, but small requests must succeed",
                    self.suite.name, old.layout
                ))
            }
            Err(_) => {
                Model::verify(&old, old.len)?;
                if old.len > 0 {
                    self.model.live.insert(old.ptr.as_ptr() as usize, old);
                } else {
                    self.model.zero_sized.push(old);
                }
                Ok(())
            }
        }
    }
}

/// Runs one operation sequence on a fresh allocator.
pub fn run_sequence<A: Allocator + Introspect>(
    suite: &Suite,
    a: &A,
    ops: &[Op],
) -> Result<(), String> {
    check_after(suite, a, &"construction")?;
    let mut model = Model::default();
    let mut step = Step {
        suite,
        a,
        model: &mut model,
    };
    for op in ops {
        step.apply(op)?;
    }
    free_all_and_check_stats(suite, a, &mut model)
}

pub fn proptest_config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

pub fn run<A: Allocator + Introspect>(suite: &Suite, make: &dyn Fn() -> A) {
    let ops_per_case = if cfg!(miri) { 24 } else { 96 };
    let strategy = prop::collection::vec(op_strategy(suite), 1..ops_per_case);
    let mut runner = TestRunner::new(proptest_config(suite.cases));
    let outcome = runner.run(&strategy, |ops| {
        let a = make();
        run_sequence(suite, &a, &ops).map_err(TestCaseError::fail)
    });
    if let Err(e) = outcome {
        panic!("{}: conformance failed: {e}", suite.name);
    }
}
