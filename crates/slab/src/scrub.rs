//! The `hardened` feature's scrubbing of small blocks: a block the program frees is zeroed at
//! once (a read through a dangling pointer sees zeros, and nothing of the old contents is left
//! to leak), and a block handed out again is checked to be still zero — a write through a
//! dangling pointer while the block was free stops the process at the next hand-out. Every
//! small block is therefore handed out zeroed (GrapheneOS hardened_malloc's `ZERO_ON_FREE` and
//! `WRITE_AFTER_FREE_CHECK`).
//!
//! Both run where the `secure` record changes hands (`handed.rs`), so they see exactly the
//! program's frees and the cache's hand-outs, together with the canary (`canary.rs`): one pass
//! over the block each way, the class size looked up once.
//!
//! ```text
//!   hand-out: check usable bytes zero ─► write canary          free: check canary and the one
//!   block:    │ usable (class - 8) ···················· │canary│     before ─► zero usable bytes
//!             └ 16-byte loads/stores, the last ones overlapping ┘
//! ```
//!
//! - **Inline, 16 bytes at a time.** Every usable size is at least 24 bytes, so two 16-byte
//!   accesses (the second ending at the usable end, overlapping the first) cover up to 32 bytes,
//!   four up to 64, and a loop of four per 64 bytes plus four at the end anything larger (SSE2,
//!   baseline on x86-64; two `u64` halves elsewhere). Zeroing above
//!   [`STRING_STORE_ABOVE_BYTES`] is one `rep stosb` (the fast-strings store `memset` itself
//!   uses for long runs). Never a call: with `memset` in it, the free path saved and restored
//!   four registers on every free, whatever the size. Nothing in the C library checks for
//!   zeros, so the check stays inline at every size. No loop for the small classes, no
//!   remainder loop.
//! - **The hand-out check skips the link words** ([`LINK_WORDS_BYTES`]): the pop that took the
//!   block has just checked and cleared them, and a load that half overlaps that store in
//!   flight waits for it (a store-forwarding stall: half of the hardened `malloc`'s cycles in a
//!   hot pair, by `perf annotate`, when the check read them back).
//! - The first two words of a free block hold its encoded link and free mark; every pop clears
//!   them (`secure`), so a block is all zero again by the time it is checked. The block's last
//!   word, its canary, is neither zeroed nor checked here: it stays for the slot's life.
//!   Never-used blocks are zero when the slot came from a zeroing source; [`zero_fresh_blocks`]
//!   zeroes the others when their slab is made.

use crate::canary::CANARY_BYTES;
use crate::chunk::{ident, slot_of, Chunk, ChunkHead};
use crate::classes::CLASS_BYTES;
use crate::geometry::{SLOTS_PER_CHUNK, SLOT_SHIFT};
use crate::slab_meta::SlabMeta;
use core::ptr::{self, NonNull};

/// Usable sizes above this are zeroed by one string store (`rep stosb`), smaller ones by
/// 16-byte lanes; neither is a call. Where the two cross on this machine (a C loop zeroing one
/// hot block, min of three: 1528 bytes 24.7 ns by lanes against 27.5 by `rep stosb`, 2040
/// bytes 24.5 against 20.3; at 264 bytes 4.4 against 11.3, `memset` 4.6).
const STRING_STORE_ABOVE_BYTES: usize = 1536;

/// The width of one access.
const LANE_BYTES: usize = 16;

// The smallest usable size takes two accesses that stay inside the block.
const _: () = assert!(crate::canary::CANARY_MIN_BLOCK_BYTES - CANARY_BYTES >= LANE_BYTES);
const _: () = assert!(STRING_STORE_ABOVE_BYTES > 4 * LANE_BYTES);

/// The usable size (class size less the canary) indexed by any class byte, so that a lookup
/// needs no bounds test (a `u8` index cannot leave the table). The usable size, not the class
/// size: every use wants it, and the subtraction is then no instruction of the fast paths.
/// Past the classes (a byte no caller passes) the largest class's: the table stays
/// non-decreasing, so that the compiler turns a test of the usable size into one compare of
/// the class byte.
const USABLE_BYTES_BY_CLASS_BYTE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut class = 0;
    while class < 256 {
        let bytes = CLASS_BYTES[if class < CLASS_BYTES.len() {
            class
        } else {
            CLASS_BYTES.len() - 1
        }];
        table[class] = (bytes as usize - CANARY_BYTES) as u16;
        class += 1;
    }
    table
};
const _: () = assert!(crate::classes::SMALL_MAX_BYTES <= u16::MAX as usize);
const _: () = assert!(CLASS_BYTES[0] as usize >= CANARY_BYTES);

