//! Loom models of `SpinLock`'s own protocol: the lock word (0 free, 1 held, 2 held with
//! sleepers) on a loom atomic, and the futex's wait queue modelled by a loom `Mutex`/`Condvar`
//! pair (crates/core/src/futex.rs: `wait` checks the word and sleeps as one step with respect to
//! `wake_one`, as the kernel does). Loom runs every interleaving (up to the preemption bound) and
//! every value the orderings allow, and fails a model on a data race on the guarded value (an
//! access not ordered after the previous holder's by the lock's `Acquire`/`Release`), on a
//! deadlock (a sleeper nobody wakes: every thread blocked), or on an assertion below.
//!
//! Run (seconds in release mode; the separate target directory keeps the `--cfg loom` build from
//! invalidating the normal one):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p heapkit-core --test loom_lock --release
//! ```
//!
//! What the models prove, for every explored schedule:
//!
//! 1. `two_threads_exclude` / `three_threads_exclude`: increments of a loom cell under the lock
//!    from 2 (and 3) threads never race and none is lost.
//! 2. `held_lock_wakes_every_waiter`: while one thread holds the lock, two others try to take
//!    it (so they spin, mark the word contended and sleep, in whatever order loom picks); every
//!    one of them gets the lock in the end (a lost wake-up is a deadlock), including the second
//!    sleeper, which only a waiter that re-marks the word "contended" after it wakes keeps
//!    reachable.
//!
//! The sabotage models run the same models over a lock with one step broken on purpose
//! (`SpinLock::modelled_weakened`, loom builds only) and expect loom to fail them: a waiter
//! that marks the word "held" instead of "contended" and an unlock that skips the wake-up both
//! deadlock model 2; an unlock with `Relaxed` instead of `Release` races in model 1. A model
//! that passed its sabotaged lock would prove nothing, so CI runs these too.
#![cfg(loom)]

use heapkit_core::{SpinLock, Weakening};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

/// A lock and the value it guards (a loom cell, so loom checks every access to it).
struct Guarded {
    lock: SpinLock,
    count: UnsafeCell<usize>,
}

// SAFETY: `count` is accessed only with `lock` held (see `increment`).
unsafe impl Sync for Guarded {}

impl Guarded {
    fn new(weakening: Weakening) -> Arc<Guarded> {
        Arc::new(Guarded {
            lock: SpinLock::modelled_weakened(weakening),
            count: UnsafeCell::new(0),
        })
    }

    /// Read, then write, under the lock: two holders at once race in loom's eyes.
    fn increment(&self) {
        self.lock.lock();
        // SAFETY: the lock is held, so no other thread accesses `count` (which loom checks).
        self.count.with_mut(|count| unsafe { *count += 1 });
        // SAFETY: taken just above, released once.
        unsafe { self.lock.unlock() };
    }

    fn count(&self) -> usize {
        self.lock.lock();
        // SAFETY: the lock is held.
        let count = self.count.with(|count| unsafe { *count });
        // SAFETY: taken just above.
        unsafe { self.lock.unlock() };
        count
    }
}

/// Runs `f` under loom with at most `preemptions` preemptions (`LOOM_MAX_PREEMPTIONS` may lower
/// it), printing how many schedules it explored (`--nocapture`).
fn model(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(
        builder
            .preemption_bound
            .map_or(preemptions, |env| env.min(preemptions)),
    );
    let iterations = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&iterations);
    builder.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    println!(
        "{} schedules explored",
        iterations.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// `threads` threads (the model's main thread among them) increment the count `rounds` times
/// each; the total must be exact.
fn exclusion(weakening: Weakening, threads: usize, rounds: usize) {
    let guarded = Guarded::new(weakening);
    let others: Vec<_> = (1..threads)
        .map(|_| {
            let guarded = Arc::clone(&guarded);
            thread::spawn(move || {
                for _ in 0..rounds {
                    guarded.increment();
                }
            })
        })
        .collect();
    for _ in 0..rounds {
        guarded.increment();
    }
    for other in others {
        other.join().unwrap();
    }
    assert_eq!(guarded.count(), threads * rounds, "an increment was lost");
    assert!(!guarded.lock.is_locked());
}

/// The main thread holds the lock while two others queue up on it, then releases it: each
/// waiter must get the lock.
fn wake_every_waiter(weakening: Weakening) {
    let guarded = Guarded::new(weakening);
    guarded.lock.lock();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let guarded = Arc::clone(&guarded);
            thread::spawn(move || guarded.increment())
        })
        .collect();
    // Let the waiters run into the held lock (loom also explores schedules where they have not
    // reached it yet).
    thread::yield_now();
    // SAFETY: taken at the top.
    unsafe { guarded.lock.unlock() };
    for waiter in waiters {
        waiter.join().unwrap();
    }
    assert_eq!(guarded.count(), 2, "a waiter never got the lock");
}

#[test]
fn two_threads_exclude() {
    model(3, || exclusion(Weakening::None, 2, 2));
}

#[test]
fn three_threads_exclude() {
    model(2, || exclusion(Weakening::None, 3, 1));
}

#[test]
fn held_lock_wakes_every_waiter() {
    model(3, || wake_every_waiter(Weakening::None));
}

/// Runs model 2 over a lock weakened by `weakening` in a child process (`test_name` is the
/// calling test), and asserts that loom found the deadlock. In the child, loom's deadlock panic
/// is followed by a panic while it drops the blocked threads, which aborts the process: a
/// `should_panic` test cannot catch that, a parent process can.
fn assert_deadlocks(test_name: &str, weakening: Weakening) {
    const CHILD: &str = "HEAPKIT_LOOM_LOCK_SABOTAGE_CHILD";
    if heapkit_testkit::child::is_child(CHILD) {
        model(3, move || wake_every_waiter(weakening));
        unreachable!("loom passed a lock that loses wake-ups");
    }
    heapkit_testkit::child::assert_aborts_with(test_name, CHILD, "deadlock");
}

#[test]
fn sabotage_waiter_marks_held_loses_a_wake_up() {
    assert_deadlocks(
        "sabotage_waiter_marks_held_loses_a_wake_up",
        Weakening::WaiterMarksHeld,
    );
}

#[test]
fn sabotage_unlock_skips_wake_loses_a_wake_up() {
    assert_deadlocks(
        "sabotage_unlock_skips_wake_loses_a_wake_up",
        Weakening::UnlockSkipsWake,
    );
}

#[test]
#[should_panic(expected = "Causality violation")]
fn sabotage_relaxed_unlock_races() {
    model(3, || exclusion(Weakening::RelaxedUnlock, 2, 1));
}
