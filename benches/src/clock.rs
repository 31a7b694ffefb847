//! The clock the latency probe reads: its source (the x86-64 time-stamp counter, or
//! `CLOCK_MONOTONIC`), its rate, and the two figures that bound what a sample can say — its
//! **resolution** (the smallest step it shows) and its **overhead** (the median cost of two
//! back-to-back reads, which every timed section includes).
//!
//! `CLOCK_MONOTONIC` may advance in steps as coarse as ~10 ns on a virtual machine (two
//! back-to-back reads there differ by 20, 30 or 31 ns), as long as a whole fast allocation.
//! The TSC ticks at a few GHz, so where it is invariant (`constant_tsc` and `nonstop_tsc`:
//! same rate at every P-state, running through C-states) it times single operations; its rate
//! is measured against `CLOCK_MONOTONIC` rather than trusted from the model name.

use std::hint::black_box;
use std::time::Duration;

/// Back-to-back read pairs taken to find the resolution and the overhead.
const PAIRS: usize = 20_001;
/// Reads bracketing one calibration stamp; the tightest bracket is kept.
const STAMP_TRIES: usize = 64;
/// Each of the two halves of the TSC calibration window.
const HALF_WINDOW: Duration = Duration::from_millis(10);
/// The two halves' rates may differ by this fraction before the TSC is called unsteady.
pub const RATE_TOLERANCE: f64 = 1e-3;

/// Where the ticks come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Source {
    /// The x86-64 time-stamp counter, read as `lfence; rdtsc; lfence`, at `ticks_per_ns`.
    Tsc {
        /// TSC ticks per nanosecond, measured against `CLOCK_MONOTONIC`.
        ticks_per_ns: f64,
    },
    /// `clock_gettime(CLOCK_MONOTONIC)`: one tick is one nanosecond.
    Monotonic,
}

/// A clock ready to time sections: its source, resolution and overhead, measured at start.
#[derive(Clone, Debug, PartialEq)]
pub struct Clock {
    /// The source read by [`Clock::now`].
    pub source: Source,
    /// The smallest step between distinct back-to-back differences, in ticks.
    pub resolution_ticks: u64,
    /// The median difference of two back-to-back reads, in ticks.
    pub overhead_ticks: u64,
    /// Why the TSC was not used, when it was not.
    pub fallback: Option<String>,
}

impl Clock {
    /// The finest clock this machine offers: the TSC where it is invariant and its rate
    /// steady, otherwise `CLOCK_MONOTONIC`.
    pub fn finest() -> Clock {
        match tsc_rate() {
            Ok(ticks_per_ns) => Clock::measure(Source::Tsc { ticks_per_ns }, None),
            Err(why) => Clock::measure(Source::Monotonic, Some(why)),
        }
    }

    /// `CLOCK_MONOTONIC`, whatever else the machine has.
    pub fn monotonic() -> Clock {
        Clock::measure(Source::Monotonic, None)
    }

    /// Measures `source`'s resolution and overhead from back-to-back reads.
    fn measure(source: Source, fallback: Option<String>) -> Clock {
        let mut clock = Clock {
            source,
            resolution_ticks: 1,
            overhead_ticks: 0,
            fallback,
        };
        let mut deltas: Vec<u64> = (0..PAIRS)
            .map(|_| {
                let started = clock.now();
                black_box(());
                clock.now().saturating_sub(started)
            })
            .collect();
        clock.resolution_ticks = step_ticks(&mut deltas);
        clock.overhead_ticks = deltas[deltas.len() / 2];
        clock
    }

    /// The current time in ticks. A TSC read is fenced on both sides: the `lfence` before it
    /// waits for earlier instructions (the timed work) to finish, the one after keeps later
    /// instructions (the next timed work) from starting before the read. `rdtscp` would order
    /// only the earlier side, so it would need the trailing `lfence` too; with one sequence at
    /// both ends the back-to-back overhead is exactly what each sample carries.
    #[inline(always)]
    pub fn now(&self) -> u64 {
        match self.source {
            #[cfg(target_arch = "x86_64")]
            Source::Tsc { .. } => read_tsc(),
            #[cfg(not(target_arch = "x86_64"))]
            Source::Tsc { .. } => monotonic_ns(),
            Source::Monotonic => monotonic_ns(),
        }
    }

    /// Ticks per nanosecond (1 for `CLOCK_MONOTONIC`).
    pub fn ticks_per_ns(&self) -> f64 {
        match self.source {
            Source::Tsc { ticks_per_ns } => ticks_per_ns,
            Source::Monotonic => 1.0,
        }
    }

