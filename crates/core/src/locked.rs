//! `Locked<A>`: share a single-threaded allocator between threads.
//!
//! The lock is a test-and-test-and-set spin lock: it is `const`-constructible (so a
//! `Locked<A>` can sit in a `static`), it never allocates (unlike `pthread_mutex_init` on some
//! systems, or `std::sync::Mutex` on older platforms), and it fits in one byte. Waiters spin with
//! a growing pause and, with the `std` feature, yield their time slice after a while, because on
//! a two-core machine a waiter that keeps spinning can starve the very thread holding the lock.
//!
//! While the process has a single thread (see [`process_is_single_threaded`]) taking the lock is
//! a plain load and store instead of a `lock cmpxchg`: glibc's malloc skips its arena lock the
//! same way, and a single-threaded program should not pay for threads it never starts.
//!
//! Under `cfg(loom)` (the loom models of heapkit-slab, `crates/slab/tests/loom.rs`) every
//! `Locked` takes a lock built on loom's `AtomicBool` (so loom explores who gets it and checks
//! the orderings that hand the data over), waits with `loom::thread::yield_now`, and carries a
//! loom cell that stands for the guarded value, so loom reports any access to it not ordered
//! by the lock. The single-threaded shortcut is off under loom ([`process_is_single_threaded`]
//! says "maybe not"). `SpinLock::new` stays `const` there for `static` locks (loom's atomics
//! cannot be built in a `const` context) and keeps `core`'s atomic: loom cannot switch threads
//! inside such a lock's critical section unless it contains a loom operation.

use crate::threads::process_is_single_threaded;
use crate::{AllocError, Allocator, Introspect, InvariantError, Stats};
use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
#[cfg(not(loom))]
use core::sync::atomic::AtomicBool as Flag;
use core::sync::atomic::Ordering;
#[cfg(loom)]
use modelled::Flag;

/// A spin lock that never allocates and can be built in a `const` context.
#[derive(Debug, Default)]
pub struct SpinLock {
    locked: Flag,
}

/// How many pause rounds a waiter spins before it starts yielding to the scheduler.
#[cfg_attr(loom, allow(dead_code))] // loom's waiters yield at once
const SPINS_BEFORE_YIELD: u32 = 64;

impl SpinLock {
    /// An unlocked lock.
    pub const fn new() -> Self {
        SpinLock {
            locked: Flag::new(false),
        }
    }

    /// An unlocked lock whose flag is a loom atomic, explored by loom's models. Build it
    /// inside `loom::model`.
    #[cfg(loom)]
    pub fn modelled() -> Self {
        SpinLock {
            locked: Flag::modelled(false),
        }
    }

    /// Takes the lock, waiting as long as needed.
    #[inline]
    pub fn lock(&self) {
        if process_is_single_threaded() && !self.locked.load(Ordering::Relaxed) {
            // No other thread exists to race this store, and a thread created later starts
            // after `pthread_create`'s own synchronisation, so it sees the lock held. A lock
            // found held here (a re-entrant call, or a fork child whose parent thread held it)
            // takes the path below and waits, exactly as the atomic path would.
            self.locked.store(true, Ordering::Relaxed);
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
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[cold]
    fn lock_contended(&self) {
        let mut rounds: u32 = 0;
        loop {
            // Read before trying to write, so waiters share the cache line instead of bouncing it.
            while self.locked.load(Ordering::Relaxed) {
                rounds = rounds.saturating_add(1);
                pause(rounds);
            }
            if self.try_lock() {
                return;
            }
        }
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The caller holds the lock (or, in a `fork` child, knows that the thread that held it no
    /// longer exists and that the data it guards is consistent).
    #[inline]
    pub unsafe fn unlock(&self) {
        debug_assert!(
            self.locked.load(Ordering::Relaxed),
            "unlock of a free SpinLock"
        );
        self.locked.store(false, Ordering::Release);
    }

    /// Whether some thread holds the lock right now (a racy snapshot, for assertions).
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

#[inline]
fn pause(rounds: u32) {
    // Loom runs its threads one at a time: a waiter must hand over for the holder to go on.
    #[cfg(loom)]
    {
        let _ = rounds;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    if rounds < SPINS_BEFORE_YIELD {
        for _ in 0..rounds.min(16) {
            core::hint::spin_loop();
        }
    } else {
        #[cfg(feature = "std")]
        std::thread::yield_now();
        #[cfg(not(feature = "std"))]
        core::hint::spin_loop();
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

/// A lock flag that is either `core`'s atomic (built by the `const` constructor, for `static`
/// locks) or loom's (built inside a model), with `AtomicBool`'s interface, so the lock's code
/// is the same in both builds.
#[cfg(loom)]
mod modelled {
    use core::sync::atomic::{AtomicBool, Ordering};

    #[derive(Debug, Default)]
    pub(super) struct Flag {
        plain: AtomicBool,
        modelled: Option<loom::sync::atomic::AtomicBool>,
    }

    impl Flag {
        pub(super) const fn new(value: bool) -> Self {
            Flag {
                plain: AtomicBool::new(value),
                modelled: None,
            }
        }

        pub(super) fn modelled(value: bool) -> Self {
            Flag {
                plain: AtomicBool::new(value),
                modelled: Some(loom::sync::atomic::AtomicBool::new(value)),
            }
        }

        pub(super) fn load(&self, order: Ordering) -> bool {
            match &self.modelled {
                Some(flag) => flag.load(order),
                None => self.plain.load(order),
            }
        }

        pub(super) fn store(&self, value: bool, order: Ordering) {
            match &self.modelled {
                Some(flag) => flag.store(value, order),
                None => self.plain.store(value, order),
            }
        }

        pub(super) fn compare_exchange(
            &self,
            current: bool,
            new: bool,
            success: Ordering,
            failure: Ordering,
        ) -> Result<bool, bool> {
            match &self.modelled {
                Some(flag) => flag.compare_exchange(current, new, success, failure),
                None => self.plain.compare_exchange(current, new, success, failure),
            }
        }
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
