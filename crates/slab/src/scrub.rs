//! The `hardened` feature's scrubbing of small blocks: a block the program frees is zeroed at
//! once (a read through a dangling pointer sees zeros, and nothing of the old contents is left
//! to leak), and a block handed out again is checked to be still zero — a write through a
//! dangling pointer while the block was free stops the process at the next hand-out. Every
//! small block is therefore handed out zeroed (GrapheneOS hardened_malloc's `ZERO_ON_FREE` and
//! `WRITE_AFTER_FREE_CHECK`).
//!
//! Both run where the `secure` record changes hands (`handed.rs`), so they see exactly the
//! program's frees and the cache's hand-outs. The first two words of a free block hold its
//! encoded link and free mark; every pop clears them (`secure`), so a block is all zero again
//! by the time it is checked. The block's last word, its canary (`canary.rs`), is neither
//! zeroed nor checked here: it stays for the slot's life. Never-used blocks are zero when the slot came from a zeroing
//! source; [`zero_fresh_blocks`] zeroes the others when their slab is made.

use crate::canary::CANARY_BYTES;
use crate::chunk::{ident, slot_of, Chunk};
use crate::classes::CLASS_BYTES;
use crate::geometry::CHUNK_MASK;
use crate::slab_meta::SlabMeta;
use core::ptr::{self, NonNull};

/// The size of the small block at `ptr`, from its slot's class byte (0 for a slot of no class,
/// which a caller never passes).
///
/// # Safety
/// `ptr` lies in a small slab of a live chunk.
#[inline(always)]
pub(crate) unsafe fn block_bytes(ptr: NonNull<u8>) -> usize {
    let chunk = ptr.as_ptr().map_addr(|a| a & !CHUNK_MASK).cast::<Chunk>();
    // SAFETY: forwarded from the caller.
    let class = unsafe { ident(chunk, slot_of(ptr)) }.class as usize;
    CLASS_BYTES.get(class).map_or(0, |&bytes| bytes as usize)
}

/// Zeroes the small block at `ptr` (of `block_bytes`), which the program has just freed, but
/// for its canary, which stays for the slot's life (`canary.rs`).
///
/// # Safety
/// `ptr` is the start of a small block of a live chunk that nobody uses any more, and
/// `block_bytes` its class size.
#[inline(always)]
pub(crate) unsafe fn zero(ptr: NonNull<u8>, block_bytes: usize) {
    // SAFETY: forwarded from the caller: the block's bytes are ours to write.
    unsafe { ptr::write_bytes(ptr.as_ptr(), 0, block_bytes - CANARY_BYTES) };
}

/// Stops the process unless the small block at `ptr` (of `block_bytes`), about to be handed
/// out, is all zero but for its canary.
///
/// # Safety
/// `ptr` is the start of a small block of a live chunk that the caller owns, and
/// `block_bytes` its class size.
#[inline(always)]
pub(crate) unsafe fn check_still_zero(ptr: NonNull<u8>, block_bytes: usize) {
    let word_count = (block_bytes - CANARY_BYTES) / 8;
    // SAFETY: forwarded from the caller: blocks are multiples of 16 bytes, 16-aligned.
    let words = unsafe { core::slice::from_raw_parts(ptr.as_ptr().cast::<u64>(), word_count) };
    // One pass that ORs everything (the compiler vectorises it), no early exit: the common
    // case is a clean block, read in full anyway.
    if words.iter().fold(0, |acc, &word| acc | word) != 0 {
        write_after_free(ptr.as_ptr());
    }
}

#[cold]
#[inline(never)]
fn write_after_free(ptr: *mut u8) -> ! {
    heapkit_core::fatal(
        "heapkit-slab",
        "write after free: a freed block was written to before it was handed out again",
        ptr as usize,
    )
}

/// Zeroes the never-used blocks of a slab just made over a slot whose memory may hold
/// anything (reused, not from a zeroing source), so that they pass [`check_still_zero`].
pub(crate) fn zero_fresh_blocks(meta: &mut SlabMeta) {
    if meta.fresh_zeroed {
        return;
    }
    debug_assert!(meta.fresh == 0);
    let bytes = meta.capacity as usize * meta.block_bytes as usize;
    // SAFETY: the slab's blocks lie in its slot, which the slab owns; none is handed out yet.
    unsafe { ptr::write_bytes(meta.start, 0, bytes) };
    meta.fresh_zeroed = true;
}
