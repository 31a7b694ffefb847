//! `Arena` (the bump allocator): allocate, free / grow / shrink (in place for the newest
//! block), checkpoint and rewind (stale checkpoints included), reset, and the allocation limit.

use crate::driver::{AllocOp, Driver, Limits};
use crate::input::for_each_op;
use crate::pages::JunkPages;
use arbitrary::Arbitrary;
use heapkit_bump::{Arena, Checkpoint};

/// The buffer under the arena.
pub const BUFFER_BYTES: usize = 8 << 20;
/// The most checkpoints remembered (valid ones, and stale ones apart).
pub const CHECKPOINTS_MAX: usize = 8;

/// The ops of this target.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Op {
    /// A generic op (frees of other than the newest block are no-ops in an arena).
    Alloc(AllocOp),
    /// Free the newest block (its memory is reused at once).
    FreeNewest,
    /// Grow the newest block (in place while it is the last in its chunk).
    GrowNewest {
        /// Bytes added.
        extra: crate::input::Size,
        /// Through `grow_zeroed`.
        zeroed: bool,
    },
    /// Shrink the newest block (in place).
    ShrinkNewest {
        /// The new size in thousandths of the old.
        keep_per_mille: u16,
    },
    /// `checkpoint()`.
    Checkpoint,
    /// `rewind` to a remembered checkpoint: blocks admitted after it are gone, those before
    /// it must be intact; later checkpoints become stale.
    Rewind {
        /// Which checkpoint (modulo how many).
        pick: u8,
    },
    /// `rewind` to a stale checkpoint (one a reset or an earlier rewind outdated): must be
    /// harmless. The shadow forgets every block, as a caller could not know which survive.
    RewindStale {
        /// Which stale checkpoint.
        pick: u8,
    },
    /// `reset()`: every block is gone.
    Reset,
    /// `set_allocation_limit`: `None` when `kib` is 0.
    Limit {
        /// The cap in KiB.
        kib: u16,
    },
    /// `owns` must be true for every live block.
    Owns,
}

struct Bump {
    driver: Driver<Arena<JunkPages>>,
    valid: Vec<(Checkpoint, u64)>,
    stale: Vec<Checkpoint>,
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let arena = Arena::with_source(JunkPages::new(BUFFER_BYTES));
    let limits = Limits {
        max_size_bytes: 1 << 20,
        max_align_bytes: 1 << 16,
        must_succeed_below_live_bytes: None,
        live_accounting: false,
    };
    let mut bump = Bump {
        driver: Driver::new(arena, limits),
        valid: Vec::new(),
        stale: Vec::new(),
    };
    for_each_op(data, |op: Op| {
        let before_bytes = bump.driver.a.allocated_bytes();
        bump.apply(op);
        bump.driver.check(&op);
        if let Some(limit_bytes) = bump.driver.a.allocation_limit() {
            let after_bytes = bump.driver.a.allocated_bytes();
            assert!(
                after_bytes <= before_bytes.max(limit_bytes),
                "{op:?} took the arena from {before_bytes} to {after_bytes} bytes past its limit of {limit_bytes}"
            );
        }
    });
    let mut arena = bump.driver.finish();
    arena.reset();
    heapkit_core::Introspect::check(&arena).expect("check() after the final reset");
}

impl Bump {
    fn apply(&mut self, op: Op) {
        let driver = &mut self.driver;
        match op {
            Op::Alloc(op) => driver.apply(op),
            Op::FreeNewest => {
                if let Some(block) = driver.shadow.take_newest() {
                    driver.free(block, false);
                }
            }
            Op::GrowNewest { extra, zeroed } => {
                if let Some(block) = driver.shadow.take_newest() {
                    driver.grow(block, extra, zeroed, false);
                }
            }
            Op::ShrinkNewest { keep_per_mille } => {
                if let Some(block) = driver.shadow.take_newest() {
                    driver.shrink(block, keep_per_mille, false);
                }
            }
            Op::Checkpoint => {
                if self.valid.len() < CHECKPOINTS_MAX {
                    self.valid
                        .push((driver.a.checkpoint(), driver.shadow.epoch()));
                }
            }
            Op::Rewind { pick } => self.rewind(usize::from(pick)),
            Op::RewindStale { pick } => {
                if self.stale.is_empty() {
                    return;
                }
                let checkpoint = self.stale[usize::from(pick) % self.stale.len()];
                driver.a.rewind(checkpoint);
                driver.shadow.forget_unless(|b| b.len == 0);
                self.outdate_all();
            }
            Op::Reset => {
                driver.a.reset();
                driver.shadow.forget_unless(|b| b.len == 0);
                self.outdate_all();
            }
            Op::Limit { kib } => {
                let limit_bytes = (kib != 0).then(|| usize::from(kib) * 1024);
                driver.a.set_allocation_limit(limit_bytes);
            }
            Op::Owns => {
                for block in driver.shadow.blocks().filter(|b| b.len > 0) {
                    assert!(
                        driver.a.owns(block.ptr.as_ptr()),
                        "the arena does not own live block {:p} ({:?})",
                        block.ptr.as_ptr(),
                        block.layout
                    );
                }
            }
        }
    }

    /// Every valid checkpoint turns stale (after a reset, or a rewind to a stale one).
    fn outdate_all(&mut self) {
        for (checkpoint, _) in self.valid.drain(..) {
            if self.stale.len() < CHECKPOINTS_MAX {
                self.stale.push(checkpoint);
            }
        }
    }

    /// Rewinds to the `pick`-th valid checkpoint: blocks admitted since are forgotten, the
    /// rest are verified, and the later checkpoints turn stale.
    fn rewind(&mut self, pick: usize) {
        if self.valid.is_empty() {
            return;
        }
        let at = pick % self.valid.len();
        let (checkpoint, epoch) = self.valid[at];
        for (later, _) in self.valid.drain(at + 1..) {
            if self.stale.len() < CHECKPOINTS_MAX {
                self.stale.push(later);
            }
        }
        self.driver.a.rewind(checkpoint);
        self.driver
            .shadow
            .forget_unless(|b| b.len == 0 || b.epoch < epoch);
        self.driver.shadow.verify_all();
    }
}
