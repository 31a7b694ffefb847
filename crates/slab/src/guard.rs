//! `Guarded<T>`: a value behind its own lock, on its own cache line.
//!
//! The lock is heapkit-core's `Locked` (a `const` spin lock that never allocates, whose guard
//! hands out `&mut T`); this wrapper only pads it to a cache line so that two class locks never
//! share one (false sharing between threads working on different classes).
//!
//! Lock order, the one rule that keeps the slab deadlock-free: a class lock (ascending index
//! when several are taken, as `check` and `lock_all` do) before the chunk lock; never the other
//! way round.

use core::ops::Deref;
use heapkit_core::Locked;

/// A value and the lock that guards it, padded to a cache line.
#[repr(align(64))]
pub(crate) struct Guarded<T>(Locked<T>);

/// Exclusive access to a [`Guarded`] value while its lock is held.
pub(crate) type Guard<'a, T> = heapkit_core::LockedGuard<'a, T>;

impl<T> Guarded<T> {
    const_fn_unless_loom! {
        pub(crate) fn new(value: T) -> Self {
            Guarded(Locked::new(value))
        }
    }

    /// The value without locking: `&mut self` proves nobody else holds the lock.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }
}

impl<T> Deref for Guarded<T> {
    type Target = Locked<T>;
    fn deref(&self) -> &Locked<T> {
        &self.0
    }
}
