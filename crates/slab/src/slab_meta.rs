//! `SlabMeta`: one slab's free-slot tracking — an intrusive LIFO free list plus a bump index
//! over never-used blocks (mimalloc's `free` list and page "extension", without its
//! thread-local sharding: a class lock already serialises callers).
//!
//! ```text
//!   slot (64 KiB)  ┌────┬────┬────┬────┬────┬────┬─────────────── … ──┬──────┐
//!                  │ b0 │ b1 │ b2 │ b3 │ b4 │ b5 │  never touched      │ tail │
//!                  └────┴─▲──┴────┴─▲──┴────┴────┴─────────────── … ──┴──────┘
//!   free ──────────────── b3 ──► b1 ──► null          fresh = 6 (b6.. untouched)
//! ```
//!
//! Why a free list and not jemalloc's bitmap: pop and push are two loads and a store with no
//! search, and a freed block is handed out again while it is still in cache (LIFO). The bitmap's
//! advantages (address-ordered reuse, metadata away from user memory) are kept where they are
//! cheap: with `debug_assertions` or the `checked` feature a per-slab *live* bitmap shadows the
//! list and catches double frees exactly. The bump index means a new slab costs no page faults
//! until its blocks are really used.

use crate::classes::{block_index, class_capacity, is_block_offset, CLASS_BYTES, MIN_BLOCK_BYTES};
use crate::geometry::SLOT_BYTES;
use core::ptr::{self, NonNull};

/// Whether the live bitmaps are kept (debug builds, or the `checked` feature).
pub(crate) const CHECKS: bool = cfg!(any(debug_assertions, feature = "checked"));

/// Whether the `secure` feature's hardening is on: encoded links, the free mark, shuffled
/// fresh blocks and guard pages (see `heapkit_core::secure`).
pub(crate) const SECURE: bool = cfg!(feature = "secure");

/// With `secure`, a slab whose free list is empty moves up to this many never-used blocks onto
/// it in a random order, so consecutive allocations are not adjacent in memory.
const SHUFFLE_BLOCKS_MAX: usize = 8;

const _: () = assert!(
    SHUFFLE_BLOCKS_MAX <= 8,
    "one 64-bit draw gives eight bits to each of at most eight swaps"
);

const BITS_PER_WORD: usize = u64::BITS as usize;
/// Words of live bitmap per slab: one bit per block of the smallest class.
pub(crate) const LIVE_WORDS: usize = SLOT_BYTES / MIN_BLOCK_BYTES / BITS_PER_WORD;

/// A freed block: its first word links to the next free block of the same slab.
#[repr(C)]
pub(crate) struct FreeBlock {
    next: *mut FreeBlock,
}

const _: () = assert!(core::mem::size_of::<FreeBlock>() <= MIN_BLOCK_BYTES);

/// The state of one small slab. Lives in the chunk header; guarded by its class's lock.
#[repr(C)]
pub(crate) struct SlabMeta {
    /// Freed blocks, most recent first.
    pub free: *mut FreeBlock,
    /// The slot's first byte: block `i` is at `start + i * block_bytes`.
    pub start: *mut u8,
    /// Links in the class's list of slabs with room (valid while `listed`).
    pub next: *mut SlabMeta,
    pub prev: *mut SlabMeta,
    pub block_bytes: u32,
    pub capacity: u32,
    /// Blocks `fresh..capacity` have never been handed out.
    pub fresh: u32,
    /// Live blocks.
    pub used: u32,
    pub class: u8,
    /// Whether the slab is in its class's list (it is exactly when it has room).
    pub listed: bool,
    /// Whether never-used blocks read as zero (the slot was fresh from a zeroing source).
    pub fresh_zeroed: bool,
    /// Whether the slot's last page is a guard page (`secure`), to be made accessible again
    /// when the slot is released.
    pub guarded: bool,
    /// One bit per block, set while the block is live (only maintained when `CHECKS`).
    pub live: [u64; LIVE_WORDS],
}

