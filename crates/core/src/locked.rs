//! `Locked<A>`: share a single-threaded allocator between threads.
//!
//! The lock ([`SpinLock`], named before it learned to sleep) is one 32-bit word. It is
//! `const`-constructible (so a `Locked<A>` can sit in a `static`) and never allocates (unlike
//! `pthread_mutex_init` on some systems, or `std::sync::Mutex` on older platforms).
//!
//! # The protocol (Drepper, "Futexes are tricky", mutex3; glibc's lowlevellock)
//!
//! The word is 0 (free), 1 (held) or 2 (held, and a waiter may be asleep on it).
//!
//! - **lock**: `compare_exchange(0 → 1, Acquire)`; that is the whole uncontended path.
//! - **contended**: read the word a few times with a `spin_loop` pause (reads only, so spinning
//!   waiters share the cache line), taking it with `0 → 1` if it comes free; then
//!   `swap(2, Acquire)` — which takes the lock if it returned 0 — and sleep with
//!   `FUTEX_WAIT_PRIVATE` while the word is 2; after each wake-up, spin briefly and swap 2
//!   again. A waiter that gets the lock this way leaves the word at 2: other waiters may
//!   still sleep, and one needless wake-up is the price of never losing one.
//! - **unlock**: `swap(0, Release)`; if the old value was 2, `FUTEX_WAKE_PRIVATE` one sleeper.
//!
//! No wake-up is lost because the kernel compares the word with 2 and queues the waiter as one
//! step with respect to `FUTEX_WAKE` on the same word: an unlock either changed the word
//! before the waiter's check (the wait returns at once) or finds the waiter queued.
//!
//! The spin is short (`SPIN_READS`, 40 reads): with 16 threads on 2 cores a holder that does not
//! release within a few reads has usually been descheduled, and a waiter that keeps spinning
//! (or yields in a loop, as this lock did before) only takes the core the holder needs. A
//! sleeping waiter costs nothing until it is woken. In an ownership-transfer stress with 16
//! threads on this 2-core machine the spin-then-`sched_yield` lock made 24,608 `sched_yield`
//! calls and 23,704 context switches in one run; the futex lock 0 and 1,159 (195 futex calls)
//! — crates/core/README.md gives the commands.
//!
//! Without a futex (not Linux) the same protocol runs, and a waiter polls the word instead of
//! sleeping: a growing pause, then (with `std`) `yield_now` (src/futex.rs).
//!
//! # The single-threaded shortcut
//!
//! While the process has a single thread (see [`process_is_single_threaded`]) taking the lock is
//! a plain load and store of 1 instead of a `lock cmpxchg`, and releasing it a plain store of 0
//! instead of an `xchg`: glibc's malloc skips its arena lock the same way, and a
//! single-threaded program should not pay for threads it never starts. Each side asks the
//! question itself, so the two paths agree: the unlock takes the plain store only when no other
//! thread exists — then nobody can be asleep on the word — and a lock taken on the shortcut but
//! released after a second thread started (which may have marked it 2 and gone to sleep) is
//! released by the swap, which wakes it.
//!
//! # Fork
//!
//! [`Locked::raw_lock`] and [`SpinLock::unlock`]'s contract let a `fork` handler take every lock
//! before `fork` and release them in the parent and the child. In the child the word may read 2
//! (a parent thread slept on it); the child's unlock then wakes nobody, which is harmless.
//!
//! # Under loom
//!
//! Under `cfg(loom)` (the loom models of heapkit-slab, `crates/slab/tests/loom.rs`, and the
//! lock's own, `crates/core/tests/loom_lock.rs`) every `Locked` takes a lock whose word is a loom
//! atomic and whose futex is modelled by a loom `Mutex` and `Condvar` (so loom explores who gets
//! the lock, checks the orderings that hand the data over, and reports a lost wake-up as a
//! deadlock), does not spin, and carries a loom cell that stands for the guarded value, so loom
//! reports any access to it not ordered by the lock. The single-threaded shortcut is off under
//! loom ([`process_is_single_threaded`] says "maybe not"). `SpinLock::new` stays `const` there
//! for `static` locks (loom's atomics cannot be built in a `const` context) and keeps `core`'s
//! atomic, with waiters that yield to loom: loom cannot switch threads inside such a lock's
//! critical section unless it contains a loom operation.

