//! `Slab` (size classes in 2 MiB chunks): allocate / free / grow / shrink, the batch calls a
//! thread cache uses, unsized free, usable size, class of a block, purge threshold and trim.

use crate::driver::{AllocOp, Driver, Limits};
use crate::pages::JunkPages;
use crate::shadow::Shadow;
use arbitrary::Arbitrary;
use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::BatchAllocator;
use heapkit_slab::{natural_align, Slab, CLASS_COUNT};

/// The buffer under the slab: room for a few 2 MiB-aligned chunks and huge blocks.
pub const BUFFER_BYTES: usize = 32 << 20;
/// The most blocks one batch op moves.
pub const BATCH_BLOCKS_MAX: usize = 32;

/// The ops of this target.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Op {
    /// A generic op.
    Alloc(AllocOp),
    /// `deallocate_unsized` (C's `free`).
    FreeUnsized {
        /// Which block.
        index: u8,
    },
    /// `usable_size` must cover the returned length.
    UsableSize {
        /// Which block.
        index: u8,
    },
    /// `class_of_block` must agree with the class of the block's layout.
    ClassOfBlock {
        /// Which block.
        index: u8,
    },
    /// `allocate_batch` of up to `count` blocks of a class.
    AllocBatch {
        /// The class (modulo the class count).
        class: u8,
        /// How many blocks (modulo [`BATCH_BLOCKS_MAX`], plus one).
        count: u8,
    },
    /// `deallocate_batch` of up to `count` live blocks of the class of the block at `index`.
    FreeBatch {
        /// The block whose class is freed.
        index: u8,
        /// How many blocks at most.
        count: u8,
    },
    /// `set_purge_threshold_bytes(kib * 1024)` (0 purges on every release).
    PurgeThreshold {
        /// The threshold in KiB.
        kib: u16,
    },
    /// `trim()`: empty slabs and dirty slots go back, empty chunks are unmapped.
    Trim,
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let slab = Slab::new(JunkPages::new(BUFFER_BYTES));
    let limits = Limits {
        max_size_bytes: 3 << 20,
        max_align_bytes: 1 << 16,
        must_succeed_below_live_bytes: Some(BUFFER_BYTES / 16),
        live_accounting: true,
    };
    let driver = Driver::new(slab, limits);
    drop(driver.run(data, apply));
}

fn apply(driver: &mut Driver<Slab<JunkPages>>, op: Op) {
    match op {
        Op::Alloc(op) => driver.apply(op),
        Op::FreeUnsized { index } => driver.free_unsized(index),
        Op::UsableSize { index } => driver.check_usable_size(index),
        Op::ClassOfBlock { index } => check_class_of_block(driver, index),
        Op::AllocBatch { class, count } => {
            let class = usize::from(class) % CLASS_COUNT;
            alloc_batch(driver, class, usize::from(count) % BATCH_BLOCKS_MAX + 1);
        }
        Op::FreeBatch { index, count } => free_batch(driver, index, usize::from(count)),
        Op::PurgeThreshold { kib } => driver.a.set_purge_threshold_bytes(usize::from(kib) * 1024),
        Op::Trim => {
            driver.a.trim();
            driver.shadow.verify_all();
        }
    }
}

/// The layout a batch block of `class` is recorded with: its exact size and natural alignment
/// (capped at a page), which maps back to the class.
pub fn batch_layout<B: BatchAllocator>(backend: &B, class: usize) -> Layout {
    let size = backend.class_size(class);
    let layout = Layout::from_size_align(size, natural_align(size).min(4096)).expect("small");
    assert_eq!(backend.class_of(layout), Some(class), "{layout:?}");
    layout
}

fn alloc_batch(driver: &mut Driver<Slab<JunkPages>>, class: usize, count: usize) {
    let layout = batch_layout(&driver.a, class);
    let count = count.min(crate::shadow::LIVE_BLOCKS_MAX - driver.shadow.len());
    let mut out = [core::ptr::null_mut(); BATCH_BLOCKS_MAX];
    let got = driver.a.allocate_batch(class, &mut out[..count]);
    assert!(got <= count, "allocate_batch wrote {got} of {count}");
    if got == 0 {
        assert!(
            count == 0 || !driver.must_succeed(layout),
            "allocate_batch({class}) gave nothing with {} live bytes",
            driver.shadow.live_bytes()
        );
    }
    for &ptr in &out[..got] {
        let ptr = NonNull::new(ptr).expect("allocate_batch wrote a null block");
        let block = NonNull::slice_from_raw_parts(ptr, layout.size());
        driver.shadow.admit(block, layout, None, None);
    }
}

fn free_batch(driver: &mut Driver<Slab<JunkPages>>, index: u8, count: usize) {
    let Some(first) = driver.shadow.take(usize::from(index)) else {
        return;
    };
    let Some(class) = block_class(&driver.a, &first) else {
        driver.shadow.restore(first);
        return;
    };
    let wanted = count.clamp(1, BATCH_BLOCKS_MAX);
    let mut blocks = vec![first];
    let a = &driver.a;
    driver.shadow.forget_unless(|b| {
        if blocks.len() < wanted && block_class(a, b) == Some(class) {
            blocks.push(*b);
            return false;
        }
        true
    });
    let mut ptrs = [core::ptr::null_mut(); BATCH_BLOCKS_MAX];
    for (slot, block) in ptrs.iter_mut().zip(&blocks) {
        Shadow::verify(block, block.len);
        *slot = block.ptr.as_ptr();
    }
    // SAFETY: every pointer is a live block of this slab of class `class` (its own
    // `class_of_block` says so), taken out of the shadow just above, so none appears twice.
    unsafe { driver.a.deallocate_batch(class, &ptrs[..blocks.len()]) };
}

/// The class of a live block, from the pointer (`None` for zero-size and large blocks).
fn block_class(slab: &Slab<JunkPages>, block: &crate::shadow::Block) -> Option<usize> {
    if block.len == 0 {
        return None;
    }
    // SAFETY: a live, non-zero-size block of this slab.
    unsafe { slab.class_of_block(block.ptr) }
}

/// `class_of_block` must name a class whose blocks hold the returned length, and, for a block
/// never resized, the class its layout maps to.
fn check_class_of_block(driver: &mut Driver<Slab<JunkPages>>, index: u8) {
    let Some(block) = driver.shadow.take(usize::from(index)) else {
        return;
    };
    if let Some(class) = block_class(&driver.a, &block) {
        let class_bytes = driver.a.class_size(class);
        assert!(
            block.len <= class_bytes
                && (block.ptr.as_ptr() as usize)
                    .is_multiple_of(natural_align(class_bytes).min(4096)),
            "{:p} ({:?}, {} bytes returned) is in class {class} of {class_bytes} bytes",
            block.ptr.as_ptr(),
            block.layout,
            block.len
        );
    }
    driver.shadow.restore(block);
}
