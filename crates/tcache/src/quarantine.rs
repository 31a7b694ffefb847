//! The `hardened` feature's quarantine: a freed block is not handed out again at once. Each
//! thread's magazine keeps, per class, a small array of recently freed blocks; a free puts its
//! block into a random entry and sends on the block it displaces (the bin, then the backend,
//! take that one), so "free, then allocate the same size" never returns the block just freed,
//! and when a block comes back is not predictable (GrapheneOS hardened_malloc's random-array
//! quarantine).
//!
//! ```text
//!   free(p) ─► take_back (record cleared, block zeroed) ─► this thread's magazine:
//!     [ entries: class 0 … class n-1: a | p | c | … ][ masks ][ pool ][ direct ][ header ][ bins ]
//!                          random entry ▲ swap    (one byte a class) ▲ 4 bits      draws ─┘
//!                                      displaced block (was there) ─► bin ─► malloc
//! ```
//!
//! **Per thread.** The entries sit in the magazine, before its direct table, and the random
//! state (wyrand) in its header, the unused bits of its last draw in the pool word (a draw
//! serves fifteen frees, four bits each): the free path is plain loads and stores on the thread's own
//! cache lines, no atomic read-modify-write and no line shared with other threads (a shared
//! array and a shared draw counter made every thread of a 16-thread run hit the same lines).
//! A block freed by another thread than the one that allocated it waits in the *freeing*
//! thread's quarantine. The state is seeded from the process key and the magazine's address.
//!
//! **Bounded.** A class keeps at most `QUARANTINE_ENTRIES` blocks and under twice
//! `QUARANTINE_CLASS_BYTES` of them, counted in sizes rounded down to a power of two (16
//! entries up to 256 B blocks, fewer above, at least `QUARANTINE_ENTRIES_MIN`); per thread
//! that is at most about 280 KiB over heapkit-slab's 36 classes (most of it the two entries
//! of each class above 2 KiB), and in practice only the classes a thread frees: about 70 KiB
//! for a thread that frees every class of 16 B-1 KiB (larson's sizes).
//!
//! A quarantined block is free to the program (its `secure` record is clear: a second free
//! stops the process) and live to the backend until it is displaced, or its magazine is
//! flushed: when the thread exits (the reclaim flushes the magazine), on
//! [`flush_thread`](crate::ThreadCache::flush_thread), on
//! [`drain_depots`](crate::ThreadCache::drain_depots) (`malloc_trim`: the calling thread's
//! quarantine) and when the cache is dropped.

use crate::bin::{self, Bin};
use crate::cache::ThreadCache;
use crate::magazine::{direct_table, empty_magazine, header, CLASS_COUNT_MAX};
use core::mem::MaybeUninit;
use core::ptr;
use heapkit_core::BatchAllocator;

/// Entries per class at most.
pub(crate) const QUARANTINE_ENTRIES: usize = 16;
/// Entries per class at least, whatever the block size: with one, the block coming back
/// would be the one freed before (predictable).
const QUARANTINE_ENTRIES_MIN: usize = 2;
/// Bytes of blocks one class may hold per thread, counted in sizes rounded down to a power
/// of two (so under twice this in real bytes, or `QUARANTINE_ENTRIES_MIN` blocks).
const QUARANTINE_CLASS_BYTES: usize = 4 << 10;

/// Bytes of one class's entries in a magazine.
const CLASS_ENTRIES_BYTES: usize = QUARANTINE_ENTRIES * core::mem::size_of::<usize>();

/// Bytes of the masks before the random pool: one byte per class (the class's entry count
/// minus one), at a fixed offset, so a free finds its class's mask in one load.
const MASKS_BYTES: usize = CLASS_COUNT_MAX;

/// Bytes of the random pool's line, the last before a magazine's direct table: its first word
/// holds the unused bits of the last draw (see [`choose`]).
const POOL_BYTES: usize = 64;

/// Bits of a draw one choice takes: enough for `QUARANTINE_ENTRIES` entries.
const CHOICE_BITS: u32 = QUARANTINE_ENTRIES.trailing_zeros();

/// A pool below this has fewer than `CHOICE_BITS` bits left under its end marker: draw again.
const POOL_REFILL_BELOW: u64 = 1 << CHOICE_BITS;

