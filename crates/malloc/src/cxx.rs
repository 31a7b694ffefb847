//! The C++ allocation operators (Itanium ABI names): plain, nothrow, array, sized and aligned
//! `new` and `delete`.
//!
//! A throwing `operator new` that cannot allocate must throw `std::bad_alloc`. This library has
//! no C++ runtime to throw with, and nothing may unwind through Rust, so it stops the program
//! with a message instead — what a C++ program without a new-handler ends up doing anyway
//! (`std::terminate` on an uncaught `bad_alloc`). The `nothrow` forms return NULL.

use crate::divert::{self, Kind};
use crate::heap;
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
    #[cfg(feature = "hardened")]
    if let Some((family, _)) = family_of(kind) {
        crate::family::tag(block, size, align, family);
    }
    divert::created(kind, block, size, align);
    block.cast()
}

/// # Safety
/// `ptr` is NULL or a live block from this allocator.
unsafe fn delete(kind: Kind, ptr: *mut c_void) {
    // SAFETY: forwarded from the caller.
    unsafe {
        release_family(kind, ptr);
        free(kind, ptr)
    }
}

/// With `hardened`, stops the process unless the block at `ptr` was allocated by the `new`
/// that `kind`'s `delete` pairs with, and retags it for the free (`family.rs`). Once per
/// release: the retagged block no longer passes.
///
/// # Safety
/// `ptr` is NULL or a live block from this allocator.
#[inline(always)]
unsafe fn release_family(kind: Kind, ptr: *mut c_void) {
    #[cfg(feature = "hardened")]
    if let Some((family, releaser)) = family_of(kind) {
        // SAFETY: forwarded from the caller.
        unsafe { crate::family::release(ptr.cast(), family, releaser) };
    }
    let _ = (kind, ptr);
}

/// # Safety
/// `ptr` is NULL or a live block from this allocator.
unsafe fn free(kind: Kind, ptr: *mut c_void) {
    // SAFETY: forwarded from the caller.
    unsafe { divert::free_as(kind, ptr.cast()) }
}

/// The allocation family an operator of `kind` allocates or releases, and the name of the
/// releasing operator (for messages).
#[cfg(feature = "hardened")]
fn family_of(kind: Kind) -> Option<(heapkit::slab::Family, &'static str)> {
    use heapkit::slab::Family;
    match kind {
        Kind::New | Kind::Delete => Some((Family::New, "operator delete")),
        Kind::NewArray | Kind::DeleteArray => Some((Family::NewArray, "operator delete[]")),
        _ => None,
    }
}

/// A sized `delete` (`size` and `align` as the program passes them): with `hardened`, first
/// checks that the size fits the block (see [`size_fits_block`]), then frees.
///
/// # Safety
/// `ptr` is NULL or a live block from this allocator.
unsafe fn delete_sized(kind: Kind, ptr: *mut c_void, size: usize, align: usize) {
    // The family first: a `delete` of a `new[]` block is named as such even when its size
    // does not fit either.
    // SAFETY: forwarded from the caller.
    unsafe { release_family(kind, ptr) };
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
    unsafe { free(kind, ptr) }
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
            .is_some_and(|class| heapkit::slab::class_usable_bytes(class) == usable)
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

/// C++ sized `delete` (`_ZdlPvm`, `_ZdaPvm`) and sized aligned `delete`.
macro_rules! operators_delete_sized {
    ($($name:ident($size:ident: usize $(, $align:ident: usize)?) => $kind:ident, $align_value:expr;)*) => {$(
        #[doc = concat!("C++ `", stringify!($name), "`.")]
        ///
        /// # Safety
        /// The pointer is NULL or a live block from this allocator.
        #[no_mangle]
        pub unsafe extern "C" fn $name(ptr: *mut c_void, $size: usize $(, $align: usize)?) {
            // SAFETY: forwarded from the caller.
            unsafe { delete_sized(Kind::$kind, ptr, $size, $align_value) }
        }
    )*};
}

// Sized and aligned deletes free through the block's own metadata: the size and alignment the
// program passes are not needed, and trusting them would turn a program's mismatched
// new/delete pair into heap corruption instead of a correct free. The hardened build checks
// the size against the block (and stops on a mismatch) before it frees.
operators_delete_sized! {
    _ZdlPvm(size: usize) => Delete, MAX_ALIGN_BYTES;
    _ZdaPvm(size: usize) => DeleteArray, MAX_ALIGN_BYTES;
    _ZdlPvmSt11align_val_t(size: usize, align: usize) => Delete, align;
    _ZdaPvmSt11align_val_t(size: usize, align: usize) => DeleteArray, align;
}

operators_delete! {
    _ZdlPv() => Delete;
    _ZdaPv() => DeleteArray;
    _ZdlPvRKSt9nothrow_t(nothrow: *const c_void) => Delete;
    _ZdaPvRKSt9nothrow_t(nothrow: *const c_void) => DeleteArray;
    _ZdlPvSt11align_val_t(align: usize) => Delete;
    _ZdaPvSt11align_val_t(align: usize) => DeleteArray;
    _ZdlPvSt11align_val_tRKSt9nothrow_t(align: usize, nothrow: *const c_void) => Delete;
    _ZdaPvSt11align_val_tRKSt9nothrow_t(align: usize, nothrow: *const c_void) => DeleteArray;
}
