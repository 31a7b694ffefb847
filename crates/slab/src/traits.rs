//! The heapkit-core contracts: `Allocator` (with in-place grow/shrink), `UnsizedAllocator`,
//! `BatchAllocator`, and the foreign `Allocator` traits.

use crate::bad_input::report;
use crate::classes::{
    class_of_layout, class_usable_bytes, natural_align, CLASS_BYTES, CLASS_COUNT,
};
use crate::geometry::{LARGE_MAX_BYTES, SLOT_BYTES};
use crate::heap::{Block, Slab};
use crate::large::span_slots;
use core::alloc::Layout;
use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering;
use heapkit_core::{AllocError, Allocator, BatchAllocator, PageSource, UnsizedAllocator};

#[inline(always)]
fn slice(ptr: NonNull<u8>, len: usize) -> NonNull<[u8]> {
    NonNull::slice_from_raw_parts(ptr, len)
}

// SAFETY: blocks come from disjoint slab slots, spans or mappings (see `Chunks::acquire` and
// `alloc_huge`), are aligned as their layout asks (class natural alignment, slot alignment, or
// the huge offset), and are as long as the returned slice says. `deallocate` derives nothing
// from the layout's size, so a block stays valid in place after any shrink.
unsafe impl<P: PageSource> Allocator for Slab<P> {
    #[inline(always)]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let (block, len, _) = self.alloc_block(layout)?;
        Ok(slice(block, len))
    }

    #[inline(always)]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        debug_assert!(layout.size() > 0);
        // SAFETY: forwarded from the caller.
        unsafe { self.free_block(ptr) }
    }

    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let (block, len, zeroed) = self.alloc_block(layout)?;
        if !zeroed {
            // SAFETY: a fresh block of `len` writable bytes.
            unsafe { ptr::write_bytes(block.as_ptr(), 0, len) };
        }
        Ok(slice(block, len))
    }

    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.realloc_block(ptr, old_layout, new_layout) }
    }

    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.realloc_block(ptr, old_layout, new_layout) }
    }
}

impl<P: PageSource> Slab<P> {
    /// Grows or shrinks in place when the block's class (or span, or mapping) still serves the
    /// new layout; moves otherwise. A shrink whose move fails stays in place if it can.
    ///
    /// # Safety
    /// `ptr` is a live block fitted by `old`; both sizes are non-zero.
    unsafe fn realloc_block(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        let block = match unsafe { self.locate(ptr) } {
            Ok(block) => block,
            Err(what) => {
                report(what, ptr.as_ptr() as usize);
                return Err(AllocError);
            }
        };
        let aligned = ptr.as_ptr() as usize % new.align() == 0;
        let new_class = class_of_layout(new.size(), new.align());
        let in_place = match block {
            Block::Small { class, .. } => {
                let bytes = class_usable_bytes(class);
                let fits = bytes >= new.size()
                    && natural_align(CLASS_BYTES[class] as usize) >= new.align();
                // A shrink into a smaller class moves, so the big block is not pinned.
                (fits && (new.size() >= old.size() || new_class == Some(class))).then_some(bytes)
            }
            Block::Large { chunk, slot, .. } => {
                let stays_large = new_class.is_none() && new.size() <= LARGE_MAX_BYTES;
                let want = span_slots(new.size());
                (stays_large
                    && new.align() <= SLOT_BYTES
                    // SAFETY: a live span the caller owns.
                    && unsafe { self.resize_span(chunk, slot, want) })
                .then_some(want * SLOT_BYTES)
            }
            Block::Huge { header } => {
                if new_class.is_none() && new.size() > LARGE_MAX_BYTES && aligned {
                    // SAFETY: a live huge block the caller owns.
                    unsafe { self.resize_huge(header, new.size()) }
                } else {
                    None
                }
            }
        };
        if let Some(len) = in_place {
            self.reallocations.fetch_add(1, Ordering::Relaxed);
            return Ok(slice(ptr, len));
        }
        // SAFETY: `block` was located from `ptr` just above.
        let usable_now = unsafe { self.block_usable_bytes(block) };
        match self.alloc_block(new) {
            Ok((dst, len, _)) => {
                // SAFETY: distinct live blocks; both hold at least the bytes copied.
                unsafe {
                    ptr::copy_nonoverlapping(
                        ptr.as_ptr(),
                        dst.as_ptr(),
                        old.size().min(new.size()),
                    );
                    self.free_block(ptr);
                }
                self.reallocations.fetch_add(1, Ordering::Relaxed);
                Ok(slice(dst, len))
            }
            Err(_) if new.size() <= usable_now && aligned => {
                self.reallocations.fetch_add(1, Ordering::Relaxed);
                Ok(slice(ptr, usable_now))
            }
            Err(e) => Err(e),
        }
    }
}

