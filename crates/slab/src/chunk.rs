//! Chunks: 2 MiB runs mapped aligned to their size, cut into 64 KiB slots, with the header in
//! slot 0. `Chunks` is the chunk lock's state: the chunk list, slot allocation, purging.
//!
//! ```text
//!  chunk (2 MiB, 2 MiB-aligned)
//!  ┌──────────────┬────────┬────────┬────────┬────────┬─────┬────────┐
//!  │ slot 0:      │ slot 1 │ slot 2 │ slot 3 │ slot 4 │  …  │ slot31 │
//!  │ header       │ slab   │ large  │ (tail) │ free   │     │ slab   │
//!  │ magic, owner │ cls 48 │ head,2 │        │ dirty  │     │ cls 7  │
//!  │ idents[32]   │        │        │        │        │     │        │
//!  │ masks, links │        │        │        │        │     │        │
//!  │ metas[32]    │        │        │        │        │     │        │
//!  └──────────────┴────────┴────────┴────────┴────────┴─────┴────────┘
//!   header = ptr & !(CHUNK_BYTES - 1);  slot = (ptr & (CHUNK_BYTES - 1)) >> 16
//! ```
//!
//! `idents` are read without a lock (a block's slot cannot change while the block is live);
//! the masks and links are guarded by the chunk lock; `metas` of small slabs by their class
//! lock.

use crate::classes::CLASS_COUNT;
use crate::geometry::{CHUNK_BYTES, CHUNK_MASK, SLOTS_PER_CHUNK, SLOT_BYTES, SLOT_SHIFT};
use crate::huge::HugeList;
use crate::slab_meta::SlabMeta;
use crate::slot_guard::{unguard_run, unmap_chunk_run};
use core::ptr::{self, addr_of, addr_of_mut, NonNull};
use heapkit_core::{AllocError, PageSource};
use heapkit_pages::clock;

/// Marks the header of a slab chunk ("heapkitS").
pub(crate) const CHUNK_MAGIC: usize = 0x6865_6170_6b69_7453;
/// Marks the header of a huge object's mapping ("heapkitH").
pub(crate) const HUGE_MAGIC: usize = 0x6865_6170_6b69_7448;

/// What a slot holds.
pub(crate) mod kind {
    pub const FREE: u8 = 0;
    pub const HEADER: u8 = 1;
    pub const SMALL: u8 = 2;
    pub const LARGE_HEAD: u8 = 3;
    pub const LARGE_TAIL: u8 = 4;
}

/// The first words of every chunk-aligned header, slab chunk or huge mapping alike.
#[repr(C)]
pub(crate) struct ChunkHead {
    pub magic: usize,
    /// The id of the `Slab` that owns the chunk (catches pointers from another `Slab`).
    pub owner_id: usize,
    /// In a slab chunk, [`small_tag`]`(owner_id)`; 0 in a huge header and in a dead chunk. The
    /// one word the unsized-free fast path compares: magic and owner in a single test.
    pub small_tag: usize,
}

/// The `small_tag` of a slab chunk owned by `owner_id`: never 0 (owner ids are small and
/// non-zero, the magic's high bits are set) and never [`NO_SMALL_TAG`].
#[inline(always)]
pub(crate) const fn small_tag(owner_id: usize) -> usize {
    CHUNK_MAGIC ^ owner_id
}

/// The tag a `Slab` compares with before it has an owner id: matches no header.
pub(crate) const NO_SMALL_TAG: usize = usize::MAX;

const _: () = assert!(small_tag(1) != 0 && small_tag(1) != NO_SMALL_TAG);

/// A slot's identity: what the lock-free pointer lookup reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct SlotIdent {
    pub kind: u8,
    /// The size class of a small slab; [`NOT_SMALL`] in every other slot, so that the class
    /// byte alone answers "which bin, if any" (`Slab::bin_of_block` reads only it).
    pub class: u8,
    /// Large head: slots in the span; large tail: distance back to the head.
    pub span_slots: u16,
    pub _reserved: u32,
}

/// The class byte of every slot that is not a small slab: one past the last class, the index a
/// thread cache keeps a never-caching bin at (`BatchAllocator::bin_of_block`).
pub(crate) const NOT_SMALL: u8 = CLASS_COUNT as u8;

