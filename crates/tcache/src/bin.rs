//! A bin: one size class's cached free blocks for one thread, as an intrusive LIFO list.
//!
//! The link lives in the first word of each free block (the glibc tcache and mimalloc shape), so
//! a bin is 16 bytes whatever its capacity, and a magazine (all the bins of one thread for one
//! cache) for ~50 classes fits in a few cache lines. A pointer array (jemalloc's shape) would
//! spare the one read of the block on `pop`, at the cost of `limit` words per bin.
//!
//! ```text
//!   Bin { head ─► [next]─► [next]─► [null]   count = 3, limit = 64 }
//! ```
//!
//! Every function here takes a raw `*mut Bin`: a bin is touched only by the thread that holds
//! the slot its magazine belongs to, so there is never a shared reference to one.

use core::mem::MaybeUninit;
use core::ptr;
use heapkit_core::secure::Secrets;

/// Whether the `secure` feature's hardening is on: links stored encoded with the process key
/// and the free mark in every cached block's second word (see `heapkit_core::secure`).
pub const SECURE: bool = cfg!(feature = "secure");

/// The smallest block a bin caches: one word for the link, two with `secure` (the mark).
pub const MIN_CACHED_BYTES: usize = if SECURE {
    2 * heapkit_core::WORD_BYTES
} else {
    heapkit_core::WORD_BYTES
};

/// The largest number of blocks a bin may hold (a limit on everything): it bounds the memory an
/// idle thread can keep. 1024 lets the common "allocate a thousand, free them all" pattern stay
/// entirely in the cache for classes up to 64 B.
pub const BIN_BLOCKS_MAX: u32 = 1024;

/// How many bytes of blocks a bin may hold: small classes get many blocks, large ones few.
pub const BIN_TARGET_BYTES: usize = 256 * 1024;

/// A bin never holds fewer than this many blocks, so large classes still amortise the backend.
pub const BIN_BLOCKS_MIN: u32 = 4;

/// Blocks moved per backend call (the size of the stack buffer of a refill or flush; larger
/// moves take several calls).
pub const BATCH_BLOCKS_MAX: usize = 128;

/// The first refill of a bin takes this many blocks; each later refill doubles it up to half the
/// bin's limit, so a class used once costs little memory and a hot class few trips.
pub const FIRST_REFILL_BLOCKS: u32 = 8;

const _: () = assert!(BIN_BLOCKS_MIN >= 2 && BIN_BLOCKS_MIN <= BIN_BLOCKS_MAX);
const _: () = assert!(
    BIN_BLOCKS_MAX <= u16::MAX as u32,
    "limit and refill are u16"
);
const _: () = assert!(BATCH_BLOCKS_MAX >= 1 && FIRST_REFILL_BLOCKS >= 1);
// A bin is two words on every 64-bit target: a magazine of them fills whole cache lines.
static_assertions::const_assert_eq!(core::mem::size_of::<Bin>(), 16);

/// A bin's limit when its thread starts using it; refills double it up to the class's cap.
pub const START_LIMIT_BLOCKS: u32 = 64;

const _: () = assert!(START_LIMIT_BLOCKS >= BIN_BLOCKS_MIN && START_LIMIT_BLOCKS <= BIN_BLOCKS_MAX);

/// Halving a consumer's limit stops here, so that each flush still moves a worthwhile batch.
pub const SHRINK_FLOOR_BLOCKS: u32 = 32;

const _: () = assert!(SHRINK_FLOOR_BLOCKS <= START_LIMIT_BLOCKS);

/// One class's free list for one thread.
///
/// The limit adapts: each refill (the thread allocates more than it frees) doubles it up to the
/// class's cap ([`limit_for`]); a bin that fills up without a refill since its last flush (the
/// thread only frees this class: the consumer of a producer/consumer pair) flushes everything and
/// halves its limit, so a consumer thread's bins shrink to a few blocks instead of holding up to
/// the cap.
#[repr(C)]
#[derive(Debug)]
pub struct Bin {
    /// The most recently freed block, or null.
    pub head: *mut u8,
    /// Blocks on the list. A `u32` although it never exceeds `BIN_BLOCKS_MAX`: every alloc and
    /// free reads and writes it, and a 16-bit counter's store followed by its next load runs
    /// about three times slower per alloc+free pair here (measured 4.2 vs 1.4 ns in a C model
    /// of the loop) than a 32-bit one.
    pub count: u32,
    /// The count at which a free flushes first; 0 means the class is never cached.
    pub limit: u16,
    /// The slow paths' state: the blocks the next refill asks for (grows from
    /// `FIRST_REFILL_BLOCKS` to `limit / 2`) in the low bits, and [`REFILLED`], "refilled since
    /// the last flush" (clear at a flush means "only frees here").
    policy: u16,
}

