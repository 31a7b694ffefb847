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
use crate::slab_meta::{SlabMeta, CHECKS, SECURE};
use crate::slot_guard::guard_slot;
use core::ptr::NonNull;
use heapkit_core::secure::Secrets;
use heapkit_core::{AllocError, PageSource};

/// What [`Slab::give_back`] did with a block.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum GivenBack {
    /// The block is on its slab's free list (or was reported and ignored); the slab lives on.
    Kept,
    /// The block emptied its slab, whose slot went back to the chunk: the slab is gone.
    SlabReleased,
}

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

    /// Gets a fresh slab for `class` from the chunks and lists it; when the source is out of
    /// memory, once more after the huge quarantine gave its blocks back.
    #[cold]
    #[inline(never)]
    fn refill(&self, class: usize, list: &mut ClassList) -> Result<*mut SlabMeta, AllocError> {
        self.refill_once(class, list).or_else(|e| {
            if self.empty_huge_quarantine_for_retry() {
                self.refill_once(class, list)
            } else {
                Err(e)
            }
        })
    }

    fn refill_once(&self, class: usize, list: &mut ClassList) -> Result<*mut SlabMeta, AllocError> {
        let owner_id = self.owner_id();
        let (acquired, guard_bytes) = {
            let mut chunks = self.chunks.lock();
            let acquired = chunks.acquire(&self.pages, 1, SlotUse::Small(class as u8), owner_id);
            let guard_bytes = match acquired {
                // SAFETY: the slot was just acquired (no block handed out); lock held.
                Ok((chunk, slot, _)) if SECURE => unsafe {
                    #[cfg(feature = "hardened")]
                    crate::slot_guard::guard_before_slot(&self.pages, chunk, slot);
                    guard_slot(&self.pages, chunk, slot)
                },
                Ok(_) => None,
                Err(_) => {
                    chunks.failures += 1;
                    None
                }
            };
            // After the acquire, which prefers a dirty slot: reuse beats purge and refault.
            chunks.notice_expired(&self.pages, self.purge_policy(usize::MAX));
            (acquired, guard_bytes)
        };
        let (chunk, slot, zeroed) = acquired?;
        // SAFETY: the slot was just acquired for this class, so its metadata is ours to write
        // (under the class lock, which the caller holds).
        unsafe {
            let slab = meta_ptr(chunk, slot);
            SlabMeta::init(slab, slot_start(chunk, slot), class, zeroed);
            #[cfg(feature = "secure")]
            crate::handed::clear_slot(chunk, slot);
            if let Some(guard_bytes) = guard_bytes {
                (*slab).exclude_guard(guard_bytes);
            }
            // After the guard is excluded: the guard page is not the slab's to write.
            #[cfg(feature = "hardened")]
            crate::scrub::zero_fresh_blocks(&mut *slab);
            list.slabs += 1;
            list.link_front(slab);
            Ok(slab)
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
        let secrets = Secrets::read_if(SECURE);
        // SAFETY: forwarded from the caller; the class lock is held.
        unsafe { self.give_back(&mut list, meta_ptr(chunk, slot), ptr, secrets) };
    }

    /// Pushes `ptr` onto `slab`, relisting a full slab and releasing an empty one that is not
    /// the class's last listed slab. `secrets` is [`Secrets::read_if`]`(SECURE)`.
    ///
    /// # Safety
    /// `slab` is a live slab of the class whose lock `list` is; `ptr` points into it.
    #[inline(always)]
    unsafe fn give_back(
        &self,
        list: &mut ClassList,
        slab: *mut SlabMeta,
        ptr: NonNull<u8>,
        secrets: Option<Secrets>,
    ) -> GivenBack {
        // SAFETY: forwarded from the caller; the class lock gives exclusive access to the slab.
        let meta = unsafe { &mut *slab };
        // With `CHECKS`, `live_index` below is the exact test and covers this cheap one (a
        // block of a slab with no live block, or the list's head, is not live): one test per
        // block, not two, on a batch free.
        if !CHECKS {
            if let Err(what) = meta.validate_free(ptr) {
                report(what, ptr.as_ptr() as usize);
                return GivenBack::Kept;
            }
        }
        let index = if CHECKS {
            match meta.live_index(ptr) {
                Ok(index) => index,
                Err(what) => {
                    report(what, ptr.as_ptr() as usize);
                    return GivenBack::Kept;
                }
            }
        } else {
            0
        };
        // SAFETY: validated as a live block of this slab.
        unsafe { meta.push(ptr, index, secrets) };
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
            return GivenBack::SlabReleased;
        }
        GivenBack::Kept
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
            // SAFETY: `slab` is listed and the class lock is held.
            if SECURE && unsafe { (*slab).free.is_null() } {
                let rest = &mut out[filled..];
                // SAFETY: as above; `filled < out.len()`, so the run is not empty.
                let taken = unsafe { take_fresh_run(&mut list, slab, rest, &self.live) };
                filled += taken;
                continue;
            }
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
    /// Every block is validated here whoever sends it (a thread cache's flush, or its
    /// marked-block path, or any other caller): `locate` (with `secure`, the chunk map first),
    /// then `validate_free` (with `checked`/`secure`, `live_index` instead: the block start and
    /// the live bitmap).
    /// Consecutive blocks of one slab — most of a flushed bin — share the first part: the
    /// slab found for the previous block is reused while the next block lies in the same
    /// slot, is 16-aligned (what `locate` checks of a small block's address) and the slab was
    /// not released in between. That is exact, not a shortcut: under the class lock nothing
    /// but this loop can change the slot's identity, and its chunk cannot be unmapped while
    /// the slab lives.
    ///
    /// # Safety
    /// Every pointer is a live block of this slab in `class`, none twice.
    pub(crate) unsafe fn free_batch(&self, class: usize, blocks: &[*mut u8]) {
        if class >= CLASS_COUNT {
            report("batch free for a class that does not exist", class);
            return;
        }
        let mut list = self.classes[class].lock();
        let secrets = Secrets::read_if(SECURE);
        // (slot address, its slab) of the previous block; slot addresses are never 0.
        let mut known: (usize, *mut SlabMeta) = (0, core::ptr::null_mut());
        for &raw in blocks {
            let Some(ptr) = NonNull::new(raw) else {
                report("batch free of a null pointer", 0);
                continue;
            };
            let slot_addr = raw as usize & !(SLOT_BYTES - 1);
            let slab = if slot_addr == known.0 && raw as usize % 16 == 0 {
                known.1
            } else {
                // SAFETY: the caller promises a live block of this slab.
                match unsafe { self.locate(ptr) } {
                    Ok(Block::Small {
                        chunk,
                        slot,
                        class: found,
                    }) if found == class => {
                        // SAFETY: `locate` found a live slot of this chunk.
                        let slab = unsafe { meta_ptr(chunk, slot) };
                        known = (slot_addr, slab);
                        slab
                    }
                    Ok(_) => {
                        report("batch free of a block of another class", raw as usize);
                        continue;
                    }
                    Err(what) => {
                        report(what, raw as usize);
                        continue;
                    }
                }
            };
            // SAFETY: found in this class's slab (now or for the previous block, see above);
            // its lock is held.
            if unsafe { self.give_back(&mut list, slab, ptr, secrets) } == GivenBack::SlabReleased {
                known = (0, core::ptr::null_mut());
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
    // SAFETY: forwarded from the caller; listed slabs have room.
    let taken = unsafe { (*slab).pop() };
    // SAFETY: forwarded from the caller.
    unsafe { count_taken(list, slab, 1, live) };
    taken
}

/// With `secure`: [`take`] for a run of never-used blocks of a slab whose free list is empty
/// ([`SlabMeta::take_fresh_run`]), with the class's figures counted once for the run; returns
/// how many blocks went into `out`.
///
/// # Safety
/// As for [`take`]; the slab's free list is empty and `out` is not.
#[inline(always)]
unsafe fn take_fresh_run(
    list: &mut ClassList,
    slab: *mut SlabMeta,
    out: &mut [*mut u8],
    live: &LiveBytes,
) -> usize {
    // SAFETY: forwarded from the caller.
    let taken = unsafe { (*slab).take_fresh_run(out) };
    // SAFETY: forwarded from the caller.
    unsafe { count_taken(list, slab, taken, live) };
    taken
}

/// Counts `blocks` just taken from `slab` in the class's figures (a new high when the count
/// passes it: a run only raises the count, so its last value is the run's high) and unlists
/// the slab when it has no room left.
///
/// # Safety
/// `slab` was listed in `list` before the blocks were taken, and the class lock is held.
#[inline(always)]
unsafe fn count_taken(list: &mut ClassList, slab: *mut SlabMeta, blocks: usize, live: &LiveBytes) {
    // SAFETY: forwarded from the caller.
    let meta = unsafe { &*slab };
    list.live_blocks += blocks;
    if list.live_blocks > list.peak.high_blocks {
        let live_blocks = list.live_blocks;
        list.peak
            .new_high(live_blocks, meta.block_bytes as usize, live);
    }
    if !meta.has_room() {
        // SAFETY: listed in this class.
        unsafe { list.unlink(slab) };
    }
}