const _: () = assert!(
    CLASS_COUNT < u8::MAX as usize,
    "NOT_SMALL fits the class byte"
);

impl SlotIdent {
    pub const FREE: SlotIdent = SlotIdent::new(kind::FREE, NOT_SMALL, 0);
    pub const HEADER: SlotIdent = SlotIdent::new(kind::HEADER, NOT_SMALL, 0);

    /// A small slab of `class`.
    pub const fn small(class: u8) -> Self {
        debug_assert!(class < NOT_SMALL);
        SlotIdent::new(kind::SMALL, class, 1)
    }

    /// The first slot of a large span of `span_slots` slots.
    pub const fn large_head(span_slots: u16) -> Self {
        SlotIdent::new(kind::LARGE_HEAD, NOT_SMALL, span_slots)
    }

    /// A later slot of a large span, `distance` slots after its head.
    pub const fn large_tail(distance: u16) -> Self {
        SlotIdent::new(kind::LARGE_TAIL, NOT_SMALL, distance)
    }

    const fn new(kind: u8, class: u8, span_slots: u16) -> Self {
        SlotIdent {
            kind,
            class,
            span_slots,
            _reserved: 0,
        }
    }
}

/// A slab chunk's header, at the chunk's first byte.
#[repr(C)]
pub(crate) struct Chunk {
    pub head: ChunkHead,
    /// With `hardened`: the key of this chunk's canaries (`canary.rs`), drawn when the chunk
    /// is made and never changed while it lives. Next to the header words and the class
    /// bytes the free path reads anyway: one load, no GOT entry, no "drawn yet?" branch.
    #[cfg(feature = "hardened")]
    pub canary_secret: crate::canary::Secret,
    pub idents: [SlotIdent; SLOTS_PER_CHUNK],
    /// Guarded by the chunk lock.
    pub state: ChunkState,
    pub metas: [SlabMeta; SLOTS_PER_CHUNK],
}

/// The part of a chunk header the chunk lock guards.
///
/// Code never makes a reference to a whole `Chunk` once it is live: other threads read
/// `idents` and write `metas` concurrently, so each part is reached through its own raw
/// pointer projection (`state_of`, `ident`, `meta_ptr`).
#[repr(C)]
pub(crate) struct ChunkState {
    /// Bit `i`: slot `i` is in use (bit 0, the header, always is).
    pub used_mask: u64,
    /// Bit `i`: free slot `i` was used since it was mapped or purged (its pages may be resident).
    pub dirty_mask: u64,
    /// Bit `i`: free slot `i` has never been written since a zeroing source mapped it.
    pub zero_mask: u64,
    /// Bit `i`: slot `i`'s last page is a guard page (`secure`). A guard outlives its slab:
    /// the slot keeps it while free and the next small slab there reuses it, so a slot pays
    /// for `mprotect` once, not twice per slab. Only a large span lifts it (`unguard_run`).
    pub guard_mask: u64,
    pub next: *mut Chunk,
    pub prev: *mut Chunk,
    /// For each slot in `dirty_mask`: when it became dirty (`clock::now_ms`). Meaningless for
    /// other slots.
    pub dirty_since_ms: [u64; SLOTS_PER_CHUNK],
}

/// The chunk-lock-guarded state of `chunk`.
///
/// # Safety
/// `chunk` is a live chunk header, the caller holds the chunk lock, and no other reference to
/// this state exists while the returned one is used.
#[inline(always)]
pub(crate) unsafe fn state_of<'a>(chunk: *mut Chunk) -> &'a mut ChunkState {
    // SAFETY: forwarded from the caller.
    unsafe { &mut *addr_of_mut!((*chunk).state) }
}

/// Writes a slot's identity.
///
/// # Safety
/// `chunk` is a live chunk header, the caller holds the chunk lock, `slot < SLOTS_PER_CHUNK`,
/// and no live block lies in the slot.
#[inline(always)]
pub(crate) unsafe fn set_ident(chunk: *mut Chunk, slot: usize, value: SlotIdent) {
    // SAFETY: forwarded from the caller; the write touches this one ident only.
    unsafe { addr_of_mut!((*chunk).idents[slot]).write(value) }
}

