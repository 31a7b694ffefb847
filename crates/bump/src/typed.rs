//! The typed API bumpalo users know: `alloc`, `alloc_with`, slices, strings, `try_` variants.
//!
//! Every infallible method is its `try_` twin plus
//! [`handle_alloc_error`](alloc::alloc::handle_alloc_error) on failure, the contract `Box` and
//! `Vec` follow: by default the process aborts with "memory allocation of N bytes failed".

use crate::{Arena, ChunkSource};
use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::AllocError;

/// The layout of `[T; len]`, or `AllocError` when its size overflows `isize::MAX`.
#[inline(always)]
fn array_layout<T>(len: usize) -> Result<Layout, AllocError> {
    Layout::array::<T>(len).map_err(|_| AllocError)
}

/// Reports a failed request the way `Vec` does: `handle_alloc_error` for a layout that exists;
/// a size that overflows has no layout, so it is reported as the largest request possible.
#[cold]
#[inline(never)]
pub(crate) fn fail<T>(len: usize) -> ! {
    let layout = Layout::array::<T>(len).unwrap_or_else(|_| {
        let align_bytes = core::mem::align_of::<T>();
        // SAFETY: `isize::MAX + 1 - align` is a multiple of `align` (a power of two) that does
        // not exceed `isize::MAX - (align - 1)`, which is what a Layout requires.
        unsafe {
            Layout::from_size_align_unchecked(isize::MAX as usize + 1 - align_bytes, align_bytes)
        }
    });
    alloc::alloc::handle_alloc_error(layout)
}

// Handing out `&mut T` from `&self` is the point of an arena: each call returns memory no other
// reference can reach (the bump pointer moved past it), and only `&mut self` methods free it.
#[allow(clippy::mut_from_ref)]
impl<S: ChunkSource> Arena<S> {
    /// Moves `value` into the arena. It will **not** be dropped (see [`ArenaBox`](crate::ArenaBox)).
    ///
    /// ```
    /// let arena = heapkit_bump::Arena::new();
    /// let x = arena.alloc(40);
    /// *x += 2;
    /// assert_eq!(*x, 42);
    /// ```
    #[inline(always)]
    pub fn alloc<T>(&self, value: T) -> &mut T {
        self.alloc_with(|| value)
    }

    /// Builds a value directly in the arena: `f` runs after the memory is reserved, so the
    /// compiler can construct large values in place instead of on the stack.
    #[inline(always)]
    pub fn alloc_with<T>(&self, f: impl FnOnce() -> T) -> &mut T {
        match self.try_alloc_with(f) {
            Ok(value) => value,
            Err(AllocError) => fail::<T>(1),
        }
    }

    /// Like [`alloc`](Self::alloc), but `AllocError` instead of `handle_alloc_error` (the value
    /// is dropped then).
    #[inline(always)]
    pub fn try_alloc<T>(&self, value: T) -> Result<&mut T, AllocError> {
        self.try_alloc_with(|| value)
    }