/// The flag bit of [`Bin`]'s policy word: the bin has been refilled since its last flush.
const REFILLED: u16 = 1 << 15;

const _: () = assert!(
    BIN_BLOCKS_MAX / 2 < REFILLED as u32,
    "a refill size must fit below the flag bit"
);

impl Bin {
    /// An empty bin for blocks of `class_size_bytes`.
    ///
    /// Classes whose blocks cannot hold an aligned link (smaller than a word or not a multiple
    /// of one) get limit 0: they go straight to the backend.
    pub const fn new(class_size_bytes: usize) -> Bin {
        let limit = min(limit_for(class_size_bytes), START_LIMIT_BLOCKS);
        Bin {
            head: ptr::null_mut(),
            count: 0,
            limit: limit as u16,
            policy: min(FIRST_REFILL_BLOCKS, half(limit)) as u16,
        }
    }

    /// Blocks the next refill asks for.
    pub fn refill_blocks(&self) -> u32 {
        (self.policy & !REFILLED) as u32
    }

    fn set_refill_blocks(&mut self, blocks: u32, refilled: bool) {
        debug_assert!(blocks < REFILLED as u32);
        self.policy = blocks as u16 | if refilled { REFILLED } else { 0 };
    }

    /// Blocks the next refill asks for; grows the limit (up to `cap`) and the refill after.
    #[inline]
    pub fn next_refill(&mut self, cap: u32) -> usize {
        debug_assert!(self.limit > 0 && self.limit as u32 <= cap);
        let blocks = self.refill_blocks();
        self.limit = min((self.limit as u32).saturating_mul(2), cap) as u16;
        self.set_refill_blocks(min(blocks.saturating_mul(2), half(self.limit as u32)), true);
        blocks as usize
    }

    /// Blocks a flush of a full bin gives back: half the bin normally; all of it, with the limit
    /// halved, when the thread has not refilled this bin since its last flush.
    #[inline]
    pub fn next_flush(&mut self) -> usize {
        let refill_blocks = self.refill_blocks();
        if self.policy & REFILLED == 0 {
            let floor = min(SHRINK_FLOOR_BLOCKS, self.limit as u32);
            self.limit = max(self.limit as u32 / 2, floor) as u16;
            self.set_refill_blocks(min(refill_blocks, half(self.limit as u32)), false);
            self.count as usize
        } else {
            self.set_refill_blocks(refill_blocks, false);
            half(self.limit as u32) as usize
        }
    }
}

/// A snapshot of one bin, for reports and pictures
/// ([`ThreadCache::bin_state`](crate::ThreadCache::bin_state)). All figures are in blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BinState {
    /// Blocks cached in the bin now.
    pub count: usize,
    /// The count at which the next free flushes first (0: the class is not cached).
    pub limit: usize,
    /// Blocks the next refill asks the backend for.
    pub refill: usize,
}

impl BinState {
    /// The figures of `bin`.
    pub fn of(bin: &Bin) -> BinState {
        debug_assert!(bin.count <= bin.limit as u32);
        BinState {
            count: bin.count as usize,
            limit: bin.limit as usize,
            refill: bin.refill_blocks() as usize,
        }
    }
}

const fn max(a: u32, b: u32) -> u32 {
    if a > b {
        a
    } else {
        b
    }
}

const fn half(limit: u32) -> u32 {
    if limit < 2 {
        1
    } else {
        limit / 2
    }
}

const fn min(a: u32, b: u32) -> u32 {
    if a < b {
        a
    } else {
        b
    }
}

