//! `Retained`'s tests: best fit, splitting, decay on the test clock, memory pressure, the
//! gather after a miss, and a model test that random map/unmap sequences never overlap.

use super::*;
use crate::{BufferPages, FailingPages};
use std::cell::Cell;

const PAGE: usize = 4096;

std::thread_local! {
    /// Each test thread's own clock, moved by hand.
    static NOW_MS: Cell<u64> = const { Cell::new(0) };
}

fn test_clock() -> u64 {
    NOW_MS.with(Cell::get)
}

fn advance(ms: u64) {
    NOW_MS.with(|now| now.set(now.get() + ms));
}

fn layer(pages: usize) -> Retained<BufferPages<'static>> {
    Retained::with_clock(BufferPages::owned(pages * PAGE, PAGE).unwrap(), test_clock)
}

std::thread_local! {
    /// The last run this thread mapped: in a `BufferPages` every run carries the whole
    /// buffer's provenance, so `unmap` below derives its pointers from it (no
    /// integer-to-pointer cast, which Miri's strict provenance refuses).
    static LAST_RUN: Cell<*mut u8> = const { Cell::new(core::ptr::null_mut()) };
}

fn map(r: &impl PageSource, pages: usize, align_pages: usize) -> usize {
    let run = r.map(pages * PAGE, align_pages * PAGE).unwrap().as_ptr();
    LAST_RUN.with(|last| last.set(run));
    run as usize
}

fn unmap(r: &impl PageSource, addr: usize, pages: usize) {
    let ptr = LAST_RUN.with(|last| last.get().with_addr(addr));
    // SAFETY: the tests give back only runs they mapped and no longer use.
    unsafe { r.unmap(NonNull::new(ptr).unwrap(), pages * PAGE) };
}

#[test]
fn unmapped_runs_are_kept_and_reused_by_best_fit() {
    let r = layer(256);
    let big = map(&r, 16, 1);
    let _gap1 = map(&r, 1, 1);
    let small = map(&r, 4, 1);
    let _gap2 = map(&r, 1, 1);
    unmap(&r, big, 16);
    unmap(&r, small, 4);
    assert_eq!(r.retained().dirty_bytes, 20 * PAGE);
    assert_eq!(map(&r, 3, 1), small, "the smallest run that fits");
    assert_eq!(map(&r, 10, 1), big);
    let after = r.retained();
    assert_eq!((after.dirty_bytes, after.runs), (7 * PAGE, 2), "tails stay");
    assert_eq!(after.reused_maps, 2);
    r.check().unwrap();
}

#[test]
fn a_split_honours_the_alignment_and_keeps_head_and_tail() {
    let r = layer(256);
    let run = map(&r, 64, 1);
    unmap(&r, run, 64);
    let aligned = map(&r, 8, 16);
    assert_eq!(aligned % (16 * PAGE), 0);
    assert!(aligned >= run && aligned + 8 * PAGE <= run + 64 * PAGE);
    let head_pages = (aligned - run) / PAGE;
    assert_eq!(r.retained().dirty_bytes, 56 * PAGE);
    assert_eq!(r.retained().runs, 1 + usize::from(head_pages > 0));
    r.check().unwrap();
    unmap(&r, aligned, 8);
    assert_eq!(r.retained().runs, 1, "merged back into one run");
    r.check().unwrap();
}

