//! Guard pages of a chunk's slots (`secure`; `hardened` adds one before each slab): the last
//! page of every small slab's slot is made `PROT_NONE`, so running off a slab's end faults
//! instead of reaching the next slot. A guard outlives its slab (the next slab in the slot
//! reuses it: one `mprotect`, not two per slab); a large span lifts the guards inside it, and
//! a dead chunk's guards are lifted before its run goes back to the source.

#[cfg(feature = "hardened")]
use crate::chunk::HEADER_SLOTS;
use crate::chunk::{run_mask, slot_start, state_of, Chunk};
use crate::geometry::{CHUNK_BYTES, SLOT_BYTES};
use core::ptr::NonNull;
use heapkit_core::{AllocError, PageSource};

/// Gives a dead chunk's run back to the source, its guard pages lifted first: a source that
/// keeps unmapped runs for reuse (`heapkit_pages::Retained`) may hand the range out again as
/// a huge block or a chunk, which must be accessible throughout. A guard that cannot be lifted
/// (the kernel refused `mprotect`) keeps the range out of the source: its address space leaks
/// rather than a later block faulting.
///
/// # Safety
/// `chunk` is a chunk mapped by `map_chunk`, off every list, and nothing in it is used.
pub(crate) unsafe fn unmap_chunk_run<P: PageSource>(pages: &P, chunk: *mut Chunk) {
    // SAFETY: forwarded from the caller: the header is still mapped.
    let guarded = unsafe { state_of(chunk).guard_mask } != 0;
    // SAFETY: the chunk is page-aligned and CHUNK_BYTES long, and nothing in it is in use.
    unsafe {
        let run = NonNull::new_unchecked(chunk.cast::<u8>());
        if guarded && pages.protect(run, CHUNK_BYTES, true).is_err() {
            return;
        }
        pages.unmap(run, CHUNK_BYTES);
    }
}

/// The size of a slot's guard page: the source's page, or none when a page is as big as a slot.
fn guard_bytes<P: PageSource>(pages: &P) -> Option<usize> {
    let page_bytes = pages.page_size();
    (page_bytes < SLOT_BYTES).then_some(page_bytes)
}

/// With `secure`: makes sure slot `slot` (just acquired for a small slab) ends in a guard page,
/// so that an overflow off the end of its last block faults instead of reaching the next slot.
/// Reuses the guard a previous slab left; otherwise protects the page. Returns the guard's
/// size, or `None` when the source cannot protect pages (the slab then goes unguarded).
///
/// # Safety
/// `chunk` is live, the chunk lock is held, and the slot is in use by a slab that has not
/// handed out a block yet.
pub(crate) unsafe fn guard_slot<P: PageSource>(
    pages: &P,
    chunk: *mut Chunk,
    slot: usize,
) -> Option<usize> {
    // SAFETY: forwarded from the caller: nothing in the slot's last page is in use.
    unsafe { guard_last_page(pages, chunk, slot) }
}

/// With `hardened`: makes sure the slot before slot `slot` (just acquired for a small slab)
/// ends in a guard page too — the header's last slot (the `secure` record's, whose last
/// 12 KiB no mark uses), or a free slot that was never a slab — so
/// that an underflow of the slab's first block, which has no block (and no canary) before it
/// in its slab, faults at the write. Every other slot before a slab is a small slab, guarded
/// already (a `hardened` chunk holds no large spans).
///
/// # Safety
/// `chunk` is live, the chunk lock is held, and slot `slot` is a small slab of it that has not
/// handed out a block yet.
#[cfg(feature = "hardened")]
pub(crate) unsafe fn guard_before_slot<P: PageSource>(pages: &P, chunk: *mut Chunk, slot: usize) {
    let Some(page_bytes) = guard_bytes(pages) else {
        return;
    };
    // The header's last slot ends in bytes of the record that no mark uses (checked here for
    // the source's page size).
    if slot < HEADER_SLOTS
        || (slot == HEADER_SLOTS && page_bytes > crate::handed::RECORD_UNUSED_TAIL_BYTES)
    {
        return;
    }
    // SAFETY: forwarded from the caller. The slot before is the header's last (whose last page
    // holds no mark, tested above), a small slab (guarded already: nothing is protected
    // again) or a free slot (nothing in it is used; the guard stays for the next slab there,
    // as a freed slab's does).
    unsafe { guard_last_page(pages, chunk, slot - 1) };
}

/// Protects the last page of slot `slot` unless its guard bit says it is protected; the
/// guard's size, or `None` when the source cannot protect pages.
///
/// # Safety
/// `chunk` is live, the chunk lock is held, and nothing in the slot's last page is in use.
unsafe fn guard_last_page<P: PageSource>(
    pages: &P,
    chunk: *mut Chunk,
    slot: usize,
) -> Option<usize> {
    let page_bytes = guard_bytes(pages)?;
    // SAFETY: forwarded from the caller.
    let state = unsafe { state_of(chunk) };
    let bit = 1u64 << slot;
    if state.guard_mask & bit != 0 {
        return Some(page_bytes);
    }
    // SAFETY: the slot is SLOT_BYTES long and page-aligned inside a live chunk; nothing in its
    // last page is in use (the caller's promise).
    let protected = unsafe {
        let guard = NonNull::new_unchecked(slot_start(chunk, slot).add(SLOT_BYTES - page_bytes));
        pages.protect(guard, page_bytes, false)
    };
    protected.ok()?;
    state.guard_mask |= bit;
    Some(page_bytes)
}

/// Lifts the guard pages inside `count` slots from `first` (one `mprotect` over the run) before
/// a large span uses them. Fails, changing nothing, when the kernel refuses.
///
/// # Safety
/// `chunk` is live, the chunk lock is held, and the slots are free.
pub(crate) unsafe fn unguard_run<P: PageSource>(
    pages: &P,
    chunk: *mut Chunk,
    first: usize,
    count: usize,
) -> Result<(), AllocError> {
    // SAFETY: forwarded from the caller.
    let state = unsafe { state_of(chunk) };
    let run = run_mask(first, count);
    if state.guard_mask & run == 0 {
        return Ok(());
    }
    // SAFETY: the run is free slots of a live chunk, page-aligned at both ends.
    unsafe {
        let start = NonNull::new_unchecked(slot_start(chunk, first));
        pages.protect(start, count * SLOT_BYTES, true)?;
    }
    state.guard_mask &= !run;
    Ok(())
}
