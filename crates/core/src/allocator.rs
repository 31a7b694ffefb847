//! The `Allocator` trait: what every heapkit algorithm implements.
//!
//! The trait is shaped like `core::alloc::Allocator` (unstable) and `allocator_api2`'s copy of
//! it: `&self` receivers, `Layout` in, `NonNull<[u8]>` out, `AllocError` on failure. One thing
//! differs: implementors write the `*_nonzero` methods and never see a zero-size layout. The
//! provided methods without that suffix handle zero sizes in this one place, so that no
//! algorithm re-implements (or forgets) the rule.

use crate::AllocError;
use core::alloc::Layout;
use core::ptr::{self, NonNull};

/// A zero-length block at the address `layout.align()`: the block every zero-size request
/// gets. It is aligned, non-null, and never dereferenced.
#[inline(always)]
pub fn dangling_block(layout: Layout) -> NonNull<[u8]> {
    let raw = ptr::without_provenance_mut::<u8>(layout.align());
    // SAFETY: `Layout::align` is never zero, so the address is non-null. The pointer has no
    // provenance, which is fine because a zero-length block is never read or written.
    let ptr = unsafe { NonNull::new_unchecked(raw) };
    NonNull::slice_from_raw_parts(ptr, 0)
}

/// Moves a block to `new_layout` the slow way: allocates a new block from `a`, copies the first
/// `min(old size, new size)` bytes, and frees the old block. On `Err` the old block is untouched.
///
/// This is what every `grow`/`shrink` falls back to when the block cannot change in place.
///
/// # Safety
/// `ptr` is a live block of `a` fitted by `old_layout`; both sizes are non-zero.
pub unsafe fn relocate<A: Allocator + ?Sized>(
    a: &A,
    ptr: NonNull<u8>,
    old_layout: Layout,
    new_layout: Layout,
) -> Result<NonNull<[u8]>, AllocError> {
    debug_assert!(old_layout.size() > 0 && new_layout.size() > 0);
    let block = a.allocate_nonzero(new_layout)?;
    let keep_bytes = old_layout.size().min(new_layout.size());
    // SAFETY: the allocator never overlaps two live blocks, and each holds at least
    // `keep_bytes` bytes; the old block is live and fitted by `old_layout` (caller's promise).
    unsafe {
        ptr::copy_nonoverlapping(ptr.as_ptr(), block.cast::<u8>().as_ptr(), keep_bytes);
        a.deallocate_nonzero(ptr, old_layout);
    }
    Ok(block)
}

/// An allocation algorithm.
///
/// # Contract
/// A *block* is what `allocate` returns and `deallocate` takes back. While a block is live:
/// - its address is aligned to the layout's alignment and its length (the slice length of the
///   returned pointer) is at least the layout's size: the caller may use every byte of it;
/// - it overlaps no other live block of this allocator;
/// - it stays valid when the allocator value is moved, and until it is deallocated, the
///   allocator is dropped, or (for arenas) the allocator is reset through `&mut self`.
///
/// A block may be passed back with any layout that *fits* it: the same alignment as when it was
/// allocated and a size between the size asked for and the length returned.
///
/// Zero-size layouts are valid everywhere in the public methods. They never reach the
/// `*_nonzero` methods: a zero-size request gets [`dangling_block`] and releasing one does
/// nothing.
///
/// # Safety
/// Implementors promise the block contract above; callers of `unsafe` methods promise that the
/// pointer is a live block of this allocator and that the layout fits it.
pub unsafe trait Allocator {
    /// Serves a request of non-zero size.
    ///
    /// Returns a block with the layout's alignment and at least its size, or `AllocError` when
    /// memory or capacity is exhausted. Its contents are unspecified. Must not panic, unwind,
    /// print or allocate through the global allocator.
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError>;

