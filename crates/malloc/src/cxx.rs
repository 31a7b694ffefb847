//! The C++ allocation operators (Itanium ABI names): plain, nothrow, array, sized and aligned
//! `new` and `delete`.
//!
//! A throwing `operator new` that cannot allocate must throw `std::bad_alloc`. This library has
//! no C++ runtime to throw with, and nothing may unwind through Rust, so it stops the program
//! with a message instead — what a C++ program without a new-handler ends up doing anyway
//! (`std::terminate` on an uncaught `bad_alloc`). The `nothrow` forms return NULL.

use crate::heap;
use crate::trace_hooks::{self as trace, Kind};
use core::ffi::c_void;
use heapkit_core::MAX_ALIGN_BYTES;

fn new_or_abort(kind: Kind, size: usize, align: usize) -> *mut c_void {
    let block = new_or_null(kind, size, align);
    if block.is_null() {
        heapkit_core::fatal(
            "heapkit-malloc",
            "operator new: out of memory (std::bad_alloc)",
            size,
        );
    }
    block.cast()
}

fn new_or_null(kind: Kind, size: usize, align: usize) -> *mut c_void {
    let block = heap::allocate(size, align, false);
    trace::created(kind, block, size, align);
    block.cast()
}

/// # Safety
/// `ptr` is NULL or a live block from this allocator.
unsafe fn delete(kind: Kind, ptr: *mut c_void) {
    trace::freed(kind, ptr.cast());
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
    ($($name:ident($($arg:ident: $ty:ty),*) => $kind:ident;)*) => {$(
        #[doc = concat!("C++ `", stringify!($name), "`.")]
        ///
        /// # Safety
        /// The pointer is NULL or a live block from this allocator.
        #[no_mangle]
        pub unsafe extern "C" fn $name(ptr: *mut c_void, $(_: $ty),*) {
            // SAFETY: forwarded from the caller.
            unsafe { delete(Kind::$kind, ptr) }
        }
    )*};
}

operators_new! {
    _Znwm(size: usize) => new_or_abort(Kind::New, size, MAX_ALIGN_BYTES);
    _Znam(size: usize) => new_or_abort(Kind::NewArray, size, MAX_ALIGN_BYTES);
    _ZnwmRKSt9nothrow_t(size: usize, _nothrow: *const c_void) => new_or_null(Kind::New, size, MAX_ALIGN_BYTES);
    _ZnamRKSt9nothrow_t(size: usize, _nothrow: *const c_void) => new_or_null(Kind::NewArray, size, MAX_ALIGN_BYTES);
    _ZnwmSt11align_val_t(size: usize, align: usize) => new_or_abort(Kind::New, size, align);
    _ZnamSt11align_val_t(size: usize, align: usize) => new_or_abort(Kind::NewArray, size, align);
    _ZnwmSt11align_val_tRKSt9nothrow_t(size: usize, align: usize, _nothrow: *const c_void) => new_or_null(Kind::New, size, align);
    _ZnamSt11align_val_tRKSt9nothrow_t(size: usize, align: usize, _nothrow: *const c_void) => new_or_null(Kind::NewArray, size, align);
}

// Sized and aligned deletes free through the block's own metadata: the size and alignment the
// program passes are not needed, and trusting them would turn a program's mismatched
// new/delete pair into heap corruption instead of a correct free.
operators_delete! {
    _ZdlPv() => Delete;
    _ZdaPv() => DeleteArray;
    _ZdlPvm(size: usize) => Delete;
    _ZdaPvm(size: usize) => DeleteArray;
    _ZdlPvRKSt9nothrow_t(nothrow: *const c_void) => Delete;
    _ZdaPvRKSt9nothrow_t(nothrow: *const c_void) => DeleteArray;
    _ZdlPvSt11align_val_t(align: usize) => Delete;
    _ZdaPvSt11align_val_t(align: usize) => DeleteArray;
    _ZdlPvmSt11align_val_t(size: usize, align: usize) => Delete;
    _ZdaPvmSt11align_val_t(size: usize, align: usize) => DeleteArray;
    _ZdlPvSt11align_val_tRKSt9nothrow_t(align: usize, nothrow: *const c_void) => Delete;
    _ZdaPvSt11align_val_tRKSt9nothrow_t(align: usize, nothrow: *const c_void) => DeleteArray;
}
