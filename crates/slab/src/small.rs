//! The small path: blocks of a size class, taken from and returned to the class's slabs under
//! the class lock, one block at a time or in batches (what thread caches use).
//!
//! Slab life cycle within a class:
//!
//! ```text
//!   chunk slot ──refill──► listed (has room) ──last block taken──► full (on no list)
//!        ▲                    │    ▲                                   │
//!        │                    │    └────────── a block freed ──────────┘
//!        └── release ◄── empty, and another slab of the class is listed
//! ```
//!
//! The one empty slab a class keeps (the only listed one) makes alloc/free pairs on an
//! otherwise empty class free of chunk-lock traffic.

use crate::bad_input::report;
use crate::chunk::{meta_ptr, slot_start, Chunk, SlotUse};
use crate::classes::CLASS_COUNT;
use crate::geometry::SLOT_BYTES;
use crate::heap::{Block, ClassList, Slab};
use crate::peak::LiveBytes;
use crate::slab_meta::{SlabMeta, SECURE};
use core::ptr::NonNull;
use heapkit_core::{AllocError, PageSource};

impl<P: PageSource> Slab<P> {
    /// Takes one block of `class`; returns it and whether it is known to read as zero.
    #[inline(always)]
    pub(crate) fn alloc_small(&self, class: usize) -> Result<(NonNull<u8>, bool), AllocError> {
        debug_assert!(class < CLASS_COUNT);
        let mut list = self.classes[class].lock();
        let slab = if list.head.is_null() {
            self.refill(class, &mut list)?
        } else {
            list.head
        };
        // SAFETY: `slab` is listed (it has room) and we hold its class lock.
        Ok(unsafe { take(&mut list, slab, &self.live) })
    }

    /// Gets a fresh slab for `class` from the chunks and lists it.
    #[cold]
    #[inline(never)]
    fn refill(&self, class: usize, list: &mut ClassList) -> Result<*mut SlabMeta, AllocError> {
        let owner_id = self.owner_id();
        let acquired = {
            let mut chunks = self.chunks.lock();
            let acquired = chunks.acquire(&self.pages, 1, SlotUse::Small(class as u8), owner_id);
            if acquired.is_err() {
                chunks.failures += 1;
            }
            // After the acquire, which prefers a dirty slot: reuse beats purge and refault.
            chunks.notice_expired(&self.pages, self.purge_policy(usize::MAX));
            acquired
        };
        let (chunk, slot, zeroed) = acquired?;
        // SAFETY: the slot was just acquired for this class, so its metadata is ours to write
        // (under the class lock, which the caller holds).
        unsafe {
            let slab = meta_ptr(chunk, slot);
            SlabMeta::init(slab, slot_start(chunk, slot), class, zeroed);
            if SECURE {
                self.guard_slab(&mut *slab);
            }
            list.slabs += 1;
            list.link_front(slab);
            Ok(slab)
        }
    }

    /// With `secure`: makes the slot's last page a guard page, so that an overflow off the end
    /// of the slab's last block faults instead of reaching the next slot. The slab then holds
    /// fewer blocks. A source that cannot protect pages leaves the slab unguarded.
    #[cold]
    fn guard_slab(&self, meta: &mut SlabMeta) {
        let page_bytes = self.pages.page_size();
        if page_bytes >= SLOT_BYTES {
            return;
        }
        let guard_offset = SLOT_BYTES - page_bytes;
        // SAFETY: the slot is this fresh slab's, SLOT_BYTES long and page-aligned; nothing in
        // its last page is in use (no block has been handed out).
        let guarded = unsafe {
            let guard = NonNull::new_unchecked(meta.start.add(guard_offset));
            self.pages.protect(guard, page_bytes, false).is_ok()
        };
        if guarded {
            meta.guarded = true;
            meta.capacity = meta.capacity.min(guard_offset as u32 / meta.block_bytes);
        }
    }

    /// Returns a small block to its slab.
    ///
    /// # Safety
    /// `locate` found `ptr` in slot `slot` of `chunk`, a slab of `class`.
    #[inline(always)]
    pub(crate) unsafe fn free_small(
        &self,
        chunk: *mut Chunk,
        slot: usize,
        class: usize,
        ptr: NonNull<u8>,
    ) {
        let mut list = self.classes[class].lock();
        // SAFETY: forwarded from the caller; the class lock is held.
        unsafe { self.give_back(&mut list, meta_ptr(chunk, slot), ptr) };
    }