#[test]
fn dirty_runs_are_purged_after_the_delay_then_released() {
    let r = layer(64);
    r.set_purge_delay_ms(100);
    let run = map(&r, 4, 1);
    let _gap = map(&r, 1, 1);
    let other = map(&r, 4, 1);
    unmap(&r, run, 4);
    advance(99);
    unmap(&r, other, 4); // a slow path at 99 ms: nothing is due yet
    assert_eq!(r.retained().purged_bytes, 0);
    advance(1);
    let third = map(&r, 1, 1); // at 100 ms: the first run is due (the new one is taken out)
    let seen = r.retained();
    assert_eq!(seen.purged_bytes, 3 * PAGE, "what is left of the first run");
    assert_eq!(seen.dirty_bytes, 4 * PAGE);
    advance(10 * 100);
    unmap(&r, third, 1);
    let seen = r.retained();
    assert_eq!(
        seen.purged_bytes,
        4 * PAGE,
        "the second run purged; the first released"
    );
    assert_eq!(
        r.inner().mapped_bytes(),
        6 * PAGE,
        "third, the gap, the second run"
    );
    r.check().unwrap();
}

#[test]
fn decay_now_purges_and_releases_what_is_due_without_map_or_unmap() {
    let r = layer(64);
    r.set_purge_delay_ms(100);
    let run = map(&r, 4, 1);
    let _live = map(&r, 1, 1);
    unmap(&r, run, 4);
    advance(99);
    r.decay_now();
    assert_eq!(r.retained().dirty_bytes, 4 * PAGE, "not due yet");
    advance(1);
    r.decay_now();
    let seen = r.retained();
    assert_eq!((seen.dirty_bytes, seen.purged_bytes), (0, 4 * PAGE));
    advance(10 * 100 - 1);
    r.decay_now();
    assert_eq!(
        r.retained().purged_bytes,
        4 * PAGE,
        "released ten delays after"
    );
    advance(1);
    r.decay_now();
    assert_eq!(r.retained().runs, 0);
    assert_eq!(r.inner().mapped_bytes(), PAGE, "only the live run is left");
    r.check().unwrap();
}

#[test]
fn decay_now_does_nothing_when_the_delay_is_never() {
    let r = layer(64);
    r.set_purge_delay_ms(u64::MAX);
    let run = map(&r, 4, 1);
    let _live = map(&r, 1, 1);
    unmap(&r, run, 4);
    advance(u64::MAX / 2);
    r.decay_now();
    assert_eq!(r.retained().dirty_bytes, 4 * PAGE);
}

#[test]
fn a_delay_of_zero_purges_at_once_and_max_never() {
    let r = layer(64);
    r.set_purge_delay_ms(0);
    let run = map(&r, 4, 1);
    unmap(&r, run, 4);
    assert_eq!(r.retained().dirty_bytes, 0);
    r.set_purge_delay_ms(u64::MAX);
    let run = map(&r, 4, 1);
    let _gap = map(&r, 1, 1); // the run cannot grow in place
    unmap(&r, run, 4);
    advance(u64::MAX / 2);
    let _miss = map(&r, 8, 1); // a miss, still a slow path
    assert_eq!(r.retained().dirty_bytes, 4 * PAGE);
}

#[test]
fn dirty_bytes_over_the_allowance_are_purged_oldest_first() {
    let r = layer(512);
    r.set_purge_threshold_bytes(8 * PAGE);
    r.set_purge_delay_ms(u64::MAX);
    let runs: std::vec::Vec<usize> = (0..5).map(|_| map(&r, 6, 1)).collect();
    let _gap = map(&r, 1, 1);
    unmap(&r, runs[0], 6);
    advance(1);
    unmap(&r, runs[2], 6);
    advance(1);
    unmap(&r, runs[4], 6);
    // 18 dirty pages over 12 allowed (twice the largest run given back; half of the 13 pages
    // in use and the threshold of 8 are below it).
    let seen = r.retained();
    assert_eq!((seen.dirty_bytes, seen.purged_bytes), (12 * PAGE, 6 * PAGE));
    assert_ne!(map(&r, 6, 1), runs[0], "the newer runs stayed dirty");
    r.check().unwrap();
}

