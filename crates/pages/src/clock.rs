//! The purge clock: milliseconds of a monotonic clock, read only on slow paths (heapkit-slab's
//! slot releases and refills, [`Retained`](crate::Retained)'s `map` and `unmap`), never per
//! block; and the purge defaults that the slab and the retaining layer share.
//!
//! On Linux `CLOCK_MONOTONIC_COARSE` is a vDSO read of the kernel's tick counter (no system
//! call, about as cheap as a cache-missing load) with the tick's resolution (1–4 ms), which is
//! plenty for a purge delay measured in hundreds of milliseconds. Other Unix systems use
//! `CLOCK_MONOTONIC`. Without a clock (not Unix) the time reads 0 forever: dirty slots then
//! never age, and only the purge threshold (and a delay of 0) purges them.

/// Default dirty bytes (freed memory whose pages may still be resident) allowed before they are
/// purged, in heapkit-slab's free slots and in [`Retained`](crate::Retained)'s runs (where it
/// is a floor that grows with the bytes in use). See heapkit-slab's README for the measurement
/// behind it.
pub const DEFAULT_PURGE_THRESHOLD_BYTES: usize = 8 << 20;

/// Default time freed memory may stay dirty before the next slow path that notices purges it
/// (jemalloc's `dirty_decay_ms` is the same idea, 10 s by default there): long enough that a
/// program cycling through a working set keeps its pages, short enough that memory freed
/// below the threshold still goes back within about a second of the next slow-path call.
pub const DEFAULT_PURGE_DELAY_MS: u64 = 1000;

/// Milliseconds since an arbitrary fixed origin; never decreases. 0 when no clock is available.
#[inline]
pub fn now_ms() -> u64 {
    #[cfg(unix)]
    {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable timespec; clock_gettime writes only into it.
        if unsafe { libc::clock_gettime(CLOCK, &mut now) } != 0 {
            return 0;
        }
        (now.tv_sec as u64)
            .saturating_mul(1000)
            .saturating_add(now.tv_nsec as u64 / 1_000_000)
    }
    #[cfg(not(unix))]
    0
}

/// Whether a slot made dirty at `since_ms` has waited `delay_ms` by `now_ms`.
#[inline]
pub const fn expired(since_ms: u64, now_ms: u64, delay_ms: u64) -> bool {
    now_ms.saturating_sub(since_ms) >= delay_ms
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_forward() {
        let before = now_ms();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let after = now_ms();
        assert!(after >= before + 10, "{before} -> {after}");
    }

    #[test]
    fn expiry_is_inclusive_and_never_overflows() {
        assert!(expired(100, 100, 0));
        assert!(!expired(100, 199, 100));
        assert!(expired(100, 200, 100));
        assert!(!expired(100, 50, 10), "a clock that went back ages nothing");
        assert!(!expired(0, u64::MAX - 1, u64::MAX), "u64::MAX means never");
    }
}
