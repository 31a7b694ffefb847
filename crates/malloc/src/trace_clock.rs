//! The recorder's clock: the time-stamp counter on x86-64 (a `rdtsc`, about a third of the
//! cost of the vDSO's `clock_gettime`, which took a sixth of a traced python3's time), converted
//! to nanoseconds by a ratio measured against `CLOCK_MONOTONIC` when recording starts;
//! `CLOCK_MONOTONIC` itself elsewhere. The ratio goes into the trace's header.

use core::sync::atomic::{AtomicU32, Ordering};

/// The header's `clock` for these ticks.
#[cfg(target_arch = "x86_64")]
pub const KIND: u8 = heapkit_trace::CLOCK_TSC;
/// The header's `clock` for these ticks.
#[cfg(not(target_arch = "x86_64"))]
pub const KIND: u8 = heapkit_trace::CLOCK_MONOTONIC;

/// One tick is `TICK_NUM_NS / TICK_DEN` nanoseconds (1 / 1 until calibrated).
static TICK_NUM_NS: AtomicU32 = AtomicU32::new(1);
static TICK_DEN: AtomicU32 = AtomicU32::new(1);

/// How long the calibration watches both clocks. Each end is a paired reading (the TSC between
/// two `CLOCK_MONOTONIC` readings less than [`PAIR_MAX_NS`] apart, taken at their midpoint),
/// uncertain by ~20 ns, so 100 µs gives a ratio good to about 0.1 %. It is paid by every traced
/// process at start (a `python3` behind a pyenv shim starts ~40 of them: at 2 ms each, the
/// calibration was a sixth of the traced run's time).
#[cfg(target_arch = "x86_64")]
const CALIBRATION_NS: u64 = 100_000;
/// The widest pair of `CLOCK_MONOTONIC` readings a paired reading accepts (an interrupt between
/// them makes it wider: the pair is taken again).
#[cfg(target_arch = "x86_64")]
const PAIR_MAX_NS: u64 = 1_000;

/// The clock's reading.
#[inline]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` exists on every x86-64 processor and has no preconditions.
    return unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    crate::trace::now_ns()
}

/// `CLOCK_MONOTONIC` and the TSC read together: `(ns, ticks)`, the ns at the middle of a pair
/// around the TSC reading (the narrowest of a few tries).
#[cfg(target_arch = "x86_64")]
fn paired_reading() -> (u64, u64) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..8 {
        let before_ns = crate::trace::now_ns();
        let now_ticks = ticks();
        let after_ns = crate::trace::now_ns();
        let width_ns = after_ns.wrapping_sub(before_ns);
        if width_ns < best.0 {
            best = (width_ns, before_ns + width_ns / 2, now_ticks);
        }
        if width_ns < PAIR_MAX_NS {
            break;
        }
    }
    (best.1, best.2)
}

/// Measures the ticks' length against `CLOCK_MONOTONIC` (a short busy wait on x86-64).
pub fn calibrate() {
    #[cfg(target_arch = "x86_64")]
    {
        let (start_ns, start_ticks) = paired_reading();
        while crate::trace::now_ns().wrapping_sub(start_ns) < CALIBRATION_NS {
            core::hint::spin_loop();
        }
        let (end_ns, end_ticks) = paired_reading();
        let elapsed_ns = end_ns.wrapping_sub(start_ns);
        let elapsed_ticks = end_ticks.wrapping_sub(start_ticks);
        // Both fit a u32 unless the thread was descheduled for seconds: keep 1 / 1 then.
        if let (Ok(num), Ok(den)) = (u32::try_from(elapsed_ns), u32::try_from(elapsed_ticks)) {
            if num > 0 && den > 0 {
                TICK_NUM_NS.store(num, Ordering::Relaxed);
                TICK_DEN.store(den, Ordering::Relaxed);
            }
        }
    }
}

/// `(tick_num_ns, tick_den)` for the header.
pub fn calibration() -> (u32, u32) {
    (
        TICK_NUM_NS.load(Ordering::Relaxed),
        TICK_DEN.load(Ordering::Relaxed),
    )
}