const _: () = assert!(
    core::mem::size_of::<Chunk>() <= SLOT_BYTES,
    "header fits slot 0"
);
const _: () = assert!(core::mem::offset_of!(Chunk, head) == 0);

/// Slots the header takes: slot 0, and with `secure` the handed-out record after it
/// (`handed.rs`). No block ever lives in them.
#[cfg(not(feature = "secure"))]
pub(crate) const HEADER_SLOTS: usize = 1;
/// Slots the header takes: slot 0, and with `secure` the handed-out record after it
/// (`handed.rs`). No block ever lives in them.
#[cfg(feature = "secure")]
pub(crate) const HEADER_SLOTS: usize = 1 + crate::handed::RECORD_SLOTS;
/// The header's slots in a slot mask.
pub(crate) const HEADER_MASK: u64 = (1 << HEADER_SLOTS) - 1;

const _: () = assert!(
    crate::geometry::LARGE_MAX_BYTES <= (SLOTS_PER_CHUNK - HEADER_SLOTS) * SLOT_BYTES,
    "a large span fits beside the header"
);
pub(crate) const ALL_SLOTS_MASK: u64 = if SLOTS_PER_CHUNK == 64 {
    u64::MAX
} else {
    (1u64 << SLOTS_PER_CHUNK) - 1
};

/// The mask of `count` slots from `first`.
pub(crate) const fn run_mask(first: usize, count: usize) -> u64 {
    debug_assert!(count >= 1 && first + count <= SLOTS_PER_CHUNK);
    (ALL_SLOTS_MASK >> (SLOTS_PER_CHUNK - count)) << first
}

/// The chunk-aligned header address below `addr` (as a pointer carrying `ptr`'s provenance).
#[inline(always)]
pub(crate) fn header_of(ptr: NonNull<u8>) -> *mut ChunkHead {
    ptr.as_ptr().map_addr(|a| a & !CHUNK_MASK).cast()
}

/// The header of the block starting at `ptr`: the chunk-aligned address below `ptr - 1`. No
/// block starts on a chunk boundary (slot 0 is a chunk's header; a huge block sits past its
/// header) except an over-aligned huge one (alignment of a chunk or more), whose header is the
/// chunk below it: so one mask finds every block's header, with no test of the alignment.
#[inline(always)]
pub(crate) fn block_header(ptr: NonNull<u8>) -> *mut ChunkHead {
    ptr.as_ptr().map_addr(|a| (a - 1) & !CHUNK_MASK).cast()
}

/// The slot index of `ptr` inside its chunk.
#[inline(always)]
pub(crate) fn slot_of(ptr: NonNull<u8>) -> usize {
    (ptr.as_ptr() as usize & CHUNK_MASK) >> SLOT_SHIFT
}

/// The first byte of slot `slot` of `chunk`.
#[inline(always)]
pub(crate) fn slot_start(chunk: *mut Chunk, slot: usize) -> *mut u8 {
    debug_assert!(slot < SLOTS_PER_CHUNK);
    chunk.cast::<u8>().wrapping_add(slot << SLOT_SHIFT)
}

/// Reads a slot's identity.
///
/// # Safety
/// `chunk` is a live chunk header and `slot < SLOTS_PER_CHUNK`.
#[inline(always)]
pub(crate) unsafe fn ident(chunk: *const Chunk, slot: usize) -> SlotIdent {
    // SAFETY: forwarded from the caller; idents are plain data written before the slot's
    // blocks were handed out.
    unsafe { ptr::read(addr_of!((*chunk).idents[slot])) }
}

/// Where a slot's `SlabMeta` lives.
///
/// # Safety
/// `chunk` is a live chunk header and `slot < SLOTS_PER_CHUNK`.
#[inline(always)]
pub(crate) unsafe fn meta_ptr(chunk: *mut Chunk, slot: usize) -> *mut SlabMeta {
    // SAFETY: forwarded from the caller; no reference to the header is created.
    unsafe { addr_of_mut!((*chunk).metas[slot]) }
}