/// The usable size of the small block at `ptr` (its class size less the canary), from its
/// slot's class byte in `chunk`, its chunk header (a slot of no class, which a caller never
/// passes, reads as the largest class). The caller passes the header as it found it, so that the compiler computes
/// it once: `header_of` on a hand-out, `block_header` on a free (where `bin_of_block` has
/// just read the same class byte).
///
/// # Safety
/// `ptr` is the start of a small block in a small slab of the live chunk `chunk`.
#[inline(always)]
pub(crate) unsafe fn usable_bytes(chunk: *mut ChunkHead, ptr: NonNull<u8>) -> usize {
    // `slot_of` as the compiler puts it (shift, then mask): written so, the slot index is the
    // very expression `bin_of_block` computed, and the class byte is read once; written as
    // `slot_of` is, the mask merged with the granule's of the `secure` record and the byte was
    // read twice.
    let slot = (ptr.as_ptr() as usize >> SLOT_SHIFT) % SLOTS_PER_CHUNK;
    debug_assert_eq!(slot, slot_of(ptr));
    // SAFETY: forwarded from the caller.
    let class = unsafe { ident(chunk.cast::<Chunk>(), slot) }.class;
    USABLE_BYTES_BY_CLASS_BYTE[class as usize] as usize
}

/// 16 bytes in a vector register: the accumulator of the zero check.
#[cfg(target_arch = "x86_64")]
mod lane {
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_setzero_si128, _mm_storeu_si128,
    };

    pub(super) type Lane = __m128i;

    #[inline(always)]
    pub(super) fn zero() -> Lane {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        unsafe { _mm_setzero_si128() }
    }

    /// # Safety
    /// `at..at + 16` is readable.
    #[inline(always)]
    pub(super) unsafe fn load(at: *const u8) -> Lane {
        // SAFETY: forwarded from the caller; an unaligned load (SSE2 is baseline).
        unsafe { _mm_loadu_si128(at.cast()) }
    }

    /// # Safety
    /// `at..at + 16` is writable.
    #[inline(always)]
    pub(super) unsafe fn store_zero(at: *mut u8) {
        // SAFETY: forwarded from the caller; an unaligned store (SSE2 is baseline).
        unsafe { _mm_storeu_si128(at.cast(), _mm_setzero_si128()) }
    }

    #[inline(always)]
    pub(super) fn or(a: Lane, b: Lane) -> Lane {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        unsafe { _mm_or_si128(a, b) }
    }

    #[inline(always)]
    pub(super) fn is_zero(a: Lane) -> bool {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(a, _mm_setzero_si128())) == 0xFFFF }
    }
}

/// 16 bytes as two words, where no vector type is at hand.
#[cfg(not(target_arch = "x86_64"))]
mod lane {
    pub(super) type Lane = [u64; 2];

    #[inline(always)]
    pub(super) fn zero() -> Lane {
        [0; 2]
    }

    /// # Safety
    /// `at..at + 16` is readable.
    #[inline(always)]
    pub(super) unsafe fn load(at: *const u8) -> Lane {
        // SAFETY: forwarded from the caller.
        unsafe { at.cast::<Lane>().read_unaligned() }
    }

    /// # Safety
    /// `at..at + 16` is writable.
    #[inline(always)]
    pub(super) unsafe fn store_zero(at: *mut u8) {
        // SAFETY: forwarded from the caller.
        unsafe { at.cast::<Lane>().write_unaligned([0; 2]) }
    }

    #[inline(always)]
    pub(super) fn or(a: Lane, b: Lane) -> Lane {
        [a[0] | b[0], a[1] | b[1]]
    }

    #[inline(always)]
    pub(super) fn is_zero(a: Lane) -> bool {
        a[0] | a[1] == 0
    }
}