const _: () = assert!(QUARANTINE_ENTRIES.is_power_of_two() && QUARANTINE_ENTRIES <= 256);
const _: () = assert!(QUARANTINE_ENTRIES_MIN.is_power_of_two());
const _: () = assert!(QUARANTINE_ENTRIES_MIN <= QUARANTINE_ENTRIES);
const _: () = assert!(QUARANTINE_CLASS_BYTES.is_power_of_two());
const _: () = assert!(
    CLASS_ENTRIES_BYTES % 64 == 0 && MASKS_BYTES % 64 == 0 && POOL_BYTES % 64 == 0,
    "the quarantine keeps the magazine's cache-line alignment"
);
const _: () = assert!(
    CHOICE_BITS >= 1 && CHOICE_BITS <= 8,
    "a choice is a few bits of a draw"
);

/// The bytes before a magazine's direct table for `class_count` classes: each class's entries,
/// the masks, then the random pool.
pub(crate) const fn magazine_bytes(class_count: usize) -> usize {
    class_count * CLASS_ENTRIES_BYTES + MASKS_BYTES + POOL_BYTES
}

/// Class `class`'s mask byte in magazine `bins`.
#[inline(always)]
fn class_mask(bins: *mut Bin, class: usize) -> *mut u8 {
    direct_table(bins)
        .cast::<u8>()
        .wrapping_sub(POOL_BYTES + MASKS_BYTES)
        .wrapping_add(class)
}

/// The random pool word of magazine `bins`.
#[inline(always)]
fn pool(bins: *mut Bin) -> *mut u64 {
    direct_table(bins)
        .cast::<u8>()
        .wrapping_sub(POOL_BYTES)
        .cast::<u64>()
}

/// The first of class `class`'s entries in magazine `bins` of `class_count` classes: the
/// classes' arrays lie before the masks in class order, so that with the backend's class count
/// a constant (heapkit-slab's) the address is the bins' plus `class * 128` less a constant —
/// the `class * 16` the bin's address needs, scaled by 8 in the same `lea` — no load.
#[inline(always)]
fn class_entries(bins: *mut Bin, class_count: usize, class: usize) -> *mut *mut u8 {
    debug_assert!(class < class_count);
    direct_table(bins)
        .cast::<u8>()
        .wrapping_sub(magazine_bytes(class_count))
        .cast::<*mut u8>()
        .wrapping_add(class * QUARANTINE_ENTRIES)
}

/// How many entries a class of blocks of `class_bytes` uses: sized by the class size rounded
/// down to a power of two, so a power of two of entries (the random choice is a mask) and a
/// class holds less than twice `QUARANTINE_CLASS_BYTES`.
const fn class_entry_count(class_bytes: usize) -> usize {
    let size_shift = usize::BITS - 1 - (class_bytes | 1).leading_zeros();
    let entries = QUARANTINE_CLASS_BYTES >> size_shift;
    if entries < QUARANTINE_ENTRIES_MIN {
        QUARANTINE_ENTRIES_MIN
    } else if entries > QUARANTINE_ENTRIES {
        QUARANTINE_ENTRIES
    } else {
        entries
    }
}

/// Sets up the quarantine of a new magazine `bins` of `class_count` classes: every entry empty,
/// each class's mask from its block size (`class_bytes(class)`), the random state seeded.
///
/// # Safety
/// `bins` is a magazine being made, with `magazine_bytes(class_count)` bytes before its direct
/// table and its header written.
pub(crate) unsafe fn init(
    bins: *mut Bin,
    class_count: usize,
    class_bytes: impl Fn(usize) -> usize,
) {
    debug_assert!(class_count > 0 && class_count <= CLASS_COUNT_MAX);
    // SAFETY: forwarded from the caller: the bytes are the magazine's.
    unsafe {
        ptr::write_bytes(
            class_entries(bins, class_count, 0).cast::<u8>(),
            0,
            magazine_bytes(class_count),
        );
        for class in 0..class_count {
            class_mask(bins, class).write((class_entry_count(class_bytes(class)) - 1) as u8);
        }
        (*header(bins)).draws = seed(bins);
    }
}

/// The seed of a new magazine's draws: the process key mixed with the magazine's address, so
/// that threads (and processes) draw different sequences.
fn seed(bins: *mut Bin) -> u64 {
    heapkit_core::secure::mix(heapkit_core::secure::key() ^ bins as usize) as u64
}