impl SlabMeta {
    /// Initialises the slab of `class` over the slot at `start`.
    ///
    /// # Safety
    /// `this` is valid for writes and not referenced elsewhere; `start` is a slot of
    /// `SLOT_BYTES` owned by the caller.
    pub(crate) unsafe fn init(this: *mut SlabMeta, start: *mut u8, class: usize, zeroed: bool) {
        let meta = SlabMeta {
            free: ptr::null_mut(),
            start,
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
            block_bytes: CLASS_BYTES[class],
            capacity: class_capacity(class) as u32,
            fresh: 0,
            used: 0,
            class: class as u8,
            listed: false,
            fresh_zeroed: zeroed,
            guarded: false,
            live: [0; LIVE_WORDS],
        };
        if SECURE {
            // Drawn before the first link of this slab is encoded (see heapkit_core::secure).
            heapkit_core::secure::key();
        }
        // SAFETY: the caller promises `this` is valid for writes. (The 512-byte bitmap is
        // written either way; it sits in the header, away from the blocks.)
        unsafe { ptr::write(this, meta) };
    }

    /// Whether a block can be popped.
    #[inline(always)]
    pub(crate) fn has_room(&self) -> bool {
        !self.free.is_null() || self.fresh < self.capacity
    }

    /// Takes a block; returns it and whether it is known to read as zero.
    ///
    /// # Safety
    /// `self.has_room()`; the free list holds only blocks of this slab.
    #[inline(always)]
    pub(crate) unsafe fn pop(&mut self) -> (NonNull<u8>, bool) {
        debug_assert!(self.has_room());
        if SECURE && self.free.is_null() {
            self.shuffle_fresh_onto_list();
        }
        let (block, zeroed) = if !self.free.is_null() {
            let block = self.free;
            // SAFETY: `block` is a freed block of this slab (the list's invariant), whose first
            // word holds the link written by `push`.
            self.free = unsafe { self.link_of(block) };
            debug_assert!(self.free.is_null() || self.contains(self.free.cast()));
            if SECURE {
                self.check_link(block, self.free);
                // SAFETY: the block is ours; clearing the link and the mark leaves no secret
                // in the caller's memory.
                unsafe { block.cast::<[usize; 2]>().write([0, 0]) };
            }
            (block.cast::<u8>(), false)
        } else {
            // SAFETY: `fresh < capacity`, so the block lies inside the slot.
            let block = unsafe {
                self.start
                    .add(self.fresh as usize * self.block_bytes as usize)
            };
            self.fresh += 1;
            (block, self.fresh_zeroed)
        };
        self.used += 1;
        if CHECKS {
            let index = self.index_of(block);
            debug_assert!(!self.is_live(index), "popped a live block");
            self.live[index / BITS_PER_WORD] |= 1 << (index % BITS_PER_WORD);
        }
        // SAFETY: derived from `start`, which is non-null.
        (unsafe { NonNull::new_unchecked(block) }, zeroed)
    }

