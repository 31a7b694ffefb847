//! Chapter 8's worked example: a new allocator made of two existing ones, in under 50 lines.
//! Small blocks go to a size-class allocator (no header, no search), the rest to a best-fit
//! boundary-tag heap (coalescing, exact sizes). `deallocate` routes by the layout alone.
// BEGIN chapter-8 (the book quotes the lines between BEGIN and END)
use core::{alloc::Layout, ptr::NonNull};
use heapkit_core::{AllocError, Allocator, Introspect, InvariantError};

/// Blocks of at most `SMALL_MAX_BYTES` (align <= 16) from `small`, all others from `large`.
pub struct SizeSplit<S, L> {
    /// Serves the small blocks, e.g. `heapkit_slab::Slab` or a `ThreadCache` over it.
    pub small: S,
    /// Serves everything else, e.g. `heapkit_bins::Bins` behind `Locked`.
    pub large: L,
}

/// The split; small blocks report at most this length, so any fitting layout routes back.
pub const SMALL_MAX_BYTES: usize = 256;

fn is_small(layout: Layout) -> bool {
    layout.size() <= SMALL_MAX_BYTES && layout.align() <= 16
}

// SAFETY: two sound allocators; a block goes back to its maker (routing fits every layout).
unsafe impl<S: Allocator, L: Allocator> Allocator for SizeSplit<S, L> {
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if !is_small(layout) {
            return self.large.allocate(layout);
        }
        let block = self.small.allocate(layout)?;
        let len_bytes = block.len().min(SMALL_MAX_BYTES);
        Ok(NonNull::slice_from_raw_parts(block.cast(), len_bytes))
    }

    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the block came from the side `is_small(layout)` picks (see above).
        unsafe {
            if is_small(layout) {
                self.small.deallocate(ptr, layout)
            } else {
                self.large.deallocate(ptr, layout)
            }
        }
    }
}

/// `check()` checks both halves (their `stats()` stay separate: `self.small.stats()`).
impl<S: Introspect, L: Introspect> Introspect for SizeSplit<S, L> {
    fn check(&self) -> Result<(), InvariantError> {
        self.small.check().and(self.large.check())
    }
}
// END chapter-8