/// The next random word of magazine `bins` (wyrand: an add, a multiply and a fold; the state
/// lives in the magazine's header).
///
/// # Safety
/// `bins` is a magazine (not the empty one) that the caller has exclusive use of.
#[inline(always)]
unsafe fn draw(bins: *mut Bin) -> u64 {
    // SAFETY: forwarded from the caller; the header precedes the bins.
    let state = unsafe { &mut (*header(bins)).draws };
    *state = state.wrapping_add(0xa076_1d64_78bd_642f);
    let product = u128::from(*state) * u128::from(*state ^ 0xe703_7ed1_a0b4_28db);
    ((product >> 64) as u64) ^ (product as u64)
}

/// The next `CHOICE_BITS` random bits of magazine `bins` (in the low bits of the result): a
/// draw gives 64 bits and a choice takes four, so each draw serves fifteen choices. The pool
/// keeps the draw's unused bits under an end marker (bit 63 when drawn, shifted down with
/// them): fewer than four bits above it, and it is drawn again. A shift and a test per free
/// where a draw is an add, a multiply and a fold, with its two 64-bit constants.
///
/// # Safety
/// As for [`draw`].
#[inline(always)]
unsafe fn choose(bins: *mut Bin) -> u64 {
    let pool = pool(bins);
    // SAFETY: forwarded from the caller: the pool word lies before the direct table.
    let mut bits = unsafe { pool.read() };
    if bits < POOL_REFILL_BELOW {
        // SAFETY: forwarded from the caller.
        bits = unsafe { draw(bins) } | 1 << 63;
    }
    // SAFETY: as above.
    unsafe { pool.write(bits >> CHOICE_BITS) };
    bits
}

/// Puts `block`, just freed, of class `class` into a random entry of its class in magazine
/// `bins` of `class_count` classes; returns the block it displaced (null when the entry was
/// empty), its link words checked ([`check_link_words_zero`]), which the caller frees on as it
/// would have freed `block`.
///
/// # Safety
/// `bins` is a magazine (not the empty one) that the caller has exclusive use of, made for
/// `class_count` classes, and `class < class_count`.
#[inline(always)]
pub(crate) unsafe fn exchange(
    bins: *mut Bin,
    class_count: usize,
    class: usize,
    block: *mut u8,
) -> *mut u8 {
    // SAFETY: forwarded from the caller; the mask (set by `init`) is below
    // `QUARANTINE_ENTRIES`, and the magazine holds `QUARANTINE_ENTRIES` entries for each of its
    // classes; a displaced block was freed earlier into this class: ours now.
    unsafe {
        let mask = class_mask(bins, class).read() as usize;
        debug_assert!(mask < QUARANTINE_ENTRIES);
        let entry = class_entries(bins, class_count, class).add(choose(bins) as usize & mask);
        let displaced = entry.read();
        entry.write(block);
        if !displaced.is_null() {
            check_link_words_zero(displaced);
        }
        displaced
    }
}

/// Calls `visit(class, blocks)` for each class with blocks in magazine `bins`'s quarantine
/// (volatile word reads: the magazine's thread may be writing them; a snapshot).
///
/// # Safety
/// `bins` is a live magazine of `class_count` classes.
pub(crate) unsafe fn for_each(
    bins: *mut Bin,
    class_count: usize,
    visit: &mut impl FnMut(usize, usize),
) {
    for class in 0..class_count {
        let blocks = (0..QUARANTINE_ENTRIES)
            // SAFETY: forwarded from the caller: the entries of a class of the magazine.
            .filter(|&index| unsafe {
                !class_entries(bins, class_count, class)
                    .add(index)
                    .read_volatile()
                    .is_null()
            })
            .count();
        if blocks > 0 {
            visit(class, blocks);
        }
    }
}

/// Empties class `class`'s entries of magazine `bins` (of `class_count` classes) into `out`;
/// returns the blocks taken, each with its link words checked ([`check_link_words_zero`]):
/// the backend writes its own free-list link over them, and the check at the block's next
/// hand-out starts past them (the pop clears them), so a write after free there would
/// otherwise be lost on the way out (`malloc_trim`, a thread's exit).
///
/// # Safety
/// `bins` is a magazine of `class_count` classes, more than `class`, that the caller has
/// exclusive use of.
pub(crate) unsafe fn take_class(
    bins: *mut Bin,
    class_count: usize,
    class: usize,
    out: &mut [MaybeUninit<*mut u8>; QUARANTINE_ENTRIES],
) -> &[*mut u8] {
    let mut taken = 0;
    for index in 0..QUARANTINE_ENTRIES {
        // SAFETY: forwarded from the caller: an entry of the class.
        let block = unsafe {
            class_entries(bins, class_count, class)
                .add(index)
                .replace(ptr::null_mut())
        };
        if !block.is_null() {
            // SAFETY: a quarantined block of a cached class: freed by the program, ours.
            unsafe { check_link_words_zero(block) };
            out[taken].write(block);
            taken += 1;
        }
    }
    // SAFETY: the first `taken` entries of `out` were just written; `MaybeUninit<T>` has `T`'s
    // layout.
    unsafe { core::slice::from_raw_parts(out.as_ptr().cast::<*mut u8>(), taken) }
}

