//! Live bytes and their peak (`Stats::peak_bytes`), kept without an atomic per block.
//!
//! A shared atomic total updated on every allocation would put a contended read-modify-write
//! on the fast path of every thread. Instead each class, under the lock it holds anyway,
//! compares its `live_blocks` with one mark per call: a new high since the last fold (on
//! allocation) or one granule below the last fold (on free). Only at a new high a granule
//! ([`PEAK_GRANULE_BYTES`]) above the last fold, a fall a granule below it, or a `stats()`
//! call does the class *fold* its change into the shared total: one `fetch_add` and, if the
//! peak rose, one `fetch_max`. Large and huge blocks change the total directly under the
//! chunk lock (they are slow paths already).
//!
//! ```text
//!   class lock ── live_blocks vs marks (folded, high, up, down) ──fold──┐
//!   class lock ── …                                                     ├─► total ─► peak
//!   chunk lock ── large / huge: exact ──────────────────────────────────┘
//! ```
//!
//! Granularity: a fold raises the peak to `total before the fold + the class's highest point
//! since its last fold`, so a peak reached while one class was in flux is exact; other
//! classes' changes not folded yet can hide or add less than a granule each:
//! `(CLASS_COUNT - 1) × PEAK_GRANULE_BYTES` in total, or `CLASS_COUNT ×` when the peak is
//! recorded by a large or huge block (which folds no class).

use crate::geometry::PEAK_GRANULE_BYTES;
use crate::sync::AtomicUsize;
use core::sync::atomic::Ordering;

/// The shared total and peak (live bytes as block sizes count them).
pub(crate) struct LiveBytes {
    /// Sum of the folded drifts of every class plus the exact large and huge bytes. Signed
    /// deltas are added in two's complement; the value itself never goes below zero.
    total: AtomicUsize,
    peak: AtomicUsize,
}

impl LiveBytes {
    const_fn_unless_loom! {
        pub(crate) fn new() -> Self {
            LiveBytes {
                total: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            }
        }
    }

    /// Adds `delta_bytes` to the total; `high_bytes` (≥ `delta_bytes`, ≥ 0) is the highest the
    /// change reached on its way, which becomes a peak candidate.
    #[inline]
    pub(crate) fn add(&self, delta_bytes: isize, high_bytes: isize) {
        debug_assert!(high_bytes >= delta_bytes && high_bytes >= 0);
        let before = self
            .total
            .fetch_add(delta_bytes as usize, Ordering::Relaxed);
        debug_assert!(before as isize >= 0, "live bytes went negative");
        self.raise(before.wrapping_add(high_bytes as usize));
    }

    /// Adds `bytes` that arrived at once (a large or huge block, a span that grew).
    #[inline]
    pub(crate) fn grow(&self, bytes: usize) {
        debug_assert!(bytes <= isize::MAX as usize);
        self.add(bytes as isize, bytes as isize);
    }

    /// Takes away `bytes` that left at once.
    #[inline]
    pub(crate) fn shrink(&self, bytes: usize) {
        debug_assert!(bytes <= isize::MAX as usize);
        self.add(-(bytes as isize), 0);
    }

    fn raise(&self, candidate_bytes: usize) {
        // A load first: the peak rarely moves, and a plain load keeps the line shared.
        if candidate_bytes > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(candidate_bytes, Ordering::Relaxed);
        }
    }

    pub(crate) fn total_bytes(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn peak_bytes(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

/// One class's marks (in its `ClassList`, under its lock), in blocks: the class's
/// `live_blocks` is compared with one of them per call — a load, a compare and a branch that
/// is not taken in steady state — and everything else happens on the rare crossings.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct PeakMarks {
    /// `live_blocks` when the class last folded into the shared total.
    pub folded_blocks: usize,
    /// The highest `live_blocks` since that fold (≥ `folded_blocks` and ≥ `live_blocks`).
    pub high_blocks: usize,
    /// A new high at or above this folds (one granule above `folded_blocks`).
    pub fold_up_blocks: usize,
    /// Falling below this folds (one granule below `folded_blocks`, or 0).
    pub fold_down_blocks: usize,
}

impl PeakMarks {
    /// Marks that fold at the class's first allocation (which sets the real marks).
    pub(crate) const fn new() -> Self {
        PeakMarks {
            folded_blocks: 0,
            high_blocks: 0,
            fold_up_blocks: 0,
            fold_down_blocks: 0,
        }
    }

    /// After an allocation raised the class to `live_blocks`: records a new high, folding
    /// when it is a granule above the last fold. Call only when `live_blocks > high_blocks`.
    /// Inlined: while a class grows, every allocation is a new high (1.5 million calls in a
    /// Python run), and only the fold is rare.
    #[inline(always)]
    pub(crate) fn new_high(&mut self, live_blocks: usize, block_bytes: usize, live: &LiveBytes) {
        debug_assert!(live_blocks > self.high_blocks);
        self.high_blocks = live_blocks;
        if live_blocks >= self.fold_up_blocks {
            self.fold(live_blocks, block_bytes, live);
        }
    }

    /// Folds the change since the last fold into `live` (the total, and the peak the class
    /// reached on the way) and sets the marks one granule either side of `live_blocks`.
    #[cold]
    #[inline(never)]
    pub(crate) fn fold(&mut self, live_blocks: usize, block_bytes: usize, live: &LiveBytes) {
        debug_assert!(block_bytes > 0 && block_bytes <= PEAK_GRANULE_BYTES);
        debug_assert!(self.high_blocks >= self.folded_blocks.max(live_blocks));
        let delta_bytes =
            (live_blocks as isize - self.folded_blocks as isize) * block_bytes as isize;
        let high_bytes = (self.high_blocks - self.folded_blocks) * block_bytes;
        live.add(delta_bytes, high_bytes as isize);
        let granule_blocks = PEAK_GRANULE_BYTES / block_bytes;
        *self = PeakMarks {
            folded_blocks: live_blocks,
            high_blocks: live_blocks,
            fold_up_blocks: live_blocks + granule_blocks,
            fold_down_blocks: live_blocks.saturating_sub(granule_blocks),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fold_records_the_high_point_reached_in_between() {
        let live = LiveBytes::new();
        let mut marks = PeakMarks::new();
        marks.new_high(1, 100, &live); // the first allocation folds and sets the marks
        assert_eq!((live.total_bytes(), live.peak_bytes()), (100, 100));
        for live_blocks in 2..=10 {
            marks.new_high(live_blocks, 100, &live);
        }
        assert_eq!(live.peak_bytes(), 100, "below the granule: not folded yet");
        marks.fold(0, 100, &live);
        assert_eq!((live.total_bytes(), live.peak_bytes()), (0, 1000));
        live.grow(5000);
        live.shrink(5000);
        assert_eq!((live.total_bytes(), live.peak_bytes()), (0, 5000));
    }

    #[test]
    fn marks_sit_one_granule_either_side_of_the_fold() {
        let live = LiveBytes::new();
        let mut marks = PeakMarks::new();
        marks.fold(0, 64, &live);
        let granule_blocks = PEAK_GRANULE_BYTES / 64;
        assert_eq!(
            (marks.fold_down_blocks, marks.fold_up_blocks),
            (0, granule_blocks)
        );
        marks.new_high(granule_blocks * 2, 64, &live); // a new high two granules up folds
        assert_eq!(live.total_bytes(), granule_blocks * 2 * 64);
        assert_eq!(marks.fold_down_blocks, granule_blocks);
    }
}
