//! The C library's allocation functions, with glibc's documented behaviour.

use crate::divert::{self, Kind};
use crate::heap::{self, out_of_memory, set_errno};
use core::ffi::c_void;
use core::ptr::{self, NonNull};
use heapkit_core::{align_up, WORD_BYTES};

/// The page size, for `valloc` and `pvalloc`.
fn page_bytes() -> usize {
    heapkit::pages::os_page_size()
}

/// `malloc(size)`: a block of at least `size` bytes aligned to 16; `malloc(0)` is a unique
/// pointer. NULL with `errno = ENOMEM` on failure.
#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    // While diverted, the inline path misses and its cold paths record the call (divert.rs);
    // only a build that cannot divert tests first (a constant false otherwise).
    if divert::TEST_FIRST && divert::active() {
        return divert::malloc_tested_first(size).cast();
    }
    heap::allocate_default_aligned(size).cast()
}

/// `calloc(count, size)`: zeroed memory; NULL with `ENOMEM` when `count * size` overflows.
#[no_mangle]
pub extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        // While diverted the inline path misses and its cold path records the call.
        Some(total) => heap::allocate_zeroed_default_aligned(total).cast(),
        None => out_of_memory().cast(),
    }
}

/// `free(ptr)`: NULL does nothing.
///
/// # Safety
/// `ptr` is NULL or a live block from this allocator.
#[no_mangle]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    // While diverted, the cache's cold free paths tell `divert::free_seen` (divert.rs).
    if divert::TEST_FIRST && divert::active() {
        // SAFETY: forwarded from the caller.
        return unsafe { divert::free_tested_first(ptr.cast()) };
    }
    // SAFETY: forwarded from the caller.
    unsafe { heap::free(ptr.cast()) }
}

/// `cfree(ptr)`: an old alias of `free` some programs still call.
///
/// # Safety
/// As for [`free`].
#[no_mangle]
pub unsafe extern "C" fn cfree(ptr: *mut c_void) {
    // SAFETY: forwarded from the caller.
    unsafe { divert::free_as(Kind::Free, ptr.cast()) }
}

/// `realloc(ptr, size)`: `realloc(NULL, n)` is `malloc(n)`; `realloc(p, 0)` frees `p` and
/// returns NULL (glibc's choice); on failure the old block is kept and NULL returned with
/// `ENOMEM`.
///
/// # Safety
/// `ptr` is NULL or a live block from this allocator.
#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    let Some(block) = NonNull::new(ptr.cast::<u8>()) else {
        return malloc(size);
    };
    if size == 0 {
        // SAFETY: a live block, freed once.
        unsafe { divert::free_as(Kind::Free, block.as_ptr()) };
        return ptr::null_mut();
    }
    if divert::active() {
        // SAFETY: a live block and a non-zero size.
        return unsafe { divert::realloc_now(block, size) }.cast();
    }
    // SAFETY: a live block and a non-zero size.
    unsafe { heap::reallocate::<true>(block, size) }.cast()
}

/// `reallocarray(ptr, count, size)`: `realloc` with an overflow check on `count * size`.
///
/// # Safety
/// As for [`realloc`].
#[no_mangle]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        // SAFETY: forwarded from the caller.
        Some(total) => unsafe { realloc(ptr, total) },
        None => out_of_memory().cast(),
    }
}

/// `posix_memalign(out, align, size)`: `EINVAL` unless `align` is a power of two multiple of
/// `sizeof(void *)`; `ENOMEM` on failure (and `*out` untouched); 0 on success.
///
/// # Safety
/// `out` is valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> i32 {
    if !align.is_power_of_two() || align % WORD_BYTES != 0 {
        return libc::EINVAL;
    }
    let saved_errno = errno();
    let block = aligned(size, align);
    set_errno(saved_errno);
    if block.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller promises `out` is writable.
    unsafe { out.write(block.cast()) };
    0
}

fn errno() -> i32 {
    // SAFETY: this thread's errno slot is always valid.
    unsafe { *libc::__errno_location() }
}

/// The memalign family's allocation, recorded as one `aligned` event.
fn aligned(size: usize, align: usize) -> *mut u8 {
    let block = heap::allocate(size, align, false);
    divert::created(Kind::Aligned, block, size, align);
    block
}

/// The alignment glibc's `memalign` family uses for a requested `align`: a non-power-of-two is
/// rounded up to the next power of two (NULL with `EINVAL` when that overflows).
fn memalign_alignment(align: usize) -> Option<usize> {
    align.max(1).checked_next_power_of_two()
}

/// `memalign(align, size)`: `align` rounded up to a power of two, as glibc does.
#[no_mangle]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    match memalign_alignment(align) {
        Some(align) => aligned(size, align).cast(),
        None => {
            set_errno(libc::EINVAL);
            ptr::null_mut()
        }
    }
}

/// `aligned_alloc(align, size)` (C11): as `memalign` in glibc 2.36, which Debian 12 ships.
#[no_mangle]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    memalign(align, size)
}

/// `valloc(size)`: page-aligned.
#[no_mangle]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    aligned(size, page_bytes()).cast()
}

/// `pvalloc(size)`: page-aligned, the size rounded up to whole pages.
#[no_mangle]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    match align_up(size.max(1), page_bytes()) {
        Some(rounded) => aligned(rounded, page_bytes()).cast(),
        None => out_of_memory().cast(),
    }
}

/// `malloc_usable_size(ptr)`: how many bytes of the block may be used; 0 for NULL.
///
/// # Safety
/// `ptr` is NULL or a live block from this allocator.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { heap::usable_size(ptr.cast()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memalign_rounds_alignment_up_like_glibc() {
        assert_eq!(memalign_alignment(0), Some(1));
        assert_eq!(memalign_alignment(24), Some(32));
        assert_eq!(memalign_alignment(4096), Some(4096));
        assert_eq!(memalign_alignment(usize::MAX), None);
    }
}