use crate::futex::Futex;
use crate::threads::process_is_single_threaded;
use crate::{AllocError, Allocator, Introspect, InvariantError, Stats};
use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

/// The lock word's states (Drepper's "mutex3").
const FREE: u32 = 0;
/// Held, and no thread has said it sleeps on the word: the unlock need not wake anybody.
const HELD: u32 = 1;
/// Held, and some thread may sleep on the word: the unlock must wake one.
const CONTENDED: u32 = 2;

/// How many times a waiter reads the word (with a `spin_loop` pause between reads) before it
/// marks the lock contended and sleeps. Small on purpose: a critical section here is a few
/// list operations, so a holder that is running releases within a few reads; a holder that has
/// not released by then has usually been descheduled (2 cores, 16 threads), and every further
/// spin only takes the core it needs to finish. Spinning longer buys nothing then, and
/// sleeping costs the waiter one syscall. (In the 16-thread transfer stress of the README, 4,
/// 40 and 200 reads made no difference beyond noise: 125-233 futex calls and 854-941 context
/// switches per run, 2 runs each.) Under loom 0: every read is one more step to explore.
const SPIN_READS: u32 = if cfg!(loom) { 0 } else { 40 };

/// A lock that never allocates and can be built in a `const` context.
///
/// Despite its name it does not spin for long: a waiter spins briefly, then sleeps on a futex
/// until the holder wakes it (the module docs give the protocol). The name stays because every
/// crate of the workspace knows the lock by it.
#[derive(Debug, Default)]
pub struct SpinLock {
    state: Futex,
    /// The protocol step a loom sabotage model breaks on purpose (never set outside those).
    #[cfg(loom)]
    weakening: Weakening,
}

/// A deliberately broken step of the lock protocol, for the loom models that check that the
/// models catch it (crates/core/tests/loom_lock.rs). Only under `cfg(loom)`.
#[cfg(loom)]
#[doc(hidden)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Weakening {
    /// The protocol as written.
    #[default]
    None,
    /// A waiter marks the word "held" (1) instead of "contended" (2) before it sleeps, so the
    /// unlock does not know it must wake it: a lost wake-up.
    WaiterMarksHeld,
    /// The unlock never wakes a sleeper.
    UnlockSkipsWake,
    /// The unlock releases with `Relaxed` instead of `Release`: the next holder's `Acquire`
    /// does not see the previous holder's writes.
    RelaxedUnlock,
}

impl SpinLock {
    /// An unlocked lock.
    pub const fn new() -> Self {
        SpinLock {
            state: Futex::new(FREE),
            #[cfg(loom)]
            weakening: Weakening::None,
        }
    }

    /// An unlocked lock whose word is a loom atomic and whose sleeps are loom's, explored by
    /// loom's models. Build it inside `loom::model`.
    #[cfg(loom)]
    pub fn modelled() -> Self {
        Self::modelled_weakened(Weakening::None)
    }

