//! The bump partition: a tiny arena for init-time allocations (configuration, lookup tables,
//! the odd `Vec` a library insists on) carved from the region.
//!
//! It is lock-free: `top` and the live block count share one `AtomicU64`, updated with one
//! `compare_exchange`, so a `Region` stays `Sync`. Freeing the most recent block rolls `top`
//! back, and freeing the last live block resets the arena to empty (padding included), so
//! stack-like init code (build a temporary, drop it) reuses its bytes. Memory is never given
//! back to the OS before the region is dropped: that is the point of fixing it at startup.
//!
//! ```text
//!   base                         top                         base + capacity
//!   │ block │pad│ block │ block  │           free             │
//!   state word: [ live blocks : 24 bits | top offset : 40 bits ]
//! ```

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use heapkit_core::{AllocError, InvariantError};

/// Bits of the state word that hold `top`: the bump partition's size limit.
const TOP_BITS: u32 = 40;
/// The largest bump partition (1 TiB: it is meant to be small).
pub(crate) const BUMP_BYTES_MAX: usize = 1 << TOP_BITS;
/// The most live blocks at once (the rest of the state word).
pub(crate) const BUMP_BLOCKS_MAX: usize = (1 << (u64::BITS - TOP_BITS)) - 1;

const _: () = assert!(BUMP_BYTES_MAX <= crate::REGION_BYTES_MAX);

/// `top` and the live block count, packed so that both change in one atomic step.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Word {
    top_bytes: usize,
    live_blocks: usize,
}

impl Word {
    fn pack(self) -> u64 {
        debug_assert!(self.top_bytes <= BUMP_BYTES_MAX && self.live_blocks <= BUMP_BLOCKS_MAX);
        ((self.live_blocks as u64) << TOP_BITS) | self.top_bytes as u64
    }

    fn unpack(raw: u64) -> Word {
        Word {
            top_bytes: (raw & ((1 << TOP_BITS) - 1)) as usize,
            live_blocks: (raw >> TOP_BITS) as usize,
        }
    }
}

/// The arena's state; the memory is the region's.
#[derive(Debug)]
pub(crate) struct BumpArena {
    base: NonNull<u8>,
    capacity_bytes: usize,
    word: AtomicU64,
    /// Statistics only (not used for decisions), so they may lag the word under contention.
    live_bytes: AtomicUsize,
    peak_bytes: AtomicUsize,
}

impl BumpArena {
    /// An arena over `capacity_bytes` bytes at `base`.
    ///
    /// # Safety
    /// `base..base + capacity_bytes` is valid for reads and writes, and used by nothing else,
    /// for as long as the arena and the blocks it hands out live.
    pub(crate) unsafe fn new(base: NonNull<u8>, capacity_bytes: usize) -> Self {
        debug_assert!(capacity_bytes <= BUMP_BYTES_MAX);
        BumpArena {
            base,
            // Defensive: the layout refuses larger bump partitions.
            capacity_bytes: capacity_bytes.min(BUMP_BYTES_MAX),
            word: AtomicU64::new(0),
            live_bytes: AtomicUsize::new(0),
            peak_bytes: AtomicUsize::new(0),
        }
    }

    fn load(&self) -> Word {
        Word::unpack(self.word.load(Ordering::Relaxed))
    }

    /// Replaces `old` by `new` if the word still is `old`; otherwise returns the word now.
    fn exchange(&self, old: Word, new: Word) -> Result<(), Word> {
        self.word
            .compare_exchange_weak(old.pack(), new.pack(), Ordering::Relaxed, Ordering::Relaxed)
            .map(|_| ())
            .map_err(Word::unpack)
    }

    /// The offset of `ptr` from `base` when it lies inside the arena (end included).
    fn offset_of(&self, ptr: NonNull<u8>) -> Option<usize> {
        let offset = (ptr.as_ptr() as usize).checked_sub(self.base.as_ptr() as usize)?;
        (offset <= self.capacity_bytes).then_some(offset)
    }