    /// Releases a block of non-zero size.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator and `layout` fits it (same alignment, size
    /// between the size asked for and the length returned); `layout.size() > 0`.
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout);

    /// Like [`allocate_nonzero`](Self::allocate_nonzero), but the block reads as zero.
    ///
    /// The default zeroes the whole block; allocators that know their memory is fresh from the
    /// OS (already zero) override it to skip the write.
    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let block = self.allocate_nonzero(layout)?;
        // SAFETY: `block` is a fresh block of `block.len()` writable bytes.
        unsafe { ptr::write_bytes(block.cast::<u8>().as_ptr(), 0, block.len()) };
        Ok(block)
    }

    /// Grows a block of non-zero size to `new_layout`.
    ///
    /// On `Ok` the old block is gone (even when the address is unchanged) and the new one holds
    /// the old contents in its first `old_layout.size()` bytes. On `Err` the old block is
    /// untouched and still live. The default allocates, copies and frees; algorithms that can
    /// extend in place override it.
    ///
    /// # Safety
    /// `ptr` is a live block fitted by `old_layout`, `old_layout.size() > 0`, and
    /// `new_layout.size() >= old_layout.size()`.
    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(old_layout.size() > 0 && new_layout.size() >= old_layout.size());
        // SAFETY: forwarded from the caller.
        unsafe { relocate(self, ptr, old_layout, new_layout) }
    }

    /// Shrinks a block to a non-zero `new_layout`.
    ///
    /// Same contract as [`grow_nonzero`](Self::grow_nonzero), keeping the first
    /// `new_layout.size()` bytes. The default allocates, copies and frees: keeping the block in
    /// place is only sound for an algorithm whose `deallocate` does not derive anything from
    /// the layout's size (a sized-free cache would file the block under the wrong class), so
    /// each algorithm that can shrink in place overrides this itself.
    ///
    /// # Safety
    /// `ptr` is a live block fitted by `old_layout`, and
    /// `0 < new_layout.size() <= old_layout.size()`.
    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(new_layout.size() > 0 && new_layout.size() <= old_layout.size());
        // SAFETY: forwarded from the caller.
        unsafe { relocate(self, ptr, old_layout, new_layout) }
    }

    /// Serves any request, zero-size ones included.
    ///
    /// A zero-size request gets [`dangling_block`]; any other goes to
    /// [`allocate_nonzero`](Self::allocate_nonzero). Errors are `AllocError`: out of memory,
    /// capacity exhausted, or an alignment the algorithm cannot serve.
    #[inline(always)]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(dangling_block(layout));
        }
        self.allocate_nonzero(layout)
    }

    /// Like [`allocate`](Self::allocate), but the block reads as zero.
    #[inline]
    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(dangling_block(layout));
        }
        self.allocate_zeroed_nonzero(layout)
    }

    /// Releases a block returned by this allocator.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator (or a zero-size block) and `layout` fits it.
    #[inline(always)]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: forwarded from the caller; the size is non-zero.
            unsafe { self.deallocate_nonzero(ptr, layout) }
        }
    }

    /// Grows a block; the contents up to the old size are kept.
    ///
    /// On `Ok` the old pointer must no longer be used, even if the address did not change. On
    /// `Err` the old block is untouched.
    ///
    /// # Safety
    /// `ptr` is a live block fitted by `old_layout`, and
    /// `new_layout.size() >= old_layout.size()`.
    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(new_layout.size() >= old_layout.size());
        if old_layout.size() == 0 {
            return self.allocate(new_layout);
        }
        // SAFETY: forwarded from the caller; both sizes are non-zero.
        unsafe { self.grow_nonzero(ptr, old_layout, new_layout) }
    }

    /// Like [`grow`](Self::grow), but the bytes past the old size read as zero.
    ///
    /// # Safety
    /// As for [`grow`](Self::grow).
    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        let block = unsafe { self.grow(ptr, old_layout, new_layout)? };
        let tail_bytes = block.len() - old_layout.size();
        // SAFETY: the block has `block.len()` writable bytes; the tail starts inside it.
        unsafe {
            ptr::write_bytes(
                block.cast::<u8>().as_ptr().add(old_layout.size()),
                0,
                tail_bytes,
            )
        };
        Ok(block)
    }

    /// Shrinks a block; the contents up to the new size are kept. Shrinking to zero frees the
    /// block and returns a zero-size one.
    ///
    /// # Safety
    /// `ptr` is a live block fitted by `old_layout`, and
    /// `new_layout.size() <= old_layout.size()`.
    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(new_layout.size() <= old_layout.size());
        if new_layout.size() == 0 {
            // SAFETY: forwarded from the caller.
            unsafe { self.deallocate(ptr, old_layout) };
            return Ok(dangling_block(new_layout));
        }
        // SAFETY: forwarded from the caller; both sizes are non-zero.
        unsafe { self.shrink_nonzero(ptr, old_layout, new_layout) }
    }

    /// Borrows the allocator (handy for `Vec::new_in(a.by_ref())`).
    #[inline(always)]
    fn by_ref(&self) -> &Self
    where
        Self: Sized,
    {
        self
    }
}

// SAFETY: a shared reference forwards every call to the allocator it points at, so the block
// contract is the referent's.
unsafe impl<A: Allocator + ?Sized> Allocator for &A {
    #[inline(always)]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        (**self).allocate_nonzero(layout)
    }
    #[inline(always)]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).deallocate_nonzero(ptr, layout) }
    }
    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        (**self).allocate_zeroed_nonzero(layout)
    }
    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).grow_nonzero(ptr, old_layout, new_layout) }
    }
    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).shrink_nonzero(ptr, old_layout, new_layout) }
    }
}
