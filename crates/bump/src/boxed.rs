//! `ArenaBox`: an owning pointer into an arena, for values whose `Drop` must run.
//!
//! The arena itself never drops what it holds (that would need a list of destructors, which
//! costs memory and time on every allocation). An `ArenaBox` runs the value's destructor when
//! the box is dropped; the memory still goes back only with the arena.

use crate::{Arena, ChunkSource, Scope};
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use heapkit_core::AllocError;

/// Owns a `T` stored in an arena: dropping the box drops the value (the bytes stay in the arena
/// until it is reset).
///
/// ```
/// use heapkit_bump::{Arena, ArenaBox};
/// use std::rc::Rc;
/// let counter = Rc::new(());
/// let arena = Arena::new();
/// {
///     let boxed = ArenaBox::new_in(Rc::clone(&counter), &arena);
///     assert_eq!(Rc::strong_count(&boxed), 2);
/// } // the box drops the Rc it owns
/// assert_eq!(Rc::strong_count(&counter), 1);
/// let leaked = arena.alloc(Rc::clone(&counter)); // a plain `alloc` is never dropped
/// assert_eq!(Rc::strong_count(&counter), 2);
/// # // Undo the leak by hand so that Miri's leak check stays quiet.
/// # unsafe { core::ptr::drop_in_place(leaked) };
/// ```
pub struct ArenaBox<'a, T> {
    value: NonNull<T>,
    /// The box owns a `T` (drop check) and borrows the arena for `'a`.
    _owns: PhantomData<(T, &'a mut T)>,
}

impl<'a, T> ArenaBox<'a, T> {
    /// Moves `value` into `arena`, owned by the returned box. Failure follows
    /// `handle_alloc_error`.
    #[inline]
    pub fn new_in<S: ChunkSource>(value: T, arena: &'a Arena<S>) -> Self {
        Self::from_mut(arena.alloc(value))
    }

    /// Like [`new_in`](Self::new_in), but `AllocError` on failure (the value is dropped).
    #[inline]
    pub fn try_new_in<S: ChunkSource>(value: T, arena: &'a Arena<S>) -> Result<Self, AllocError> {
        Ok(Self::from_mut(arena.try_alloc(value)?))
    }

    /// Moves `value` into a scope, owned by the returned box.
    #[inline]
    pub fn new_in_scope<S: ChunkSource>(value: T, scope: &Scope<'a, S>) -> Self {
        Self::from_mut(scope.alloc(value))
    }

    /// Takes ownership of a value already in the arena.
    fn from_mut(value: &'a mut T) -> Self {
        ArenaBox {
            value: NonNull::from(value),
            _owns: PhantomData,
        }
    }

    /// Moves the value out (the bytes stay in the arena).
    pub fn into_inner(self) -> T {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: the box owns an initialised value, and `ManuallyDrop` stops the destructor
        // from dropping it a second time.
        unsafe { this.value.as_ptr().read() }
    }

    /// Gives up ownership: the value will never be dropped, as if from [`Arena::alloc`].
    pub fn leak(self) -> &'a mut T {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: the value lives in the arena for `'a` and the box no longer touches it.
        unsafe { &mut *this.value.as_ptr() }
    }
}

impl<T> Deref for ArenaBox<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the box owns an initialised value for its whole life.
        unsafe { self.value.as_ref() }
    }
}

impl<T> DerefMut for ArenaBox<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes the access unique.
        unsafe { self.value.as_mut() }
    }
}

impl<T> Drop for ArenaBox<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the value is initialised and owned by this box; it is not used again.
        unsafe { self.value.as_ptr().drop_in_place() }
    }
}

impl<T: fmt::Debug> fmt::Debug for ArenaBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
