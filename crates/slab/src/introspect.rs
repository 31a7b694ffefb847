//! Looking inside: `check` (every invariant, walked), `stats`, per-class figures, and
//! `heap_map`, which shows every slot without allocating.

use crate::chunk::{
    ident, kind, meta_ptr, run_mask, slot_start, state_of, Chunk, Chunks, ALL_SLOTS_MASK,
    CHUNK_MAGIC, HEADER_MASK, HEADER_SLOTS, HUGE_MAGIC, NOT_SMALL,
};
use crate::classes::{class_capacity, CLASS_BYTES, CLASS_COUNT, CLASS_DIVISIBILITY};
use crate::geometry::{CHUNK_BYTES, CHUNK_MASK, SLOTS_PER_CHUNK, SLOT_BYTES};
use crate::guard::Guard;
use crate::heap::{ClassList, Slab};
use crate::huge::Huge;
use crate::peak::LiveBytes;
use crate::slab_meta::{SlabMeta, CHECKS, SECURE, WINDOW_BLOCKS_MAX};
use core::ptr::addr_of;
use core::sync::atomic::Ordering;
use heapkit_core::{Introspect, InvariantError, PageSource, Stats};

/// Guard bits `check` refuses on the header slot: all of them but with `hardened`, which guards
/// the header slot's last page (`slot_guard::guard_before_slot`).
const HEADER_GUARD_FORBIDDEN: u64 = if cfg!(feature = "hardened") {
    0
} else {
    HEADER_MASK
};

/// The figures of one size class.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// The class's block size.
    pub block_bytes: usize,
    /// Slabs the class holds (full, partial and the one empty slab it may keep).
    pub slabs: usize,
    /// Live blocks.
    pub live_blocks: usize,
    /// Blocks its slabs could hold.
    pub capacity_blocks: usize,
    /// Blocks handed out so far (batches included).
    pub allocations: usize,
    /// Blocks given back so far.
    pub deallocations: usize,
}

impl ClassStats {
    /// Live blocks per thousand blocks of capacity (1000 when the class holds no slab).
    pub fn utilisation_per_mille(&self) -> usize {
        (self.live_blocks * 1000)
            .checked_div(self.capacity_blocks)
            .unwrap_or(1000)
    }
}

/// What one slot (or huge block) of the heap holds, as [`Slab::heap_map`] reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// Slot 0 of a chunk: the chunk header.
    Header,
    /// A free slot; `dirty` when its pages may still be resident (not purged yet).
    Free {
        /// Used since it was mapped or last purged.
        dirty: bool,
    },
    /// A slab of a size class.
    Small {
        /// The class index.
        class: usize,
        /// The class's block size.
        block_bytes: usize,
        /// Blocks the slab holds.
        capacity: usize,
        /// Live blocks.
        live: usize,
        /// Blocks never handed out yet (their pages may never have been touched).
        untouched: usize,
    },
    /// The head of a large span of `slots` slots.
    Large {
        /// Slots in the span.
        slots: usize,
    },
    /// A slot covered by the large span that starts before it.
    LargeTail,
    /// A huge block in its own mapping.
    Huge {
        /// The block's usable bytes.
        usable_bytes: usize,
        /// The mapping's length.
        mapped_bytes: usize,
    },
}

/// One entry of [`Slab::heap_map`]: a chunk slot, or a huge block.
pub struct SlotInfo<'a> {
    /// The chunk's address (for a huge block: its mapping's).
    pub chunk_addr: usize,
    /// The slot's index in its chunk (0 for huge blocks).
    pub index: usize,
    /// The slot's (or the huge block's) first byte.
    pub addr: usize,
    /// What it holds.
    pub kind: SlotKind,
    meta: Option<&'a SlabMeta>,
}

impl core::fmt::Debug for SlotInfo<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SlotInfo")
            .field("chunk_addr", &self.chunk_addr)
            .field("index", &self.index)
            .field("addr", &self.addr)
            .field("kind", &self.kind)
            .finish()
    }
}

impl SlotInfo<'_> {
    /// For a small slab: calls `f` with the index of every free block — freed ones (most
    /// recently freed first) and then never-used ones. Does nothing for other slots.
    pub fn for_each_free_block(&self, mut f: impl FnMut(usize)) {
        if let Some(meta) = self.meta {
            meta.for_each_listed_free(|_, block| f(meta.index_of(block)));
            meta.for_each_window_block(&mut f);
            (meta.fresh..meta.capacity).for_each(|index| f(index as usize));
        }
    }
}

