//! Slices filled from one value, from `Default` or from an iterator: the rest of bumpalo's
//! `alloc_slice_fill_*` family, each with its `try_` twin (the plain forms abort like `Vec`).

use crate::typed::fail;
use crate::{Arena, ChunkSource};
use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::AllocError;

// As in typed.rs: each call returns memory no other reference can reach.
#[allow(clippy::mut_from_ref)]
impl<S: ChunkSource> Arena<S> {
    /// A slice of `len` clones of `value`.
    ///
    /// ```
    /// let arena = heapkit_bump::Arena::new();
    /// let names = arena.alloc_slice_fill_clone(3, &String::from("x"));
    /// assert_eq!(names.len(), 3);
    /// ```
    #[inline]
    pub fn alloc_slice_fill_clone<T: Clone>(&self, len: usize, value: &T) -> &mut [T] {
        self.alloc_slice_fill_with(len, |_| value.clone())
    }

    /// Like [`alloc_slice_fill_clone`](Self::alloc_slice_fill_clone), but `AllocError` on
    /// failure, before any clone is made.
    #[inline]
    pub fn try_alloc_slice_fill_clone<T: Clone>(
        &self,
        len: usize,
        value: &T,
    ) -> Result<&mut [T], AllocError> {
        self.try_alloc_slice_fill_with(len, |_| value.clone())
    }

    /// A slice of `len` values of `T::default()`.
    ///
    /// ```
    /// let arena = heapkit_bump::Arena::new();
    /// let counts: &mut [u64] = arena.alloc_slice_fill_default(8);
    /// counts[3] += 1;
    /// assert_eq!(counts.iter().sum::<u64>(), 1);
    /// ```
    #[inline]
    pub fn alloc_slice_fill_default<T: Default>(&self, len: usize) -> &mut [T] {
        self.alloc_slice_fill_with(len, |_| T::default())
    }

    /// Like [`alloc_slice_fill_default`](Self::alloc_slice_fill_default), but `AllocError` on
    /// failure.
    #[inline]
    pub fn try_alloc_slice_fill_default<T: Default>(
        &self,
        len: usize,
    ) -> Result<&mut [T], AllocError> {
        self.try_alloc_slice_fill_with(len, |_| T::default())
    }

    /// A slice of the items of an iterator that knows its length.
    ///
    /// # Panics
    /// When the iterator yields fewer items than its `len()` said (a broken
    /// `ExactSizeIterator`); the items made so far are leaked, like everything in the arena.
    ///
    /// ```
    /// let arena = heapkit_bump::Arena::new();
    /// let squares = arena.alloc_slice_fill_iter((1..5).map(|i| i * i));
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// ```
    #[inline]
    pub fn alloc_slice_fill_iter<T, I>(&self, iter: I) -> &mut [T]
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let mut iter = iter.into_iter();
        let len = iter.len();
        match self.try_alloc_slice_fill_with(len, |_| next_promised(&mut iter)) {
            Ok(slice) => slice,
            Err(AllocError) => fail::<T>(len),
        }
    }

    /// Like [`alloc_slice_fill_iter`](Self::alloc_slice_fill_iter), but `AllocError` on
    /// failure, before the iterator is advanced.
    ///
    /// # Panics
    /// As [`alloc_slice_fill_iter`](Self::alloc_slice_fill_iter).
    #[inline]
    pub fn try_alloc_slice_fill_iter<T, I>(&self, iter: I) -> Result<&mut [T], AllocError>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let mut iter = iter.into_iter();
        let len = iter.len();
        self.try_alloc_slice_fill_with(len, |_| next_promised(&mut iter))
    }

    /// Like [`try_alloc_layout_zeroed`](Self::try_alloc_layout_zeroed), but failure calls
    /// [`handle_alloc_error`](alloc::alloc::handle_alloc_error) (which aborts by default).
    #[inline]
    pub fn alloc_layout_zeroed(&self, layout: Layout) -> NonNull<u8> {
        match self.try_alloc_layout_zeroed(layout) {
            Ok(block) => block,
            Err(AllocError) => alloc::alloc::handle_alloc_error(layout),
        }
    }
}

/// The next item of an iterator whose `len()` promised one more.
fn next_promised<I: Iterator>(iter: &mut I) -> I::Item {
    match iter.next() {
        Some(item) => item,
        None => panic!("an ExactSizeIterator yielded fewer items than its len()"),
    }
}

#[cfg(test)]
mod tests {
    use crate::Arena;
    use std::string::String;

    #[test]
    fn every_try_twin_refuses_what_its_plain_form_would_abort_on() {
        let arena = Arena::new();
        assert!(arena.try_alloc_slice_fill_copy(usize::MAX, 1u16).is_err());
        assert!(arena
            .try_alloc_slice_fill_clone(usize::MAX / 2, &String::new())
            .is_err());
        assert!(arena
            .try_alloc_slice_fill_default::<u64>(usize::MAX)
            .is_err());
        assert!(arena.try_alloc_slice_fill_iter(0..usize::MAX).is_err());
        arena.set_allocation_limit(Some(0));
        assert!(arena.try_alloc_slice_fill_copy(4, 1u16).is_err());
        assert!(arena.try_alloc_slice_fill_clone(1, &String::new()).is_err());
        assert!(arena.try_alloc_slice_fill_default::<u64>(1).is_err());
        assert!(arena.try_alloc_slice_fill_iter([1, 2]).is_err());
        arena.set_allocation_limit(None);
        assert_eq!(arena.try_alloc_slice_fill_copy(2, 9u8).unwrap(), [9, 9]);
        assert_eq!(arena.try_alloc_slice_fill_iter([1, 2]).unwrap(), [1, 2]);
        assert_eq!(arena.try_alloc_slice_fill_default::<u8>(2).unwrap(), [0, 0]);
        let clones = arena
            .try_alloc_slice_fill_clone(2, &String::from("a"))
            .unwrap();
        assert_eq!(clones, ["a", "a"]);
    }
}
