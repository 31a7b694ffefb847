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
//!
//! With `secure`, never-used blocks are handed out in a random order through a *window*: the
//! next (up to) 8 never-used blocks, their offsets shuffled into 8 bytes of the metadata.
//! Nothing is written into the blocks (no links to encode, decode and check, and they keep
//! reading as zero), so a fresh block costs a byte load and a multiply, as the bump index
//! does; the shuffle costs one swap per block.
//!
//! ```text
//!   blocks   … │ w+0 │ w+1 │ w+2 │ … │ w+7 │ fresh …  never touched
//!   window = [ 5, 1, 6, 2, 4, 7, 0, 3 ]   window_left = 8: next w+3, then w+0, w+7, …
//! ```

use crate::classes::{
    block_index, block_position_by, class_capacity, is_block_offset, CLASS_BYTES,
    CLASS_DIVISIBILITY, MIN_BLOCK_BYTES,
};
use crate::geometry::SLOT_BYTES;
use core::ptr::{self, NonNull};
use heapkit_core::secure::Secrets;

/// Whether the live bitmaps are kept (debug builds, or the `checked` feature).
pub(crate) const CHECKS: bool = cfg!(any(debug_assertions, feature = "checked"));

/// Whether the `secure` feature's hardening is on: encoded links, the free mark, shuffled
/// fresh blocks and guard pages (see `heapkit_core::secure`).
pub(crate) const SECURE: bool = cfg!(feature = "secure");

/// With `secure`, never-used blocks are handed out from a window of up to this many, in a
/// random order, so consecutive allocations are not adjacent in memory.
///
/// Why 8 and not more: the order's real cost is not its instructions but locality. Objects a
/// program allocates one after another and later walks in that order are no longer
/// neighbours, and the walk loses the hardware prefetcher. On the python3 benchmark (see the
/// README) a window of 16 took ~10 ms more wall time than 8, for the same instructions.
pub(crate) const WINDOW_BLOCKS_MAX: usize = 8;
/// The window in ascending order: entry `i` is `i`.
const WINDOW_IDENTITY: [u8; WINDOW_BLOCKS_MAX] = {
    let mut order = [0u8; WINDOW_BLOCKS_MAX];
    let mut i = 0;
    while i < WINDOW_BLOCKS_MAX {
        order[i] = i as u8;
        i += 1;
    }
    order
};

