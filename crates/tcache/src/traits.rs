//! The heapkit-core contracts (`Allocator` with in-place grow/shrink, `UnsizedAllocator`) and
//! `GlobalAlloc`, over the flow in `cache.rs`.

use crate::bin;
use crate::cache::ThreadCache;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use heapkit_core::{AllocError, Allocator, BatchAllocator};

// SAFETY: the block contract holds because every block comes from the backend, unchanged: the
// cache only keeps freed blocks for a while (it never hands one out twice: a block is either on
// one bin's list or live), and in-place resizing keeps a block in its class, which serves the
// new layout's size and alignment (the backend's contract).
unsafe impl<B: BatchAllocator> Allocator for ThreadCache<B> {
    #[inline(always)]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let Some(class) = self.backend.class_of(layout) else {
            return self.backend.allocate_nonzero(layout);
        };
        let block = NonNull::new(self.allocate_in_class(class, layout)).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(
            block,
            self.backend.class_size(class),
        ))
    }

    #[inline(always)]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        match self.backend.class_of(layout) {
            // SAFETY: forwarded from the caller; the layout fits the block, so its class is the
            // block's.
            Some(class) => unsafe {
                debug_assert!(
                    ptr.as_ptr() as usize % layout.align() == 0,
                    "misaligned free"
                );
                if bin::SECURE && B::RECORDS_HANDED_OUT {
                    // The live test needs a block start the backend placed in a class; the
                    // layout's class must be that class.
                    self.check_sized_free(ptr, class);
                }
                self.deallocate_in_class(ptr.as_ptr(), class)
            },
            // SAFETY: forwarded from the caller: a large block of the backend.
            None => unsafe { self.backend.deallocate_nonzero(ptr, layout) },
        }
    }

    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if self.backend.class_of(layout).is_none() {
            return self.backend.allocate_zeroed_nonzero(layout);
        }
        let block = self.allocate_nonzero(layout)?;
        // SAFETY: a fresh block of `block.len()` writable bytes.
        unsafe { ptr::write_bytes(block.cast::<u8>().as_ptr(), 0, block.len()) };
        Ok(block)
    }

    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(new_layout.size() >= old_layout.size());
        // SAFETY: forwarded from the caller.
        unsafe { self.resize(ptr, old_layout, new_layout, true) }
    }

    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(new_layout.size() <= old_layout.size());
        // SAFETY: forwarded from the caller.
        unsafe { self.resize(ptr, old_layout, new_layout, false) }
    }
}

// SAFETY: sizes and classes come from the backend, which knows every block; an unsized free of
// a small block lands in the bin of the block's own class.
unsafe impl<B: BatchAllocator> heapkit_core::UnsizedAllocator for ThreadCache<B> {
    unsafe fn usable_size(&self, ptr: NonNull<u8>) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { self.backend.usable_size(ptr) }
    }

    #[inline(always)]
    unsafe fn deallocate_unsized(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        unsafe { self.deallocate_unsized_in::<false>(ptr) }
    }
}

// SAFETY: as for the `Allocator` impl; null stands for `AllocError`, and `realloc` keeps the
// old block on failure because `grow`/`shrink` do.
unsafe impl<B: BatchAllocator> GlobalAlloc for ThreadCache<B> {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.backend.class_of(layout) {
            Some(class) => self.allocate_in_class(class, layout),
            None => self.allocate_uncached(layout),
        }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `GlobalAlloc` callers pass a live, non-null block and its layout.
        unsafe { self.deallocate_nonzero(NonNull::new_unchecked(ptr), layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.allocate_zeroed_nonzero(layout) {
            Ok(block) => block.cast::<u8>().as_ptr(),
            Err(AllocError) => ptr::null_mut(),
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `GlobalAlloc::realloc` callers promise a non-zero `new_size` that, rounded up
        // to the alignment, does not overflow `isize`, and a live non-null block.
        let result = unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let ptr = NonNull::new_unchecked(ptr);
            if new_size >= layout.size() {
                self.grow_nonzero(ptr, layout, new_layout)
            } else {
                self.shrink_nonzero(ptr, layout, new_layout)
            }
        };
        match result {
            Ok(block) => block.cast::<u8>().as_ptr(),
            Err(AllocError) => ptr::null_mut(),
        }
    }
}

impl<B: BatchAllocator> ThreadCache<B> {
    /// Resizes in place when both layouts map to the same class, through the backend when both
    /// are large, and by moving otherwise.
    ///
    /// # Safety
    /// `ptr` is live with `old_layout`; both sizes are non-zero.
    unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
        grow: bool,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let old_class = self.backend.class_of(old_layout);
        let new_class = self.backend.class_of(new_layout);
        match (old_class, new_class) {
            // The class serves the new layout's size and alignment, and a later free with
            // `new_layout` finds the same class: the block can stay.
            (Some(a), Some(b)) if a == b => Ok(NonNull::slice_from_raw_parts(
                ptr,
                self.backend.class_size(a),
            )),
            // SAFETY: a large block of the backend, forwarded with the caller's promise.
            (None, None) => unsafe {
                if grow {
                    self.backend.grow_nonzero(ptr, old_layout, new_layout)
                } else {
                    self.backend.shrink_nonzero(ptr, old_layout, new_layout)
                }
            },
            // Growing out of the cached classes: the result is a block the cache never holds,
            // so the backend may grow it in place (heapkit-bins into a free neighbour or the
            // top, as glibc's realloc does) instead of the cache moving it. Not the other way:
            // a block shrunk into a class must really be one of that class's blocks before a
            // free can cache it, so shrinking into the classes relocates (below).
            // SAFETY: a live block of the backend (cached classes are the backend's blocks),
            // forwarded with the caller's promise.
            // (Not with `secure`'s record: the backend would free the block without clearing
            // its mark. It moves through the cache below, which does.)
            (Some(_), None) if grow && !(bin::SECURE && B::RECORDS_HANDED_OUT) => unsafe {
                self.backend.grow_nonzero(ptr, old_layout, new_layout)
            },
            // SAFETY: forwarded from the caller.
            _ => unsafe { heapkit_core::relocate(self, ptr, old_layout, new_layout) },
        }
    }
}

impl<B: BatchAllocator> ThreadCache<B> {
    /// With `secure`: stops a sized free whose pointer is not a block start of the class its
    /// layout names (a wrong layout, a wrong pointer), before the live test reads the backend's
    /// record for it.
    ///
    /// # Safety
    /// The chunk-aligned address below `ptr` is readable, as for
    /// [`BatchAllocator::bin_of_block`].
    #[inline(always)]
    unsafe fn check_sized_free(&self, ptr: NonNull<u8>, class: usize) {
        // SAFETY: forwarded from the caller.
        if unsafe { self.backend.bin_of_block(ptr) } != Some(class) {
            heapkit_core::fatal(
                "heapkit-tcache",
                "invalid free: the layout's size class is not the block's (a wrong layout or \
                 a pointer that is no block start)",
                ptr.as_ptr() as usize,
            );
        }
    }
}