#[test]
fn a_run_above_the_threshold_stays_dirty_up_to_twice_its_size() {
    // glibc's dynamic thresholds: a small heap that frees a block above the purge threshold
    // keeps its pages for the next block of its size instead of faulting them in again.
    let r = layer(512);
    r.set_purge_threshold_bytes(8 * PAGE);
    r.set_purge_delay_ms(u64::MAX);
    let first = map(&r, 20, 1);
    let _gap = map(&r, 1, 1);
    let second = map(&r, 20, 1);
    let _gap2 = map(&r, 1, 1);
    unmap(&r, first, 20);
    assert_eq!(
        r.retained().dirty_bytes,
        20 * PAGE,
        "20 pages over a threshold of 8"
    );
    assert_eq!(map(&r, 20, 1), first, "reused with its pages");
    unmap(&r, first, 20);
    unmap(&r, second, 20);
    let seen = r.retained();
    assert_eq!(
        (seen.dirty_bytes, seen.purged_bytes),
        (40 * PAGE, 0),
        "40 pages: twice the largest run"
    );
    r.check().unwrap();
}

#[test]
fn the_allowance_grows_with_the_bytes_in_use() {
    let r = layer(1024);
    r.set_purge_threshold_bytes(8 * PAGE);
    r.set_purge_delay_ms(u64::MAX);
    let _held = map(&r, 400, 1); // half of it: 200 pages may stay dirty
    let run = map(&r, 50, 1);
    unmap(&r, run, 50);
    assert_eq!(r.retained().dirty_bytes, 50 * PAGE);
    r.set_purge_threshold_bytes(0);
    let other = map(&r, 1, 1);
    unmap(&r, other, 1);
    assert_eq!(
        r.retained().dirty_bytes,
        0,
        "a threshold of 0 purges every run"
    );
}

#[test]
fn a_failed_map_releases_everything_and_tries_again() {
    let failing = FailingPages::new(BufferPages::owned(64 * PAGE, PAGE).unwrap());
    let plan = failing.plan();
    let r = Retained::with_clock(failing, test_clock);
    let run = map(&r, 16, 1);
    unmap(&r, run, 16);
    plan.limit_mapped_bytes(32 * PAGE);
    // 16 retained + 20 asked > 32: the first try fails, the retry after the release passes.
    let big = map(&r, 20, 1);
    assert_eq!(r.retained().dirty_bytes, 0);
    assert_eq!(r.mapped_bytes(), 20 * PAGE);
    assert!(
        r.map(20 * PAGE, PAGE).is_err(),
        "still out of memory: AllocError"
    );
    unmap(&r, big, 20);
    r.check().unwrap();
}

#[test]
fn a_full_table_gives_the_smallest_run_back() {
    let r = layer(4 * RETAINED_RUNS + 64);
    let runs: std::vec::Vec<(usize, usize)> = (0..=RETAINED_RUNS)
        .map(|i| {
            let pages = if i == 7 { 1 } else { 2 };
            let run = map(&r, pages, 1);
            let _gap = map(&r, 1, 1);
            (run, pages)
        })
        .collect();
    let mapped = r.mapped_bytes();
    for &(run, pages) in &runs {
        unmap(&r, run, pages);
    }
    assert_eq!(r.retained().runs, RETAINED_RUNS);
    assert_eq!(r.mapped_bytes(), mapped - PAGE, "the 1-page run went back");
    r.check().unwrap();
    assert_eq!(r.release_all(), 2 * RETAINED_RUNS * PAGE);
    r.check().unwrap();
}

#[test]
fn release_retained_gives_everything_back() {
    let r = layer(64);
    let run = map(&r, 8, 1);
    unmap(&r, run, 8);
    r.release_retained();
    assert_eq!(r.mapped_bytes(), 0);
    assert_eq!(
        r.retained(),
        RetainedBytes {
            fresh_maps: 1,
            ..RetainedBytes::default()
        }
    );
}