/// Stops the process unless the first two words of `block`, leaving the quarantine (displaced
/// by [`exchange`], or taken by [`take_class`]), are still zero (the backend zeroed the block
/// when it was freed). A bin's or the backend's link and free mark are about to be written
/// there, and would erase a write after free that the check at the next hand-out, which starts
/// past them, is meant to find.
///
/// # Safety
/// `block` is a block of a cached class (at least two words, aligned) that the caller owns.
#[inline(always)]
unsafe fn check_link_words_zero(block: *mut u8) {
    // SAFETY: forwarded from the caller.
    let words = unsafe { block.cast::<[usize; 2]>().read() };
    if words[0] | words[1] != 0 {
        quarantined_block_written(block);
    }
}

/// The abort for a write after free found in a block leaving the quarantine.
#[cold]
#[inline(never)]
fn quarantined_block_written(block: *mut u8) -> ! {
    heapkit_core::fatal(
        "heapkit-tcache",
        "write after free: a quarantined block was written to",
        block as usize,
    )
}

/// The cache's side of the quarantine: the free that goes through it, its cold path, and the
/// flush that empties it.
impl<B: BatchAllocator> ThreadCache<B> {
    /// `hardened`'s free over a backend that keeps the record: the record taken back (the
    /// backend's checks and scrub), then the block into a random entry of its class's
    /// quarantine, and the block it displaces (freed earlier, of the same class) onto the bin
    /// in its place.
    ///
    /// The record comes first, right after `bin_of_block`'s reads of the same chunk header and
    /// class byte (which the backend's scrub reuses); the magazine and the key after it.
    ///
    /// # Safety
    /// As for `deallocate_in_class`.
    #[inline(always)]
    pub(crate) unsafe fn deallocate_quarantined<const PRIMARY: bool>(
        &self,
        ptr: *mut u8,
        class: usize,
    ) {
        #[cfg(feature = "checked")]
        // SAFETY: forwarded from the caller.
        unsafe {
            self.check_free(self.fast_magazine::<PRIMARY>(), ptr, class)
        };
        // A block the program does not own stops here, before any bin sees it (live.rs).
        // SAFETY: forwarded from the caller: a block start of a class.
        unsafe { self.take_back(ptr) };
        let bins = self.fast_magazine::<PRIMARY>();
        // SAFETY: as in `allocate_in_class`.
        let bin = unsafe { bin::at(bins, class) };
        // The bin's room first: one test for both cold cases, a thread without a magazine yet
        // (the empty magazine's bins have limit 0; its quarantine, made with the magazine, is
        // on the cold path) and a full bin (which flushes). Past it, the push of the displaced
        // block cannot fail.
        // SAFETY: the bin is this thread's (or the empty magazine's, only read).
        let Some(count) = (unsafe { bin::room(bin) }) else {
            // SAFETY: forwarded from the caller: a live block of `class`, its record cleared;
            // `bins` is what the fast path read.
            return unsafe { Self::quarantine_slow::<PRIMARY>(ptr, class, self, bins) };
        };
        // SAFETY: this thread's magazine (the empty one has no room).
        let displaced = unsafe { self.quarantine(bins, class, ptr) };
        if displaced.is_null() {
            return;
        }
        // SAFETY: a block of a cached class that is ours now; the bin had room and nothing was
        // pushed since. The secrets only encode the pushed link.
        unsafe { bin::push_into_room(bin, displaced, self.fast_secrets(), count) };
    }

    /// Puts `ptr`, just freed, of class `class`, into magazine `bins`'s quarantine; returns the
    /// block it displaced, its link words checked (null when the entry was empty).
    ///
    /// # Safety
    /// `bins` is this thread's magazine (not the empty one); `ptr` is a block of `class` that
    /// the program just freed, its record cleared (`take_back`).
    #[inline(always)]
    unsafe fn quarantine(&self, bins: *mut Bin, class: usize, ptr: *mut u8) -> *mut u8 {
        // SAFETY: forwarded from the caller: a magazine made for the backend's classes.
        unsafe { exchange(bins, self.backend.class_count(), class, ptr) }
    }

