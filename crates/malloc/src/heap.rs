//! The one heap behind every entry point, and the conversions between C's conventions and
//! heapkit's `Allocator` contract.

use core::alloc::Layout;
use core::ptr::{self, NonNull};
use heapkit::HeapKit;
use heapkit_core::{Allocator, UnsizedAllocator, MAX_ALIGN_BYTES};

/// The process's heap. `HeapKit::new` is `const`, so the heap exists before any code runs.
pub static HEAP: HeapKit = HeapKit::new();

/// Sets `errno` to `ENOMEM` (C's report for an allocation failure) and returns NULL.
#[cold]
pub fn out_of_memory() -> *mut u8 {
    set_errno(libc::ENOMEM);
    ptr::null_mut()
}

/// Sets the calling thread's `errno`.
pub fn set_errno(code: i32) {
    // SAFETY: `__errno_location` returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = code };
}

/// The layout C asks for: `size` bytes aligned at least to `max_align_t`. A zero size becomes
/// one byte, so that `malloc(0)` returns a unique pointer that can be freed, as glibc does.
///
/// Inlined so that the constant alignment of `malloc` and `calloc` folds the checks away.
#[inline(always)]
pub fn c_layout(size: usize, align: usize) -> Option<Layout> {
    Layout::from_size_align(size.max(1), align.max(MAX_ALIGN_BYTES)).ok()
}

/// Allocates a block for C, or NULL with `errno = ENOMEM`.
#[inline(always)]
pub fn allocate(size: usize, align: usize, zeroed: bool) -> *mut u8 {
    let Some(layout) = c_layout(size, align) else {
        return out_of_memory();
    };
    let result = if zeroed {
        HEAP.allocate_zeroed(layout)
    } else {
        HEAP.allocate(layout)
    };
    match result {
        Ok(block) => block.cast::<u8>().as_ptr(),
        Err(_) => out_of_memory(),
    }
}

/// Frees a block for C; NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or a live block from this heap.
pub unsafe fn free(ptr: *mut u8) {
    if let Some(block) = NonNull::new(ptr) {
        // SAFETY: the caller promises a live block of this heap.
        unsafe { HEAP.deallocate_unsized(block) }
    }
}

/// The usable size of a block; 0 for NULL.
///
/// # Safety
/// `ptr` is NULL or a live block from this heap.
pub unsafe fn usable_size(ptr: *mut u8) -> usize {
    match NonNull::new(ptr) {
        // SAFETY: the caller promises a live block of this heap.
        Some(block) => unsafe { HEAP.usable_size(block) },
        None => 0,
    }
}

/// `realloc` for a live, non-null block and a non-zero size.
///
/// The block stays where it is when the new size still fits it and would not waste more than
/// three quarters of it (so shrinking a large block to a few bytes does give memory back);
/// otherwise a new block is allocated, the contents copied and the old block freed. On failure
/// the old block is untouched and NULL is returned with `errno = ENOMEM`.
///
/// # Safety
/// `ptr` is a live block from this heap; `new_size > 0`.
pub unsafe fn reallocate(ptr: NonNull<u8>, new_size: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    let usable = unsafe { HEAP.usable_size(ptr) };
    if new_size <= usable && new_size > usable / 4 {
        return ptr.as_ptr();
    }
    let fresh = allocate(new_size, MAX_ALIGN_BYTES, false);
    if fresh.is_null() {
        return fresh;
    }
    // SAFETY: both blocks are live and distinct; `min(usable, new_size)` bytes are readable in
    // the old and writable in the new one.
    unsafe {
        ptr::copy_nonoverlapping(ptr.as_ptr(), fresh, usable.min(new_size));
        HEAP.deallocate_unsized(ptr);
    }
    fresh
}