    /// The resolution in nanoseconds.
    pub fn resolution_ns(&self) -> f64 {
        self.resolution_ticks as f64 / self.ticks_per_ns()
    }

    /// The overhead in nanoseconds.
    pub fn overhead_ns(&self) -> f64 {
        self.overhead_ticks as f64 / self.ticks_per_ns()
    }

    /// The source's name in results.json: `tsc` or `monotonic`.
    pub fn name(&self) -> &'static str {
        match self.source {
            Source::Tsc { .. } => "tsc",
            Source::Monotonic => "monotonic",
        }
    }
}

/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds.
#[inline(always)]
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec and CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// `lfence; rdtsc; lfence` (why: [`Clock::now`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn read_tsc() -> u64 {
    use core::arch::x86_64::{_mm_lfence, _rdtsc};
    #[allow(unused_unsafe)]
    // SAFETY: SSE2 (lfence) is part of the x86-64 baseline and `rdtsc` exists on every x86-64
    // processor; neither touches memory.
    unsafe {
        _mm_lfence();
        let ticks = _rdtsc();
        _mm_lfence();
        ticks
    }
}

/// Whether `/proc/cpuinfo`'s text names an invariant TSC: `constant_tsc` (one rate at every
/// frequency) and `nonstop_tsc` (it keeps counting in deep C-states).
pub fn tsc_is_invariant(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .find(|line| line.starts_with("flags"))
        .is_some_and(|line| {
            let flags: Vec<&str> = line.split_whitespace().collect();
            flags.contains(&"constant_tsc") && flags.contains(&"nonstop_tsc")
        })
}

/// One calibration point: a TSC read and the `CLOCK_MONOTONIC` time it was taken at (the
/// middle of the two monotonic reads around it), with their distance as its uncertainty.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stamp {
    /// The monotonic time at the TSC read, in nanoseconds.
    pub mono_ns: u64,
    /// The TSC read.
    pub ticks: u64,
    /// The distance between the two monotonic reads around it, in nanoseconds.
    pub bracket_ns: u64,
}

impl Stamp {
    /// A stamp from `monotonic before, ticks, monotonic after`.
    pub fn new(before_ns: u64, ticks: u64, after_ns: u64) -> Stamp {
        let bracket_ns = after_ns.saturating_sub(before_ns);
        Stamp {
            mono_ns: before_ns + bracket_ns / 2,
            ticks,
            bracket_ns,
        }
    }
}

/// The stamp with the tightest bracket (a read pair the scheduler did not split).
pub fn tightest(stamps: &[Stamp]) -> Option<Stamp> {
    stamps.iter().copied().min_by_key(|s| s.bracket_ns)
}

/// Ticks per nanosecond between two stamps (`None` unless both clocks moved forward).
pub fn rate(from: Stamp, to: Stamp) -> Option<f64> {
    let ticks = to.ticks.checked_sub(from.ticks).filter(|&t| t > 0)?;
    let ns = to.mono_ns.checked_sub(from.mono_ns).filter(|&n| n > 0)?;
    Some(ticks as f64 / ns as f64)
}

/// The TSC's rate from three stamps a window apart: the whole window's rate, provided the two
/// halves agree within [`RATE_TOLERANCE`] (a TSC that drifts against the kernel's clock is
/// not used).
pub fn calibrate(stamps: [Stamp; 3]) -> Result<f64, String> {
    let [start, middle, end] = stamps;
    let (Some(first), Some(second), Some(whole)) =
        (rate(start, middle), rate(middle, end), rate(start, end))
    else {
        return Err("the TSC or CLOCK_MONOTONIC did not advance during calibration".into());
    };
    let drift = (first - second).abs() / whole;
    if drift > RATE_TOLERANCE {
        return Err(format!(
            "the TSC's rate was unsteady during calibration ({first:.4} vs {second:.4} ticks/ns)"
        ));
    }
    Ok(whole)
}

/// The clock's step in ticks, from back-to-back differences (sorted in place). The distinct
/// differences are grouped into runs of consecutive values: a clock that advances by ~10.3 ns
/// shows 20 and 21, 30 and 31, the rounding of one step, not a 1 ns step; rounding makes
/// runs of at most two values, so a run of three or more means the clock moves by single
/// ticks. Otherwise the step is the smallest distance between the starts of two runs (a rare
/// outlier, such as a read pair split by an interrupt, lies a whole number of steps away and
/// cannot make it smaller). A single run of one or two values says nothing finer: one tick.
pub fn step_ticks(deltas: &mut [u64]) -> u64 {
    deltas.sort_unstable();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &delta in deltas.iter() {
        match runs.last_mut() {
            Some((_, last)) if delta <= *last + 1 => *last = delta,
            _ => runs.push((delta, delta)),
        }
    }
    if runs.iter().any(|(first, last)| last - first >= 2) {
        return 1;
    }
    runs.windows(2)
        .map(|pair| pair[1].0 - pair[0].0)
        .min()
        .unwrap_or(1)
}