/// The block capacity of a bin for blocks of `class_size_bytes`.
pub const fn limit_for(class_size_bytes: usize) -> u32 {
    if class_size_bytes < MIN_CACHED_BYTES || class_size_bytes % heapkit_core::WORD_BYTES != 0 {
        return 0;
    }
    let by_bytes = BIN_TARGET_BYTES / class_size_bytes;
    if by_bytes >= BIN_BLOCKS_MAX as usize {
        BIN_BLOCKS_MAX
    } else if by_bytes <= BIN_BLOCKS_MIN as usize {
        BIN_BLOCKS_MIN
    } else {
        by_bytes as u32
    }
}

const _: () = assert!(limit_for(16) == BIN_BLOCKS_MAX);
const _: () = assert!(limit_for(1 << 20) == BIN_BLOCKS_MIN);
const _: () = assert!(limit_for(4) == 0 && limit_for(12) == 0);

/// The link stored in cached block `block` (decoded with `secure`, after checking the free
/// mark: a mark that does not fit the stored link means the block was overwritten while
/// cached, and the process stops before it follows a link someone else wrote).
///
/// # Safety
/// `block` is on a bin's list (its first words were written by [`set_next`]).
#[inline(always)]
pub unsafe fn next_of(block: *mut u8) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { next_with(block, secrets()) }
}

/// [`next_of`] with the secrets already read (a walk reads them once: the key is an atomic,
/// and every read of it stays in the loop).
///
/// # Safety
/// As for [`next_of`].
#[inline(always)]
unsafe fn next_with(block: *mut u8, secrets: Option<Secrets>) -> *mut u8 {
    let Some(secrets) = secrets else {
        // SAFETY: forwarded from the caller.
        return unsafe { block.cast::<*mut u8>().read() };
    };
    // SAFETY: forwarded from the caller: a cached block is at least two aligned words.
    let words = unsafe { block.cast::<[usize; 2]>().read() };
    if !secrets.is_marked_free(words) {
        heapkit_core::fatal(
            "heapkit-tcache",
            "thread cache list corrupted: a cached block was overwritten (a write after free)",
            block as usize,
        );
    }
    block.with_addr(secrets.decode_link(words[0], block as usize))
}

/// The process secrets when `secure` is on (one read of the key), nothing otherwise.
#[inline(always)]
pub fn secrets() -> Option<Secrets> {
    Secrets::read_if(SECURE)
}

/// Writes cached block `block`'s link (encoded, plus the free mark, with `secure`; `secrets`
/// comes from [`secrets`], read once by the caller for all its blocks).
///
/// # Safety
/// `block` is a block the caller gives up, at least `MIN_CACHED_BYTES` long and word-aligned.
#[inline(always)]
unsafe fn set_next(block: *mut u8, next: *mut u8, secrets: Option<Secrets>) {
    if let Some(secrets) = secrets {
        let words = secrets.free_words(next as usize, block as usize);
        // SAFETY: forwarded from the caller: two aligned words.
        unsafe { block.cast::<[usize; 2]>().write(words) };
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { block.cast::<*mut u8>().write(next) };
    }
}

/// With `secure`: whether `block` carries a free mark that fits its first word (it is cached or
/// free somewhere, so freeing it again is a double free — unless a program stored such a pair
/// itself).
///
/// # Safety
/// `block` is at least `MIN_CACHED_BYTES` long and word-aligned.
#[inline(always)]
pub unsafe fn is_marked_free(block: *mut u8, secrets: Option<Secrets>) -> bool {
    match secrets {
        Some(secrets) => {
            // SAFETY: forwarded from the caller.
            let words = unsafe { block.cast::<[usize; 2]>().read() };
            secrets.is_marked_free(words)
        }
        None => false,
    }
}

/// The bin of `class` in a magazine, as the fast paths address it: the bin's address in one
/// register, so that the head and count are read and written as `disp(%reg)` and the next
/// call's load of the head can take the previous call's store at once (see
/// `heapkit_core::hint`: with the index folded into the load, `malloc` in a loop of a thousand
/// ran 7.0 TSC ticks per call here, and 4.6 without).
///
/// # Safety
/// `class` is below the magazine's bin count.
#[inline(always)]
pub unsafe fn at(bins: *mut Bin, class: usize) -> *mut Bin {
    // SAFETY: the caller promises `class` is within the magazine.
    heapkit_core::hint::in_register(unsafe { bins.add(class) })
}

