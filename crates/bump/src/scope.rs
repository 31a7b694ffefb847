//! `Scope`: a region of an arena that is rewound when it ends, with references that cannot
//! outlive it.
//!
//! ```text
//!   arena.scope(|outer| {                 'outer ──────────────────────────────┐
//!       let tree = outer.alloc(...);      │ tree: &'outer mut T                 │
//!       outer.scope(|tmp| {               │   'tmp ───────────┐                 │
//!           let t = tmp.alloc(...);       │   │ t: &'tmp mut T │                 │
//!       });                               │   └ rewind ───────┘ (t is gone)     │
//!       tree                              │   ✗ cannot return tree: 'outer ends │
//!   });                                   └ rewind ─────────────────────────────┘
//! ```
//!
//! Soundness rests on three facts: (1) a `Scope<'s>` is only ever created by `scope`, for a
//! lifetime `'s` that the closure must accept for *any* `'s` (a higher-ranked bound), so
//! nothing allocated with it can be returned or stored outside; (2) `'s` is invariant, so a
//! `&'s` value cannot be passed off as one of another scope; (3) a nested `scope` takes the
//! parent by `&mut`, so the parent cannot allocate (into memory the child will rewind) while
//! the child runs. The inner `&Arena` is never handed out: with it, one could allocate
//! `&'s` values during a child scope.

use crate::{Arena, ChunkSource};
use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::NonNull;
use heapkit_core::{AllocError, Allocator};

/// A rewindable region of an [`Arena`]; see [`Arena::scope`].
///
/// Its allocation methods mirror the arena's and return references that live for the whole
/// scope (`'s`), not just for a borrow of the handle, so they survive nested scopes.
pub struct Scope<'s, S: ChunkSource> {
    arena: &'s Arena<S>,
    /// Makes `'s` invariant: a shorter or longer scope's references are a different type.
    _invariant: PhantomData<fn(&'s ()) -> &'s ()>,
}

impl<'s, S: ChunkSource> Scope<'s, S> {
    pub(crate) fn new(arena: &'s Arena<S>) -> Self {
        Scope {
            arena,
            _invariant: PhantomData,
        }
    }

