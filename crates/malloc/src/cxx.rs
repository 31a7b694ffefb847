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

// Sized and aligned deletes free through the block's own metadata: the size and alignment the
// program passes are not needed, and trusting them would turn a program's mismatched
// new/delete pair into heap corruption instead of a correct free.
operators_delete! {
    _ZdlPv();
    _ZdaPv();
    _ZdlPvm(size: usize);
    _ZdaPvm(size: usize);
    _ZdlPvRKSt9nothrow_t(nothrow: *const c_void);
    _ZdaPvRKSt9nothrow_t(nothrow: *const c_void);
    _ZdlPvSt11align_val_t(align: usize);
    _ZdaPvSt11align_val_t(align: usize);
    _ZdlPvmSt11align_val_t(size: usize, align: usize);
    _ZdaPvmSt11align_val_t(size: usize, align: usize);
    _ZdlPvSt11align_val_tRKSt9nothrow_t(align: usize, nothrow: *const c_void);
    _ZdaPvSt11align_val_tRKSt9nothrow_t(align: usize, nothrow: *const c_void);
}
