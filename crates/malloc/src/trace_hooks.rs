//! What the entry points call to record the trace: with the `trace` feature, one relaxed load
//! of `trace::TRACING` and a branch, the recording itself out of line (trace.rs); without it,
//! nothing.
//!
//! `malloc` and `free` test [`on`] first and, when tracing, take a whole traced copy of
//! themselves ([`malloc_traced`], [`free_traced`]): a hook after the fast path instead keeps the
//! pointer live across a call, and the fast path pays a stack frame for it even when tracing is
//! off (measured with pair-instr.sh: 5 more instructions per call, against 3 for the test first).

pub use heapkit_trace::Kind;

/// Whether events are being recorded.
#[inline(always)]
pub fn on() -> bool {
    #[cfg(feature = "trace")]
    return crate::trace::tracing();
    #[cfg(not(feature = "trace"))]
    false
}

/// After an allocation of `kind` returned `block` (NULL: nothing recorded).
#[inline(always)]
pub fn created(kind: Kind, block: *mut u8, size: usize, align: usize) {
    if on() {
        #[cfg(feature = "trace")]
        crate::trace::created(kind, block, size, align);
    }
    let _ = (kind, block, size, align);
}

/// Before `block` is freed by `kind` (NULL: nothing recorded).
#[inline(always)]
pub fn freed(kind: Kind, block: *mut u8) {
    if on() {
        #[cfg(feature = "trace")]
        crate::trace::freed(kind, block);
    }
    let _ = (kind, block);
}

/// Before `realloc(block, n)` with `n > 0`: a token for [`realloc_end`].
#[inline(always)]
pub fn realloc_begin(block: *mut u8) -> u64 {
    if on() {
        #[cfg(feature = "trace")]
        return crate::trace::realloc_begin(block);
    }
    let _ = block;
    0
}

/// After `realloc(old, size)` returned `new` (NULL: it failed and `old` is still live).
#[inline(always)]
pub fn realloc_end(token: u64, old: *mut u8, new: *mut u8, size: usize) {
    if on() {
        #[cfg(feature = "trace")]
        crate::trace::realloc_end(token, old, new, size);
    }
    let _ = (token, old, new, size);
}

/// `malloc` while tracing: the allocation, then its event.
#[cold]
#[inline(never)]
pub fn malloc_traced(size: usize) -> *mut u8 {
    let block = crate::heap::allocate_default_aligned(size);
    created(Kind::Malloc, block, size, heapkit_core::MAX_ALIGN_BYTES);
    block
}

/// `free` while tracing: the event, then the free.
///
/// # Safety
/// `ptr` is NULL or a live block of the heap.
#[cold]
#[inline(never)]
pub unsafe fn free_traced(ptr: *mut u8) {
    freed(Kind::Free, ptr);
    // SAFETY: forwarded from the caller.
    unsafe { crate::heap::free(ptr) }
}