fn broken(what: &'static str, addr: usize) -> Result<(), InvariantError> {
    Err(InvariantError::new(what, addr))
}

fn ensure(ok: bool, what: &'static str, addr: usize) -> Result<(), InvariantError> {
    if ok {
        Ok(())
    } else {
        broken(what, addr)
    }
}

/// Totals gathered while walking the chunks, compared with the counters afterwards.
struct Walked {
    slabs: [usize; CLASS_COUNT],
    live: [usize; CLASS_COUNT],
    chunks: usize,
    empty: usize,
    dirty: usize,
    large_count: usize,
    large_slots: usize,
    /// The earliest `dirty_since_ms` of any dirty slot.
    oldest_dirty_ms: u64,
}

impl<P: PageSource> Slab<P> {
    /// The figures of `class` (`class < CLASS_COUNT`; others read as empty).
    pub fn class_stats(&self, class: usize) -> ClassStats {
        let Some(guarded) = self.classes.get(class) else {
            return ClassStats::default();
        };
        let list = guarded.lock();
        ClassStats {
            block_bytes: CLASS_BYTES[class] as usize,
            slabs: list.slabs,
            live_blocks: list.live_blocks,
            capacity_blocks: list.slabs * class_capacity(class),
            allocations: list.deallocations + list.live_blocks,
            deallocations: list.deallocations,
        }
    }

