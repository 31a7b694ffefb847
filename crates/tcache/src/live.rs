//! `secure`'s exact "is this block the program's?" test: every block the cache hands out is
//! recorded as the program's in the backend
//! ([`BatchAllocator::mark_handed_out`](heapkit_core::BatchAllocator::mark_handed_out): with
//! heapkit-slab, one byte per 16 bytes of the chunk, beside its header), and every free clears the record
//! *before* the block reaches a bin. A free whose record is not there — a block that was never
//! handed out (a neighbour of a live block), one freed already, one sitting in this or another
//! thread's cache — stops the process, every time, instead of putting a block into a bin that
//! would later be handed out twice.
//!
//! ```text
//!   backend ──batch──► bin ──pop──► hand_out: mark ──► program ──free──► take_back: clear ──► bin
//!                                                                          (not marked: abort)
//! ```
//!
//! This needs a backend that keeps the record (`BatchAllocator::RECORDS_HANDED_OUT`:
//! heapkit-slab with `secure`); over any other, a free is judged by the free mark as before
//! (`deallocate_marked`). The free mark of a cached block (bin.rs) stays either way: it guards
//! the links a pop follows. Without `secure` both functions are empty and the compiler drops
//! them.

use crate::bin;
use crate::cache::ThreadCache;
use core::ptr::NonNull;
use heapkit_core::BatchAllocator;

impl<B: BatchAllocator> ThreadCache<B> {
    /// Records `block` — null, or a block of a class that this cache is giving to the
    /// program — as the program's, and returns it.
    #[inline(always)]
    pub(crate) fn hand_out(&self, block: *mut u8) -> *mut u8 {
        if bin::SECURE && B::RECORDS_HANDED_OUT {
            if let Some(block) = NonNull::new(block) {
                // SAFETY: a block of a class, from the backend (through a bin or not).
                if !unsafe { self.backend.mark_handed_out(block) } {
                    handed_out_twice(block.as_ptr());
                }
            }
        }
        block
    }

    /// Takes back the record of `ptr`, which the program frees; stops the process when the
    /// block is not the program's.
    ///
    /// # Safety
    /// `ptr` is the start of a block of a class (of this cache's backend), as
    /// [`BatchAllocator::bin_of_block`] found it.
    #[inline(always)]
    pub(crate) unsafe fn take_back(&self, ptr: *mut u8) {
        if bin::SECURE && B::RECORDS_HANDED_OUT {
            // SAFETY: forwarded from the caller (a block start is not null).
            if !unsafe { self.backend.take_handed_out(NonNull::new_unchecked(ptr)) } {
                not_live(ptr);
            }
        }
    }
}

/// The abort for a free of a block the program does not own. The block's memory is not read
/// (it may be a guard page): the message names both causes.
#[cold]
#[inline(never)]
fn not_live(ptr: *mut u8) -> ! {
    heapkit_core::fatal(
        "heapkit-tcache",
        "free(): invalid pointer: invalid free of a block that is not live (a double free, or \
         a block never handed out)",
        ptr as usize,
    )
}

/// The abort for a block the cache is about to hand out while the program still owns it: a
/// bin or the backend handed it out twice, so their state is corrupt.
#[cold]
#[inline(never)]
fn handed_out_twice(ptr: *mut u8) -> ! {
    heapkit_core::fatal(
        "heapkit-tcache",
        "heap corrupted: a block about to be handed out is already live",
        ptr as usize,
    )
}