/// What an acquired run of slots will hold.
#[derive(Copy, Clone)]
pub(crate) enum SlotUse {
    /// A small slab of this class.
    Small(u8),
    /// A large span.
    Large,
}

/// When released slots are purged: past a byte threshold (all of them), or past an age.
#[derive(Copy, Clone, Debug)]
pub(crate) struct PurgePolicy {
    /// Dirty bytes allowed before every dirty slot is purged.
    pub threshold_bytes: usize,
    /// Age at which a dirty slot is purged by the next slow path; `u64::MAX`: never.
    pub delay_ms: u64,
}

/// The chunk lock's state.
pub(crate) struct Chunks {
    /// All slab chunks: those with a free slot first, full ones after them.
    pub head: *mut Chunk,
    pub tail: *mut Chunk,
    pub chunk_count: usize,
    pub empty_count: usize,
    /// Free slots in `dirty_mask`s across all chunks.
    pub dirty_slots: usize,
    /// Bytes given back with `PageSource::purge` so far.
    pub purged_bytes: usize,
    /// At most the `dirty_since_ms` of every dirty slot (`u64::MAX` when none is dirty): the
    /// O(1) test of whether any slot may have outlived the purge delay. It can be older than
    /// the oldest dirty slot (that slot was reused or unmapped since); the next expiry walk
    /// makes it exact again.
    pub oldest_dirty_ms: u64,
    /// Live large spans and the slots they cover.
    pub large_count: usize,
    pub large_slots: usize,
    pub huge: HugeList,
    /// Requests refused (out of memory, bad layouts).
    pub failures: usize,
}

impl Chunks {
    pub(crate) const fn new() -> Self {
        Chunks {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            chunk_count: 0,
            empty_count: 0,
            dirty_slots: 0,
            purged_bytes: 0,
            oldest_dirty_ms: u64::MAX,
            large_count: 0,
            large_slots: 0,
            huge: HugeList::new(),
            failures: 0,
        }
    }

    /// Takes `count` contiguous free slots for `usage` and writes their identities. Returns the
    /// chunk, the first slot, and whether the slots read as zero.
    pub(crate) fn acquire<P: PageSource>(
        &mut self,
        pages: &P,
        count: usize,
        usage: SlotUse,
        owner_id: usize,
    ) -> Result<(*mut Chunk, usize, bool), AllocError> {
        debug_assert!((1..=SLOTS_PER_CHUNK - HEADER_SLOTS).contains(&count));
        let (chunk, first) = match self.find_free_run(count) {
            Some(found) => found,
            None => (self.map_chunk(pages, owner_id)?, HEADER_SLOTS),
        };
        if let SlotUse::Large = usage {
            // A span is one block across its slots: no guard page may stay inside it.
            // SAFETY: a live chunk, the chunk lock held, and the run is free.
            unsafe { unguard_run(pages, chunk, first, count)? };
        }
        // SAFETY: `chunk` is a live chunk of this list (found or just mapped) and we hold the
        // chunk lock (we are `&mut Chunks`), which guards its masks and links.
        unsafe {
            let c = state_of(chunk);
            let run = run_mask(first, count);
            debug_assert!(c.used_mask & run == 0);
            if c.used_mask == HEADER_MASK {
                self.empty_count -= 1;
            }
            let zeroed = c.zero_mask & run == run;
            self.dirty_slots -= (c.dirty_mask & run).count_ones() as usize;
            c.used_mask |= run;
            c.dirty_mask &= !run;
            c.zero_mask &= !run;
            for slot in first..first + count {
                let value = match usage {
                    SlotUse::Small(class) => SlotIdent::small(class),
                    SlotUse::Large if slot == first => SlotIdent::large_head(count as u16),
                    SlotUse::Large => SlotIdent::large_tail((slot - first) as u16),
                };
                set_ident(chunk, slot, value);
            }
            if c.used_mask == ALL_SLOTS_MASK {
                self.move_to_back(chunk);
            }
            Ok((chunk, first, zeroed))
        }
    }