// SAFETY: `locate` finds the block's slab, span or mapping from the pointer alone, so
// `usable_size` is the block's real length and `deallocate_unsized` is `deallocate`.
unsafe impl<P: PageSource> UnsizedAllocator for Slab<P> {
    unsafe fn usable_size(&self, ptr: NonNull<u8>) -> usize {
        // SAFETY: forwarded from the caller.
        match unsafe { self.locate(ptr) } {
            // SAFETY: located just now.
            Ok(block) => unsafe { self.block_usable_bytes(block) },
            Err(what) => {
                report(what, ptr.as_ptr() as usize);
                0
            }
        }
    }

    #[inline(always)]
    unsafe fn deallocate_unsized(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.free_block(ptr) }
    }
}

// SAFETY: batches come from and go to the same class slabs as single blocks (same `take` and
// `give_back`), so blocks of either path may be released through the other.
unsafe impl<P: PageSource + Sync> BatchAllocator for Slab<P> {
    #[inline(always)]
    fn class_count(&self) -> usize {
        CLASS_COUNT
    }

    #[inline(always)]
    fn class_of(&self, layout: Layout) -> Option<usize> {
        class_of_layout(layout.size(), layout.align())
    }

    #[inline(always)]
    fn class_size(&self, class: usize) -> usize {
        // The usable size: without the canary (`hardened`), which is not the caller's.
        class_usable_bytes(class)
    }

    // The canary's reserve (`canary::with_canary`): a request takes the class of its size
    // plus the canary, so the thread cache shifts its direct table's steps by it.
    const CLASS_SIZE_OFFSET_BYTES: usize = crate::canary::CANARY_BYTES;

    #[inline(always)]
    unsafe fn class_of_block(&self, ptr: NonNull<u8>) -> Option<usize> {
        // SAFETY: forwarded from the caller.
        unsafe { self.small_class_of(ptr) }
    }

    #[inline(always)]
    unsafe fn bin_of_block(&self, ptr: NonNull<u8>) -> Option<usize> {
        // SAFETY: forwarded from the caller.
        unsafe { self.small_bin_of(ptr) }
    }

    fn allocate_batch(&self, class: usize, out: &mut [*mut u8]) -> usize {
        self.alloc_batch(class, out)
    }

    unsafe fn deallocate_batch(&self, class: usize, blocks: &[*mut u8]) {
        // SAFETY: forwarded from the caller.
        unsafe { self.free_batch(class, blocks) }
    }

    const RECORDS_HANDED_OUT: bool = cfg!(feature = "secure");

    #[cfg(feature = "secure")]
    #[inline(always)]
    unsafe fn mark_handed_out(&self, ptr: NonNull<u8>) -> bool {
        // SAFETY: the caller promises a small block of this slab: its chunk is live.
        unsafe { crate::handed::mark(ptr) }
    }

    #[cfg(feature = "secure")]
    #[inline(always)]
    unsafe fn take_handed_out(&self, ptr: NonNull<u8>) -> bool {
        // SAFETY: the caller promises a pointer that `bin_of_block` placed in a class: the
        // chunk map, the header tag and the slot's class byte said it is in a live slab chunk
        // of this slab.
        if unsafe { crate::handed::take(ptr) } {
            return true;
        }
        // SAFETY: as above.
        unsafe { self.not_live(ptr) }
    }
}

heapkit_core::impl_foreign_allocators!(impl[P: PageSource] for Slab<P>);