    /// A modelled lock with one protocol step broken on purpose (the sabotage models).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn modelled_weakened(weakening: Weakening) -> Self {
        SpinLock {
            state: Futex::modelled(FREE),
            weakening,
        }
    }

    /// Takes the lock, waiting as long as needed.
    #[inline]
    pub fn lock(&self) {
        if process_is_single_threaded() && self.state.load(Ordering::Relaxed) == FREE {
            // No other thread exists to race this store, and a thread created later starts
            // after `pthread_create`'s own synchronisation, so it sees the lock held. A lock
            // found held here (a re-entrant call, or a fork child whose parent thread held it)
            // takes the path below and waits, exactly as the atomic path would.
            self.state.store(HELD, Ordering::Relaxed);
            return;
        }
        if self.try_lock() {
            return;
        }
        self.lock_contended();
    }

    /// Takes the lock if it is free right now.
    #[inline]
    pub fn try_lock(&self) -> bool {
        self.state
            .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[cold]
    fn lock_contended(&self) {
        let mut state = self.spin();
        if state == FREE {
            // Free after a short spin: take it as plain "held", nobody said it sleeps.
            match self
                .state
                .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
        let mark = self.waiter_mark();
        loop {
            // Mark the lock contended before sleeping, so that its unlock wakes a sleeper. The
            // swap takes the lock when it was free; it then stays marked "contended" (another
            // waiter may still sleep), which costs at most one needless wake-up.
            if state != mark && self.state.swap(mark, Ordering::Acquire) == FREE {
                return;
            }
            // Sleeps only while the word still says "contended": an unlock in between makes
            // the kernel return at once.
            self.state.wait(mark);
            state = self.spin();
        }
    }

    /// Reads the word until it is no longer plain "held" or the spin budget is spent; returns
    /// the last value read. Only reads: spinning waiters share the cache line.
    fn spin(&self) -> u32 {
        let mut reads_left = SPIN_READS;
        loop {
            let state = self.state.load(Ordering::Relaxed);
            // Free: try to take it. Contended: others already sleep, the holder is slow; join
            // them rather than spin.
            if state != HELD || reads_left == 0 {
                return state;
            }
            core::hint::spin_loop();
            reads_left -= 1;
        }
    }

    /// The mark a waiter leaves before it sleeps: "contended", unless a sabotage model says
    /// otherwise.
    #[inline(always)]
    fn waiter_mark(&self) -> u32 {
        #[cfg(loom)]
        if self.weakening == Weakening::WaiterMarksHeld {
            return HELD;
        }
        CONTENDED
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The caller holds the lock (or, in a `fork` child, knows that the thread that held it no
    /// longer exists and that the data it guards is consistent).
    #[inline]
    pub unsafe fn unlock(&self) {
        debug_assert!(
            self.state.load(Ordering::Relaxed) != FREE,
            "unlock of a free SpinLock"
        );
        if process_is_single_threaded() {
            // No other thread exists, so none sleeps on the word and none can read it: a plain
            // store frees it (glibc's `SINGLE_THREAD_P` again). This does not depend on how the
            // lock was taken: a lock taken on the shortcut and released after a second thread
            // started comes through the swap below and wakes the waiter that marked it.
            self.state.store(FREE, Ordering::Release);
            return;
        }
        if self.state.swap(FREE, self.release_order()) == CONTENDED {
            self.wake_one_waiter();
        }
    }

    #[cold]
    fn wake_one_waiter(&self) {
        #[cfg(loom)]
        if self.weakening == Weakening::UnlockSkipsWake {
            return;
        }
        self.state.wake_one();
    }

    /// The unlock's ordering: `Release`, unless a sabotage model says otherwise.
    #[inline(always)]
    fn release_order(&self) -> Ordering {
        #[cfg(loom)]
        if self.weakening == Weakening::RelaxedUnlock {
            return Ordering::Relaxed;
        }
        Ordering::Release
    }

    /// Whether some thread holds the lock right now (a racy snapshot, for assertions).
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) != FREE
    }
}

/// Makes an allocator `Sync` by taking a [`SpinLock`] around every call.
///
/// It guards any value, not only allocators: [`lock`](Locked::lock) hands out a guard that
/// derefs to `&A` and `&mut A` while the lock is held (the slab keeps its per-class lists in
/// `Locked` values).
///
/// Use it for the single-threaded algorithms (heapkit-bins, heapkit-bump) when several
/// threads must share one instance; `Locked::new` is `const`, so it can back a
/// `#[global_allocator]`:
///
/// ```
/// use heapkit_core::{Allocator, Locked};
/// # use heapkit_core::AllocError;
/// # use core::{alloc::Layout, ptr::NonNull, cell::Cell};
/// # struct Nothing(Cell<u8>);
/// # unsafe impl Allocator for Nothing {
/// #     fn allocate_nonzero(&self, _: Layout) -> Result<NonNull<[u8]>, AllocError> { Err(AllocError) }
/// #     unsafe fn deallocate_nonzero(&self, _: NonNull<u8>, _: Layout) {}
/// # }
/// static SHARED: Locked<Nothing> = Locked::new(Nothing(Cell::new(0)));
/// assert!(SHARED.allocate(Layout::new::<u64>()).is_err());
/// ```
pub struct Locked<A> {
    lock: SpinLock,
    inner: UnsafeCell<A>,
    /// Stands for `inner` in loom's race detector: every guard holds a write access to it.
    #[cfg(loom)]
    access: loom::cell::UnsafeCell<()>,
}

// SAFETY: every access to `inner` happens with `lock` held (see `lock()`), so at most one
// thread uses the allocator at a time; `A: Send` makes handing it between threads sound.
unsafe impl<A: Send> Sync for Locked<A> {}
// SAFETY: moving the wrapper moves the allocator, which is `Send`.
unsafe impl<A: Send> Send for Locked<A> {}

// What the crates promise about the lock and the adapter: a lock is one 32-bit word (the futex
// word), and a `Locked` of any `Send` allocator may be shared between threads.
#[cfg(not(loom))]
static_assertions::assert_eq_size!(SpinLock, u32);
static_assertions::assert_impl_all!(SpinLock: Send, Sync);
static_assertions::assert_impl_all!(Locked<core::cell::Cell<usize>>: Send, Sync);

impl<A> Locked<A> {
    /// Wraps `inner`.
    #[cfg(not(loom))]
    pub const fn new(inner: A) -> Self {
        Locked {
            lock: SpinLock::new(),
            inner: UnsafeCell::new(inner),
        }
    }

    /// Wraps `inner` behind a loom-modelled lock (not `const`: loom's atomics cannot be built
    /// in a `const` context). Build it inside `loom::model`.
    #[cfg(loom)]
    pub fn new(inner: A) -> Self {
        Locked {
            lock: SpinLock::modelled(),
            inner: UnsafeCell::new(inner),
            access: loom::cell::UnsafeCell::new(()),
        }
    }

    /// Takes the lock and gives access to the allocator until the guard drops.
    #[inline]
    pub fn lock(&self) -> LockedGuard<'_, A> {
        self.lock.lock();
        LockedGuard {
            owner: self,
            #[cfg(loom)]
            access: Some(self.access.get_mut()),
        }
    }

    /// The allocator, without locking: `&mut self` proves no other thread can hold the lock.
    pub fn get_mut(&mut self) -> &mut A {
        self.inner.get_mut()
    }

    /// Unwraps the allocator.
    pub fn into_inner(self) -> A {
        self.inner.into_inner()
    }

    /// The lock itself, for `fork` handlers that must take every lock before `fork` and
    /// release them in the parent and the child.
    pub fn raw_lock(&self) -> &SpinLock {
        &self.lock
    }
}

