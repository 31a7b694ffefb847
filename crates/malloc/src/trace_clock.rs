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

/// How long the calibration watches both clocks: long enough for a ratio good to about 0.1 %,
/// short enough not to be noticed at start-up.
#[cfg(target_arch = "x86_64")]
const CALIBRATION_NS: u64 = 2_000_000;

/// The clock's reading.
#[inline]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` exists on every x86-64 processor and has no preconditions.
    return unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    crate::trace::now_ns()
}

/// Measures the ticks' length against `CLOCK_MONOTONIC` (a short busy wait on x86-64).
pub fn calibrate() {
    #[cfg(target_arch = "x86_64")]
    {
        let (start_ns, start_ticks) = (crate::trace::now_ns(), ticks());
        let mut now_ns = start_ns;
        while now_ns.wrapping_sub(start_ns) < CALIBRATION_NS {
            core::hint::spin_loop();
            now_ns = crate::trace::now_ns();
        }
        let elapsed_ns = now_ns.wrapping_sub(start_ns);
        let elapsed_ticks = ticks().wrapping_sub(start_ticks);
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
