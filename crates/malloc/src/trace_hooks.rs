//! What the entry points call to record the trace: with the `trace` feature, one relaxed load
//! of `trace::TRACING` and a branch, the recording itself out of line (trace.rs); without it,
//! nothing.

pub use heapkit_trace::Kind;

#[cfg(feature = "trace")]
use core::sync::atomic::Ordering;

/// Whether events are being recorded.
#[inline(always)]
fn on() -> bool {
    #[cfg(feature = "trace")]
    return crate::trace::TRACING.load(Ordering::Relaxed);
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