    /// First fit over the chunks that have a free slot; for single slots, a dirty slot (pages
    /// probably still resident: no page faults) is preferred to a clean one.
    fn find_free_run(&self, count: usize) -> Option<(*mut Chunk, usize)> {
        let mut chunk = self.head;
        while !chunk.is_null() {
            // SAFETY: chunks on the list are live; the chunk lock is held.
            let c = unsafe { state_of(chunk) };
            let free = !c.used_mask & ALL_SLOTS_MASK;
            if free == 0 {
                return None; // full chunks sit at the back
            }
            if count == 1 {
                let dirty = free & c.dirty_mask;
                let pick = if dirty != 0 { dirty } else { free };
                return Some((chunk, pick.trailing_zeros() as usize));
            }
            if let Some(first) = first_run(free, count) {
                return Some((chunk, first));
            }
            chunk = c.next;
        }
        None
    }

    /// Maps and initialises a new chunk and puts it at the front of the list.
    fn map_chunk<P: PageSource>(
        &mut self,
        pages: &P,
        owner_id: usize,
    ) -> Result<*mut Chunk, AllocError> {
        let page_bytes = pages.page_size();
        if page_bytes > SLOT_BYTES || !page_bytes.is_power_of_two() {
            return Err(AllocError); // slots could not be purged one by one
        }
        let (raw, fresh_zero) = pages.map_reporting_zero(CHUNK_BYTES, CHUNK_BYTES)?;
        debug_assert!(
            raw.as_ptr() as usize & CHUNK_MASK == 0,
            "source broke alignment"
        );
        if raw.as_ptr() as usize & CHUNK_MASK != 0 {
            // SAFETY: the run was just mapped with this length.
            unsafe { pages.unmap(raw, CHUNK_BYTES) };
            return Err(AllocError);
        }
        let chunk = raw.as_ptr().cast::<Chunk>();
        let zero_mask = if fresh_zero {
            ALL_SLOTS_MASK & !HEADER_MASK
        } else {
            0
        };
        // SAFETY: the run is fresh, CHUNK_BYTES long and chunk-aligned, so the header fits in
        // slot 0 (asserted at compile time). Fields are written one by one through raw pointers;
        // `metas` stay uninitialised until a slot becomes a slab.
        unsafe {
            addr_of_mut!((*chunk).head).write(ChunkHead {
                magic: CHUNK_MAGIC,
                owner_id,
                small_tag: small_tag(owner_id),
            });
            #[cfg(feature = "hardened")]
            addr_of_mut!((*chunk).canary_secret).write(crate::canary::chunk_secret(chunk as usize));
            crate::chunk_map::insert(chunk as usize);
            addr_of_mut!((*chunk).idents).write([SlotIdent::FREE; SLOTS_PER_CHUNK]);
            for slot in 0..HEADER_SLOTS {
                addr_of_mut!((*chunk).idents[slot]).write(SlotIdent::HEADER);
            }
            addr_of_mut!((*chunk).state).write(ChunkState {
                used_mask: HEADER_MASK,
                dirty_mask: 0,
                zero_mask,
                guard_mask: 0,
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
                dirty_since_ms: [0; SLOTS_PER_CHUNK],
            });
        }
        self.chunk_count += 1;
        self.empty_count += 1;
        self.push_front(chunk);
        Ok(chunk)
    }

    /// Gives back `count` slots from `first`. They become dirty (stamped with the time); an
    /// empty chunk beyond the retained one is unmapped; then `policy` purges what is due.
    ///
    /// # Safety
    /// The slots are a run in use in `chunk` (a live chunk of this list) and nothing in them is
    /// used any more.
    pub(crate) unsafe fn release<P: PageSource>(
        &mut self,
        pages: &P,
        chunk: *mut Chunk,
        first: usize,
        count: usize,
        policy: PurgePolicy,
        retained_chunks: usize,
    ) {
        // SAFETY: the caller promises a live chunk; the chunk lock is held.
        let c = unsafe { state_of(chunk) };
        let run = run_mask(first, count);
        debug_assert!(c.used_mask & run == run && first >= 1);
        let was_full = c.used_mask == ALL_SLOTS_MASK;
        c.used_mask &= !run;
        c.dirty_mask |= run;
        self.dirty_slots += count;
        let now_ms = clock::now_ms();
        c.dirty_since_ms[first..first + count].fill(now_ms);
        self.oldest_dirty_ms = self.oldest_dirty_ms.min(now_ms);
        for slot in first..first + count {
            // SAFETY: the slots are ours and hold no live block any more.
            unsafe { set_ident(chunk, slot, SlotIdent::FREE) };
        }
        let now_empty = c.used_mask == HEADER_MASK;
        if was_full {
            self.unlink(chunk);
            self.push_front(chunk);
        }
        if now_empty {
            self.empty_count += 1;
            if self.empty_count > retained_chunks {
                // SAFETY: the chunk is empty, so nothing in it is used.
                unsafe { self.unmap_chunk(pages, chunk) };
            }
        }
        self.purge_due(pages, policy, now_ms);
    }