#[test]
#[cfg_attr(miri, ignore)] // mmap
fn fresh_runs_report_zero_and_reused_ones_do_not() {
    let r = Retained::new(crate::MmapPages::new());
    let (run, zero) = r.map_reporting_zero(4 * PAGE, PAGE).unwrap();
    assert!(zero);
    // SAFETY: the run is ours, 4 pages long.
    unsafe { run.as_ptr().write_bytes(1, 4 * PAGE) };
    unmap(&r, run.as_ptr() as usize, 4);
    let (again, zero) = r.map_reporting_zero(4 * PAGE, PAGE).unwrap();
    assert_eq!((again, zero), (run, false));
    unmap(&r, again.as_ptr() as usize, 4);
    r.release_all();
    assert_eq!(r.mapped_bytes(), 0);
}

#[test]
#[cfg_attr(miri, ignore)] // mmap and mremap
fn a_miss_gathers_resident_pieces_into_the_fresh_run() {
    let r = Retained::new(crate::MmapPages::new());
    let (a, _) = r.map_reporting_zero(4 * PAGE, PAGE).unwrap();
    // A live page between them: the two runs cannot merge into one.
    let (gap, _) = r.map_reporting_zero(PAGE, PAGE).unwrap();
    let (b, _) = r.map_reporting_zero(2 * PAGE, PAGE).unwrap();
    // SAFETY: both runs are ours.
    unsafe {
        a.as_ptr().write_bytes(0xA, 4 * PAGE);
        b.as_ptr().write_bytes(0xB, 2 * PAGE);
    }
    unmap(&r, a.as_ptr() as usize, 4);
    unmap(&r, b.as_ptr() as usize, 2);
    let (big, zero) = r.map_reporting_zero(16 * PAGE, PAGE).unwrap();
    assert!(!zero, "old pages were moved in");
    let seen = r.retained();
    assert_eq!(seen.gathered_bytes, 6 * PAGE);
    assert_eq!((seen.dirty_bytes, seen.runs), (0, 0));
    assert_eq!(r.mapped_bytes(), 17 * PAGE);
    // SAFETY: the run is ours, 16 pages long.
    let bytes = unsafe { core::slice::from_raw_parts(big.as_ptr(), 16 * PAGE) };
    assert!(
        bytes[..4 * PAGE].iter().all(|&x| x == 0xA),
        "largest piece first"
    );
    assert!(bytes[4 * PAGE..6 * PAGE].iter().all(|&x| x == 0xB));
    assert!(bytes[6 * PAGE..].iter().all(|&x| x == 0));
    r.check().unwrap();
    unmap(&r, big.as_ptr() as usize, 16);
    unmap(&r, gap.as_ptr() as usize, 1);
    r.release_all();
    assert_eq!(r.mapped_bytes(), 0);
}

#[test]
fn a_miss_grows_a_dirty_run_in_place_where_the_source_can() {
    let r = layer(64);
    let run = map(&r, 4, 1);
    unmap(&r, run, 4);
    // BufferPages extends into the free pages after the run: only they are new.
    assert_eq!(map(&r, 10, 1), run);
    let seen = r.retained();
    assert_eq!((seen.reused_maps, seen.fresh_maps, seen.runs), (1, 1, 0));
    assert_eq!(r.mapped_bytes(), 10 * PAGE);
    r.check().unwrap();
}

