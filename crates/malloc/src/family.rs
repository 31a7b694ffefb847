//! The `hardened` build's allocation families: which function allocated a small block —
//! `malloc` (and its relatives), `operator new` or `operator new[]` — is folded into the block's
//! canary (heapkit-slab's `canary.rs`), so that a release by the wrong function stops the
//! process with "mismatched", naming both functions.
//!
//! ```text
//!   malloc ─► hand-out writes the Malloc canary ─────────────────────────► free: expects Malloc
//!   new    ─► hand-out writes Malloc, then tag(New) ──► delete: expects New, retags Malloc ─► free
//!   new[]  ─► ... tag(NewArray) ─────────────────────► delete[]: expects NewArray, retags ─► free
//! ```
//!
//! `free` (and `realloc`) of a `new` block is caught by the slab's own check on free, which
//! finds another family's canary. A large block has no canary: its family is kept in its
//! header page instead (heapkit-slab's `huge_family.rs`), and checked the same way.

use crate::heap::{self, HEAP};
use core::ptr::NonNull;
use heapkit::core::BatchAllocator as _;
use heapkit::slab::{class_of_layout, class_usable_bytes, Family};

/// The usable size of `ptr` when it is a small block (one with a canary), else `None`: from
/// the slot's class byte, as a free finds it.
///
/// # Safety
/// `ptr` is a live block from this allocator.
unsafe fn small_usable_bytes(ptr: NonNull<u8>) -> Option<usize> {
    if crate::zero_size::contains(ptr.as_ptr()) {
        return None;
    }
    // SAFETY: forwarded from the caller: a live block of the heap's slab.
    let class = unsafe { HEAP.cache().backend().class_of_block(ptr) }?;
    Some(class_usable_bytes(class))
}

/// Tags `block`, just allocated by `new` (`family`) for `size` bytes at `align`, with its
/// family. NULL and zero-size blocks are left alone.
pub fn tag(block: *mut u8, size: usize, align: usize, family: Family) {
    let Some(block) = NonNull::new(block) else {
        return;
    };
    if crate::zero_size::contains(block.as_ptr()) {
        return;
    }
    // The class follows from the request (what `heap::allocate` asked for), with no lookup of
    // the block.
    let Some(layout) = heap::c_layout(size, align) else {
        return;
    };
    let small_usable = class_of_layout(layout.size(), layout.align()).map(class_usable_bytes);
    // SAFETY: a live block just handed to us, small of that usable size or large.
    unsafe { set_block_family(block, small_usable, family) };
}

/// Records `family` for `block`: in the canary of a small block of usable size
/// `small_usable`, in the header page of a large one (`None`).
///
/// # Safety
/// `block` is a live block from this allocator, small with usable size `small_usable`, or
/// large when that is `None` (not a zero-size block).
unsafe fn set_block_family(block: NonNull<u8>, small_usable: Option<usize>, family: Family) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match small_usable {
            Some(usable) => heapkit::slab::set_family(block, usable, family),
            None => HEAP.cache().backend().set_huge_family(block, family),
        }
    }
}

/// Checks that `ptr`, released by `releaser` (`"operator delete"`, `"operator delete[]"`),
/// was allocated by `family`'s function, and retags it as `malloc`'s so that the free that
/// follows accepts it; stops the process on a mismatch. A canary of no family (an overflow)
/// is left for that free to report.
///
/// # Safety
/// `ptr` is NULL or a live block from this allocator.
pub unsafe fn release(ptr: *mut u8, family: Family, releaser: &str) {
    let Some(block) = NonNull::new(ptr) else {
        return;
    };
    if crate::zero_size::contains(ptr) {
        return;
    }
    // SAFETY: forwarded from the caller.
    let small = unsafe { small_usable_bytes(block) };
    // SAFETY: forwarded from the caller: a live block, small with that usable size or large.
    let found = unsafe {
        match small {
            Some(usable) => heapkit::slab::family(block, usable),
            None => HEAP.cache().backend().huge_family(block),
        }
    };
    match found {
        // What `free` expects already (never the case for the C++ operators' families).
        Some(Family::Malloc) if family == Family::Malloc => {}
        // SAFETY: as above; the caller gives the block up.
        Some(found) if found == family => unsafe { set_block_family(block, small, Family::Malloc) },
        Some(found) => mismatched(releaser, found, ptr as usize),
        None => {}
    }
}

/// Checks the canaries of `ptr`, which `realloc` may keep in place, as a free would: an
/// overflow, an underflow, or a block of `new` stops the process.
///
/// # Safety
/// `ptr` is a live block from this allocator.
pub unsafe fn check_in_place(ptr: NonNull<u8>) {
    // SAFETY: forwarded from the caller.
    match unsafe { small_usable_bytes(ptr) } {
        // SAFETY: forwarded from the caller: a live small block of that usable size.
        Some(usable) => unsafe { heapkit::slab::check_live(ptr, usable) },
        // SAFETY: forwarded from the caller: a live block (a large one, or zero-size).
        None => unsafe { HEAP.cache().backend().check_huge_free(ptr) },
    }
}

#[cold]
#[inline(never)]
fn mismatched(releaser: &str, found: Family, addr: usize) -> ! {
    heapkit_core::abort_with(format_args!(
        "heapkit-malloc: mismatched free: {releaser} of a block allocated by {} at {addr:#x}",
        found.allocator_name()
    ))
}
