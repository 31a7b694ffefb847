//! `Bins` (the boundary-tag heap): allocate / free / grow / shrink in place, `trim`, and the
//! unsized free and usable size of C's `free` and `malloc_usable_size`.

use crate::driver::{AllocOp, Driver, Limits};
use crate::input::setup;
use crate::pages::JunkPages;
use arbitrary::Arbitrary;
use heapkit_bins::{Bins, Config};

/// The buffer under the heap.
pub const BUFFER_BYTES: usize = 16 << 20;

/// The configuration a run uses, from its first byte.
#[derive(Arbitrary, Clone, Copy, Debug, Default)]
pub enum Preset {
    /// glibc's defaults (tcache on, no fast bins).
    #[default]
    Default,
    /// Fast bins for chunks up to 128 bytes.
    FastBins,
    /// No tcache, no fast bins: every free coalesces.
    NoCaches,
    /// Tiny thresholds: small requests get runs of their own, the top is trimmed at once and
    /// the heap grows without padding, so segment and mmap paths run often.
    Tiny,
}

impl Preset {
    fn config(self) -> Config {
        match self {
            Preset::Default => Config::DEFAULT,
            Preset::FastBins => Config::FAST_BINS,
            Preset::NoCaches => Config::NO_CACHES,
            Preset::Tiny => Config {
                mmap_threshold_bytes: 4096,
                dynamic_mmap_threshold: false,
                trim_threshold_bytes: 4096,
                top_pad_bytes: 0,
                ..Config::FAST_BINS
            },
        }
    }
}

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
    /// `usable_size` must cover the returned length; the extra bytes are then written.
    UsableSize {
        /// Which block.
        index: u8,
    },
    /// `trim(pad_kib * 1024)`.
    Trim {
        /// Pad kept on top, in KiB.
        pad_kib: u8,
    },
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let (preset, data) = setup::<Preset>(data, 1);
    let heap = Bins::with_config(JunkPages::new(BUFFER_BYTES), preset.config().sanitized());
    let limits = Limits {
        max_size_bytes: 512 * 1024,
        max_align_bytes: 1 << 16,
        must_succeed_below_live_bytes: Some(BUFFER_BYTES / 8),
        live_accounting: true,
    };
    let driver = Driver::new(heap, limits);
    drop(driver.run(data, apply));
}

fn apply(driver: &mut Driver<Bins<JunkPages>>, op: Op) {
    match op {
        Op::Alloc(op) => driver.apply(op),
        Op::FreeUnsized { index } => driver.free_unsized(index),
        Op::UsableSize { index } => driver.check_usable_size(index),
        Op::Trim { pad_kib } => {
            driver.a.trim(usize::from(pad_kib) * 1024);
            driver.shadow.verify_all();
        }
    }
}
