//! `Futex`: a 32-bit word a thread can sleep on until another thread changes it and wakes it.
//!
//! On Linux the sleep is the kernel's `futex` (`FUTEX_WAIT_PRIVATE` / `FUTEX_WAKE_PRIVATE`
//! through `libc::syscall`): it needs no allocation and no set-up, the word is all the state
//! there is, so a lock built on it stays `const`-constructible. `wait(expected)` compares the
//! word with `expected` and goes to sleep as one step with respect to `wake_one` (the kernel
//! checks the word under its wait-queue lock), which is what lets a lock's unlock
//! "store, then wake if someone said they sleep" never lose a sleeper.
//!
//! Elsewhere (no futex) `wait` spins with a growing pause and, with `std`, yields its time
//! slice while the word still holds `expected`; `wake_one` does nothing. The lock protocol on
//! top is the same, it only burns the waiter's time instead of sleeping.
//!
//! Under `cfg(loom)` a futex built by [`Futex::modelled`] is a loom atomic plus a loom
//! `Mutex`/`Condvar` pair that models the kernel's wait queue: `wait` takes the mutex, returns
//! at once if the word no longer holds `expected`, and otherwise sleeps on the condvar, which
//! releases the mutex atomically; `wake_one` takes the mutex and notifies one sleeper. That
//! keeps the futex's atomicity between the check and the sleep, so loom reports a lost
//! wake-up as a deadlock. A futex built by the `const` [`Futex::new`] (a `static` lock) keeps
//! `core`'s atomic under loom and waits with `loom::thread::yield_now`.

#[cfg(loom)]
pub(crate) use modelled::Futex;
#[cfg(not(loom))]
pub(crate) use os::Futex;

#[cfg(not(loom))]
mod os {
    use core::sync::atomic::{AtomicU32, Ordering};

    /// A 32-bit word threads can sleep on.
    #[derive(Debug, Default)]
    #[repr(transparent)]
    pub(crate) struct Futex(AtomicU32);

    impl Futex {
        pub(crate) const fn new(value: u32) -> Self {
            Futex(AtomicU32::new(value))
        }

        #[inline(always)]
        pub(crate) fn load(&self, order: Ordering) -> u32 {
            self.0.load(order)
        }

        #[inline(always)]
        pub(crate) fn store(&self, value: u32, order: Ordering) {
            self.0.store(value, order);
        }

        #[inline(always)]
        pub(crate) fn swap(&self, value: u32, order: Ordering) -> u32 {
            self.0.swap(value, order)
        }

        #[inline(always)]
        pub(crate) fn compare_exchange(
            &self,
            current: u32,
            new: u32,
            success: Ordering,
            failure: Ordering,
        ) -> Result<u32, u32> {
            self.0.compare_exchange(current, new, success, failure)
        }

        /// Sleeps while the word holds `expected`. May return early (a signal, a spurious
        /// wake-up, the word already changed): callers re-check the word in a loop.
        #[cfg(target_os = "linux")]
        pub(crate) fn wait(&self, expected: u32) {
            // SAFETY: the pointer is to a live, aligned 32-bit atomic for the whole call (`&self`);
            // FUTEX_WAIT only reads it (atomically, in the kernel) and sleeps; a null timeout
            // means "no timeout". Every outcome (0, EAGAIN when the word differs, EINTR) is
            // handled by the caller's re-check, so the result is not needed.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.0.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    expected,
                    core::ptr::null::<libc::timespec>(),
                );
            }
        }

        /// Wakes one thread sleeping in [`wait`](Self::wait) on this word, if any.
        #[cfg(target_os = "linux")]
        pub(crate) fn wake_one(&self) {
            // SAFETY: as in `wait`; FUTEX_WAKE does not touch the word, it wakes at most one
            // sleeper queued on its address (private: this process only).
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.0.as_ptr(),
                    libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                    1_i32,
                );
            }
        }

        /// No futex here: spin, then (with `std`) yield, while the word holds `expected`.
        #[cfg(not(target_os = "linux"))]
        pub(crate) fn wait(&self, expected: u32) {
            let mut rounds: u32 = 0;
            while self.0.load(Ordering::Relaxed) == expected {
                rounds = rounds.saturating_add(1);
                back_off(rounds);
            }
        }

        /// No futex here: waiters poll the word, nobody needs waking.
        #[cfg(not(target_os = "linux"))]
        pub(crate) fn wake_one(&self) {}
    }

    /// The portable waiter's pause: a growing spin, then (with `std`) a yield of the time slice,
    /// because on a machine with few cores a waiter that keeps spinning can starve the very thread
    /// holding the lock.
    #[cfg(not(target_os = "linux"))]
    fn back_off(rounds: u32) {
        /// Pause rounds before a waiter starts yielding to the scheduler.
        const SPINS_BEFORE_YIELD: u32 = 64;
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
}