/// Calls `access` with the offset of every 16-byte lane that covers `0..usable_bytes`
/// (`usable_bytes >= 16`), the last ones overlapping: 2 lanes up to 32 bytes, 4 up to 64,
/// then 4 per 64 bytes and 4 ending at the end. No remainder loop.
#[inline(always)]
fn for_each_lane(usable_bytes: usize, mut access: impl FnMut(usize)) {
    let n = usable_bytes;
    debug_assert!(n >= LANE_BYTES);
    if n <= 2 * LANE_BYTES {
        access(0);
        access(n - LANE_BYTES);
        return;
    }
    if n <= 4 * LANE_BYTES {
        access(0);
        access(LANE_BYTES);
        access(n - 2 * LANE_BYTES);
        access(n - LANE_BYTES);
        return;
    }
    let mut offset = 0;
    while offset + 4 * LANE_BYTES < n {
        access(offset);
        access(offset + LANE_BYTES);
        access(offset + 2 * LANE_BYTES);
        access(offset + 3 * LANE_BYTES);
        offset += 4 * LANE_BYTES;
        keep_loop();
    }
    access(n - 4 * LANE_BYTES);
    access(n - 3 * LANE_BYTES);
    access(n - 2 * LANE_BYTES);
    access(n - LANE_BYTES);
}

/// Keeps [`for_each_lane`]'s loop a loop: the compiler turns a loop of zero stores into a
/// call of `memset`, and a call in the free path made it save and restore registers on every
/// free, whatever the size. An empty `asm!` that may read memory stops that and costs no
/// instruction (it writes nothing, so nothing is loaded again after it).
#[inline(always)]
fn keep_loop() {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: an empty instruction string: it does nothing.
    unsafe {
        core::arch::asm!("", options(nostack, preserves_flags, readonly))
    };
}

/// Zeroes the first `usable_bytes` bytes at `ptr`.
///
/// # Safety
/// They are writable and ours; `usable_bytes >= 16`.
#[inline(always)]
unsafe fn zero_usable(ptr: *mut u8, usable_bytes: usize) {
    if usable_bytes > STRING_STORE_ABOVE_BYTES {
        // SAFETY: forwarded from the caller.
        unsafe { zero_long(ptr, usable_bytes) };
        return;
    }
    // SAFETY: forwarded from the caller: every lane lies in `0..usable_bytes`.
    for_each_lane(usable_bytes, |offset| unsafe {
        lane::store_zero(ptr.add(offset))
    });
}

/// Zeroes `bytes` bytes at `ptr` with one `rep stosb`: no call (see the module docs).
///
/// # Safety
/// They are writable and ours.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
unsafe fn zero_long(ptr: *mut u8, bytes: usize) {
    // SAFETY: forwarded from the caller: `rep stosb` writes `bytes` zero bytes upwards from
    // `ptr` (the direction flag is clear, as the ABI promises at every call and asm block) and
    // touches nothing else but the registers named.
    unsafe {
        core::arch::asm!(
            "rep stosb",
            inout("rdi") ptr => _,
            inout("rcx") bytes => _,
            in("al") 0u8,
            options(nostack, preserves_flags),
        );
    }
}

/// Zeroes `bytes` bytes at `ptr` (elsewhere, and under Miri).
///
/// # Safety
/// They are writable and ours.
#[cfg(not(all(target_arch = "x86_64", not(miri))))]
#[inline(always)]
unsafe fn zero_long(ptr: *mut u8, bytes: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { ptr::write_bytes(ptr, 0, bytes) };
}

/// Whether the first `usable_bytes` bytes at `ptr` are all zero: every lane ORed, no early
/// exit (the common case is a clean block, read in full anyway).
///
/// # Safety
/// They are readable; `usable_bytes >= 16`.
#[inline(always)]
unsafe fn usable_is_zero(ptr: *const u8, usable_bytes: usize) -> bool {
    let mut acc = lane::zero();
    for_each_lane(usable_bytes, |offset| {
        // SAFETY: forwarded from the caller: every lane lies in `0..usable_bytes`.
        let lane = unsafe { lane::load(ptr.add(offset)) };
        acc = lane::or(acc, lane);
    });
    lane::is_zero(acc)
}