    /// Purges every dirty slot when they exceed the threshold, else those older than the
    /// delay. O(1) when nothing is due.
    pub(crate) fn purge_due<P: PageSource>(&mut self, pages: &P, policy: PurgePolicy, now_ms: u64) {
        if self.dirty_slots * SLOT_BYTES > policy.threshold_bytes {
            self.purge_dirty(pages);
        } else if self.dirty_slots > 0
            && clock::expired(self.oldest_dirty_ms, now_ms, policy.delay_ms)
        {
            self.purge_expired(pages, now_ms, policy.delay_ms);
        }
    }

    /// What a slow path that did not release anything (a refill, a new span) calls: reads the
    /// clock only when some slot is dirty and a delay is set.
    pub(crate) fn notice_expired<P: PageSource>(&mut self, pages: &P, policy: PurgePolicy) {
        if self.dirty_slots > 0 && policy.delay_ms != u64::MAX {
            self.purge_due(pages, policy, clock::now_ms());
        }
    }

    /// Purges the dirty slots that became dirty `delay_ms` or more before `now_ms`, and makes
    /// `oldest_dirty_ms` exact.
    fn purge_expired<P: PageSource>(&mut self, pages: &P, now_ms: u64, delay_ms: u64) {
        let mut oldest_ms = u64::MAX;
        let mut chunk = self.head;
        for _ in 0..self.chunk_count {
            if chunk.is_null() {
                break;
            }
            // SAFETY: a live chunk of the list; the chunk lock is held.
            let c = unsafe { state_of(chunk) };
            let mut expired_mask = 0u64;
            let mut dirty = c.dirty_mask;
            while dirty != 0 {
                let slot = dirty.trailing_zeros() as usize;
                dirty &= dirty - 1;
                let since_ms = c.dirty_since_ms[slot];
                if clock::expired(since_ms, now_ms, delay_ms) {
                    expired_mask |= 1 << slot;
                } else {
                    oldest_ms = oldest_ms.min(since_ms);
                }
            }
            let next = c.next;
            // SAFETY: live chunk, lock held, and `expired_mask` ⊆ its dirty slots.
            unsafe { self.purge_slots(pages, chunk, expired_mask) };
            chunk = next;
        }
        self.oldest_dirty_ms = oldest_ms;
    }

    /// Unmaps an empty chunk.
    ///
    /// # Safety
    /// `chunk` is an empty, live chunk of this list.
    pub(crate) unsafe fn unmap_chunk<P: PageSource>(&mut self, pages: &P, chunk: *mut Chunk) {
        // SAFETY: forwarded from the caller.
        let c = unsafe { state_of(chunk) };
        debug_assert_eq!(c.used_mask, HEADER_MASK);
        self.dirty_slots -= c.dirty_mask.count_ones() as usize;
        self.empty_count -= 1;
        self.chunk_count -= 1;
        self.unlink(chunk);
        // A stale pointer into the range fails the magic check should the range be reused.
        // SAFETY: the header is live until the unmap below.
        unsafe {
            addr_of_mut!((*chunk).head.magic).write(0);
            addr_of_mut!((*chunk).head.small_tag).write(0);
        }
        crate::chunk_map::remove(chunk as usize);
        // SAFETY: the chunk is a whole run mapped by `map_chunk`; nothing in it is used.
        unsafe { unmap_chunk_run(pages, chunk) };
    }