mod model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Map { pages: usize, align_shift: u32 },
        Unmap { index: usize, tail_pages: usize },
        Advance { ms: u64 },
        Release,
    }

    /// Operations per case: fewer under Miri, which runs every byte write.
    const MODEL_OPS: usize = if cfg!(miri) { 40 } else { 200 };

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1usize..24, 0u32..5).prop_map(|(pages, align_shift)| Op::Map { pages, align_shift }),
            4 => (any::<usize>(), 0usize..3).prop_map(|(index, tail_pages)| Op::Unmap { index, tail_pages }),
            1 => (0u64..300).prop_map(|ms| Op::Advance { ms }),
            1 => Just(Op::Release),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 2 } else { 64 },
            // No regression files: Miri's isolation has no working directory.
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        /// Random map/unmap sequences never hand out overlapping or misaligned runs, never
        /// hand out a run that was not given back, and the table stays sound.
        #[test]
        fn runs_never_overlap(ops in proptest::collection::vec(op(), 1..MODEL_OPS), delay_ms in 0u64..200, threshold_pages in 0usize..32) {
            run_model(layer(256), ops, delay_ms, threshold_pages)?;
        }

        /// The same over `mmap`, where misses gather resident pieces with `mremap`.
        #[test]
        #[cfg_attr(miri, ignore)]
        fn runs_never_overlap_over_mmap(ops in proptest::collection::vec(op(), 1..120), delay_ms in 0u64..200, threshold_pages in 0usize..32) {
            run_model(Retained::with_clock(crate::MmapPages::new(), test_clock), ops, delay_ms, threshold_pages)?;
        }
    }

    fn run_model<P: PageSource>(
        r: Retained<P>,
        ops: std::vec::Vec<Op>,
        delay_ms: u64,
        threshold_pages: usize,
    ) -> Result<(), TestCaseError> {
        r.set_purge_delay_ms(delay_ms);
        r.set_purge_threshold_bytes(threshold_pages * PAGE);
        let mut live: std::vec::Vec<(NonNull<u8>, usize, u8)> = std::vec::Vec::new();
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Map { pages, align_shift } => {
                    let align = PAGE << align_shift;
                    if let Ok(run) = r.map(pages * PAGE, align) {
                        let addr = run.as_ptr() as usize;
                        prop_assert_eq!(addr % align, 0);
                        for &(other, len, _) in &live {
                            let other = other.as_ptr() as usize;
                            prop_assert!(
                                addr + pages * PAGE <= other || other + len <= addr,
                                "overlap at step {}",
                                step
                            );
                        }
                        let mark = step as u8;
                        // The first and last byte of every page: runs overlap by whole
                        // pages, and Miri runs every byte written.
                        for page in 0..pages {
                            // SAFETY: both bytes lie in this live run of ours.
                            unsafe {
                                run.as_ptr().add(page * PAGE).write(mark);
                                run.as_ptr().add(page * PAGE + PAGE - 1).write(mark);
                            }
                        }
                        live.push((run, pages * PAGE, mark));
                    }
                }
                Op::Unmap { index, tail_pages } if !live.is_empty() => {
                    let i = index % live.len();
                    let (addr, len, mark) = live[i];
                    for offset in (0..len).step_by(PAGE).flat_map(|p| [p, p + PAGE - 1]) {
                        // SAFETY: a byte of a live run of ours.
                        let byte = unsafe { addr.as_ptr().add(offset).read() };
                        prop_assert_eq!(byte, mark, "a live run was touched");
                    }
                    let tail = (tail_pages * PAGE).min(len - PAGE);
                    if tail > 0 {
                        // Give back the tail only: the head stays live.
                        // SAFETY: the tail lies inside the live run, unused from now on.
                        unsafe { r.unmap(addr.add(len - tail), tail) };
                        live[i].1 = len - tail;
                    } else {
                        // SAFETY: the whole live run, unused from now on.
                        unsafe { r.unmap(addr, len) };
                        live.swap_remove(i);
                    }
                }
                Op::Unmap { .. } => {}
                Op::Advance { ms } => advance(ms),
                Op::Release => r.release_retained(),
            }
            prop_assert!(r.check().is_ok(), "{:?}", r.check());
            let live_bytes: usize = live.iter().map(|&(_, len, _)| len).sum();
            let kept = r.retained();
            prop_assert_eq!(
                r.mapped_bytes(),
                live_bytes + kept.dirty_bytes + kept.purged_bytes
            );
        }
        for (addr, len, _) in live {
            // SAFETY: as above.
            unsafe { r.unmap(addr, len) };
        }
        r.release_all();
        prop_assert_eq!(r.mapped_bytes(), 0);
        Ok(())
    }
}