/// A futex that is either `core`'s atomic (built by the `const` constructor, for `static`
/// locks) or loom's with a modelled wait queue (built inside a model), with the same interface
/// as the real one, so the lock's code is the same in both builds.
#[cfg(loom)]
mod modelled {
    use core::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, Default)]
    pub(crate) struct Futex {
        plain: AtomicU32,
        modelled: Option<Modelled>,
    }

    /// The word and the wait queue that stands for the kernel's.
    #[derive(Debug)]
    struct Modelled {
        word: loom::sync::atomic::AtomicU32,
        queue: loom::sync::Mutex<()>,
        woken: loom::sync::Condvar,
    }

    impl Futex {
        pub(crate) const fn new(value: u32) -> Self {
            Futex {
                plain: AtomicU32::new(value),
                modelled: None,
            }
        }

        pub(crate) fn modelled(value: u32) -> Self {
            Futex {
                plain: AtomicU32::new(value),
                modelled: Some(Modelled {
                    word: loom::sync::atomic::AtomicU32::new(value),
                    queue: loom::sync::Mutex::new(()),
                    woken: loom::sync::Condvar::new(),
                }),
            }
        }

        pub(crate) fn load(&self, order: Ordering) -> u32 {
            match &self.modelled {
                Some(m) => m.word.load(order),
                None => self.plain.load(order),
            }
        }

        pub(crate) fn store(&self, value: u32, order: Ordering) {
            match &self.modelled {
                Some(m) => m.word.store(value, order),
                None => self.plain.store(value, order),
            }
        }

        pub(crate) fn swap(&self, value: u32, order: Ordering) -> u32 {
            match &self.modelled {
                Some(m) => m.word.swap(value, order),
                None => self.plain.swap(value, order),
            }
        }

        pub(crate) fn compare_exchange(
            &self,
            current: u32,
            new: u32,
            success: Ordering,
            failure: Ordering,
        ) -> Result<u32, u32> {
            match &self.modelled {
                Some(m) => m.word.compare_exchange(current, new, success, failure),
                None => self.plain.compare_exchange(current, new, success, failure),
            }
        }

        pub(crate) fn wait(&self, expected: u32) {
            match &self.modelled {
                Some(m) => {
                    let queued = m.queue.lock().unwrap();
                    // The kernel's check: under the queue's lock, so a waker that changed the
                    // word before it took the lock is seen here, and one that changes it after
                    // finds this thread queued.
                    if m.word.load(Ordering::Relaxed) == expected {
                        drop(m.woken.wait(queued).unwrap());
                    }
                }
                // Loom runs its threads one at a time: a waiter must hand over for the holder
                // to go on.
                None => loom::thread::yield_now(),
            }
        }

        pub(crate) fn wake_one(&self) {
            if let Some(m) = &self.modelled {
                let _queued = m.queue.lock().unwrap();
                m.woken.notify_one();
            }
        }
    }
}