/// Takes the most recently freed block, or null when the bin is empty.
///
/// # Safety
/// `bin` points to a valid bin that only the calling thread touches, whose list links live free
/// blocks.
#[inline(always)]
pub unsafe fn pop(bin: *mut Bin) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { pop_by(bin, secrets) }
}

/// [`pop`] with the secrets the caller has (the fast paths: the magazine's copy of the key,
/// `magazine::secrets_of`).
///
/// # Safety
/// As for [`pop`].
#[inline(always)]
pub unsafe fn pop_with(bin: *mut Bin, secrets: Option<Secrets>) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { pop_by(bin, || secrets) }
}

/// [`pop`], reading the secrets with `secrets` only when the bin has a block.
///
/// # Safety
/// As for [`pop`].
#[inline(always)]
unsafe fn pop_by(bin: *mut Bin, secrets: impl FnOnce() -> Option<Secrets>) -> *mut u8 {
    // SAFETY: the caller owns the bin.
    let head = unsafe { (*bin).head };
    if head.is_null() {
        return head;
    }
    // SAFETY: `head` is a free block on this list, so its first words are what `set_next`
    // wrote.
    unsafe {
        (*bin).head = next_with(head, secrets());
        (*bin).count -= 1;
    }
    if SECURE {
        // The block is live again: no mark, and no key-derived word left for the caller.
        // SAFETY: a cached block is at least two words long.
        unsafe { head.cast::<[usize; 2]>().write([0, 0]) };
    }
    head
}

/// Puts a block on the list if the bin has room; returns false (and changes nothing) when full.
///
/// # Safety
/// As for [`pop`]; `block` is a live block of the bin's class, at least a word long and
/// word-aligned, that the caller gives up.
#[inline(always)]
pub unsafe fn push(bin: *mut Bin, block: *mut u8) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { push_with(bin, block, secrets()) }
}

/// [`push`] with the secrets already read (the free path reads them once for the mark test
/// and the link).
///
/// # Safety
/// As for [`push`].
#[inline(always)]
pub unsafe fn push_with(bin: *mut Bin, block: *mut u8, secrets: Option<Secrets>) -> bool {
    // SAFETY: the caller owns the bin and gives up `block`, which can hold an aligned word.
    unsafe {
        let count = (*bin).count;
        debug_assert!(count <= (*bin).limit as u32);
        // Compared at 16 bits (the count never exceeds the limit, a `u16`): a compare with the
        // limit in memory, without widening it into a register first.
        if count as u16 >= (*bin).limit {
            return false;
        }
        link_in(bin, block, secrets, count);
    }
    true
}

/// Makes `block` the bin's head and its count `count + 1`: the push once room is known.
///
/// # Safety
/// As for [`push`]; the bin has room and holds `count` blocks.
#[inline(always)]
unsafe fn link_in(bin: *mut Bin, block: *mut u8, secrets: Option<Secrets>, count: u32) {
    // SAFETY: forwarded from the caller: the bin is the caller's, `block` can hold an aligned
    // word (two with `secure`).
    unsafe {
        debug_assert!(
            block != (*bin).head,
            "double free of {block:p} into a thread cache"
        );
        set_next(block, (*bin).head, secrets);
        (*bin).head = block;
        (*bin).count = count + 1;
    }
}

/// The bin's count when it has room for one more block, `None` when it has none (never room in
/// a bin of limit 0, the empty magazine's among them): the test of [`push_with`], for a free
/// path that makes it before it knows which block it will push (`hardened`'s quarantine).
///
/// # Safety
/// As for [`pop`].
#[cfg(feature = "hardened")]
#[inline(always)]
pub unsafe fn room(bin: *mut Bin) -> Option<u32> {
    // SAFETY: the caller owns the bin. Compared at 16 bits as in `push_with`.
    let count = unsafe { (*bin).count };
    // SAFETY: as above.
    (unsafe { (count as u16) < (*bin).limit }).then_some(count)
}

/// [`push_with`] into a bin whose count [`room`] gave (nothing has been pushed or popped
/// since): the count is not read again (a store into the quarantine came between, which the
/// compiler cannot tell apart from the bin).
///
/// # Safety
/// As for [`push`]; `count` is what `room` returned for the bin.
#[cfg(feature = "hardened")]
#[inline(always)]
pub unsafe fn push_into_room(bin: *mut Bin, block: *mut u8, secrets: Option<Secrets>, count: u32) {
    // SAFETY: the caller owns the bin, which has room, and gives up `block`, which can hold an
    // aligned word.
    unsafe {
        debug_assert!(count == (*bin).count && count < (*bin).limit as u32);
        link_in(bin, block, secrets, count);
    }
}

