//! The sampler: whether profiling is on, the mean gap, and each thread's byte countdown,
//! generator and re-entry guard.
//!
//! While profiling is active an allocator asks [`should_sample`] with each request's size: the
//! thread's countdown drops by the size, and when it reaches zero the request is sampled and a
//! new exponential gap drawn. The guard makes every request the profiler itself causes (the
//! unwinder's, a dump's) unsampled, and keeps the free hook off the store while its thread may
//! hold the store's lock.

use crate::rng::SampleRng;
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// The default mean gap between samples: 512 KiB (jemalloc's `lg_prof_sample:19`).
pub const DEFAULT_SAMPLE_MEAN_BYTES: u64 = 512 * 1024;

/// Whether allocators should ask the sampler (the one flag their fast paths test).
pub static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Whether profiling was ever active: only then may sampled blocks exist.
pub static EVER_ACTIVE: AtomicBool = AtomicBool::new(false);
static MEAN_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_SAMPLE_MEAN_BYTES);
/// Bumped by every change of the mean, so each thread redraws its countdown.
static GENERATION: AtomicU32 = AtomicU32::new(1);
/// Seeds handed to threads, one apart (mixed by the generator's first steps).
static NEXT_SEED: AtomicU64 = AtomicU64::new(0x005E_ED0F_4EA9);

/// One thread's sampler state, in one thread-local so that a countdown costs one thread-local
/// address look-up (`__tls_get_addr` in a shared library), not one per field.
struct ThreadSampler {
    /// Bytes left before this thread's next sample.
    countdown: Cell<i64>,
    /// The generation of the mean the countdown was drawn with (0: never drawn).
    drawn_generation: Cell<u32>,
    rng_state: Cell<u64>,
    /// Set while this thread is inside the profiler.
    guard: Cell<bool>,
}

thread_local! {
    static THREAD: ThreadSampler = const {
        ThreadSampler {
            countdown: Cell::new(0),
            drawn_generation: Cell::new(0),
            rng_state: Cell::new(0),
            guard: Cell::new(false),
        }
    };
}

/// Whether profiling is active.
#[inline(always)]
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Whether sampled blocks may exist (profiling was active at some time): a sized free must
/// then let the allocator find out whether the block was sampled.
#[inline(always)]
pub fn samples_may_exist() -> bool {
    EVER_ACTIVE.load(Ordering::Relaxed)
}

/// Starts sampling the allocations of every allocator that has the hooks.
pub fn activate() {
    EVER_ACTIVE.store(true, Ordering::Relaxed);
    ACTIVE.store(true, Ordering::Release);
}

/// Stops sampling; the samples taken so far stay, and their frees are still seen.
pub fn deactivate() {
    ACTIVE.store(false, Ordering::Release);
}

/// Sets the mean gap between samples, in allocated bytes (1: every allocation). Threads redraw
/// their countdowns at their next allocation. A zero mean is refused.
pub fn set_sample_mean_bytes(mean_bytes: u64) -> Result<(), ZeroMean> {
    if mean_bytes == 0 {
        return Err(ZeroMean);
    }
    MEAN_BYTES.store(mean_bytes, Ordering::Relaxed);
    GENERATION.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The mean gap between samples, in bytes.
pub fn sample_mean_bytes() -> u64 {
    MEAN_BYTES.load(Ordering::Relaxed)
}

/// The error of [`set_sample_mean_bytes`] for a zero mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZeroMean;

impl core::fmt::Display for ZeroMean {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the mean gap between samples must be at least 1 byte")
    }
}

impl std::error::Error for ZeroMean {}

/// Counts `size_bytes` off this thread's countdown; true when this allocation is to be sampled.
/// Always false inside the profiler (the guard) and in a thread whose thread-local storage is
/// gone. A new mean takes effect at each thread's next sample (a countdown never drawn is drawn
/// at once). Never allocates, never panics.
#[inline]
pub fn should_sample(size_bytes: usize) -> bool {
    let size = i64::try_from(size_bytes).unwrap_or(i64::MAX);
    THREAD
        .try_with(|thread| {
            let left = thread.countdown.get().saturating_sub(size);
            if left > 0 {
                thread.countdown.set(left);
                return false;
            }
            thread.countdown_expired(size)
        })
        .unwrap_or(false)
}

impl ThreadSampler {
    /// The countdown ran out (or was never drawn).
    #[cold]
    #[inline(never)]
    fn countdown_expired(&self, size: i64) -> bool {
        if self.guard.get() {
            return false;
        }
        let generation = GENERATION.load(Ordering::Relaxed);
        if self.drawn_generation.get() != generation {
            // The first draw under this mean, as if the thread started now: this request
            // counts against it.
            self.drawn_generation.set(generation);
            let left = self.draw_gap().saturating_sub(size);
            if left > 0 {
                self.countdown.set(left);
                return false;
            }
        }
        self.countdown.set(self.draw_gap());
        true
    }

    /// An exponential gap from this thread's generator (seeded on first use).
    fn draw_gap(&self) -> i64 {
        let mut state = self.rng_state.get();
        if state == 0 {
            state = NEXT_SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        }
        let mut rng = SampleRng::new(state);
        let gap = rng.next_gap_bytes(sample_mean_bytes());
        self.rng_state.set(rng.next_u64() | 1);
        i64::try_from(gap).unwrap_or(i64::MAX)
    }
}

/// Whether this thread is inside the profiler.
pub fn in_profiler() -> bool {
    THREAD.try_with(|thread| thread.guard.get()).unwrap_or(true)
}

/// This thread's re-entry guard while it lives: allocations made meanwhile are not sampled.
#[derive(Debug)]
pub struct Guard {
    _private: (),
}

impl Guard {
    /// Enters the profiler; `None` if this thread is in it already (or has no thread-local
    /// storage left).
    pub fn enter() -> Option<Guard> {
        THREAD
            .try_with(|thread| {
                if thread.guard.replace(true) {
                    None
                } else {
                    Some(Guard { _private: () })
                }
            })
            .ok()
            .flatten()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = THREAD.try_with(|thread| thread.guard.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_is_not_reentrant() {
        let outer = Guard::enter().expect("first entry");
        assert!(in_profiler());
        assert!(Guard::enter().is_none());
        assert!(!should_sample(usize::MAX), "no sample inside the profiler");
        drop(outer);
        assert!(!in_profiler());
    }

    #[test]
    fn a_zero_mean_is_refused() {
        assert_eq!(set_sample_mean_bytes(0), Err(ZeroMean));
    }
}
