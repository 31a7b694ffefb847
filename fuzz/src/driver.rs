//! The generic half of every target: allocate / free / grow / shrink through heapkit's
//! `Allocator` trait, against the shadow, with `check()` after every op.

use crate::input::{Align, Size};
use crate::shadow::{Block, Shadow};
use arbitrary::Arbitrary;
use core::alloc::Layout;
use core::fmt::Debug;
use core::ptr::NonNull;
use heapkit_core::{AllocError, Allocator, Introspect, UnsizedAllocator};

/// The ops every allocator takes. Indices pick a live block modulo the number of live blocks.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum AllocOp {
    /// `allocate` or `allocate_zeroed`.
    Alloc {
        /// Requested size.
        size: Size,
        /// Requested alignment.
        align: Align,
        /// Through `allocate_zeroed`.
        zeroed: bool,
    },
    /// `deallocate` with the size asked for, or (`returned_len`) the length returned.
    Free {
        /// Which block.
        index: u8,
        /// Free with the returned length rather than the asked size.
        returned_len: bool,
    },
    /// `grow` or `grow_zeroed` by `extra` bytes, optionally to twice the alignment.
    Grow {
        /// Which block.
        index: u8,
        /// Bytes added to the size.
        extra: Size,
        /// Through `grow_zeroed`.
        zeroed: bool,
        /// Ask for twice the alignment.
        more_aligned: bool,
    },
    /// `shrink` to `keep_per_mille` of the size (0 frees the block), optionally to twice the
    /// alignment.
    Shrink {
        /// Which block.
        index: u8,
        /// The new size as a fraction of the old, in thousandths (values above 1000 clamp).
        keep_per_mille: u16,
        /// Ask for twice the alignment.
        more_aligned: bool,
    },
}

/// The bounds a target puts on requests, and what it requires of the allocator.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest size asked for.
    pub max_size_bytes: usize,
    /// The largest alignment asked for.
    pub max_align_bytes: usize,
    /// Requests of at most 4 KiB aligned to at most 16 must succeed while the shadow's live
    /// bytes are below this (`None`: any request may fail, as with a fixed capacity).
    pub must_succeed_below_live_bytes: Option<usize>,
    /// Whether `stats()` must show nothing live once every block is freed.
    pub live_accounting: bool,
}

/// Requests at or below this size (and [`SMALL_ALIGN_BYTES`]) are "small".
pub const SMALL_REQUEST_BYTES: usize = 4096;
/// See [`SMALL_REQUEST_BYTES`].
pub const SMALL_ALIGN_BYTES: usize = 16;

/// An allocator under test, with its shadow.
pub struct Driver<A> {
    /// The allocator.
    pub a: A,
    /// What must be live.
    pub shadow: Shadow,
    /// The target's bounds.
    pub limits: Limits,
}

impl<A: Allocator + Introspect> Driver<A> {
    /// Starts with nothing live; `check()` must already pass.
    pub fn new(a: A, limits: Limits) -> Self {
        assert!(limits.max_align_bytes.is_power_of_two());
        let driver = Driver {
            a,
            shadow: Shadow::default(),
            limits,
        };
        driver.check(&"construction");
        driver
    }

    /// Runs the allocator's `check()`.
    ///
    /// # Panics
    /// When it fails, naming the op that came before.
    pub fn check(&self, after: &dyn Debug) {
        if let Err(e) = self.a.check() {
            panic!("check() failed after {after:?}: {e:?}");
        }
    }

    /// Applies one op, then `check()`.
    pub fn apply(&mut self, op: AllocOp) {
        match op {
            AllocOp::Alloc {
                size,
                align,
                zeroed,
            } => {
                let layout = self.layout(size, align);
                self.alloc(layout, zeroed);
            }
            AllocOp::Free {
                index,
                returned_len,
            } => {
                if let Some(block) = self.shadow.take(usize::from(index)) {
                    self.free(block, returned_len);
                }
            }
            AllocOp::Grow {
                index,
                extra,
                zeroed,
                more_aligned,
            } => {
                if let Some(block) = self.shadow.take(usize::from(index)) {
                    self.grow(block, extra, zeroed, more_aligned);
                }
            }
            AllocOp::Shrink {
                index,
                keep_per_mille,
                more_aligned,
            } => {
                if let Some(block) = self.shadow.take(usize::from(index)) {
                    self.shrink(block, keep_per_mille, more_aligned);
                }
            }
        }
        self.check(&op);
    }

