//! `PageRunAllocator`: the simplest correct allocator — one page run per block.

use heapkit_core::{align_up, AllocError, Allocator, Introspect, PageSource, Stats};
use std::alloc::Layout;
use std::ptr::NonNull;

/// Serves every block with its own page run from a [`PageSource`] and unmaps it on free.
///
/// Wasteful (a 1-byte block costs a page) but obviously correct, which is its job: it proves the
/// conformance suite accepts a correct allocator, and it is the reference the broken allocators
/// in the suite's own tests are derived from. It is `Sync` when the source is.
#[derive(Debug)]
pub struct PageRunAllocator<P> {
    pages: P,
}

impl<P: PageSource> PageRunAllocator<P> {
    /// An allocator over `pages`.
    pub const fn new(pages: P) -> Self {
        PageRunAllocator { pages }
    }

    /// The page source.
    pub fn pages(&self) -> &P {
        &self.pages
    }

    fn run_bytes(&self, size: usize) -> Result<usize, AllocError> {
        align_up(size, self.pages.page_size()).ok_or(AllocError)
    }
}

// SAFETY: each block is a whole run from the source, which promises runs are valid and
// disjoint; the block is exactly the run, so blocks are disjoint and aligned as mapped.
unsafe impl<P: PageSource> Allocator for PageRunAllocator<P> {
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let len = self.run_bytes(layout.size())?;
        let run = self.pages.map(len, layout.align())?;
        Ok(NonNull::slice_from_raw_parts(run, len))
    }

    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // Any size between the one asked and the run length rounds up to the same run length.
        let Ok(len) = self.run_bytes(layout.size()) else {
            return;
        };
        // SAFETY: the caller promises `ptr` is a live block, i.e. a whole run of `len` bytes.
        unsafe { self.pages.unmap(ptr, len) }
    }
}

impl<P: PageSource> Introspect for PageRunAllocator<P> {
    fn stats(&self) -> Option<Stats> {
        Some(Stats {
            mapped_bytes: self.pages.mapped_bytes(),
            ..Stats::default()
        })
    }
}