/// Bytes at the start of a block that the hand-out check skips: the two words of a cached
/// block's link and free mark. Every block reaches a hand-out through a pop that checked them
/// (the free mark of a thread cache's bin or of a slab's free list: a write over them while the
/// block was free stops the process there) and cleared them, or fresh from a slab (zero), and
/// a block leaving the quarantine for a bin has them checked too
/// (heapkit-tcache's `check_link_words_zero`). Reading them back would also wait: the pop's
/// clearing store is still in flight, and a load that overlaps it only in part cannot take
/// its data (a store-forwarding stall, half of the hardened `malloc`'s cycles when the check
/// read them).
const LINK_WORDS_BYTES: usize = 2 * core::mem::size_of::<usize>();

/// Usable sizes up to this are checked with word loads (at most three words after the link
/// words); larger ones with 16-byte lanes.
const WORD_CHECK_MAX_BYTES: usize = LINK_WORDS_BYTES + 3 * core::mem::size_of::<u64>();

const _: () = assert!(
    crate::canary::CANARY_MIN_BLOCK_BYTES - CANARY_BYTES > LINK_WORDS_BYTES,
    "every block has bytes after its link words"
);
const _: () = assert!(WORD_CHECK_MAX_BYTES - LINK_WORDS_BYTES >= LANE_BYTES + 8);

/// The word at `offset` bytes into the block at `ptr`.
///
/// # Safety
/// `ptr + offset .. + 8` is readable and 8-aligned.
#[inline(always)]
unsafe fn word_at(ptr: *const u8, offset: usize) -> u64 {
    // SAFETY: forwarded from the caller.
    unsafe { ptr.add(offset).cast::<u64>().read() }
}

/// Whether the usable bytes of the block at `ptr` after its link words are all zero. Usable
/// sizes are `16 * k + 8`: 24 bytes leave one word, 40 bytes three; above that, 16-byte lanes
/// from the end of the link words.
///
/// # Safety
/// The first `usable_bytes` bytes at `ptr` (16-aligned) are readable; `usable_bytes` is a
/// class's usable size.
#[inline(always)]
unsafe fn after_link_words_is_zero(ptr: *const u8, usable_bytes: usize) -> bool {
    let n = usable_bytes;
    debug_assert!(n > LINK_WORDS_BYTES && n % 16 == 8);
    if n <= LINK_WORDS_BYTES + 8 {
        // SAFETY: forwarded from the caller: the one word at `16..24`, inside `0..n`.
        return unsafe { word_at(ptr, LINK_WORDS_BYTES) } == 0;
    }
    if n <= WORD_CHECK_MAX_BYTES {
        // SAFETY: forwarded from the caller: here `n` is 40, and the words are `16..40`.
        return unsafe {
            word_at(ptr, LINK_WORDS_BYTES) | word_at(ptr, n - 16) | word_at(ptr, n - 8)
        } == 0;
    }
    // SAFETY: forwarded from the caller: the lanes cover `16..n`, at least 40 bytes.
    unsafe { usable_is_zero(ptr.add(LINK_WORDS_BYTES), n - LINK_WORDS_BYTES) }
}

/// Hand-out: stops the process unless the small block at `ptr` (usable size `usable_bytes`)
/// is all zero but for its canary and its link words (cleared and checked already, see
/// [`LINK_WORDS_BYTES`]), then writes its canary.
///
/// # Safety
/// `ptr` is the start of a small block of the live chunk `chunk` (its header) that the caller
/// owns, `usable_bytes` its class's usable size, and its link words are zero.
#[inline(always)]
pub(crate) unsafe fn on_hand_out(chunk: *mut ChunkHead, ptr: NonNull<u8>, usable_bytes: usize) {
    // SAFETY: forwarded from the caller: a block is at least two words long.
    debug_assert!(unsafe { ptr.cast::<[usize; 2]>().read() } == [0, 0]);
    // SAFETY: forwarded from the caller: the block's usable bytes are ours to read.
    if !unsafe { after_link_words_is_zero(ptr.as_ptr(), usable_bytes) } {
        write_after_free(ptr.as_ptr());
    }
    // SAFETY: forwarded from the caller.
    unsafe { crate::canary::write(chunk, ptr, usable_bytes) };
}

/// Free: checks the canaries of the small block at `ptr` (usable size `usable_bytes`), which
/// the program has just given up, and of the block before it, then zeroes it but for its
/// canary, which stays for the slot's life (`canary.rs`).
///
/// # Safety
/// `ptr` is the start of a small block of the live chunk `chunk` (its header), handed out until
/// now and nobody's any more, and `usable_bytes` its class's usable size.
#[inline(always)]
pub(crate) unsafe fn on_free(chunk: *mut ChunkHead, ptr: NonNull<u8>, usable_bytes: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        crate::canary::check_on_free(chunk, ptr, usable_bytes);
        zero_usable(ptr.as_ptr(), usable_bytes);
    }
}