/// Moves up to `out.len()` blocks off the list into `out` (most recent first), for the backend
/// (with `secure` they stay marked: still free); returns the part of `out` it filled.
///
/// `out` may be uninitialised: a flush's buffer of `BATCH_BLOCKS_MAX` pointers is not zeroed
/// first (that `memset` cost ~77 instructions per flush).
///
/// # Safety
/// As for [`pop`].
pub unsafe fn take(bin: *mut Bin, out: &mut [MaybeUninit<*mut u8>]) -> &[*mut u8] {
    // SAFETY: the caller owns the bin. The walk keeps the head in a register and writes the
    // bin once at the end: `out` might alias the bin as far as the compiler knows, so a walk
    // block by block would load and store the head and count once per block.
    unsafe {
        let wanted = out.len().min((*bin).count as usize);
        let rest = walk_into((*bin).head, &mut out[..wanted]);
        (*bin).head = rest;
        (*bin).count -= wanted as u32;
        // SAFETY: `walk_into` initialised the first `wanted` entries; `MaybeUninit<T>` has
        // `T`'s layout.
        core::slice::from_raw_parts(out.as_ptr().cast::<*mut u8>(), wanted)
    }
}

/// Copies the first `out.len()` blocks of the chain at `head` into `out`; returns the link
/// after them. With `secure` the blocks stay marked: still free.
///
/// # Safety
/// `head` starts a list of at least `out.len()` free blocks, linked by this module, that the
/// caller owns.
unsafe fn walk_into(mut head: *mut u8, out: &mut [MaybeUninit<*mut u8>]) -> *mut u8 {
    let secrets = secrets(); // once for the batch, not once per block
    for entry in out {
        debug_assert!(!head.is_null(), "a list is shorter than its count");
        entry.write(head);
        // SAFETY: `head` is a free block on this list, so its first word is our link.
        head = unsafe { next_with(head, secrets) };
    }
    head
}

/// The blocks of a whole chain written by [`split`], `blocks` long, copied into `out` (for
/// giving a batch to the backend).
///
/// # Safety
/// As for [`walk_into`], with `blocks <= out.len()`; the caller owns the chain.
pub unsafe fn unchain(
    first: *mut u8,
    blocks: usize,
    out: &mut [MaybeUninit<*mut u8>],
) -> &[*mut u8] {
    debug_assert!(blocks <= out.len());
    // SAFETY: forwarded from the caller.
    let rest = unsafe { walk_into(first, &mut out[..blocks]) };
    debug_assert!(rest.is_null(), "a chain is longer than its count");
    // SAFETY: the walk initialised the first `blocks` entries.
    unsafe { core::slice::from_raw_parts(out.as_ptr().cast::<*mut u8>(), blocks) }
}

/// Detaches the `blocks` most recently freed blocks as a chain of their own, null-terminated,
/// in the bin's link format (with `secure`: still encoded and marked free), for the depot;
/// returns its first block. The walk reads each link once (the flush to the backend reads them
/// too), and rewrites only the last block's.
///
/// # Safety
/// As for [`pop`]; `0 < blocks <= count`.
pub unsafe fn split(bin: *mut Bin, blocks: usize) -> *mut u8 {
    let secrets = secrets();
    // SAFETY: the caller owns the bin and its list holds at least `blocks` blocks.
    unsafe {
        debug_assert!(blocks > 0 && blocks <= (*bin).count as usize);
        let first = (*bin).head;
        let mut last = first;
        for _ in 1..blocks {
            last = next_with(last, secrets);
        }
        (*bin).head = next_with(last, secrets);
        (*bin).count -= blocks as u32;
        set_next(last, ptr::null_mut(), secrets);
        first
    }
}