    /// A nested scope: everything allocated through `inner` is freed when `f` returns, while
    /// this scope's earlier allocations stay.
    ///
    /// ```
    /// let mut arena = heapkit_bump::Arena::new();
    /// arena.scope(|outer| {
    ///     let kept = outer.alloc_str("kept");
    ///     let n = outer.scope(|inner| inner.alloc_slice_fill_copy(1000, 7u8).len());
    ///     assert_eq!((&*kept, n), ("kept", 1000));
    /// });
    /// ```
    ///
    /// An inner scope's value cannot be smuggled into an outer variable:
    ///
    /// ```compile_fail
    /// let mut arena = heapkit_bump::Arena::new();
    /// arena.scope(|outer| {
    ///     let mut a: &mut u64 = outer.alloc(1u64);
    ///     outer.scope(|inner| { a = inner.alloc(2u64); }); // error: borrowed data escapes
    ///     let _ = a;
    /// });
    /// ```
    pub fn scope<R>(&mut self, f: impl for<'t> FnOnce(&mut Scope<'t, S>) -> R) -> R {
        let checkpoint = self.arena.checkpoint();
        let result = f(&mut Scope::new(self.arena));
        // SAFETY: everything allocated after the checkpoint went through the inner scope
        // (`self` is mutably borrowed meanwhile), and its references cannot outlive `f` (`'t`
        // is higher-ranked), so none is alive now.
        unsafe { self.arena.rewind_unchecked(checkpoint) };
        result
    }

    /// As [`Arena::alloc`].
    #[inline(always)]
    pub fn alloc<T>(&self, value: T) -> &'s mut T {
        self.arena.alloc(value)
    }

    /// As [`Arena::alloc_with`].
    #[inline(always)]
    pub fn alloc_with<T>(&self, f: impl FnOnce() -> T) -> &'s mut T {
        self.arena.alloc_with(f)
    }

    /// As [`Arena::try_alloc`].
    #[inline(always)]
    pub fn try_alloc<T>(&self, value: T) -> Result<&'s mut T, AllocError> {
        self.arena.try_alloc(value)
    }

    /// As [`Arena::try_alloc_with`].
    #[inline(always)]
    pub fn try_alloc_with<T>(&self, f: impl FnOnce() -> T) -> Result<&'s mut T, AllocError> {
        self.arena.try_alloc_with(f)
    }

    /// As [`Arena::alloc_slice_copy`].
    #[inline]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &'s mut [T] {
        self.arena.alloc_slice_copy(src)
    }

    /// As [`Arena::try_alloc_slice_copy`].
    #[inline]
    pub fn try_alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&'s mut [T], AllocError> {
        self.arena.try_alloc_slice_copy(src)
    }

    /// As [`Arena::alloc_slice_clone`].
    #[inline]
    pub fn alloc_slice_clone<T: Clone>(&self, src: &[T]) -> &'s mut [T] {
        self.arena.alloc_slice_clone(src)
    }

    /// As [`Arena::try_alloc_slice_clone`].
    #[inline]
    pub fn try_alloc_slice_clone<T: Clone>(&self, src: &[T]) -> Result<&'s mut [T], AllocError> {
        self.arena.try_alloc_slice_clone(src)
    }

    /// As [`Arena::alloc_slice_fill_with`].
    #[inline]
    pub fn alloc_slice_fill_with<T>(&self, len: usize, f: impl FnMut(usize) -> T) -> &'s mut [T] {
        self.arena.alloc_slice_fill_with(len, f)
    }

    /// As [`Arena::try_alloc_slice_fill_with`].
    #[inline]
    pub fn try_alloc_slice_fill_with<T>(
        &self,
        len: usize,
        f: impl FnMut(usize) -> T,
    ) -> Result<&'s mut [T], AllocError> {
        self.arena.try_alloc_slice_fill_with(len, f)
    }

    /// As [`Arena::alloc_slice_fill_copy`].
    #[inline]
    pub fn alloc_slice_fill_copy<T: Copy>(&self, len: usize, value: T) -> &'s mut [T] {
        self.arena.alloc_slice_fill_copy(len, value)
    }

    /// As [`Arena::try_alloc_slice_fill_copy`].
    #[inline]
    pub fn try_alloc_slice_fill_copy<T: Copy>(
        &self,
        len: usize,
        value: T,
    ) -> Result<&'s mut [T], AllocError> {
        self.arena.try_alloc_slice_fill_copy(len, value)
    }

    /// As [`Arena::alloc_str`].
    #[inline]
    pub fn alloc_str(&self, src: &str) -> &'s mut str {
        self.arena.alloc_str(src)
    }

    /// As [`Arena::try_alloc_str`].
    #[inline]
    pub fn try_alloc_str(&self, src: &str) -> Result<&'s mut str, AllocError> {
        self.arena.try_alloc_str(src)
    }

    /// As [`Arena::alloc_layout`].
    #[inline(always)]
    pub fn alloc_layout(&self, layout: Layout) -> NonNull<u8> {
        self.arena.alloc_layout(layout)
    }

    /// As [`Arena::try_alloc_layout`].
    #[inline(always)]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.arena.try_alloc_layout(layout)
    }

    /// Bytes handed out by the whole arena (this scope and its ancestors).
    pub fn used_bytes(&self) -> usize {
        self.arena.used_bytes()
    }

    /// Bytes of chunks the whole arena holds.
    pub fn allocated_bytes(&self) -> usize {
        self.arena.allocated_bytes()
    }
}

impl<S: ChunkSource> core::fmt::Debug for Scope<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Scope").field("arena", self.arena).finish()
    }
}

// SAFETY: forwards to the arena, whose blocks a scope's rewind frees only after every
// reference (and every collection borrowing the scope) is gone.
unsafe impl<S: ChunkSource> Allocator for Scope<'_, S> {
    #[inline(always)]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.arena.allocate_nonzero(layout)
    }

    #[inline]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.arena.deallocate_nonzero(ptr, layout) }
    }

    #[inline]
    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.arena.grow_nonzero(ptr, old_layout, new_layout) }
    }

    #[inline]
    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.arena.shrink_nonzero(ptr, old_layout, new_layout) }
    }
}
