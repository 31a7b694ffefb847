//! Freeing many blocks at once: `reset`, checkpoints and `rewind`, `scope`, and the bump
//! pointer moves they make.
//!
//! A child module of `arena` (declared there) so that it moves the arena's pointers directly.

use super::Arena;
use crate::chunk::{self, ChunkHeader};
use crate::{ChunkSource, MAX_CHUNKS, MIN_ALIGN_BYTES};
use core::ptr::{self, NonNull};
use heapkit_core::is_aligned;

/// A saved allocation state: [`Arena::rewind`] frees everything allocated after it.
///
/// It borrows nothing, so allocating after taking it is allowed; the `&mut self` that `rewind`
/// takes is what makes sure no reference to those allocations is still alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    chunk: Option<NonNull<ChunkHeader>>,
    ptr: *mut u8,
}

impl<S: ChunkSource> Arena<S> {
    /// Frees every allocation. The chunks stay (up to the
    /// [retain limit](Self::set_retain_limit)): the largest becomes the current chunk and the
    /// others wait, largest first, to serve the next round's chunk requests, so a loop of
    /// rounds of the same size neither maps nor faults once warm.
    ///
    /// Values in the arena are **not dropped**. `&mut self` proves no reference into the arena
    /// is alive.
    pub fn reset(&mut self) {
        self.drain_chunks(|arena, header| {
            // SAFETY: a live chunk, unlinked from the list; `&mut self` proves nothing in it
            // is used again.
            unsafe { arena.push_spare(header) }
        });
        self.clear_bump_pointer();
        self.trim_spares(self.retain_limit_bytes.get());
        if let Some(largest) = self.pop_spare() {
            self.install(largest, false);
        }
    }

    /// Unlinks every chunk of the list, newest first, and hands each to `take` (which moves or
    /// frees it: its link has been read already). A bounded walk: at most `MAX_CHUNKS`.
    fn drain_chunks(&mut self, mut take: impl FnMut(&mut Self, NonNull<ChunkHeader>)) {
        let mut next = self.current.take();
        let mut walked: usize = 0;
        while let Some(header) = next {
            walked += 1;
            debug_assert!(walked <= MAX_CHUNKS);
            // SAFETY: `header` is a live chunk of the list, which only `&mut self` reaches.
            next = unsafe { (*header.as_ptr()).prev };
            take(self, header);
        }
        self.chunk_count.set(0);
    }

    /// Returns every chunk, spares included, to the source.
    pub(super) fn release_all(&mut self) {
        self.drain_chunks(|arena, header| {
            // SAFETY: a live chunk, unlinked from the list; `&mut self` proves nothing in it
            // is used again.
            unsafe { arena.release(header) }
        });
        while let Some(spare) = self.pop_spare() {
            // SAFETY: a live spare, just unlinked.
            unsafe { self.release(spare) };
        }
        self.clear_bump_pointer();
        debug_assert_eq!(self.chunk_bytes.get(), 0);
    }