/// Access to a [`Locked`] allocator while its lock is held.
pub struct LockedGuard<'a, A> {
    owner: &'a Locked<A>,
    /// Loom's record of this guard's access to the value, ended before the unlock.
    #[cfg(loom)]
    access: Option<loom::cell::MutPtr<()>>,
}

impl<A> Deref for LockedGuard<'_, A> {
    type Target = A;
    #[inline]
    fn deref(&self) -> &A {
        // SAFETY: the guard exists only while the lock is held, so no other thread touches
        // `inner`; shared access is all the guard hands out.
        unsafe { &*self.owner.inner.get() }
    }
}

impl<A> DerefMut for LockedGuard<'_, A> {
    #[inline]
    fn deref_mut(&mut self) -> &mut A {
        // SAFETY: the guard exists only while the lock is held, so no other guard or thread
        // reaches `inner`; `&mut self` makes this borrow unique within the guard.
        unsafe { &mut *self.owner.inner.get() }
    }
}

impl<A> Drop for LockedGuard<'_, A> {
    #[inline]
    fn drop(&mut self) {
        // The access ends before the release, as the real accesses through the guard do.
        #[cfg(loom)]
        drop(self.access.take());
        // SAFETY: the guard was created by taking the lock and this is its only release.
        unsafe { self.owner.lock.unlock() }
    }
}