#[cold]
#[inline(never)]
fn write_after_free(ptr: *mut u8) -> ! {
    heapkit_core::fatal(
        "heapkit-slab",
        "write after free: a freed block was written to before it was handed out again",
        ptr as usize,
    )
}

/// Zeroes the never-used blocks of a slab just made over a slot whose memory may hold
/// anything (reused, not from a zeroing source), so that they pass the hand-out check.
pub(crate) fn zero_fresh_blocks(meta: &mut SlabMeta) {
    if meta.fresh_zeroed {
        return;
    }
    debug_assert!(meta.fresh == 0);
    let bytes = meta.capacity as usize * meta.block_bytes as usize;
    // SAFETY: the slab's blocks lie in its slot, which the slab owns; none is handed out yet.
    unsafe { ptr::write_bytes(meta.start, 0, bytes) };
    meta.fresh_zeroed = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every usable size the classes give: each lane inside the block, every byte covered.
    #[test]
    fn lanes_cover_every_usable_size_exactly() {
        for &class_bytes in CLASS_BYTES.iter().filter(|&&b| b as usize >= 32) {
            let usable = class_bytes as usize - CANARY_BYTES;
            let mut covered = [false; 16 * 1024];
            for_each_lane(usable, |offset| {
                assert!(offset + LANE_BYTES <= usable, "{usable}: lane at {offset}");
                covered[offset..offset + LANE_BYTES].fill(true);
            });
            assert!(covered[..usable].iter().all(|&c| c), "{usable}");
        }
    }

    /// The hand-out check sees a single non-zero byte anywhere after the link words, for
    /// every class, and never reads the link words themselves (they hold garbage here).
    #[test]
    fn hand_out_check_covers_every_byte_after_the_link_words() {
        let mut block = [0u128; 1024 + 1];
        let base = block.as_mut_ptr().cast::<u8>();
        for &class_bytes in CLASS_BYTES.iter().filter(|&&b| b as usize >= 32) {
            let usable = class_bytes as usize - CANARY_BYTES;
            // SAFETY: `block` holds 16 KiB + 16 bytes, more than any class.
            unsafe {
                ptr::write_bytes(base, 0, usable);
                ptr::write_bytes(base, 0xA5, LINK_WORDS_BYTES);
                ptr::write_bytes(base.add(usable), 0xA5, 16);
                assert!(after_link_words_is_zero(base, usable), "{usable}");
                let step = if cfg!(miri) {
                    usable / 3
                } else {
                    1.max(usable / 97)
                };
                for at in (LINK_WORDS_BYTES..usable).step_by(step).chain([usable - 1]) {
                    *base.add(at) = 1;
                    assert!(
                        !after_link_words_is_zero(base, usable),
                        "{usable}: byte {at}"
                    );
                    *base.add(at) = 0;
                }
            }
        }
    }

    /// Zeroing clears exactly the usable bytes, and the check finds a single non-zero byte
    /// anywhere in them, for every class.
    #[test]
    fn zero_and_check_agree_for_every_class() {
        let mut block = [0u128; 1024 + 1];
        let base = block.as_mut_ptr().cast::<u8>();
        for &class_bytes in CLASS_BYTES.iter().filter(|&&b| b as usize >= 32) {
            let usable = class_bytes as usize - CANARY_BYTES;
            // SAFETY: `block` holds 16 KiB + 16 bytes, more than any class.
            unsafe {
                ptr::write_bytes(base, 0xA5, usable + 16);
                zero_usable(base, usable);
                assert!(usable_is_zero(base, usable), "{usable}");
                assert_eq!(*base.add(usable), 0xA5, "{usable}: past the usable end");
                let step = if cfg!(miri) {
                    usable / 3
                } else {
                    1.max(usable / 97)
                };
                for at in (0..usable).step_by(step).chain([usable - 1]) {
                    *base.add(at) = 1;
                    assert!(!usable_is_zero(base, usable), "{usable}: byte {at}");
                    *base.add(at) = 0;
                }
            }
        }
    }
}