    /// The current allocation state, to [`rewind`](Self::rewind) to later.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            chunk: self.current.get(),
            ptr: self.ptr.get(),
        }
    }

    /// Frees everything allocated after `checkpoint` (values are not dropped). Chunks taken
    /// since become spares for the next chunk requests (up to the
    /// [retain limit](Self::set_retain_limit)), so a scope in a loop maps nothing once warm.
    ///
    /// Any checkpoint is harmless: one from another arena, or one that a [`reset`](Self::reset)
    /// made stale, leaves the arena empty (every chunk released or kept as a spare).
    pub fn rewind(&mut self, checkpoint: Checkpoint) {
        // SAFETY: `&mut self` proves that no reference into the arena is alive.
        unsafe { self.rewind_unchecked(checkpoint) }
    }

    /// [`rewind`](Self::rewind) through a shared reference.
    ///
    /// # Safety
    /// No block allocated after `checkpoint` is used afterwards.
    pub(crate) unsafe fn rewind_unchecked(&self, checkpoint: Checkpoint) {
        let entry_chunk = self.current.get();
        let mut walked: usize = 0;
        while self.current.get() != checkpoint.chunk {
            let Some(header) = self.current.get() else {
                // The checkpoint's chunk is not ours (stale or foreign): we are empty now.
                self.clear_bump_pointer();
                return;
            };
            walked += 1;
            debug_assert!(walked <= MAX_CHUNKS);
            // SAFETY: `header` is the live current chunk; the caller promises nothing in it is
            // used again, and it is unlinked before being released.
            unsafe {
                let prev = (*header.as_ptr()).prev;
                self.current.set(prev);
                self.chunk_count.set(self.chunk_count.get() - 1);
                self.retire_to_spare(header);
            }
        }
        let Some(header) = checkpoint.chunk else {
            self.clear_bump_pointer();
            return;
        };
        // SAFETY: `header` is the live current chunk (the loop stopped on it).
        unsafe {
            let ptr_in_chunk = chunk::contains(header, checkpoint.ptr as usize)
                && is_aligned(checkpoint.ptr as usize, MIN_ALIGN_BYTES);
            // A chunk at a reused address with a different length would not contain a stale
            // pointer; rewinding to its start is always safe.
            let ptr = if ptr_in_chunk {
                chunk::data_start(header)
                    .add(checkpoint.ptr as usize - chunk::data_start(header) as usize)
            } else {
                chunk::data_start(header)
            };
            if Some(header) == entry_chunk {
                // Still the chunk we started in: what lies above the old `ptr` stays known.
                self.move_ptr_back(ptr);
            } else {
                // A retired chunk again: where it was filled to is not worth tracking.
                self.ptr.set(ptr);
                self.zero_from.set(chunk::end(header));
            }
            self.end.set(chunk::end(header));
            (*header.as_ptr()).filled_bytes = 0;
        }
        // Recounted rather than saved in the checkpoint: a stale checkpoint must not be able
        // to make the figures lie. The walk is over the chunks older than the checkpoint's,
        // a few dozen at most.
        self.retired_used_bytes.set(self.recount_retired_bytes());
    }

    /// Sum of the fill levels of the chunks older than the current one.
    fn recount_retired_bytes(&self) -> usize {
        let mut sum_bytes: usize = 0;
        let mut next = self
            .current
            .get()
            // SAFETY: `current` and its `prev` chain are live chunks.
            .and_then(|c| unsafe { (*c.as_ptr()).prev });
        while let Some(header) = next {
            // SAFETY: as above.
            unsafe {
                sum_bytes += (*header.as_ptr()).filled_bytes;
                next = (*header.as_ptr()).prev;
            }
        }
        sum_bytes
    }

    /// Runs `f` with a [`Scope`](crate::Scope): everything allocated through it is freed when
    /// `f` returns, and the borrow checker makes sure no reference to it escapes.
    ///
    /// ```
    /// let mut arena = heapkit_bump::Arena::new();
    /// let total = arena.scope(|scratch| {
    ///     let squares = scratch.alloc_slice_fill_with(100, |i| i * i);
    ///     squares.iter().sum::<usize>()
    /// });
    /// assert_eq!(total, 328_350);
    /// assert_eq!(arena.used_bytes(), 0);
    /// ```
    pub fn scope<R>(&mut self, f: impl for<'s> FnOnce(&mut crate::Scope<'s, S>) -> R) -> R {
        let checkpoint = self.checkpoint();
        let result = f(&mut crate::Scope::new(self));
        self.rewind(checkpoint);
        result
    }

    /// Moves the bump pointer back to `new_ptr` (in the current chunk); the bytes it moves
    /// back over were handed out, so they no longer count as zero. (A rewind to a checkpoint
    /// above a freed last block moves it forward instead, over bytes handed out before: those
    /// end up below `ptr`, where nothing is claimed, so the rule holds either way.)
    #[inline(always)]
    pub(super) fn move_ptr_back(&self, new_ptr: *mut u8) {
        let old_ptr = self.ptr.get();
        if self.zero_from.get() < old_ptr {
            self.zero_from.set(old_ptr);
        }
        self.ptr.set(new_ptr);
    }

    /// No current chunk: the state of an empty arena.
    fn clear_bump_pointer(&self) {
        self.ptr.set(ptr::null_mut());
        self.end.set(ptr::null_mut());
        self.zero_from.set(ptr::null_mut());
        self.retired_used_bytes.set(0);
    }
}