// SAFETY: each call runs with the lock held, so the inner allocator sees one caller at a time,
// exactly as if it were used from a single thread; its block contract carries over.
unsafe impl<A: Allocator> Allocator for Locked<A> {
    #[inline]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.lock().allocate_nonzero(layout)
    }
    #[inline]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.lock().deallocate_nonzero(ptr, layout) }
    }
    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.lock().allocate_zeroed_nonzero(layout)
    }
    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.lock().grow_nonzero(ptr, old_layout, new_layout) }
    }
    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.lock().shrink_nonzero(ptr, old_layout, new_layout) }
    }
}

impl<A: Introspect> Introspect for Locked<A> {
    fn check(&self) -> Result<(), InvariantError> {
        self.lock().check()
    }
    fn stats(&self) -> Option<Stats> {
        self.lock().stats()
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn spin_lock_excludes_other_threads() {
        struct Shared {
            lock: SpinLock,
            count: UnsafeCell<u64>,
        }
        // SAFETY: `count` is touched only with `lock` held.
        unsafe impl Sync for Shared {}
        let shared = Arc::new(Shared {
            lock: SpinLock::new(),
            count: UnsafeCell::new(0),
        });
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let shared = Arc::clone(&shared);
                thread::spawn(move || {
                    for _ in 0..if cfg!(miri) { 200 } else { 20_000 } {
                        shared.lock.lock();
                        // SAFETY: the lock is held.
                        unsafe {
                            *shared.count.get() += 1;
                            shared.lock.unlock();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            // SAFETY: every thread has finished.
            unsafe { *shared.count.get() },
            if cfg!(miri) { 800 } else { 80_000 }
        );
        assert!(!shared.lock.is_locked());
    }

    /// 8 threads on one `Locked` counter (more threads than this machine's cores, so holders
    /// are descheduled and waiters really sleep on the futex): no increment is lost, and the
    /// lock is free at the end, its word back to "free" rather than stuck at "contended".
    #[test]
    fn locked_counter_is_exact_under_contention() {
        const THREADS: u64 = 8;
        let rounds: u64 = if cfg!(miri) { 50 } else { 50_000 };
        let counter = Arc::new(Locked::new(0_u64));
        let threads: std::vec::Vec<_> = (0..THREADS)
            .map(|_| {
                let counter = Arc::clone(&counter);
                thread::spawn(move || {
                    for _ in 0..rounds {
                        let mut count = counter.lock();
                        // A read, a yield inside the critical section, then the write: a lost
                        // exclusion shows up as a lost increment.
                        let seen = *count;
                        if seen % 64 == 0 {
                            thread::yield_now();
                        }
                        *count = seen + 1;
                    }
                })
            })
            .collect();
        assert!(!process_is_single_threaded());
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*counter.lock(), THREADS * rounds);
        assert!(!counter.raw_lock().is_locked());
        assert_eq!(counter.raw_lock().state.load(Ordering::Relaxed), FREE);
    }

    /// A waiter that found the lock held long enough to sleep is woken by the unlock.
    #[test]
    fn sleeping_waiter_is_woken() {
        let lock = Arc::new(SpinLock::new());
        lock.lock();
        let waiter = {
            let lock = Arc::clone(&lock);
            thread::spawn(move || {
                lock.lock();
                // SAFETY: taken just above.
                unsafe { lock.unlock() };
            })
        };
        // Wait (without a timed assertion) until the waiter has marked the lock contended,
        // which it does only right before it sleeps.
        while lock.state.load(Ordering::Relaxed) != CONTENDED {
            thread::yield_now();
        }
        // SAFETY: taken at the top of the test.
        unsafe { lock.unlock() };
        waiter.join().unwrap();
        assert!(!lock.is_locked());
    }

    #[test]
    fn try_lock_fails_while_held() {
        let lock = SpinLock::new();
        assert!(lock.try_lock());
        assert!(!lock.try_lock());
        // SAFETY: taken just above.
        unsafe { lock.unlock() };
        assert!(lock.try_lock());
    }
}