    /// Like [`alloc_with`](Self::alloc_with), but `AllocError` on failure (`f` is not called).
    #[inline(always)]
    pub fn try_alloc_with<T>(&self, f: impl FnOnce() -> T) -> Result<&mut T, AllocError> {
        let slot = self.try_alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: `slot` is fresh, aligned and large enough for a `T` (or dangling and aligned
        // for a zero-size `T`); it lives as long as the `&self` borrow, since only `&mut self`
        // methods free memory.
        unsafe {
            slot.as_ptr().write(f());
            Ok(&mut *slot.as_ptr())
        }
    }

    /// Copies a slice into the arena.
    #[inline]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        match self.try_alloc_slice_copy(src) {
            Ok(slice) => slice,
            Err(AllocError) => fail::<T>(src.len()),
        }
    }

    /// Like [`alloc_slice_copy`](Self::alloc_slice_copy), but `AllocError` on failure.
    #[inline]
    pub fn try_alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], AllocError> {
        // An existing slice's layout is valid by construction: no overflow check needed.
        let dst = self.try_alloc_layout(Layout::for_value(src))?.cast::<T>();
        // SAFETY: `dst` has room for `src.len()` elements and is fresh, so distinct from `src`.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_ptr(), src.len());
            Ok(core::slice::from_raw_parts_mut(dst.as_ptr(), src.len()))
        }
    }

    /// Clones every element of a slice into the arena.
    #[inline]
    pub fn alloc_slice_clone<T: Clone>(&self, src: &[T]) -> &mut [T] {
        match self.try_alloc_slice_clone(src) {
            Ok(slice) => slice,
            Err(AllocError) => fail::<T>(src.len()),
        }
    }

    /// Like [`alloc_slice_clone`](Self::alloc_slice_clone), but `AllocError` on failure.
    #[inline]
    pub fn try_alloc_slice_clone<T: Clone>(&self, src: &[T]) -> Result<&mut [T], AllocError> {
        self.try_alloc_slice_fill_with(src.len(), |i| src[i].clone())
    }

    /// A slice of `len` elements, element `i` being `f(i)`. If `f` panics, the elements built
    /// so far are leaked (never dropped), like everything in the arena.
    #[inline]
    pub fn alloc_slice_fill_with<T>(&self, len: usize, f: impl FnMut(usize) -> T) -> &mut [T] {
        match self.try_alloc_slice_fill_with(len, f) {
            Ok(slice) => slice,
            Err(AllocError) => fail::<T>(len),
        }
    }

    /// Like [`alloc_slice_fill_with`](Self::alloc_slice_fill_with), but `AllocError` on failure
    /// (including a `len` whose size overflows), before `f` is ever called.
    #[inline]
    pub fn try_alloc_slice_fill_with<T>(
        &self,
        len: usize,
        mut f: impl FnMut(usize) -> T,
    ) -> Result<&mut [T], AllocError> {
        let dst = self.try_alloc_array::<T>(len)?;
        for i in 0..len {
            // SAFETY: `i < len`, and the array has room for `len` elements.
            unsafe { dst.as_ptr().add(i).write(f(i)) };
        }
        // SAFETY: all `len` elements were written just above.
        Ok(unsafe { core::slice::from_raw_parts_mut(dst.as_ptr(), len) })
    }

    /// A slice of `len` copies of `value`.
    #[inline]
    pub fn alloc_slice_fill_copy<T: Copy>(&self, len: usize, value: T) -> &mut [T] {
        self.alloc_slice_fill_with(len, |_| value)
    }

    /// Like [`alloc_slice_fill_copy`](Self::alloc_slice_fill_copy), but `AllocError` on
    /// failure (including a `len` whose size overflows).
    ///
    /// ```
    /// let arena = heapkit_bump::Arena::new();
    /// let zeros = arena.try_alloc_slice_fill_copy(1000, 0u32).unwrap();
    /// assert!(zeros.iter().all(|&z| z == 0));
    /// assert!(arena.try_alloc_slice_fill_copy(usize::MAX, 0u32).is_err());
    /// ```
    #[inline]
    pub fn try_alloc_slice_fill_copy<T: Copy>(
        &self,
        len: usize,
        value: T,
    ) -> Result<&mut [T], AllocError> {
        self.try_alloc_slice_fill_with(len, |_| value)
    }

    /// Copies a string into the arena.
    ///
    /// ```
    /// let arena = heapkit_bump::Arena::new();
    /// let s = arena.alloc_str("hello");
    /// s.make_ascii_uppercase();
    /// assert_eq!(s, "HELLO");
    /// ```
    #[inline]
    pub fn alloc_str(&self, src: &str) -> &mut str {
        match self.try_alloc_str(src) {
            Ok(s) => s,
            Err(AllocError) => fail::<u8>(src.len()),
        }
    }

    /// Like [`alloc_str`](Self::alloc_str), but `AllocError` on failure.
    #[inline]
    pub fn try_alloc_str(&self, src: &str) -> Result<&mut str, AllocError> {
        let bytes = self.try_alloc_slice_copy(src.as_bytes())?;
        // SAFETY: the bytes are a copy of a `str`, so valid UTF-8.
        Ok(unsafe { core::str::from_utf8_unchecked_mut(bytes) })
    }

    /// Room for `len` elements of `T`, uninitialised.
    #[inline(always)]
    fn try_alloc_array<T>(&self, len: usize) -> Result<NonNull<T>, AllocError> {
        Ok(self.try_alloc_layout(array_layout::<T>(len)?)?.cast::<T>())
    }
}