    /// Pushes `ptr` onto `slab`, relisting a full slab and releasing an empty one that is not
    /// the class's last listed slab.
    ///
    /// # Safety
    /// `slab` is a live slab of the class whose lock `list` is; `ptr` points into it.
    #[inline(always)]
    unsafe fn give_back(&self, list: &mut ClassList, slab: *mut SlabMeta, ptr: NonNull<u8>) {
        // SAFETY: forwarded from the caller; the class lock gives exclusive access to the slab.
        let meta = unsafe { &mut *slab };
        if let Err(what) = meta.validate_free(ptr) {
            report(what, ptr.as_ptr() as usize);
            return;
        }
        // SAFETY: validated as a live block of this slab.
        unsafe { meta.push(ptr) };
        list.live_blocks -= 1;
        list.deallocations += 1;
        if list.live_blocks < list.peak.fold_down_blocks {
            let live_blocks = list.live_blocks;
            list.peak
                .fold(live_blocks, meta.block_bytes as usize, &self.live);
        }
        if !meta.listed {
            // SAFETY: a live, unlisted slab of this class.
            unsafe { list.link_front(slab) };
        } else if meta.used == 0 && list.listed > 1 {
            // SAFETY: listed, empty, and not the last slab with room: give its slot back.
            unsafe {
                list.unlink(slab);
                list.slabs -= 1;
                self.release_slab(slab, usize::MAX);
            }
        }
    }

    /// [`BatchAllocator::allocate_batch`](heapkit_core::BatchAllocator::allocate_batch): one
    /// lock for the whole batch.
    pub(crate) fn alloc_batch(&self, class: usize, out: &mut [*mut u8]) -> usize {
        if class >= CLASS_COUNT {
            return 0;
        }
        let mut list = self.classes[class].lock();
        let mut filled = 0;
        while filled < out.len() {
            let slab = if list.head.is_null() {
                match self.refill(class, &mut list) {
                    Ok(slab) => slab,
                    Err(AllocError) => break,
                }
            } else {
                list.head
            };
            // Drain this slab before looking at the list again.
            loop {
                // SAFETY: `slab` is listed, so it has room; the class lock is held.
                let (block, _) = unsafe { take(&mut list, slab, &self.live) };
                out[filled] = block.as_ptr();
                filled += 1;
                // SAFETY: as above (reading the flag `take` maintains).
                if filled == out.len() || unsafe { !(*slab).listed } {
                    break;
                }
            }
        }
        filled
    }

    /// [`BatchAllocator::deallocate_batch`](heapkit_core::BatchAllocator::deallocate_batch):
    /// one lock for the whole batch.
    ///
    /// # Safety
    /// Every pointer is a live block of this slab in `class`, none twice.
    pub(crate) unsafe fn free_batch(&self, class: usize, blocks: &[*mut u8]) {
        if class >= CLASS_COUNT {
            report("batch free for a class that does not exist", class);
            return;
        }
        let mut list = self.classes[class].lock();
        for &raw in blocks {
            let Some(ptr) = NonNull::new(raw) else {
                report("batch free of a null pointer", 0);
                continue;
            };
            // SAFETY: the caller promises a live block of this slab.
            match unsafe { self.locate(ptr) } {
                Ok(Block::Small {
                    chunk,
                    slot,
                    class: found,
                }) if found == class => {
                    // SAFETY: found in this class's slab; its lock is held.
                    unsafe { self.give_back(&mut list, meta_ptr(chunk, slot), ptr) }
                }
                Ok(_) => report("batch free of a block of another class", raw as usize),
                Err(what) => report(what, raw as usize),
            }
        }
    }
}

/// Pops a block from a listed slab and unlists it when it becomes full; counts it in the
/// class's figures (and folds the class's drift into `live` when due).
///
/// # Safety
/// `slab` is listed in `list` (so it has room) and the class lock is held.
#[inline(always)]
unsafe fn take(list: &mut ClassList, slab: *mut SlabMeta, live: &LiveBytes) -> (NonNull<u8>, bool) {
    // SAFETY: forwarded from the caller.
    let meta = unsafe { &mut *slab };
    // SAFETY: listed slabs have room.
    let taken = unsafe { meta.pop() };
    list.live_blocks += 1;
    if list.live_blocks > list.peak.high_blocks {
        let live_blocks = list.live_blocks;
        list.peak
            .new_high(live_blocks, meta.block_bytes as usize, live);
    }
    if !meta.has_room() {
        // SAFETY: listed in this class.
        unsafe { list.unlink(slab) };
    }
    taken
}