    /// Unmaps every empty chunk (even the retained ones).
    pub(crate) fn unmap_empty_chunks<P: PageSource>(&mut self, pages: &P) {
        let mut chunk = self.head;
        while !chunk.is_null() {
            // SAFETY: a live chunk of the list; the chunk lock is held.
            let (next, used) = unsafe { (state_of(chunk).next, state_of(chunk).used_mask) };
            if used == HEADER_MASK {
                // SAFETY: empty and live.
                unsafe { self.unmap_chunk(pages, chunk) };
            }
            chunk = next;
        }
    }

    /// Purges every dirty free slot, coalescing neighbours into one call.
    pub(crate) fn purge_dirty<P: PageSource>(&mut self, pages: &P) {
        let mut chunk = self.head;
        while !chunk.is_null() && self.dirty_slots > 0 {
            // SAFETY: a live chunk of the list; the chunk lock is held.
            let (next, dirty) = unsafe { (state_of(chunk).next, state_of(chunk).dirty_mask) };
            // SAFETY: as above; the mask is the chunk's own dirty set.
            unsafe { self.purge_slots(pages, chunk, dirty) };
            chunk = next;
        }
        self.oldest_dirty_ms = u64::MAX;
    }

    /// Purges the dirty slots of `chunk` in `mask`, one `purge` call per run of neighbours.
    ///
    /// # Safety
    /// `chunk` is a live chunk of this list, the chunk lock is held, and `mask` ⊆ its
    /// `dirty_mask`.
    unsafe fn purge_slots<P: PageSource>(&mut self, pages: &P, chunk: *mut Chunk, mask: u64) {
        // SAFETY: forwarded from the caller.
        let c = unsafe { state_of(chunk) };
        debug_assert!(mask & !c.dirty_mask == 0);
        let mut dirty = mask;
        while dirty != 0 {
            let first = dirty.trailing_zeros() as usize;
            let count = (!(dirty >> first)).trailing_zeros() as usize;
            let len_bytes = count * SLOT_BYTES;
            // SAFETY: the slots are free (dirty ⊆ free) and page-aligned (a slot is a
            // multiple of the page size, checked in `map_chunk`), inside a live run.
            unsafe { pages.purge(NonNull::new_unchecked(slot_start(chunk, first)), len_bytes) };
            self.purged_bytes += len_bytes;
            dirty &= !run_mask(first, count);
        }
        self.dirty_slots -= mask.count_ones() as usize;
        c.dirty_mask &= !mask;
    }

    /// Moves a chunk that just became full behind the ones with free slots.
    pub(crate) fn move_to_back(&mut self, chunk: *mut Chunk) {
        self.unlink(chunk);
        self.push_back(chunk);
    }

    fn push_front(&mut self, chunk: *mut Chunk) {
        // SAFETY: `chunk` and the list's chunks are live; the chunk lock is held.
        unsafe {
            state_of(chunk).prev = ptr::null_mut();
            state_of(chunk).next = self.head;
            if self.head.is_null() {
                self.tail = chunk;
            } else {
                state_of(self.head).prev = chunk;
            }
        }
        self.head = chunk;
    }

    fn push_back(&mut self, chunk: *mut Chunk) {
        // SAFETY: `chunk` and the list's chunks are live; the chunk lock is held.
        unsafe {
            state_of(chunk).next = ptr::null_mut();
            state_of(chunk).prev = self.tail;
            if self.tail.is_null() {
                self.head = chunk;
            } else {
                state_of(self.tail).next = chunk;
            }
        }
        self.tail = chunk;
    }

    fn unlink(&mut self, chunk: *mut Chunk) {
        // SAFETY: `chunk` is live and on the list, as are its neighbours; the chunk lock is held.
        unsafe {
            let (prev, next) = (state_of(chunk).prev, state_of(chunk).next);
            if prev.is_null() {
                self.head = next;
            } else {
                state_of(prev).next = next;
            }
            if next.is_null() {
                self.tail = prev;
            } else {
                state_of(next).prev = prev;
            }
        }
    }
}

/// The first position of `count` consecutive set bits in `free`.
fn first_run(free: u64, count: usize) -> Option<usize> {
    let want = run_mask(0, count);
    (HEADER_SLOTS..=SLOTS_PER_CHUNK - count).find(|&first| (free >> first) & want == want)
}
