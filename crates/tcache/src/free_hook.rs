//! The uncached free hook: one function the process may install to hear of every block of no
//! size class freed through a cache, before the block reaches the backend. A heap profiler
//! makes its sampled blocks classless (heapkit's facade, feature `prof`), so this is where it
//! learns they are freed — on the large-block path, which already leaves the fast path; the
//! small frees pay nothing.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

static HOOK: AtomicPtr<()> = AtomicPtr::new(ptr::null_mut());

/// Installs `hook`, called with each block of no class freed through any `ThreadCache` (by an
/// unsized free), before the backend takes it back. The hook must not panic, and must not free
/// through a cache (it may allocate). Replaces any hook installed before.
pub fn set_uncached_free_hook(hook: fn(NonNull<u8>)) {
    HOOK.store(hook as *mut (), Ordering::Release);
}

/// Calls the hook, if one is installed.
#[inline]
pub(crate) fn run(ptr: NonNull<u8>) {
    let hook = HOOK.load(Ordering::Acquire);
    if !hook.is_null() {
        // SAFETY: the only non-null value ever stored is a `fn(NonNull<u8>)`, cast to a data
        // pointer by `set_uncached_free_hook`; function and data pointers have one size here.
        let hook = unsafe { core::mem::transmute::<*mut (), fn(NonNull<u8>)>(hook) };
        hook(ptr);
    }
}