    /// The layout `size` and `align` decode to under the target's bounds.
    pub fn layout(&self, size: Size, align: Align) -> Layout {
        let size_bytes = size.bytes(self.limits.max_size_bytes);
        let align_bytes = align.bytes(self.limits.max_align_bytes);
        Layout::from_size_align(size_bytes, align_bytes).expect("bounded sizes make valid layouts")
    }

    /// Whether a failed request for `layout` is a finding.
    pub fn must_succeed(&self, layout: Layout) -> bool {
        self.limits
            .must_succeed_below_live_bytes
            .is_some_and(|below| self.shadow.live_bytes() < below)
            && layout.size() <= SMALL_REQUEST_BYTES
            && layout.align() <= SMALL_ALIGN_BYTES
    }

    /// `allocate` (or `allocate_zeroed`), admitting the block; `None` when refused (or the
    /// shadow is full, which frees a block instead).
    pub fn alloc(&mut self, layout: Layout, zeroed: bool) -> Option<Block> {
        if self.shadow.is_full() {
            let block = self.shadow.take(0)?;
            self.free(block, false);
            return None;
        }
        let result = if zeroed {
            self.a.allocate_zeroed(layout)
        } else {
            self.a.allocate(layout)
        };
        self.admit_or_refused(result, layout, zeroed.then_some(0), None)
    }

    /// Admits a block the allocator returned, or on `Err` checks that the refusal is allowed
    /// and that nothing live was touched.
    pub fn admit_or_refused(
        &mut self,
        result: Result<NonNull<[u8]>, AllocError>,
        layout: Layout,
        zeroed_from: Option<usize>,
        kept: Option<(u8, usize)>,
    ) -> Option<Block> {
        match result {
            Ok(block) => Some(self.shadow.admit(block, layout, zeroed_from, kept)),
            Err(AllocError) => {
                assert!(
                    !self.must_succeed(layout),
                    "{layout:?} refused with only {} live bytes",
                    self.shadow.live_bytes()
                );
                self.shadow.verify_all();
                None
            }
        }
    }

    /// Verifies and frees `block` (already taken out of the shadow).
    pub fn free(&mut self, block: Block, returned_len: bool) {
        Shadow::verify(&block, block.len);
        let size = if returned_len {
            block.len
        } else {
            block.layout.size()
        };
        let layout = Layout::from_size_align(size, block.layout.align())
            .expect("a returned length is a valid size");
        // SAFETY: the block is live, and a layout with its alignment and a size between the
        // size asked and the length returned fits it.
        unsafe { self.a.deallocate(block.ptr, layout) };
    }

    /// `grow` (or `grow_zeroed`) of `old` (taken out of the shadow).
    pub fn grow(&mut self, old: Block, extra: Size, zeroed: bool, more_aligned: bool) {
        let align = if more_aligned {
            (old.layout.align() * 2).min(self.limits.max_align_bytes)
        } else {
            old.layout.align()
        };
        let max = self.limits.max_size_bytes.max(old.layout.size());
        let size = (old.layout.size() + extra.bytes(self.limits.max_size_bytes)).min(max);
        let new_layout = Layout::from_size_align(size, align).expect("bounded");
        // SAFETY: `old` is live with `old.layout`, and the new size is not smaller.
        let result = unsafe {
            if zeroed {
                self.a.grow_zeroed(old.ptr, old.layout, new_layout)
            } else {
                self.a.grow(old.ptr, old.layout, new_layout)
            }
        };
        self.resized(old, new_layout, result, zeroed);
    }

    /// `shrink` of `old` (taken out of the shadow) to `keep_per_mille` of its size.
    pub fn shrink(&mut self, old: Block, keep_per_mille: u16, more_aligned: bool) {
        let keep_per_mille = usize::from(keep_per_mille.min(1000));
        let size = old.layout.size() * keep_per_mille / 1000;
        let align = if more_aligned {
            (old.layout.align() * 2).min(self.limits.max_align_bytes)
        } else {
            old.layout.align()
        };
        let new_layout = Layout::from_size_align(size, align).expect("bounded");
        // SAFETY: `old` is live with `old.layout`, and the new size is not larger.
        let result = unsafe { self.a.shrink(old.ptr, old.layout, new_layout) };
        if size == 0 {
            match result {
                Ok(block) => assert!(block.is_empty(), "shrink to zero returned {block:?}"),
                Err(_) => panic!("shrink to zero failed"),
            }
            return;
        }
        self.resized(old, new_layout, result, false);
    }

