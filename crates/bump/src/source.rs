//! `ChunkSource`: where an arena's chunks come from.
//!
//! Two kinds of supplier make sense: a [`PageSource`] (mmap, brk, a fixed buffer), whose runs
//! are page-granular, and any heapkit [`Allocator`] (an arena nested in a general heap), whose
//! blocks are any size. One blanket impl covers every page source; allocators are wrapped in
//! [`FromAllocator`] because a second blanket impl would overlap the first.

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::{AllocError, Allocator, PageSource};

/// A supplier of chunks for an [`Arena`](crate::Arena).
///
/// # Safety
/// A chunk returned by `alloc_chunk` is valid for reads and writes for its whole length,
/// aligned as asked, disjoint from every other live chunk and from memory the source does not
/// own, and stays so until it is passed to `free_chunk` (or the source is dropped).
pub unsafe trait ChunkSource {
    /// Every chunk length the arena asks for is a multiple of this (a power of two).
    fn granule_bytes(&self) -> usize;

    /// A chunk of `len_bytes` (a non-zero multiple of the granule) aligned to `align_bytes`
    /// (a power of two), or `AllocError`.
    fn alloc_chunk(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError>;

    /// Returns a chunk.
    ///
    /// # Safety
    /// `ptr` came from `alloc_chunk(len_bytes, align_bytes)` on this source with these same
    /// arguments, and nothing in it is used afterwards.
    unsafe fn free_chunk(&self, ptr: NonNull<u8>, len_bytes: usize, align_bytes: usize);

    /// Whether every chunk `alloc_chunk` returns reads as zero (as fresh `mmap` memory does),
    /// which lets zeroed allocations skip their memset there. `false` unless known.
    fn chunks_zeroed(&self) -> bool {
        false
    }

    /// A chunk as [`alloc_chunk`](Self::alloc_chunk) gives it, and whether *this* chunk reads
    /// as zero: a source that reuses chunks (the [chunk cache](crate::CHUNK_CACHE)) cannot
    /// promise [`chunks_zeroed`](Self::chunks_zeroed) for all of them, but knows which are
    /// fresh from the kernel. The default reports `chunks_zeroed`.
    fn alloc_chunk_reporting_zero(
        &self,
        len_bytes: usize,
        align_bytes: usize,
    ) -> Result<(NonNull<u8>, bool), AllocError> {
        let chunk = self.alloc_chunk(len_bytes, align_bytes)?;
        Ok((chunk, self.chunks_zeroed()))
    }
}

// SAFETY: a page run has exactly the properties a chunk needs (PageSource's contract); lengths
// are page multiples because the granule is the page size.
unsafe impl<P: PageSource> ChunkSource for P {
    #[inline]
    fn granule_bytes(&self) -> usize {
        self.page_size()
    }

    fn alloc_chunk(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        debug_assert!(len_bytes > 0 && len_bytes % self.page_size() == 0);
        self.map(len_bytes, align_bytes)
    }

    unsafe fn free_chunk(&self, ptr: NonNull<u8>, len_bytes: usize, _align_bytes: usize) {
        // SAFETY: the caller passes back a whole run from `map`.
        unsafe { self.unmap(ptr, len_bytes) }
    }

    #[inline]
    fn chunks_zeroed(&self) -> bool {
        self.maps_zeroed()
    }

    fn alloc_chunk_reporting_zero(
        &self,
        len_bytes: usize,
        align_bytes: usize,
    ) -> Result<(NonNull<u8>, bool), AllocError> {
        debug_assert!(len_bytes > 0 && len_bytes % self.page_size() == 0);
        self.map_reporting_zero(len_bytes, align_bytes)
    }
}

/// Takes an arena's chunks from a heapkit [`Allocator`] (for example a `heapkit-bins` heap, or
/// a `Locked` global one), one block per chunk.
///
/// ```
/// use heapkit_bump::{Arena, FromAllocator};
/// use heapkit_core::Locked;
/// # use heapkit_core::{AllocError, Allocator};
/// # use core::{alloc::Layout, ptr::NonNull};
/// # struct System;
/// # unsafe impl Allocator for System {
/// #     fn allocate_nonzero(&self, l: Layout) -> Result<NonNull<[u8]>, AllocError> {
/// #         let p = NonNull::new(unsafe { std::alloc::alloc(l) }).ok_or(AllocError)?;
/// #         Ok(NonNull::slice_from_raw_parts(p, l.size()))
/// #     }
/// #     unsafe fn deallocate_nonzero(&self, p: NonNull<u8>, l: Layout) { unsafe { std::alloc::dealloc(p.as_ptr(), l) } }
/// # }
/// let arena = Arena::with_allocator(System);
/// assert_eq!(*arena.alloc(41u32) + 1, 42);
/// ```
#[derive(Debug, Default)]
pub struct FromAllocator<A>(pub A);

/// Chunks from an allocator only need the arena's own alignment, not a page's.
const ALLOCATOR_GRANULE_BYTES: usize = 64;

// SAFETY: a live block of an heapkit `Allocator` is valid, aligned and disjoint from other
// live blocks (the Allocator contract) until it is deallocated, which only `free_chunk` does.
unsafe impl<A: Allocator> ChunkSource for FromAllocator<A> {
    #[inline]
    fn granule_bytes(&self) -> usize {
        ALLOCATOR_GRANULE_BYTES
    }

    fn alloc_chunk(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        let layout = Layout::from_size_align(len_bytes, align_bytes).map_err(|_| AllocError)?;
        Ok(self.0.allocate(layout)?.cast::<u8>())
    }

    unsafe fn free_chunk(&self, ptr: NonNull<u8>, len_bytes: usize, align_bytes: usize) {
        // SAFETY: `alloc_chunk` built this same layout successfully.
        let layout = unsafe { Layout::from_size_align_unchecked(len_bytes, align_bytes) };
        // SAFETY: the caller passes back a live block allocated with this layout.
        unsafe { self.0.deallocate(ptr, layout) }
    }
}

const _: () = assert!(ALLOCATOR_GRANULE_BYTES.is_power_of_two());