/// Measures the TSC's rate, or says why it is not used.
fn tsc_rate() -> Result<f64, String> {
    if !cfg!(target_arch = "x86_64") {
        return Err("not x86-64: no TSC".into());
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo")
        .map_err(|e| format!("cannot read /proc/cpuinfo: {e}"))?;
    if !tsc_is_invariant(&cpuinfo) {
        return Err("the TSC is not invariant (no constant_tsc and nonstop_tsc)".into());
    }
    let tsc = Clock {
        source: Source::Tsc { ticks_per_ns: 1.0 },
        resolution_ticks: 1,
        overhead_ticks: 0,
        fallback: None,
    };
    let stamp = || {
        let stamps: Vec<Stamp> = (0..STAMP_TRIES)
            .map(|_| {
                let before = monotonic_ns();
                let ticks = tsc.now();
                Stamp::new(before, ticks, monotonic_ns())
            })
            .collect();
        tightest(&stamps).expect("STAMP_TRIES > 0")
    };
    let start = stamp();
    std::thread::sleep(HALF_WINDOW);
    let middle = stamp();
    std::thread::sleep(HALF_WINDOW);
    calibrate([start, middle, stamp()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tsc_is_invariant_only_with_both_flags() {
        let both = "processor\t: 0\nflags\t\t: fpu tsc constant_tsc rdtscp nonstop_tsc\n";
        assert!(tsc_is_invariant(both));
        assert!(!tsc_is_invariant("flags\t\t: fpu tsc constant_tsc\n"));
        assert!(!tsc_is_invariant(
            "flags\t\t: fpu tsc nonstop_tsc_x constant_tsc\n"
        ));
        assert!(!tsc_is_invariant(
            "model name\t: constant_tsc nonstop_tsc\n"
        ));
    }

    #[test]
    fn a_stamp_sits_in_the_middle_of_its_bracket() {
        let stamp = Stamp::new(1_000, 7, 1_030);
        assert_eq!((stamp.mono_ns, stamp.bracket_ns), (1_015, 30));
        let loose = Stamp::new(0, 1, 500);
        assert_eq!(tightest(&[loose, stamp]), Some(stamp));
    }

    #[test]
    fn calibration_finds_the_rate_of_a_synthetic_tsc() {
        // A 2.3 GHz counter: 23 million ticks per 10 ms.
        let at = |ms: u64| Stamp::new(ms * 1_000_000, 5 + ms * 2_300_000, ms * 1_000_000 + 20);
        let rate = calibrate([at(0), at(10), at(20)]).unwrap();
        assert!((rate - 2.3).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn calibration_refuses_a_drifting_or_stopped_tsc() {
        let stamp = |ms: u64, ticks: u64| Stamp::new(ms * 1_000_000, ticks, ms * 1_000_000);
        let drifting = [
            stamp(0, 0),
            stamp(10, 23_000_000),
            stamp(20, 23_000_000 + 24_000_000),
        ];
        assert!(calibrate(drifting).unwrap_err().contains("unsteady"));
        let stopped = [stamp(0, 9), stamp(10, 9), stamp(20, 9)];
        assert!(calibrate(stopped).is_err());
        assert_eq!(rate(stamp(10, 5), stamp(10, 9)), None);
    }

    #[test]
    fn the_step_ignores_rounding_and_sees_a_coarse_clock() {
        // A fine clock whose back-to-back reads cost 19-25 ns: every value seen, step 1.
        assert_eq!(step_ticks(&mut [22, 19, 21, 20, 23, 25, 24, 22]), 1);
        // ... even with an interrupted pair far away.
        assert_eq!(step_ticks(&mut [22, 19, 21, 20, 46, 23, 1_000]), 1);
        // A ~10.3 ns clock: 20/21 and 30/31 are one step's rounding.
        assert_eq!(step_ticks(&mut [20, 30, 31, 21, 20, 30, 41, 5_000]), 10);
        // A TSC seen in even values only.
        assert_eq!(step_ticks(&mut [44, 46, 48, 46, 42]), 2);
        // A coarse clock read faster than it advances.
        assert_eq!(step_ticks(&mut [0, 0, 0, 100, 0, 200]), 100);
        // Nothing to compare: one tick.
        assert_eq!(step_ticks(&mut [20, 20]), 1);
    }
}