    /// Checks that `block` may be pushed: a cheap test always, an exact one with `CHECKS`.
    #[inline(always)]
    pub(crate) fn validate_free(&self, block: NonNull<u8>) -> Result<(), &'static str> {
        if self.used == 0 || block.as_ptr() == self.free.cast::<u8>() {
            return Err("double free of a small block");
        }
        if CHECKS {
            let offset = block.as_ptr() as usize - self.start as usize;
            if !is_block_offset(self.class as usize, offset) {
                return Err("free of a pointer into the middle of a small block");
            }
            let index = block_index(self.class as usize, offset);
            if index >= self.fresh as usize || !self.is_live(index) {
                return Err("double free of a small block");
            }
        }
        Ok(())
    }

    /// Returns a block to the free list.
    ///
    /// # Safety
    /// `block` is a live block of this slab (see `validate_free`) that nobody uses any more.
    #[inline(always)]
    pub(crate) unsafe fn push(&mut self, block: NonNull<u8>) {
        debug_assert!(self.used > 0 && self.contains(block.as_ptr()));
        let node = block.cast::<FreeBlock>().as_ptr();
        // SAFETY: the block is ours again, at least 16 bytes and 16-aligned, so it can hold the
        // link (and, with `secure`, the free mark in its second word).
        unsafe { self.set_link(node, self.free) };
        self.free = node;
        self.used -= 1;
        if CHECKS {
            let index = self.index_of(block.as_ptr());
            self.live[index / BITS_PER_WORD] &= !(1 << (index % BITS_PER_WORD));
        }
    }

    /// The link stored in free block `node` (decoded with `secure`).
    ///
    /// # Safety
    /// `node` is a block of this slab that `set_link` wrote.
    #[inline(always)]
    unsafe fn link_of(&self, node: *mut FreeBlock) -> *mut FreeBlock {
        // SAFETY: forwarded from the caller.
        let stored = unsafe { (*node).next };
        if SECURE {
            let next = heapkit_core::secure::decode_link(stored as usize, node as usize);
            return node.with_addr(next);
        }
        stored
    }

    /// Writes free block `node`'s link to `next` (encoded, plus the free mark, with `secure`).
    ///
    /// # Safety
    /// `node` is a free block of this slab, at least two words long, that nobody uses.
    #[inline(always)]
    unsafe fn set_link(&self, node: *mut FreeBlock, next: *mut FreeBlock) {
        if SECURE {
            let secrets = heapkit_core::secure::Secrets::read();
            let stored = secrets.encode_link(next as usize, node as usize);
            let mark = secrets.free_mark();
            // SAFETY: forwarded from the caller (blocks are at least 16 bytes).
            unsafe { node.cast::<[usize; 2]>().write([stored, mark]) };
        } else {
            // SAFETY: forwarded from the caller.
            unsafe { node.write(FreeBlock { next }) };
        }
    }

    /// With `secure`: a decoded link must be null or the start of a block of this slab;
    /// anything else means a free block was overwritten, and continuing would hand out memory
    /// the attacker chose.
    #[inline(always)]
    fn check_link(&self, from: *mut FreeBlock, next: *mut FreeBlock) {
        if next.is_null() {
            return;
        }
        let offset = (next as usize).wrapping_sub(self.start as usize);
        // `contains` first: it bounds the offset below the slot size, as the test needs.
        if !self.contains(next.cast()) || !is_block_offset(self.class as usize, offset) {
            heapkit_core::fatal(
                "heapkit-slab",
                "free list corrupted: a freed block was overwritten",
                from as usize,
            );
        }
    }

    /// With `secure`: moves up to `SHUFFLE_BLOCKS_MAX` never-used blocks onto the empty free
    /// list in a random order. Their zeroed state is given up (the links are written into them).
    #[cold]
    fn shuffle_fresh_onto_list(&mut self) {
        let count = (self.capacity - self.fresh).min(SHUFFLE_BLOCKS_MAX as u32) as usize;
        let mut order = [0u32; SHUFFLE_BLOCKS_MAX];
        for (i, entry) in order.iter_mut().enumerate().take(count) {
            *entry = self.fresh + i as u32;
        }
        // One 64-bit draw serves the whole batch: eight bits per swap, scaled to the range by a
        // multiply (no division and no second draw; the bias of at most 8/256 per pick is far
        // below what would help an attacker predict which neighbour comes next).
        let random = heapkit_core::secure::mix(
            heapkit_core::secure::key() ^ self.start as usize ^ self.fresh as usize,
        );
        for i in (1..count).rev() {
            let byte = (random >> (8 * (i % 8))) & 0xff;
            let j = (byte * (i + 1)) >> 8;
            order.swap(i, j);
        }
        self.fresh += count as u32;
        for &index in &order[..count] {
            // SAFETY: `index < capacity`, so the block lies inside the slot; it was never
            // handed out, so nobody uses it.
            unsafe {
                let node = self
                    .start
                    .add(index as usize * self.block_bytes as usize)
                    .cast::<FreeBlock>();
                self.set_link(node, self.free);
                self.free = node;
            }
        }
    }

    /// Whether `ptr` lies among this slab's blocks.
    pub(crate) fn contains(&self, ptr: *const u8) -> bool {
        let start = self.start as usize;
        let addr = ptr as usize;
        addr >= start && addr - start < self.capacity as usize * self.block_bytes as usize
    }

    /// The index of the block at `ptr` (which lies in the slab).
    pub(crate) fn index_of(&self, ptr: *const u8) -> usize {
        block_index(self.class as usize, ptr as usize - self.start as usize)
    }

    pub(crate) fn is_live(&self, index: usize) -> bool {
        self.live[index / BITS_PER_WORD] >> (index % BITS_PER_WORD) & 1 == 1
    }

    /// Calls `f` with the index of every free block on the list, at most `fresh` of them (a
    /// corrupt, cyclic list stops there); returns how many it visited.
    pub(crate) fn for_each_listed_free(&self, mut f: impl FnMut(usize, *const u8)) -> usize {
        let mut node = self.free;
        let mut count = 0;
        while !node.is_null() && count <= self.fresh as usize {
            f(count, node.cast::<u8>());
            count += 1;
            if !self.contains(node.cast()) {
                break;
            }
            // SAFETY: `node` lies in this slab (checked just above) and is on the free list, so
            // its first word is a link written by `push`.
            node = unsafe { self.link_of(node) };
        }
        count
    }
}
