//! The large path: objects above the small maximum (or too aligned for any class).
//!
//! - up to [`LARGE_MAX_BYTES`]: a *span* of whole 64 KiB slots in a chunk, under the chunk
//!   lock; the head slot's ident records the span's length, so `free` needs no size. A span
//!   can grow in place into free slots after it and shrinks in place by releasing its tail.
//! - above: a *huge* block in its own mapping (see `huge.rs`).

use crate::bad_input::report;
use crate::chunk::{
    ident, kind, run_mask, set_ident, slot_start, state_of, Chunk, SlotIdent, SlotUse,
    ALL_SLOTS_MASK,
};
use crate::geometry::{LARGE_MAX_BYTES, RETAINED_EMPTY_CHUNKS, SLOTS_PER_CHUNK, SLOT_BYTES};
use crate::heap::Slab;
use crate::slot_guard::unguard_run;
use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_core::{AllocError, PageSource};

/// Slots needed for `size_bytes`.
pub(crate) const fn span_slots(size_bytes: usize) -> usize {
    size_bytes.div_ceil(SLOT_BYTES)
}

impl<P: PageSource> Slab<P> {
    /// Serves a layout no small class can; returns the block, its usable bytes and whether it
    /// reads as zero.
    #[cold]
    pub(crate) fn alloc_large(
        &self,
        layout: Layout,
    ) -> Result<(NonNull<u8>, usize, bool), AllocError> {
        // `hardened`: every large block is huge, so that it sits between guard pages and goes
        // through the huge quarantine (huge.rs, huge_quarantine.rs).
        if !cfg!(feature = "hardened")
            && layout.size() <= LARGE_MAX_BYTES
            && layout.align() <= SLOT_BYTES
        {
            self.alloc_span(span_slots(layout.size()))
        } else {
            self.alloc_huge(layout)
        }
    }

    fn alloc_span(&self, slots: usize) -> Result<(NonNull<u8>, usize, bool), AllocError> {
        let owner_id = self.owner_id();
        let mut chunks = self.chunks.lock();
        match chunks.acquire(&self.pages, slots, SlotUse::Large, owner_id) {
            Ok((chunk, first, zeroed)) => {
                chunks.notice_expired(&self.pages, self.purge_policy(usize::MAX));
                chunks.large_count += 1;
                chunks.large_slots += slots;
                self.live.grow(slots * SLOT_BYTES);
                // SAFETY: a slot start is inside a live chunk, hence non-null.
                let block = unsafe { NonNull::new_unchecked(slot_start(chunk, first)) };
                Ok((block, slots * SLOT_BYTES, zeroed))
            }
            Err(e) => {
                chunks.failures += 1;
                Err(e)
            }
        }
    }

    /// Frees the span whose head is slot `first` of `chunk`.
    ///
    /// # Safety
    /// `locate` found a large head there.
    pub(crate) unsafe fn free_span(&self, chunk: *mut Chunk, first: usize) {
        let mut chunks = self.chunks.lock();
        // Re-read under the lock: two racing frees of one span must not both release it.
        // SAFETY: a live chunk and an in-range slot (the caller's promise).
        let id = unsafe { ident(chunk, first) };
        if id.kind != kind::LARGE_HEAD {
            drop(chunks);
            report(
                "double free of a large block",
                slot_start(chunk, first) as usize,
            );
            return;
        }
        let slots = id.span_slots as usize;
        chunks.large_count -= 1;
        chunks.large_slots -= slots;
        self.live.shrink(slots * SLOT_BYTES);
        let policy = self.purge_policy(usize::MAX);
        // SAFETY: the span's slots are in use by this block, which is dead now.
        unsafe {
            chunks.release(
                &self.pages,
                chunk,
                first,
                slots,
                policy,
                RETAINED_EMPTY_CHUNKS,
            )
        };
    }

    /// Resizes a span in place to `new_slots`: shrinking releases its tail, growing claims the
    /// free slots right after it. Returns whether the span now has `new_slots` slots.
    ///
    /// # Safety
    /// Slot `first` of `chunk` is the head of a live span (the caller owns its block).
    pub(crate) unsafe fn resize_span(
        &self,
        chunk: *mut Chunk,
        first: usize,
        new_slots: usize,
    ) -> bool {
        debug_assert!(new_slots >= 1);
        let mut chunks = self.chunks.lock();
        // SAFETY: forwarded from the caller.
        let old_slots = unsafe { ident(chunk, first) }.span_slots as usize;
        if new_slots == old_slots {
            return true;
        }
        if new_slots < old_slots {
            let policy = self.purge_policy(usize::MAX);
            // SAFETY: the head stays (so the chunk stays live and non-empty); the tail slots
            // belong to the span and the caller gave them up by shrinking.
            unsafe {
                set_ident(chunk, first, SlotIdent::large_head(new_slots as u16));
                let tail = first + new_slots;
                let tail_count = old_slots - new_slots;
                chunks.large_slots -= tail_count;
                self.live.shrink(tail_count * SLOT_BYTES);
                chunks.release(
                    &self.pages,
                    chunk,
                    tail,
                    tail_count,
                    policy,
                    RETAINED_EMPTY_CHUNKS,
                );
            }
            return true;
        }
        let extra = new_slots - old_slots;
        let after = first + old_slots;
        if after + extra > SLOTS_PER_CHUNK {
            return false;
        }
        // SAFETY: a live chunk; the chunk lock is held.
        let state = unsafe { state_of(chunk) };
        let run = run_mask(after, extra);
        if state.used_mask & run != 0 {
            return false;
        }
        // SAFETY: a live chunk, the chunk lock held, and the run is free (checked above).
        if unsafe { unguard_run(&self.pages, chunk, after, extra) }.is_err() {
            return false;
        }
        // (`unguard_run` takes its own view of the state: re-derive ours after it.)
        // SAFETY: as above.
        let state = unsafe { state_of(chunk) };
        chunks.dirty_slots -= (state.dirty_mask & run).count_ones() as usize;
        state.used_mask |= run;
        state.dirty_mask &= !run;
        state.zero_mask &= !run;
        let now_full = state.used_mask == ALL_SLOTS_MASK;
        // SAFETY: the new slots were free, so no block lives in them; the head is ours.
        unsafe {
            for slot in after..after + extra {
                set_ident(chunk, slot, SlotIdent::large_tail((slot - first) as u16));
            }
            set_ident(chunk, first, SlotIdent::large_head(new_slots as u16));
        }
        chunks.large_slots += extra;
        self.live.grow(extra * SLOT_BYTES);
        if now_full {
            chunks.move_to_back(chunk);
        }
        true
    }
}