/// Makes the empty bin's list the chain of `blocks` blocks that starts at `first` (a batch
/// from the depot, written by [`split`] in some thread's bin of this class).
///
/// # Safety
/// As for [`pop`]; the bin is empty, `blocks <= limit`, and the chain is `blocks` free blocks
/// of the bin's class that the caller now owns, linked by [`split`].
pub unsafe fn adopt(bin: *mut Bin, first: *mut u8, blocks: usize) {
    // SAFETY: the caller owns the bin.
    unsafe {
        debug_assert!((*bin).head.is_null() && (*bin).count == 0);
        debug_assert!(blocks <= (*bin).limit as usize);
        (*bin).head = first;
        (*bin).count = blocks as u32;
    }
}

/// Links `blocks` onto the list regardless of the limit (a refill never exceeds it: the caller
/// asks for at most `limit - count` blocks).
///
/// # Safety
/// As for [`push`], for every block.
pub unsafe fn put(bin: *mut Bin, blocks: &[*mut u8]) {
    // SAFETY: the caller owns the bin and gives up every block.
    unsafe {
        debug_assert!((*bin).count as usize + blocks.len() <= (*bin).limit as usize);
        let secrets = secrets(); // once for the batch, not once per block
        let mut head = (*bin).head;
        for &block in blocks.iter().rev() {
            set_next(block, head, secrets);
            head = block;
        }
        (*bin).head = head;
        (*bin).count += blocks.len() as u32;
    }
}

/// Whether `block` is on the list (a walk of at most `limit` links: for the `checked` feature
/// and `check()`).
///
/// # Safety
/// As for [`pop`].
pub unsafe fn contains(bin: *const Bin, block: *mut u8) -> bool {
    let secrets = secrets();
    // SAFETY: the caller owns the bin; every link is a free block of this list.
    unsafe {
        let mut cursor = (*bin).head;
        let mut steps = 0u32;
        while !cursor.is_null() && steps <= (*bin).limit as u32 {
            if cursor == block {
                return true;
            }
            cursor = next_with(cursor, secrets);
            steps += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pop_is_lifo_and_respects_the_limit() {
        heapkit_core::secure::key(); // what a magazine's creation does before its first push
        let mut blocks = [[0u64; 2]; 8];
        let mut bin = Bin::new(16);
        bin.limit = 4;
        let b: *mut Bin = &mut bin;
        let ptrs: std::vec::Vec<*mut u8> =
            blocks.iter_mut().map(|x| x.as_mut_ptr().cast()).collect();
        // SAFETY: the blocks are distinct, 16 bytes, word-aligned, and owned by this test.
        unsafe {
            for &p in &ptrs[..4] {
                assert!(push(b, p));
            }
            assert!(!push(b, ptrs[4]), "a full bin must refuse");
            assert!(contains(b, ptrs[2]) && !contains(b, ptrs[4]));
            let mut out = [MaybeUninit::uninit(); 3];
            let taken = take(b, &mut out);
            assert_eq!(taken, [ptrs[3], ptrs[2], ptrs[1]]);
            put(b, &taken[..2]);
            assert_eq!((*b).count, 3);
            assert_eq!(pop(b), ptrs[3]);
            assert_eq!(pop(b), ptrs[2]);
            assert_eq!(pop(b), ptrs[0]);
            assert!(pop(b).is_null());
            assert_eq!((*b).count, 0);
        }
    }

    #[test]
    fn refills_grow_the_bin_and_lone_flushes_shrink_it() {
        let cap = limit_for(16);
        let mut bin = Bin::new(16);
        assert_eq!(bin.limit as u32, START_LIMIT_BLOCKS);
        let refills: std::vec::Vec<usize> = (0..12).map(|_| bin.next_refill(cap)).collect();
        assert_eq!(refills[0], FIRST_REFILL_BLOCKS as usize);
        assert_eq!(bin.limit as u32, cap, "refills grow the limit to the cap");
        assert_eq!(*refills.last().unwrap(), cap as usize / 2);
        bin.count = bin.limit as u32;
        assert_eq!(
            bin.next_flush(),
            cap as usize / 2,
            "after refills, flush half"
        );
        bin.count = bin.limit as u32;
        assert_eq!(bin.next_flush(), cap as usize, "no refill since: flush all");
        assert_eq!(bin.limit as u32, cap / 2, "and halve the limit");
        for _ in 0..20 {
            bin.count = bin.limit as u32;
            bin.next_flush();
        }
        assert_eq!(bin.limit as u32, SHRINK_FLOOR_BLOCKS);
        let tiny = Bin::new(4);
        assert_eq!(tiny.limit, 0);
    }
}