    /// Calls `f` for every slot of every chunk, then for every huge block, with all locks held
    /// (so `f` sees a consistent heap, and must not use this `Slab`: it would deadlock). Never
    /// allocates.
    pub fn heap_map(&self, mut f: impl FnMut(&SlotInfo<'_>)) {
        let classes = self.lock_classes();
        let chunks = self.chunks.lock();
        let mut chunk = chunks.head;
        for _ in 0..chunks.chunk_count {
            if chunk.is_null() {
                break;
            }
            for index in 0..SLOTS_PER_CHUNK {
                // SAFETY: a live chunk (on the list); every lock is held.
                f(&unsafe { slot_info(chunk, index) });
            }
            // SAFETY: as above.
            chunk = unsafe { state_of(chunk).next };
        }
        let mut huge = chunks.huge.head;
        for _ in 0..chunks.huge.count {
            if huge.is_null() {
                break;
            }
            // SAFETY: a live huge header on the list; the chunk lock is held.
            unsafe {
                f(&SlotInfo {
                    chunk_addr: huge as usize,
                    index: 0,
                    addr: Huge::block_start(huge) as usize,
                    kind: SlotKind::Huge {
                        usable_bytes: Huge::usable_bytes(huge),
                        mapped_bytes: Huge::map_bytes(huge),
                    },
                    meta: None,
                });
                huge = Huge::next(huge);
            }
        }
        drop(chunks);
        drop(classes);
    }

    /// Every class lock, in ascending order (the lock order), then nothing else.
    fn lock_classes(&self) -> [Guard<'_, ClassList>; CLASS_COUNT] {
        core::array::from_fn(|class| self.classes[class].lock())
    }

    fn check_all(&self) -> Result<(), InvariantError> {
        let classes = self.lock_classes();
        let chunks = self.chunks.lock();
        let owner = self.owner.load(Ordering::Relaxed);
        let mut walked = Walked {
            slabs: [0; CLASS_COUNT],
            live: [0; CLASS_COUNT],
            chunks: 0,
            empty: 0,
            dirty: 0,
            large_count: 0,
            large_slots: 0,
            oldest_dirty_ms: u64::MAX,
        };
        let mut chunk = chunks.head;
        let mut seen_full = false;
        while !chunk.is_null() {
            ensure(
                walked.chunks < chunks.chunk_count,
                "chunk list longer than its count (cycle?)",
                chunk as usize,
            )?;
            walked.chunks += 1;
            // SAFETY: a live chunk on the list; every lock is held.
            unsafe { check_chunk(chunk, owner, &mut walked)? };
            // SAFETY: as above.
            let state = unsafe { state_of(chunk) };
            let full = state.used_mask == ALL_SLOTS_MASK;
            ensure(
                !seen_full || full,
                "chunk with free slots behind a full chunk",
                chunk as usize,
            )?;
            seen_full |= full;
            chunk = state.next;
        }
        ensure(
            walked.chunks == chunks.chunk_count,
            "chunk count",
            walked.chunks,
        )?;
        ensure(
            walked.empty == chunks.empty_count,
            "empty chunk count",
            walked.empty,
        )?;
        ensure(
            walked.dirty == chunks.dirty_slots,
            "dirty slot count",
            walked.dirty,
        )?;
        ensure(
            chunks.oldest_dirty_ms <= walked.oldest_dirty_ms,
            "a dirty slot is older than the oldest dirty time",
            walked.dirty,
        )?;
        ensure(
            walked.large_count == chunks.large_count,
            "large span count",
            walked.large_count,
        )?;
        ensure(
            walked.large_slots == chunks.large_slots,
            "large slot count",
            walked.large_slots,
        )?;
        for (class, list) in classes.iter().enumerate() {
            check_class(class, list, &walked)?;
        }
        let (mut count, mut mapped, mut usable) = (0, 0, 0);
        let mut huge = chunks.huge.head;
        while !huge.is_null() {
            ensure(
                count < chunks.huge.count,
                "huge list longer than its count (cycle?)",
                huge as usize,
            )?;
            // SAFETY: a live huge header on the list; the chunk lock is held.
            unsafe {
                ensure(
                    addr_of!((*huge).head.magic).read() == HUGE_MAGIC,
                    "huge magic",
                    huge as usize,
                )?;
                ensure(
                    addr_of!((*huge).head.owner_id).read() == owner,
                    "huge owner",
                    huge as usize,
                )?;
                ensure(
                    huge as usize & CHUNK_MASK == 0,
                    "huge mapping not chunk-aligned",
                    huge as usize,
                )?;
                count += 1;
                mapped += Huge::map_bytes(huge);
                usable += Huge::usable_bytes(huge);
                huge = Huge::next(huge);
            }
        }
        ensure(count == chunks.huge.count, "huge count", count)?;
        check_live_bytes(&self.live, &classes, &chunks)?;
        ensure(
            mapped == chunks.huge.mapped_bytes,
            "huge mapped bytes",
            mapped,
        )?;
        ensure(
            usable == chunks.huge.usable_bytes,
            "huge usable bytes",
            usable,
        )
    }

    fn gather_stats(&self) -> Stats {
        let mut stats = Stats::default();
        for (class, guarded) in self.classes.iter().enumerate() {
            let mut list = guarded.lock();
            // Folding every class makes the peak exact up to this moment for a caller that
            // reads stats while the heap is quiet (tests, reports).
            let live_blocks = list.live_blocks;
            list.peak
                .fold(live_blocks, CLASS_BYTES[class] as usize, &self.live);
            stats.live_blocks += list.live_blocks;
            stats.live_bytes += list.live_blocks * CLASS_BYTES[class] as usize;
            stats.allocations += list.deallocations + list.live_blocks;
            stats.deallocations += list.deallocations;
        }
        let chunks = self.chunks.lock();
        stats.live_blocks += chunks.large_count + chunks.huge.count;
        stats.live_bytes += chunks.large_slots * SLOT_BYTES + chunks.huge.usable_bytes;
        // With other threads allocating, the sum above mixes moments; the folded peak does not.
        stats.peak_bytes = self.live.peak_bytes();
        stats.mapped_bytes = chunks.chunk_count * CHUNK_BYTES
            + chunks.huge.mapped_bytes
            + chunks.huge.quarantined_bytes();
        stats.failures = chunks.failures;
        stats.reallocations = self.reallocations.load(Ordering::Relaxed);
        stats
    }

    /// Huge blocks (each in its own mapping): how many, their usable bytes and their mapped
    /// bytes. For the C library's `mallinfo` (`hblks`, `hblkhd`).
    pub fn huge_blocks(&self) -> (usize, usize, usize) {
        let chunks = self.chunks.lock();
        (
            chunks.huge.count,
            chunks.huge.usable_bytes,
            chunks.huge.mapped_bytes,
        )
    }

    /// Bytes of freed slots not purged yet, and bytes purged so far.
    pub fn dirty_and_purged_bytes(&self) -> (usize, usize) {
        let chunks = self.chunks.lock();
        (chunks.dirty_slots * SLOT_BYTES, chunks.purged_bytes)
    }
}

/// # Safety
/// `chunk` is live and every lock is held.
unsafe fn slot_info<'a>(chunk: *mut Chunk, index: usize) -> SlotInfo<'a> {
    // SAFETY: forwarded from the caller.
    let (id, state) = unsafe { (ident(chunk, index), state_of(chunk)) };
    let mut meta = None;
    let kind = match id.kind {
        kind::HEADER => SlotKind::Header,
        kind::SMALL => {
            // SAFETY: a small slot's metadata is initialised; its class lock is held.
            let m: &SlabMeta = unsafe { &*meta_ptr(chunk, index) };
            meta = Some(m);
            SlotKind::Small {
                class: m.class as usize,
                block_bytes: m.block_bytes as usize,
                capacity: m.capacity as usize,
                live: m.used as usize,
                untouched: m.untouched(),
            }
        }
        kind::LARGE_HEAD => SlotKind::Large {
            slots: id.span_slots as usize,
        },
        kind::LARGE_TAIL => SlotKind::LargeTail,
        _ => SlotKind::Free {
            dirty: state.dirty_mask >> index & 1 == 1,
        },
    };
    SlotInfo {
        chunk_addr: chunk as usize,
        index,
        addr: slot_start(chunk, index) as usize,
        kind,
        meta,
    }
}

/// # Safety
/// `chunk` is live and every lock is held.
unsafe fn check_chunk(
    chunk: *mut Chunk,
    owner: usize,
    walked: &mut Walked,
) -> Result<(), InvariantError> {
    let addr = chunk as usize;
    ensure(
        addr & CHUNK_MASK == 0,
        "chunk not aligned to its size",
        addr,
    )?;
    // SAFETY: forwarded from the caller.
    let (magic, owner_id, state) = unsafe {
        (
            addr_of!((*chunk).head.magic).read(),
            addr_of!((*chunk).head.owner_id).read(),
            state_of(chunk),
        )
    };
    ensure(magic == CHUNK_MAGIC, "chunk magic", addr)?;
    ensure(owner_id == owner, "chunk owner", addr)?;
    ensure(
        state.used_mask & HEADER_MASK == HEADER_MASK,
        "header slots not marked used",
        addr,
    )?;
    ensure(
        state.used_mask & !ALL_SLOTS_MASK == 0,
        "used bits beyond the chunk",
        addr,
    )?;
    ensure(
        state.dirty_mask & state.used_mask == 0,
        "a used slot is marked dirty",
        addr,
    )?;
    ensure(
        state.zero_mask & state.used_mask == 0,
        "a used slot is marked zeroed",
        addr,
    )?;
    ensure(
        // `hardened` guards the header slot's last page too (`guard_before_slot`).
        state.guard_mask & (HEADER_GUARD_FORBIDDEN | !ALL_SLOTS_MASK) == 0
            && (SECURE || state.guard_mask == 0),
        "guard bits on the header (without `hardened`) or beyond the chunk, or without `secure`",
        addr,
    )?;
    walked.empty += usize::from(state.used_mask == HEADER_MASK);
    walked.dirty += state.dirty_mask.count_ones() as usize;
    let mut dirty = state.dirty_mask;
    while dirty != 0 {
        let slot = dirty.trailing_zeros() as usize;
        dirty &= dirty - 1;
        walked.oldest_dirty_ms = walked.oldest_dirty_ms.min(state.dirty_since_ms[slot]);
    }
    let mut slot = HEADER_SLOTS;
    while slot < SLOTS_PER_CHUNK {
        let slot_addr = slot_start(chunk, slot) as usize;
        // SAFETY: forwarded from the caller.
        let id = unsafe { ident(chunk, slot) };
        let used = state.used_mask >> slot & 1 == 1;
        ensure(
            used == (id.kind != kind::FREE),
            "used bit disagrees with the slot's kind",
            slot_addr,
        )?;
        // The unsized free reads only the class byte: it must name a class exactly in a small
        // slab, and be NOT_SMALL everywhere else.
        ensure(
            (id.kind == kind::SMALL) == (id.class < NOT_SMALL),
            "slot's class byte disagrees with its kind",
            slot_addr,
        )?;
        match id.kind {
            kind::FREE => slot += 1,
            kind::SMALL => {
                // SAFETY: a small slot's metadata is initialised; its class lock is held.
                let meta = unsafe { &*meta_ptr(chunk, slot) };
                check_slab(meta, id.class as usize, slot_addr)?;
                ensure(
                    meta.guarded == (state.guard_mask >> slot & 1 == 1),
                    "slab guard disagrees with the chunk's guard mask",
                    slot_addr,
                )?;
                // `hardened`: a guarded slab's first block has a guard page before it
                // (`guard_before_slot`), so that an underflow of it faults.
                ensure(
                    !cfg!(feature = "hardened")
                        || !meta.guarded
                        || state.guard_mask >> (slot - 1) & 1 == 1,
                    "a guarded slab's first block has no guard page before it",
                    slot_addr,
                )?;
                walked.slabs[meta.class as usize] += 1;
                walked.live[meta.class as usize] += meta.used as usize;
                slot += 1;
            }
            kind::LARGE_HEAD => {
                let span = id.span_slots as usize;
                ensure(
                    span >= 1 && slot + span <= SLOTS_PER_CHUNK,
                    "large span out of its chunk",
                    slot_addr,
                )?;
                for (offset, tail) in (slot + 1..slot + span).enumerate() {
                    // SAFETY: in range (checked above).
                    let tail_id = unsafe { ident(chunk, tail) };
                    ensure(
                        tail_id.kind == kind::LARGE_TAIL
                            && tail_id.span_slots as usize == offset + 1,
                        "large span tail",
                        slot_addr,
                    )?;
                    ensure(
                        state.used_mask >> tail & 1 == 1,
                        "large tail not used",
                        slot_addr,
                    )?;
                }
                ensure(
                    state.guard_mask & run_mask(slot, span) == 0,
                    "guard page inside a large span",
                    slot_addr,
                )?;
                walked.large_count += 1;
                walked.large_slots += span;
                slot += span;
            }
            _ => return broken("slot kind out of place", slot_addr),
        }
    }
    Ok(())
}

fn check_slab(meta: &SlabMeta, class: usize, slot_addr: usize) -> Result<(), InvariantError> {
    ensure(
        class < CLASS_COUNT && meta.class as usize == class,
        "slab class",
        slot_addr,
    )?;
    ensure(meta.start as usize == slot_addr, "slab start", slot_addr)?;
    ensure(
        meta.block_bytes == CLASS_BYTES[class],
        "slab block size",
        slot_addr,
    )?;
    ensure(
        meta.capacity as usize == class_capacity(class)
            || (meta.guarded && (meta.capacity as usize) < class_capacity(class)),
        "slab capacity",
        slot_addr,
    )?;
    ensure(
        meta.used <= meta.fresh && meta.fresh <= meta.capacity,
        "slab counts",
        slot_addr,
    )?;
    ensure(
        meta.listed == meta.has_room(),
        "slab listed exactly when it has room",
        slot_addr,
    )?;
    let mut bad = None;
    let mut overwritten = None;
    let listed = meta.for_each_listed_free(|_, block| {
        let offset = (block as usize).wrapping_sub(slot_addr);
        let ok = meta.contains(block)
            && offset % meta.block_bytes as usize == 0
            && offset / (meta.block_bytes as usize) < meta.fresh as usize
            && !(CHECKS && meta.is_live(meta.index_of(block)));
        if !ok && bad.is_none() {
            bad = Some(block as usize);
        }
        // With `secure`, the twin of the pop's check: a free block whose mark no longer fits
        // its link was overwritten. Reported here, before a pop would stop the process on it.
        // SAFETY: `ok` proves a block start of this slab, at least two words long.
        if SECURE && ok && !unsafe { meta.carries_free_mark(block) } && overwritten.is_none() {
            overwritten = Some(block as usize);
        }
    });
    // The overwritten block first: it is the cause when the link it holds now leads astray.
    if let Some(addr) = overwritten {
        return broken(
            "a free block's mark does not fit its link (overwritten)",
            addr,
        );
    }
    if let Some(addr) = bad {
        return broken("free list entry is not a free block of its slab", addr);
    }
    check_window(meta, slot_addr)?;
    ensure(
        listed + meta.used as usize + meta.window_left as usize == meta.fresh as usize,
        "free list length + live + window ≠ used blocks",
        slot_addr,
    )?;
    if CHECKS {
        let live: u32 = meta.live.iter().map(|word| word.count_ones()).sum();
        ensure(
            live == meta.used,
            "live bitmap disagrees with the live count",
            slot_addr,
        )?;
    }
    #[cfg(feature = "secure")]
    if let Some(addr) = crate::handed::first_handed_not_live(meta) {
        return broken(
            "a block marked as the program's is not live in its slab",
            addr,
        );
    }
    #[cfg(feature = "hardened")]
    if let Some(addr) = crate::canary::first_broken(meta) {
        return broken(
            "a block's canary was overwritten (a heap overflow or underflow)",
            addr,
        );
    }
    Ok(())
}

/// The window of shuffled never-used blocks (`secure`) holds distinct blocks below `fresh`
/// that are not live; without `secure` it is always empty.
fn check_window(meta: &SlabMeta, slot_addr: usize) -> Result<(), InvariantError> {
    ensure(
        meta.window_left as usize <= WINDOW_BLOCKS_MAX && (SECURE || meta.window_left == 0),
        "slab window size",
        slot_addr,
    )?;
    ensure(
        meta.divisibility == CLASS_DIVISIBILITY[meta.class as usize % CLASS_COUNT],
        "slab divisibility constant",
        slot_addr,
    )?;
    let mut seen = 0u64;
    let mut ok = true;
    meta.for_each_window_block(|index| {
        let offset = index.wrapping_sub(meta.window_base as usize);
        ok &= index < meta.fresh as usize
            && offset < WINDOW_BLOCKS_MAX
            && seen >> (offset % WINDOW_BLOCKS_MAX) & 1 == 0
            && !(CHECKS && meta.is_live(index));
        seen |= 1 << (offset % WINDOW_BLOCKS_MAX);
    });
    ensure(
        ok,
        "window entry is not a distinct never-used block",
        slot_addr,
    )
}

/// The folded total equals what the classes last folded plus the exact large and huge bytes,
/// and the peak is at least the total. Every lock is held.
fn check_live_bytes(
    live: &LiveBytes,
    classes: &[Guard<'_, ClassList>; CLASS_COUNT],
    chunks: &Chunks,
) -> Result<(), InvariantError> {
    let mut expected = chunks.large_slots * SLOT_BYTES + chunks.huge.usable_bytes;
    for (class, list) in classes.iter().enumerate() {
        let marks = &list.peak;
        expected += marks.folded_blocks * CLASS_BYTES[class] as usize;
        ensure(
            marks.high_blocks >= marks.folded_blocks.max(list.live_blocks),
            "class live blocks above their recorded high point",
            class,
        )?;
        ensure(
            marks.fold_down_blocks <= marks.folded_blocks
                && marks.folded_blocks <= marks.fold_up_blocks,
            "class fold marks out of order",
            class,
        )?;
    }
    let total = live.total_bytes();
    ensure(
        total == expected,
        "folded live bytes disagree with the counters",
        total,
    )?;
    ensure(
        live.peak_bytes() >= total,
        "peak below the live bytes",
        total,
    )
}

fn check_class(class: usize, list: &ClassList, walked: &Walked) -> Result<(), InvariantError> {
    ensure(list.slabs == walked.slabs[class], "class slab count", class)?;
    ensure(
        list.live_blocks == walked.live[class],
        "class live block count",
        class,
    )?;
    let mut count = 0;
    let mut slab = list.head;
    let mut prev = core::ptr::null_mut();
    while !slab.is_null() {
        ensure(
            count < list.listed,
            "class list longer than its count (cycle?)",
            slab as usize,
        )?;
        count += 1;
        // SAFETY: listed slabs are live; the class lock is held.
        let meta = unsafe { &*slab };
        ensure(
            meta.listed && meta.class as usize == class,
            "listed slab of another class",
            slab as usize,
        )?;
        ensure(meta.prev == prev, "class list back link", slab as usize)?;
        prev = slab;
        slab = meta.next;
    }
    ensure(count == list.listed, "class listed count", class)
}

impl<P: PageSource> Introspect for Slab<P> {
    fn check(&self) -> Result<(), InvariantError> {
        self.check_all()
    }

    fn stats(&self) -> Option<Stats> {
        Some(self.gather_stats())
    }
}