const _: () = assert!(WINDOW_BLOCKS_MAX <= u8::MAX as usize, "offsets are bytes");
const _: () = assert!(
    WINDOW_BLOCKS_MAX <= 8,
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
    /// Blocks `fresh..capacity` have never been handed out (nor have the window's).
    pub fresh: u32,
    /// Live blocks.
    pub used: u32,
    pub class: u8,
    /// Whether the slab is in its class's list (it is exactly when it has room).
    pub listed: bool,
    /// Whether never-used blocks read as zero (the slot was fresh from a zeroing source).
    pub fresh_zeroed: bool,
    /// Whether the slot's last page is a guard page (`secure`; the chunk's `guard_mask` says
    /// the same, and keeps the guard after the slab is gone).
    pub guarded: bool,
    /// `CLASS_DIVISIBILITY[class]`, kept here for the free path's block-start test and index
    /// (the slab's own cache line rather than a table lookup).
    pub divisibility: u64,
    /// With `secure`: the shuffled never-used blocks, as offsets from `window_base`; entries
    /// `..window_left` are still to hand out, the last of them next (see the module docs).
    /// Unused otherwise.
    pub window: [u8; WINDOW_BLOCKS_MAX],
    /// The first block of the window.
    pub window_base: u32,
    /// Entries of `window` still to hand out (0 when the window is spent).
    pub window_left: u32,
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
            divisibility: CLASS_DIVISIBILITY[class],
            window: [0; WINDOW_BLOCKS_MAX],
            window_base: 0,
            window_left: 0,
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

    /// Gives up the blocks that overlap the slot's last `guard_bytes` (its guard page), before
    /// any block is handed out.
    pub(crate) fn exclude_guard(&mut self, guard_bytes: usize) {
        debug_assert!(self.fresh == 0 && guard_bytes < SLOT_BYTES);
        self.guarded = true;
        self.capacity = self
            .capacity
            .min((SLOT_BYTES - guard_bytes) as u32 / self.block_bytes);
    }

    /// Whether a block can be popped.
    #[inline(always)]
    pub(crate) fn has_room(&self) -> bool {
        // With `secure`, `fresh - window_left` never-used blocks were handed out: one compare
        // covers the window and the blocks past it.
        let handed_out = if SECURE {
            self.fresh - self.window_left
        } else {
            self.fresh
        };
        !self.free.is_null() || handed_out < self.capacity
    }

    /// Takes a block; returns it and whether it is known to read as zero.
    ///
    /// # Safety
    /// `self.has_room()`; the free list holds only blocks of this slab.
    #[inline(always)]
    pub(crate) unsafe fn pop(&mut self) -> (NonNull<u8>, bool) {
        debug_assert!(self.has_room());
        // The block's index is known without a multiply except for a list pop (and only used
        // with `CHECKS`, so the compiler drops it otherwise).
        let (block, index, zeroed) = if !self.free.is_null() {
            let block = self.free;
            if SECURE {
                // SAFETY: `block` is the head of this slab's free list. (The checks inside run
                // before the debug assertion below, so an overwritten block gets its clear
                // message in debug builds too.)
                self.free = unsafe { self.checked_link_of(block) };
                // SAFETY: the block is ours; clearing the link and the mark leaves no secret
                // in the caller's memory.
                unsafe { block.cast::<[usize; 2]>().write([0, 0]) };
            } else {
                // SAFETY: `block` is a freed block of this slab (the list's invariant), whose
                // first word holds the link written by `push`.
                self.free = unsafe { self.link_of(block) };
            }
            debug_assert!(self.free.is_null() || self.contains(self.free.cast()));
            let block = block.cast::<u8>();
            (block, self.index_of(block), false)
        } else if SECURE {
            let (block, index) = self.take_from_window();
            (block, index, self.fresh_zeroed)
        } else {
            let index = self.fresh as usize;
            // SAFETY: `fresh < capacity`, so the block lies inside the slot.
            let block = unsafe { self.start.add(index * self.block_bytes as usize) };
            self.fresh += 1;
            (block, index, self.fresh_zeroed)
        };
        self.used += 1;
        if CHECKS {
            debug_assert_eq!(index, self.index_of(block));
            debug_assert!(!self.is_live(index), "popped a live block");
            let (word, bit) = live_position(index);
            self.live[word] |= bit;
        }
        // SAFETY: derived from `start`, which is non-null.
        (unsafe { NonNull::new_unchecked(block) }, zeroed)
    }

    /// Checks that `block` may be pushed, cheaply: the slab has live blocks and `block` is
    /// not the one freed last. Without `CHECKS` only: with them, the exact
    /// [`live_index`](Self::live_index) stands in for it.
    #[inline(always)]
    pub(crate) fn validate_free(&self, block: NonNull<u8>) -> Result<(), &'static str> {
        if self.used == 0 || block.as_ptr() == self.free.cast::<u8>() {
            return Err("double free of a small block");
        }
        Ok(())
    }

    /// With `CHECKS` (the live bitmap is kept): the exact test — `block` starts a block and
    /// that block is live — and the block's index, which [`push`](Self::push) takes so that
    /// it is computed once. The caller has passed `validate_free` first.
    #[inline(always)]
    pub(crate) fn live_index(&self, block: NonNull<u8>) -> Result<usize, &'static str> {
        let offset = block.as_ptr() as usize - self.start as usize;
        let Some(index) = block_position_by(self.divisibility, offset) else {
            return Err("free of a pointer into the middle of a small block");
        };
        // Only handed-out blocks (below `fresh`, never in the window) are ever live.
        if !self.is_live(index) {
            return Err("double free of a small block");
        }
        Ok(index)
    }

    /// Returns a block to the free list. `index` is what `live_index` returned (with
    /// `CHECKS`; anything otherwise); `secrets` is [`Secrets::read_if`]`(SECURE)`, read once
    /// by the caller for all its blocks.
    ///
    /// # Safety
    /// `block` is a live block of this slab (see `validate_free`) that nobody uses any more.
    #[inline(always)]
    pub(crate) unsafe fn push(
        &mut self,
        block: NonNull<u8>,
        index: usize,
        secrets: Option<Secrets>,
    ) {
        debug_assert!(self.used > 0 && self.contains(block.as_ptr()));
        debug_assert!(!CHECKS || index == self.index_of(block.as_ptr()));
        let node = block.cast::<FreeBlock>().as_ptr();
        // SAFETY: the block is ours again, at least 16 bytes and 16-aligned, so it can hold the
        // link (and, with `secure`, the free mark in its second word).
        unsafe { self.set_link(node, self.free, secrets) };
        self.free = node;
        self.used -= 1;
        if CHECKS {
            let (word, bit) = live_position(index);
            // The bit is set (`live_index` found the block live): flipping it clears it, with
            // no complement of the mask first.
            debug_assert!(
                self.live[word] & bit != 0,
                "pushed a block that is not live"
            );
            self.live[word] ^= bit;
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

    /// Writes free block `node`'s link to `next` (encoded, plus the free mark, with `secure`:
    /// `secrets` is then `Some`).
    ///
    /// # Safety
    /// `node` is a free block of this slab, at least two words long, that nobody uses.
    #[inline(always)]
    unsafe fn set_link(
        &self,
        node: *mut FreeBlock,
        next: *mut FreeBlock,
        secrets: Option<Secrets>,
    ) {
        if SECURE {
            // (Callers pass `Secrets::read_if(SECURE)`, never `None` here; reading the key
            // again would only cost a load.)
            let secrets = secrets.unwrap_or_else(Secrets::read);
            let words = secrets.free_words(next as usize, node as usize);
            // SAFETY: forwarded from the caller (blocks are at least 16 bytes).
            unsafe { node.cast::<[usize; 2]>().write(words) };
        } else {
            // SAFETY: forwarded from the caller.
            unsafe { node.write(FreeBlock { next }) };
        }
    }

    /// With `secure`: whether `block`'s first two words are a stored link and its free mark
    /// (for `check()`; a pop makes the same test in [`checked_link_of`](Self::checked_link_of)).
    ///
    /// # Safety
    /// `block` is the start of a block of this slab.
    pub(crate) unsafe fn carries_free_mark(&self, block: *const u8) -> bool {
        debug_assert!(self.contains(block));
        // SAFETY: forwarded from the caller: blocks are at least two aligned words.
        let words = unsafe { block.cast::<[usize; 2]>().read() };
        Secrets::read().is_marked_free(words)
    }

    /// With `secure`, for a pop: the link of free block `node`, after checking that `node`
    /// still carries the free mark of its stored link and that the decoded link is null or the
    /// start of a block of this slab. Anything else means a free block was overwritten, and
    /// continuing would hand out memory the attacker chose. (The mark catches every write over
    /// the link alone; the slab test also catches a forged pair that decodes outside the slab.)
    /// The key is read once for both uses.
    ///
    /// # Safety
    /// `node` is the head of this slab's free list.
    #[inline(always)]
    unsafe fn checked_link_of(&self, node: *mut FreeBlock) -> *mut FreeBlock {
        let secrets = Secrets::read();
        // SAFETY: forwarded from the caller: a free block of this slab, at least two words.
        let words = unsafe { node.cast::<[usize; 2]>().read() };
        let next = node.with_addr(secrets.decode_link(words[0], node as usize));
        let offset = (next as usize).wrapping_sub(self.start as usize);
        // `contains` first: it bounds the offset below the slot size, as the test needs.
        let in_slab = next.is_null()
            || (self.contains(next.cast()) && is_block_offset(self.class as usize, offset));
        if !secrets.is_marked_free(words) || !in_slab {
            heapkit_core::fatal(
                "heapkit-slab",
                "free list corrupted: a freed block was overwritten (a write after free)",
                node as usize,
            );
        }
        next
    }

    /// With `secure`: the next never-used block, in the window's shuffled order (a new
    /// window when the last one is spent).
    ///
    /// Called only when the free list is empty and the slab has room.
    #[inline(always)]
    fn take_from_window(&mut self) -> (*mut u8, usize) {
        if self.window_left == 0 {
            self.open_window();
        }
        debug_assert!(self.window_left > 0);
        let left = self.window_left - 1;
        self.window_left = left;
        // `% WINDOW_BLOCKS_MAX`: `left` is below it (a mask, not a bounds check).
        let offset = self.window[left as usize % WINDOW_BLOCKS_MAX];
        let index = (self.window_base + offset as u32) as usize;
        debug_assert!(index < self.fresh as usize);
        // SAFETY: window entries are below `fresh <= capacity`, so the block lies in the slot.
        let block = unsafe { self.start.add(index * self.block_bytes as usize) };
        (block, index)
    }

    /// With `secure`, for a batch: takes never-used blocks — the window's, then new windows' —
    /// into `out` until it is full or the slab has none left; returns how many. The same
    /// blocks, in the same order, as that many [`pop`](Self::pop)s of a slab whose free list
    /// is empty, with the per-block bookkeeping (`used`, the loop's tests) done once for the
    /// run: a refill of a growing class is almost all fresh blocks, and this is ~30
    /// instructions per block fewer than popping them one by one.
    ///
    /// The free list is empty and `out` is not (so the slab has room).
    #[inline(always)]
    pub(crate) fn take_fresh_run(&mut self, out: &mut [*mut u8]) -> usize {
        debug_assert!(SECURE && self.free.is_null() && self.has_room() && !out.is_empty());
        let mut taken = 0;
        while taken < out.len() {
            if self.window_left == 0 {
                if self.fresh == self.capacity {
                    break;
                }
                self.open_window();
            }
            // The window's fields in locals for the run (the loop then keeps them in
            // registers): entries `left - 1`, `left - 2`, … as `take_from_window` would.
            let left = self.window_left as usize;
            let run = left.min(out.len() - taken);
            let (window, base) = (self.window, self.window_base as usize);
            let (start, block_bytes) = (self.start, self.block_bytes as usize);
            for (k, entry) in out[taken..taken + run].iter_mut().enumerate() {
                // `% WINDOW_BLOCKS_MAX`: `left - 1 - k` is below it (a mask, not a bounds check).
                let index = base + window[(left - 1 - k) % WINDOW_BLOCKS_MAX] as usize;
                debug_assert!(index < self.fresh as usize);
                if CHECKS {
                    debug_assert!(!self.is_live(index), "popped a live block");
                    let (word, bit) = live_position(index);
                    self.live[word] |= bit;
                }
                // SAFETY: window entries are below `fresh <= capacity`: the block lies in the
                // slot.
                *entry = unsafe { start.add(index * block_bytes) };
            }
            self.window_left = (left - run) as u32;
            taken += run;
        }
        self.used += taken as u32;
        taken
    }

    /// With `secure`: takes the next `WINDOW_BLOCKS_MAX` (or fewer) never-used blocks into a
    /// window in a random order (a Fisher-Yates shuffle of their offsets).
    #[cold]
    #[inline(never)]
    fn open_window(&mut self) {
        debug_assert!(self.window_left == 0 && self.fresh < self.capacity);
        let count = (self.capacity - self.fresh).min(WINDOW_BLOCKS_MAX as u32);
        // One 64-bit draw serves the whole window: eight bits per swap, scaled to the range by
        // a multiply (no division; the bias of at most 8/256 per pick is far below what would
        // help an attacker predict which neighbour comes next). The key keeps the order secret.
        let draw = heapkit_core::secure::mix(
            heapkit_core::secure::key() ^ self.start as usize ^ self.fresh as usize,
        );
        self.window = shuffled_window(count as usize, draw);
        self.window_base = self.fresh;
        self.window_left = count;
        self.fresh += count;
    }

    /// Calls `f` with the index of every block still in the window.
    pub(crate) fn for_each_window_block(&self, mut f: impl FnMut(usize)) {
        let left = (self.window_left as usize).min(WINDOW_BLOCKS_MAX);
        for &offset in &self.window[..left] {
            f(self.window_base as usize + offset as usize);
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
        let (word, bit) = live_position(index);
        self.live[word] & bit != 0
    }

    /// Never-used blocks: past `fresh`, and those still in the window.
    pub(crate) fn untouched(&self) -> usize {
        (self.capacity - self.fresh + self.window_left) as usize
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

/// The word and bit of block `index` in a live bitmap. Indices are below `LIVE_WORDS * 64`
/// (a slot holds at most that many blocks); the word is masked rather than bounds-checked,
/// so the free paths have no panic branch.
#[inline(always)]
fn live_position(index: usize) -> (usize, u64) {
    debug_assert!(index < LIVE_WORDS * BITS_PER_WORD);
    (
        (index / BITS_PER_WORD) % LIVE_WORDS,
        1 << (index % BITS_PER_WORD),
    )
}

const _: () = assert!(LIVE_WORDS.is_power_of_two(), "the word index is masked");

/// The identity window of `count` entries in a random order: a Fisher-Yates shuffle driven by
/// `draw` (one byte per swap). Entries from `count` on keep their identity value.
#[inline(always)]
fn shuffled_window(count: usize, draw: usize) -> [u8; WINDOW_BLOCKS_MAX] {
    debug_assert!((1..=WINDOW_BLOCKS_MAX).contains(&count));
    #[inline(always)]
    fn step(order: &mut [u8; WINDOW_BLOCKS_MAX], i: usize, draw: usize) {
        let byte = (draw >> (8 * (i % 8))) & 0xff;
        let j = (byte * (i + 1)) >> 8;
        order.swap(i, j % WINDOW_BLOCKS_MAX);
    }
    let mut order = WINDOW_IDENTITY;
    if count == WINDOW_BLOCKS_MAX {
        // Every window but a slab's last: a constant trip count, so the loop unrolls.
        for i in (1..WINDOW_BLOCKS_MAX).rev() {
            step(&mut order, i, draw);
        }
    } else {
        for i in (1..count).rev() {
            step(&mut order, i, draw);
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffled_windows_are_permutations_and_vary() {
        let mut distinct_last = 0u64;
        for seed in 0..64usize {
            let draw = heapkit_core::secure::mix(seed);
            for count in 1..=WINDOW_BLOCKS_MAX {
                let order = shuffled_window(count, draw);
                let mut seen = 0u64;
                for &entry in &order[..count] {
                    seen |= 1 << entry;
                }
                assert_eq!(seen, (1u64 << count) - 1, "a permutation of 0..{count}");
                if count == WINDOW_BLOCKS_MAX {
                    // The entry handed out first.
                    distinct_last |= 1 << order[count - 1];
                }
            }
        }
        assert!(
            distinct_last.count_ones() as usize == WINDOW_BLOCKS_MAX,
            "the first block of a full window varies: {distinct_last:#x}"
        );
    }

    /// A refill's run of never-used blocks is exactly that many pops: the same blocks in the
    /// same order, the same live bits, the same window left over.
    #[cfg(feature = "secure")]
    #[test]
    fn a_fresh_run_takes_what_pops_would() {
        use std::boxed::Box;
        use std::mem::MaybeUninit;
        // A slot's worth of memory, so that every block address lies in it (fresh blocks are
        // only addressed here, never written).
        let mut slot = std::vec![0u8; SLOT_BYTES];
        let start = slot.as_mut_ptr();
        let class = 3;
        let fresh_meta = || {
            let mut meta = Box::new(MaybeUninit::<SlabMeta>::uninit());
            // SAFETY: the box is ours to write; `start` is only used for addresses here.
            unsafe { SlabMeta::init(meta.as_mut_ptr(), start, class, false) };
            // SAFETY: initialised just above.
            unsafe { Box::from_raw(Box::into_raw(meta).cast::<SlabMeta>()) }
        };
        let (mut popped, mut run) = (fresh_meta(), fresh_meta());
        for wanted in [1, 5, 8, 13, 30] {
            let mut by_pops = std::vec::Vec::new();
            for _ in 0..wanted {
                // SAFETY: the slab has room (far fewer blocks than its capacity are taken).
                by_pops.push(unsafe { popped.pop() }.0.as_ptr());
            }
            let mut by_run = std::vec![core::ptr::null_mut(); wanted];
            assert_eq!(run.take_fresh_run(&mut by_run), wanted);
            assert_eq!(by_run, by_pops);
            assert_eq!((run.used, run.fresh), (popped.used, popped.fresh));
            assert_eq!(
                (run.window, run.window_left),
                (popped.window, popped.window_left)
            );
            assert_eq!(run.live, popped.live);
        }
    }
}
