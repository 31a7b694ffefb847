//! The C++ allocation operators (Itanium ABI names): plain, nothrow, array, sized and aligned
//! `new` and `delete`.
//!
//! A throwing `operator new` that cannot allocate must throw `std::bad_alloc`. This library has
//! no C++ runtime to throw with, and nothing may unwind through Rust, so it stops the program
//! with a message instead — what a C++ program without a new-handler ends up doing anyway
//! (`std::terminate` on an uncaught `bad_alloc`). The `nothrow` forms return NULL.

use crate::heap;
use core::ffi::c_void;
use heapkit_core::MAX_ALIGN_BYTES;

fn new_or_abort(size: usize, align: usize) -> *mut c_void {
    let block = heap::allocate(size, align, false);
    if block.is_null() {
        heapkit_core::fatal(
            "heapkit-malloc",
            "operator new: out of memory (std::bad_alloc)",
            size,
        );
    }
    block.cast()
}

fn new_or_null(size: usize, align: usize) -> *mut c_void {
    heap::allocate(size, align, false).cast()
}

/// # Safety
/// `ptr` is NULL or a live block from this allocator.
unsafe fn delete(ptr: *mut c_void) {
    // SAFETY: forwarded from the caller.
    unsafe { heap::free(ptr.cast()) }
}

/// A sized `delete` (`size` and `align` as the program passes them): with `hardened`, first
/// checks that the size fits the block (see [`size_fits_block`]), then frees.
///
/// # Safety
/// `ptr` is NULL or a live block from this allocator.
unsafe fn delete_sized(ptr: *mut c_void, size: usize, align: usize) {
    #[cfg(feature = "hardened")]
    // SAFETY: forwarded from the caller.
    if !ptr.is_null() && !unsafe { size_fits_block(ptr.cast(), size, align) } {
        heapkit_core::fatal(
            "heapkit-malloc",
            "sized operator delete: the size does not fit the block (mismatched new/delete)",
            ptr as usize,
        );
    }
    let _ = (size, align);
    // SAFETY: forwarded from the caller.
    unsafe { delete(ptr) }
}

/// Whether `size` (at `align`) could be the size `new` was given for the live block at `ptr`:
/// a small block must be of the very class a request of `size` gets; a large or huge block
/// must hold `size` bytes, and `size` must be too large for the small classes. (A size within
/// the same class, or a large size that still fits, is not caught: the block is freed exactly
/// either way.)
///
/// # Safety
/// `ptr` is a non-null live block from this allocator.
#[cfg(feature = "hardened")]
unsafe fn size_fits_block(ptr: *mut u8, size: usize, align: usize) -> bool {
    if crate::zero_size::contains(ptr) {
        return size == 0;
    }
    // SAFETY: forwarded from the caller.
    let usable = unsafe { heap::usable_size(ptr) };
    let Some(layout) = heap::c_layout(size, align) else {
        return false;
    };
    if usable <= heapkit::slab::SMALL_MAX_BYTES {
        heapkit::slab::class_of_layout(layout.size(), layout.align())
            .and_then(|class| heapkit::slab::CLASS_BYTES.get(class))
            .is_some_and(|&bytes| bytes as usize == usable)
    } else {
        !heap::is_small(layout) && layout.size() <= usable
    }
}

macro_rules! operators_new {
    ($($name:ident($($arg:ident: $ty:ty),*) => $body:expr;)*) => {$(
        #[doc = concat!("C++ `", stringify!($name), "`.")]
        #[no_mangle]
        pub extern "C" fn $name($($arg: $ty),*) -> *mut c_void {
            $body
        }
    )*};
}

macro_rules! operators_delete {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[doc = concat!("C++ `", stringify!($name), "`.")]
        ///
        /// # Safety
        /// The pointer is NULL or a live block from this allocator.
        #[no_mangle]
        pub unsafe extern "C" fn $name(ptr: *mut c_void, $(_: $ty),*) {
            // SAFETY: forwarded from the caller.
            unsafe { delete(ptr) }
        }
    )*};
}

operators_new! {
    _Znwm(size: usize) => new_or_abort(size, MAX_ALIGN_BYTES);
    _Znam(size: usize) => new_or_abort(size, MAX_ALIGN_BYTES);
    _ZnwmRKSt9nothrow_t(size: usize, _nothrow: *const c_void) => new_or_null(size, MAX_ALIGN_BYTES);
    _ZnamRKSt9nothrow_t(size: usize, _nothrow: *const c_void) => new_or_null(size, MAX_ALIGN_BYTES);
    _ZnwmSt11align_val_t(size: usize, align: usize) => new_or_abort(size, align);
    _ZnamSt11align_val_t(size: usize, align: usize) => new_or_abort(size, align);
    _ZnwmSt11align_val_tRKSt9nothrow_t(size: usize, align: usize, _nothrow: *const c_void) => new_or_null(size, align);
    _ZnamSt11align_val_tRKSt9nothrow_t(size: usize, align: usize, _nothrow: *const c_void) => new_or_null(size, align);
}

/// C++ sized `delete` (`_ZdlPvm`, `_ZdaPvm`) and sized aligned `delete`.
macro_rules! operators_delete_sized {
    ($($name:ident($size:ident: usize $(, $align:ident: usize)?) => $align_value:expr;)*) => {$(
        #[doc = concat!("C++ `", stringify!($name), "`.")]
        ///
        /// # Safety
        /// The pointer is NULL or a live block from this allocator.
        #[no_mangle]
        pub unsafe extern "C" fn $name(ptr: *mut c_void, $size: usize $(, $align: usize)?) {
            // SAFETY: forwarded from the caller.
            unsafe { delete_sized(ptr, $size, $align_value) }
        }
    )*};
}

// Sized and aligned deletes free through the block's own metadata: the size and alignment the
// program passes are not needed, and trusting them would turn a program's mismatched
// new/delete pair into heap corruption instead of a correct free. The hardened build checks
// the size against the block (and stops on a mismatch) before it frees.
operators_delete_sized! {
    _ZdlPvm(size: usize) => MAX_ALIGN_BYTES;
    _ZdaPvm(size: usize) => MAX_ALIGN_BYTES;
    _ZdlPvmSt11align_val_t(size: usize, align: usize) => align;
    _ZdaPvmSt11align_val_t(size: usize, align: usize) => align;
}

operators_delete! {
    _ZdlPv();
    _ZdaPv();
    _ZdlPvRKSt9nothrow_t(nothrow: *const c_void);
    _ZdaPvRKSt9nothrow_t(nothrow: *const c_void);
    _ZdlPvSt11align_val_t(align: usize);
    _ZdaPvSt11align_val_t(align: usize);
    _ZdlPvSt11align_val_tRKSt9nothrow_t(align: usize, nothrow: *const c_void);
    _ZdaPvSt11align_val_tRKSt9nothrow_t(align: usize, nothrow: *const c_void);
}