    /// Records a grow's or shrink's outcome: on success the new block holds the old prefix
    /// (and zeros after it if asked); on failure the old block is intact and still live.
    pub fn resized(
        &mut self,
        old: Block,
        new_layout: Layout,
        result: Result<NonNull<[u8]>, AllocError>,
        zeroed: bool,
    ) {
        let kept_bytes = old.layout.size().min(new_layout.size());
        match result {
            Ok(block) => {
                let moved = Block {
                    ptr: block.cast(),
                    len: block.len(),
                    ..old
                };
                assert!(
                    moved.len >= kept_bytes,
                    "resized block of {} bytes cannot hold the {kept_bytes} kept",
                    moved.len
                );
                Shadow::verify(&moved, kept_bytes);
                let zeroed_from = zeroed.then_some(old.layout.size());
                self.shadow
                    .admit(block, new_layout, zeroed_from, Some((old.seed, kept_bytes)));
            }
            Err(AllocError) => {
                assert!(
                    !self.must_succeed(new_layout),
                    "resizing {:?} to {new_layout:?} failed with only {} live bytes",
                    old.layout,
                    self.shadow.live_bytes()
                );
                Shadow::verify(&old, old.len);
                self.shadow.restore(old);
            }
        }
    }

    /// Applies every op decoded from `data` with `apply`, running `check()` after each, then
    /// [`finish`](Self::finish)es and returns the allocator: the whole run of a target whose
    /// ops need no state beyond the driver.
    pub fn run<'a, Op>(mut self, data: &'a [u8], mut apply: impl FnMut(&mut Self, Op)) -> A
    where
        Op: Arbitrary<'a> + Copy + Debug,
    {
        crate::input::for_each_op(data, |op: Op| {
            apply(&mut self, op);
            self.check(&op);
        });
        self.finish()
    }

    /// Frees every live block (checking each), then requires `check()` and, with live
    /// accounting, stats showing nothing live. Returns the allocator.
    pub fn finish(mut self) -> A {
        self.shadow.verify_all();
        for block in self.shadow.drain() {
            self.free(block, false);
            self.check(&"final free");
        }
        self.assert_nothing_live();
        self.a
    }

    /// With live accounting, requires the stats (when the allocator keeps them) to show
    /// nothing live.
    pub fn assert_nothing_live(&self) {
        if !self.limits.live_accounting {
            return;
        }
        if let Some(stats) = self.a.stats() {
            assert!(
                stats.live_bytes == 0 && stats.live_blocks == 0,
                "everything was freed but stats say live: {stats}"
            );
        }
    }
}

impl<A: UnsizedAllocator + Introspect> Driver<A> {
    /// `deallocate_unsized` (C's `free`) of the block at `index`.
    pub fn free_unsized(&mut self, index: u8) {
        let Some(block) = self.shadow.take(usize::from(index)) else {
            return;
        };
        Shadow::verify(&block, block.len);
        if block.len == 0 {
            return; // zero-size blocks are not the allocator's
        }
        // SAFETY: a live, non-zero-size block of this allocator.
        unsafe { self.a.deallocate_unsized(block.ptr) };
    }

    /// `usable_size` of the block at `index` must cover its returned length and overlap no
    /// other block; the bytes past the returned length are then written (they are usable).
    pub fn check_usable_size(&mut self, index: u8) {
        let Some(block) = self.shadow.take(usize::from(index)) else {
            return;
        };
        if block.len > 0 {
            // SAFETY: a live, non-zero-size block of this allocator.
            let usable = unsafe { self.a.usable_size(block.ptr) };
            assert!(
                usable >= block.len,
                "usable_size {usable} of {:p} is below the {} bytes returned ({:?})",
                block.ptr.as_ptr(),
                block.len,
                block.layout
            );
            self.shadow
                .assert_disjoint(block.ptr.as_ptr() as usize, usable);
            for index in block.len..usable {
                // SAFETY: `usable_size` promises the whole range is the block's.
                unsafe { block.ptr.as_ptr().add(index).write(0x5A) };
            }
            Shadow::verify(&block, block.len);
        }
        self.shadow.restore(block);
    }
}