    /// `hardened`'s free of a block when the fast path found no room in the bin: the thread has
    /// no magazine yet (`seen` is the empty one: it is made now), or the bin is full. Puts the
    /// block into the quarantine and frees the displaced block on, flushing the bin if need be;
    /// a thread that can have no magazine (no slot, out of memory) gives the block to the
    /// backend.
    ///
    /// # Safety
    /// `ptr` is a block of class `class` (a class of the backend) that the program just freed,
    /// its record cleared (`take_back`); `seen` is the empty magazine or this thread's.
    #[cold]
    #[inline(never)]
    unsafe fn quarantine_slow<const PRIMARY: bool>(
        ptr: *mut u8,
        class: usize,
        cache: &Self,
        seen: *mut Bin,
    ) {
        let bins = if seen == empty_magazine() {
            cache.attach_magazine()
        } else {
            seen
        };
        if bins.is_null() {
            // SAFETY: forwarded from the caller: a live block of `class`.
            return unsafe { cache.backend.deallocate_batch(class, &[ptr]) };
        }
        // SAFETY: this thread's magazine; forwarded from the caller.
        let displaced = unsafe { cache.quarantine(bins, class, ptr) };
        if displaced.is_null() {
            return;
        }
        // SAFETY: the displaced block was freed earlier, of the same class: ours now; `bins` is
        // this thread's magazine.
        unsafe {
            if !bin::push(bin::at(bins, class), displaced) {
                Self::deallocate_slow::<PRIMARY>(displaced, class, cache, bins);
            }
        }
    }

    /// Gives every block of a magazine's quarantine back to the backend; returns how many.
    ///
    /// # Safety
    /// The caller has exclusive use of the magazine (holds its slot, or `&mut self`).
    pub(crate) unsafe fn release_quarantine(&self, bins: *mut Bin) -> usize {
        // SAFETY: the header precedes the bins; the caller owns the magazine.
        let class_count = unsafe { (*header(bins)).class_count } as usize;
        let mut buffer = [MaybeUninit::uninit(); QUARANTINE_ENTRIES];
        let mut blocks = 0;
        for class in 0..class_count {
            // SAFETY: forwarded from the caller; `class < class_count`.
            let taken = unsafe { take_class(bins, class_count, class, &mut buffer) };
            if !taken.is_empty() {
                // SAFETY: blocks freed by the program and held back: ours, of `class`.
                unsafe { self.backend.deallocate_batch(class, taken) };
                blocks += taken.len();
            }
        }
        blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::magazine::{header, Header};

    /// A stand-in magazine of one class: the quarantine's bytes, the direct table, the header,
    /// a bin; aligned as magazines are.
    #[repr(C, align(64))]
    struct Magazine([u8; magazine_bytes(1) + 64 * 8 + 2 * 16]);

    /// Each draw serves fifteen choices, four fresh bits each, and the choices cover the
    /// entries evenly.
    #[test]
    fn a_draw_serves_fifteen_choices_spread_over_the_entries() {
        let mut magazine = Magazine([0; magazine_bytes(1) + 64 * 8 + 2 * 16]);
        let bins = magazine
            .0
            .as_mut_ptr()
            .wrapping_add(magazine_bytes(1) + 64 * 8 + core::mem::size_of::<Header>())
            .cast::<Bin>();
        assert_eq!(
            pool(bins).cast::<u8>(),
            direct_table(bins).cast::<u8>().wrapping_sub(64)
        );
        // SAFETY: the stand-in's header and pool, ours alone.
        unsafe { (*header(bins)).draws = 0x1234_5678 };
        let mut counts = [0u32; QUARANTINE_ENTRIES];
        let mut draws_seen = 0;
        let mut last_state = 0x1234_5678;
        for _ in 0..15 * 1000 {
            // SAFETY: as above.
            let bits = unsafe { choose(bins) };
            counts[bits as usize & (QUARANTINE_ENTRIES - 1)] += 1;
            // SAFETY: as above.
            let state = unsafe { (*header(bins)).draws };
            if state != last_state {
                draws_seen += 1;
                last_state = state;
            }
        }
        assert_eq!(draws_seen, 1000, "one draw per fifteen choices");
        for (entry, &count) in counts.iter().enumerate() {
            assert!(
                (700..1200).contains(&count),
                "entry {entry}: {count} of 15000"
            );
        }
    }
}