    /// The offset at which a block of `layout` would start if `top` were `top_bytes`, and the
    /// offset just past it, or `None` when it does not fit.
    fn fit(&self, top_bytes: usize, layout: Layout) -> Option<(usize, usize)> {
        let base_addr = self.base.as_ptr() as usize;
        let start_addr = heapkit_core::align_up(base_addr.checked_add(top_bytes)?, layout.align())?;
        let start_bytes = start_addr - base_addr;
        let end_bytes = start_bytes.checked_add(layout.size())?;
        (end_bytes <= self.capacity_bytes).then_some((start_bytes, end_bytes))
    }

    fn block(&self, start_bytes: usize, len_bytes: usize) -> NonNull<[u8]> {
        debug_assert!(start_bytes + len_bytes <= self.capacity_bytes);
        // SAFETY: `start_bytes` is within the arena (checked by `fit`), so the pointer stays in
        // the allocation `base` points into and keeps its provenance.
        let ptr = unsafe { self.base.add(start_bytes) };
        NonNull::slice_from_raw_parts(ptr, len_bytes)
    }

    pub(crate) fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        debug_assert!(layout.size() > 0);
        let mut word = self.load();
        // Bounded in practice by contention: every failed exchange means another thread moved
        // the word.
        loop {
            let (start_bytes, end_bytes) = self.fit(word.top_bytes, layout).ok_or(AllocError)?;
            if word.live_blocks == BUMP_BLOCKS_MAX {
                return Err(AllocError);
            }
            let new = Word {
                top_bytes: end_bytes,
                live_blocks: word.live_blocks + 1,
            };
            match self.exchange(word, new) {
                Ok(()) => {
                    self.add_live_bytes(layout.size());
                    return Ok(self.block(start_bytes, layout.size()));
                }
                Err(now) => word = now,
            }
        }
    }

    fn add_live_bytes(&self, size_bytes: usize) {
        let live_bytes = self.live_bytes.fetch_add(size_bytes, Ordering::Relaxed) + size_bytes;
        self.peak_bytes.fetch_max(live_bytes, Ordering::Relaxed);
    }

    fn sub_live_bytes(&self, size_bytes: usize) {
        let before_bytes = self.live_bytes.fetch_sub(size_bytes, Ordering::Relaxed);
        debug_assert!(before_bytes >= size_bytes, "bump: freed more than was live");
    }

    /// Releases a block: rolls `top` back when it is the most recent one, and resets the arena
    /// when it was the last live one.
    ///
    /// # Safety
    /// `ptr` is a live block of this arena with `layout.size()` bytes.
    pub(crate) unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        let start_bytes = self.offset_of(ptr);
        debug_assert!(start_bytes.is_some(), "bump: foreign pointer freed");
        let Some(start_bytes) = start_bytes else {
            return;
        };
        let mut word = self.load();
        loop {
            debug_assert!(word.live_blocks > 0, "bump: freed a block that is not live");
            let live_blocks = word.live_blocks.saturating_sub(1);
            let top_bytes = if live_blocks == 0 {
                0
            } else if word.top_bytes == start_bytes + layout.size() {
                start_bytes
            } else {
                word.top_bytes
            };
            match self.exchange(
                word,
                Word {
                    top_bytes,
                    live_blocks,
                },
            ) {
                Ok(()) => break,
                Err(now) => word = now,
            }
        }
        self.sub_live_bytes(layout.size());
    }

    /// Resizes the block in place when possible: always when shrinking, and when growing the
    /// most recent block with room after it. `None` means "move it" (the caller copies).
    ///
    /// # Safety
    /// `ptr` is a live block of this arena with `old_layout.size()` bytes.
    pub(crate) unsafe fn resize_in_place(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Option<NonNull<[u8]>> {
        let start_bytes = self.offset_of(ptr)?;
        if !heapkit_core::is_aligned(ptr.as_ptr() as usize, new_layout.align()) {
            return None;
        }
        let old_end_bytes = start_bytes + old_layout.size();
        let new_end_bytes = start_bytes.checked_add(new_layout.size())?;
        if new_end_bytes > self.capacity_bytes {
            return None;
        }
        let mut word = self.load();
        loop {
            let is_last = word.top_bytes == old_end_bytes;
            if !is_last && new_end_bytes > old_end_bytes {
                return None;
            }
            if !is_last {
                // Shrinking a block in the middle: `top` stays, the tail is wasted.
                break;
            }
            let new = Word {
                top_bytes: new_end_bytes,
                ..word
            };
            match self.exchange(word, new) {
                Ok(()) => break,
                Err(now) => word = now,
            }
        }
        self.sub_live_bytes(old_layout.size());
        self.add_live_bytes(new_layout.size());
        Some(self.block(start_bytes, new_layout.size()))
    }

    pub(crate) fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    pub(crate) fn used_bytes(&self) -> usize {
        self.load().top_bytes
    }

    pub(crate) fn live_bytes(&self) -> usize {
        self.live_bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn live_blocks(&self) -> usize {
        self.load().live_blocks
    }

    pub(crate) fn peak_bytes(&self) -> usize {
        self.peak_bytes.load(Ordering::Relaxed)
    }

    /// Checks the arena's invariants. Exact when no other thread is using the arena.
    pub(crate) fn check(&self) -> Result<(), InvariantError> {
        let addr = self.base.as_ptr() as usize;
        let word = self.load();
        let (used_bytes, live_blocks) = (word.top_bytes, word.live_blocks);
        let live_bytes = self.live_bytes();
        if used_bytes > self.capacity_bytes {
            return Err(InvariantError::new(
                "bump: top past the partition's end",
                addr,
            ));
        }
        if live_bytes > used_bytes {
            return Err(InvariantError::new(
                "bump: more live bytes than used bytes",
                addr,
            ));
        }
        if live_blocks == 0 && (live_bytes != 0 || used_bytes != 0) {
            return Err(InvariantError::new(
                "bump: bytes used without live blocks",
                addr,
            ));
        }
        if live_blocks > live_bytes {
            return Err(InvariantError::new(
                "bump: a live block of zero bytes",
                addr,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena_over(buffer: &mut [u64]) -> BumpArena {
        let base = NonNull::new(buffer.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: the buffer outlives the arena in each test and nothing else touches it.
        unsafe { BumpArena::new(base, buffer.len() * 8) }
    }

    #[test]
    fn last_block_rolls_back_and_grows_in_place() {
        let mut buffer = [0u64; 32];
        let arena = arena_over(&mut buffer);
        let small = Layout::from_size_align(10, 8).unwrap();
        let a = arena.allocate(small).unwrap();
        let b = arena.allocate(small).unwrap();
        assert_eq!(arena.used_bytes(), 26);
        let bigger = Layout::from_size_align(40, 8).unwrap();
        // SAFETY: `b` is live with 10 bytes.
        let b2 = unsafe { arena.resize_in_place(b.cast(), small, bigger) }.unwrap();
        assert_eq!(b2.cast::<u8>(), b.cast::<u8>());
        // `a` is not the last block: it cannot grow in place, but it can shrink.
        // SAFETY: `a` is live with 10 bytes.
        assert!(unsafe { arena.resize_in_place(a.cast(), small, bigger) }.is_none());
        // SAFETY: `b2` is live with 40 bytes, `a` with 10.
        unsafe {
            arena.deallocate(b2.cast(), bigger);
            assert_eq!(arena.used_bytes(), 16);
            arena.deallocate(a.cast(), small);
        }
        // `a` ended at 10, not at `top` (16: `b` was aligned), but it was the last live block,
        // so the whole arena is free again.
        assert_eq!(arena.used_bytes(), 0);
        assert_eq!((arena.live_bytes(), arena.live_blocks()), (0, 0));
        assert_eq!(arena.peak_bytes(), 50);
        arena.check().unwrap();
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let mut buffer = [0u64; 4];
        let arena = arena_over(&mut buffer);
        assert!(arena
            .allocate(Layout::from_size_align(33, 1).unwrap())
            .is_err());
        assert!(arena
            .allocate(Layout::from_size_align(32, 1).unwrap())
            .is_ok());
        assert!(arena
            .allocate(Layout::from_size_align(1, 1).unwrap())
            .is_err());
        assert!(arena
            .allocate(Layout::from_size_align(1, 1 << 40).unwrap())
            .is_err());
        arena.check().unwrap();
    }
}
