//! The `hardened` feature's allocation family of huge blocks. A small block carries its family
//! (`malloc`, `operator new`, `operator new[]`) in its canary (`canary.rs`); a huge block has
//! no canary but a header page of its own (`huge.rs`), and keeps it there. Every huge block
//! starts as `malloc`'s; heapkit-malloc's `operator new` and `new[]` retag it, `delete` and
//! `delete[]` check theirs and retag it back, and the slab's `free` of a huge block stops the
//! process when it finds another family — with the same words as for small blocks.
//!
//! ```text
//!   ┌──────────────────────────┬─────────┬──── block ────┬─────────┐
//!   │ Huge hdr … family: New   │ guard ✗ │               │ guard ✗ │
//!   └──────────────────────────┴─────────┴───────────────┴─────────┘
//!     ▲ set by `operator new`, checked by `delete` (→ Malloc) and by `free`
//! ```

use crate::canary::Family;
use crate::heap::{Block, Slab};
use crate::huge::Huge;
use core::ptr::{addr_of, addr_of_mut, NonNull};
use heapkit_core::PageSource;

impl<P: PageSource> Slab<P> {
    /// The header of the huge block at `ptr`, or `None` when `ptr` is not the start of a live
    /// huge block of this slab.
    ///
    /// # Safety
    /// `ptr` is a live block of this slab.
    unsafe fn huge_header(&self, ptr: NonNull<u8>) -> Option<*mut Huge> {
        // SAFETY: forwarded from the caller.
        match unsafe { self.locate(ptr) } {
            Ok(Block::Huge { header }) => Some(header),
            _ => None,
        }
    }

    /// The family that allocated the huge block at `ptr`, or `None` when it is not a huge
    /// block (small blocks keep theirs in their canary: `heapkit_slab::family`).
    ///
    /// # Safety
    /// `ptr` is a live block of this slab.
    pub unsafe fn huge_family(&self, ptr: NonNull<u8>) -> Option<Family> {
        // SAFETY: forwarded from the caller.
        let header = unsafe { self.huge_header(ptr) }?;
        // SAFETY: a live huge header; its owner (the caller) is the only one to change it.
        Some(unsafe { addr_of!((*header).family).read() })
    }

    /// Records `family` as the allocator of the huge block at `ptr` (nothing when it is not
    /// a huge block).
    ///
    /// # Safety
    /// `ptr` is a live block of this slab that the caller owns.
    pub unsafe fn set_huge_family(&self, ptr: NonNull<u8>, family: Family) {
        // SAFETY: forwarded from the caller.
        if let Some(header) = unsafe { self.huge_header(ptr) } {
            // SAFETY: a live huge header of a block the caller owns; the header page is never
            // protected.
            unsafe { addr_of_mut!((*header).family).write(family) };
        }
    }

    /// Stops the process unless the huge block at `ptr` is `malloc`'s, as a `free` (or a
    /// `realloc` that keeps it in place) requires. Nothing when it is not a huge block.
    ///
    /// # Safety
    /// `ptr` is a live block of this slab.
    pub unsafe fn check_huge_free(&self, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller.
        if let Some(header) = unsafe { self.huge_header(ptr) } {
            // SAFETY: as above.
            unsafe { check_free(header) };
        }
    }
}

/// Stops the process unless the huge block of `huge` was allocated by `malloc`'s family.
///
/// # Safety
/// `huge` is a live huge header.
#[inline]
pub(crate) unsafe fn check_free(huge: *mut Huge) {
    // SAFETY: forwarded from the caller.
    let family = unsafe { addr_of!((*huge).family).read() };
    if family != Family::Malloc {
        // SAFETY: as above.
        mismatched(unsafe { Huge::block_start(huge) } as usize, family);
    }
}

#[cold]
#[inline(never)]
fn mismatched(addr: usize, family: Family) -> ! {
    heapkit_core::abort_with(format_args!(
        "heapkit-slab: mismatched free: free() (or realloc()) of a block allocated by {} at \
         {addr:#x}",
        family.allocator_name()
    ))
}
