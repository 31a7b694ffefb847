//! The `secure` feature's record of which small blocks the *program* owns: one byte per
//! 16-byte granule of a chunk, in the two slots after its header, non-zero while the block
//! starting there is handed out.
//!
//! The slab's live bitmap cannot answer "may the program free this block?": a block in a
//! thread cache is live to the slab but free to the program. So the cache marks a block here
//! when it hands it out and clears the mark when the program frees it, and a free whose mark
//! is not there — a block never handed out, one freed already, one sitting in any thread's
//! cache — is stopped before the cache takes it
//! ([`BatchAllocator::mark_handed_out`](heapkit_core::BatchAllocator::mark_handed_out)).
//!
//! ```text
//!   ptr ─► chunk = ptr & !(2 MiB - 1)      granule = (ptr & (2 MiB - 1)) / 16
//!          mark  = chunk[52 KiB + granule]          (one load and one store, no lock)
//! ```
//!
//! The mark is found from the address alone, with no class and no division: block starts are
//! 16-byte aligned, so every block has a granule of its own. A *byte* per granule, not a bit:
//! with bits, the blocks of one word belong to different threads, so every change had to be a
//! locked read-modify-write (`lock bts`/`lock btr`, about 30 cycles each on this machine: 80% of
//! `secure`'s malloc and two thirds of its free in a hot pair). A byte belongs to one block
//! alone, and a block to one owner at a time, so a plain load and store (relaxed atomics) are
//! enough. What that gives up: two threads freeing the *same* block at the same instant may
//! both see the mark and both clear it (a race the program's own double free starts; glibc's
//! and mimalloc's checks have the same window); a double free in any order the program itself
//! sequences is still stopped. The record is 128 KiB per chunk, 4 KiB per slab, written when
//! the slot becomes a slab ([`clear_slot`]: slots may come from reused memory), so it costs
//! 1/16 of a small slab's memory. Without `secure` nothing here is compiled in, and the header
//! is slot 0 alone.

use crate::chunk::{block_header, header_of, ident, meta_ptr, slot_of, Chunk, ChunkHead};
use crate::classes::{is_block_offset, CLASS_COUNT};
use crate::geometry::{CHUNK_BYTES, CHUNK_MASK, SLOT_BYTES};
use crate::heap::Slab;
#[cfg(feature = "hardened")]
use crate::scrub;
use crate::slab_meta::SlabMeta;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, Ordering};
use heapkit_core::PageSource;

/// Bytes per mark: every block start is a multiple of this (the smallest class and its
/// alignment).
const GRANULE_BYTES: usize = crate::classes::MIN_BLOCK_BYTES;
/// Bytes of the record per chunk: a mark per granule.
const RECORD_BYTES: usize = CHUNK_BYTES / GRANULE_BYTES;
/// Slots the record fills (after slot 0, the header): the chunk's header slots are
/// `1 + RECORD_SLOTS` with `secure`.
pub(crate) const RECORD_SLOTS: usize = RECORD_BYTES / SLOT_BYTES;
/// Marks (bytes) of the record per slot.
const SLOT_MARKS: usize = SLOT_BYTES / GRANULE_BYTES;
/// Where granule 0's mark would be in a chunk: the marks of the first slot that can hold
/// blocks (`1 + RECORD_SLOTS`) start the slot after the header's, and those of the header's
/// own slots, which no block starts in, are never read. So the record's last
/// `(1 + RECORD_SLOTS)` slots' worth of marks (12 KiB) is never touched either, and the page
/// before the first slab (the record slot's last) can be a guard.
const MARKS_OFFSET: usize = SLOT_BYTES - (1 + RECORD_SLOTS) * SLOT_MARKS;
/// Bytes at the end of the record's last slot that no mark lives in: room for the guard page
/// before the chunk's first slab (`slot_guard::guard_before_slot`).
#[cfg(feature = "hardened")]
pub(crate) const RECORD_UNUSED_TAIL_BYTES: usize = (1 + RECORD_SLOTS) * SLOT_MARKS;

const _: () = assert!(GRANULE_BYTES.is_power_of_two() && GRANULE_BYTES >= 16);
const _: () = assert!(RECORD_SLOTS * SLOT_BYTES == RECORD_BYTES, "whole slots");
const _: () = assert!(SLOT_MARKS * GRANULE_BYTES == SLOT_BYTES);
const _: () = assert!(
    core::mem::size_of::<Chunk>() <= MARKS_OFFSET,
    "the header ends before the record"
);

/// The mark of the granule at `ptr` (a block start, or any granule for `check()`).
///
/// # Safety
/// `ptr` lies in a small slab of a live chunk (its header and record are mapped), at
/// least one byte past the chunk's start (a small block never starts a chunk).
#[inline(always)]
unsafe fn mark_of<'a>(ptr: NonNull<u8>) -> &'a AtomicU8 {
    debug_assert!(
        ptr.as_ptr() as usize & CHUNK_MASK != 0,
        "a small block starts no chunk"
    );
    let granule = (ptr.as_ptr() as usize & CHUNK_MASK) / GRANULE_BYTES;
    // The header as a free has just found it (`block_header`), so that it is computed once.
    let chunk = block_header(ptr).cast::<u8>();
    // SAFETY: forwarded from the caller: a small slab's granule is at least
    // `(1 + RECORD_SLOTS) * SLOT_MARKS` and below `RECORD_BYTES`, so its mark lies in the
    // record slots, mapped for the chunk's life. Marks are only ever accessed atomically
    // (this module) but for `clear_slot`, which writes a slot's marks while no block of it is
    // anyone's.
    unsafe { AtomicU8::from_ptr(chunk.add(MARKS_OFFSET + granule)) }
}

/// Turns the mark of the block at `$ptr`, whose chunk header is `$chunk`, from `$old` into
/// `$new` and evaluates to `true`; returns `false` from the enclosing function, changing
/// nothing, when the mark is not `$old`. On x86-64 a `cmp` of the byte in memory with an
/// immediate, its branch and a `mov`: an atomic load is never folded into a compare, which
/// cost an instruction on every malloc and every free, and the asm block is as opaque to the
/// compiler as the atomic would be. The caller's safety contract is [`mark_of`]'s.
#[cfg(all(target_arch = "x86_64", not(miri)))]
macro_rules! flip_mark {
    ($chunk:expr, $ptr:expr, $old:literal => $new:literal) => {{
        let chunk = $chunk;
        let granule = ($ptr.as_ptr() as usize & CHUNK_MASK) / GRANULE_BYTES;
        // SAFETY: the caller's contract (`mark_of`'s): the mark lies in the record slots,
        // mapped for the chunk's life; the byte is this block's alone (the module's doc), so a
        // plain load and store are what the relaxed atomics would be.
        unsafe {
            core::arch::asm!(
                "cmp byte ptr [{chunk} + {granule} + {record}], {old}",
                "jne {other}",
                "mov byte ptr [{chunk} + {granule} + {record}], {new}",
                chunk = in(reg) chunk,
                granule = in(reg) granule,
                record = const MARKS_OFFSET,
                old = const $old,
                new = const $new,
                other = label { return false },
                options(nostack),
            );
        }
        true
    }};
}

/// Turns `ptr`'s mark from `old` into `new`; returns whether it was `old` (elsewhere, and
/// under Miri: relaxed atomics).
///
/// # Safety
/// As for [`mark_of`].
#[cfg(not(all(target_arch = "x86_64", not(miri))))]
#[inline(always)]
unsafe fn flip_mark(ptr: NonNull<u8>, old: u8, new: u8) -> bool {
    // SAFETY: forwarded from the caller.
    let mark = unsafe { mark_of(ptr) };
    // A load then a store rather than a swap: the byte is this block's alone, and the block
    // itself travels between threads through the program's (or the cache's) own
    // synchronisation, which orders the marks' changes with it.
    if mark.load(Ordering::Relaxed) != old {
        return false;
    }
    mark.store(new, Ordering::Relaxed);
    true
}

/// Sets the mark of `ptr`, whose chunk header is `chunk` (0 to 1); returns whether it was
/// clear.
///
/// # Safety
/// As for [`mark_of`]; `chunk` is `ptr`'s chunk header.
#[inline(always)]
unsafe fn set_mark(chunk: *mut ChunkHead, ptr: NonNull<u8>) -> bool {
    debug_assert!(ptr.as_ptr() as usize & CHUNK_MASK != 0);
    debug_assert!(chunk == block_header(ptr));
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    return flip_mark!(chunk, ptr, 0 => 1);
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    // SAFETY: forwarded from the caller.
    return unsafe { flip_mark(ptr, 0, 1) };
}

/// Clears the mark of `ptr`, whose chunk header is `chunk` (1 to 0); returns whether it was
/// set.
///
/// # Safety
/// As for [`mark_of`]; `chunk` is `ptr`'s chunk header.
#[inline(always)]
unsafe fn clear_mark(chunk: *mut ChunkHead, ptr: NonNull<u8>) -> bool {
    debug_assert!(ptr.as_ptr() as usize & CHUNK_MASK != 0);
    debug_assert!(chunk == block_header(ptr));
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    return flip_mark!(chunk, ptr, 1 => 0);
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    // SAFETY: forwarded from the caller.
    return unsafe { flip_mark(ptr, 1, 0) };
}

/// Sets `ptr`'s mark; returns whether it was clear (and, with `hardened`, checks the block is
/// still zero and writes its canary, only then: a block that was marked already is a heap the
/// caller stops on, and is not touched).
///
/// # Safety
/// As for [`mark_of`].
#[inline(always)]
pub(crate) unsafe fn mark(ptr: NonNull<u8>) -> bool {
    // The chunk found by masking (a malloc has not found it yet), once for the mark, the class
    // byte and the canary's secret.
    let chunk = header_of(ptr);
    // The class byte is read before the `asm!` block, which the compiler must assume writes
    // memory: after it, the byte would be loaded again.
    #[cfg(feature = "hardened")]
    // SAFETY: forwarded from the caller.
    let usable_bytes = unsafe { scrub::usable_bytes(chunk, ptr) };
    // SAFETY: forwarded from the caller. Tested at once, so that the mark's own branch is the
    // caller's abort (no flag kept in a register and tested again at the end).
    if !unsafe { set_mark(chunk, ptr) } {
        return false;
    }
    #[cfg(feature = "hardened")]
    // SAFETY: forwarded from the caller: a small block, now the program's.
    unsafe {
        scrub::on_hand_out(chunk, ptr, usable_bytes)
    };
    true
}

/// Clears `ptr`'s mark; returns whether it was set.
///
/// # Safety
/// As for [`mark_of`].
#[inline(always)]
pub(crate) unsafe fn take(ptr: NonNull<u8>) -> bool {
    // The chunk as `block_header` finds it: the free path has just found it so
    // (`bin_of_block`), and it is computed once.
    let chunk = block_header(ptr);
    // Before the `asm!` block, as in `mark`: the free path has just read the same class byte
    // (`bin_of_block`), and this read is then that one.
    #[cfg(feature = "hardened")]
    // SAFETY: forwarded from the caller.
    let usable_bytes = unsafe { scrub::usable_bytes(chunk, ptr) };
    // SAFETY: forwarded from the caller.
    if !unsafe { clear_mark(chunk, ptr) } {
        return false;
    }
    #[cfg(feature = "hardened")]
    // SAFETY: forwarded from the caller: the program's block until now, given up.
    unsafe {
        scrub::on_free(chunk, ptr, usable_bytes)
    };
    true
}

/// For `check()`: the first block of `meta`'s slab that is marked as the program's but not
/// live in the slab (the mark must imply the live bit), or `None`.
pub(crate) fn first_handed_not_live(meta: &SlabMeta) -> Option<usize> {
    (0..meta.fresh as usize).find_map(|index| {
        let block = meta.start.wrapping_add(index * meta.block_bytes as usize);
        let block = NonNull::new(block)?;
        // SAFETY: a block of a live slab: its chunk header and record are live.
        let marked = unsafe { mark_of(block) }.load(Ordering::Relaxed) != 0;
        (marked && !meta.is_live(index)).then_some(block.as_ptr() as usize)
    })
}

/// Clears the marks of slot `slot` of `chunk`, which is becoming a slab (no block in it is
/// handed out; the record's memory may hold anything: chunks come from reused memory).
///
/// # Safety
/// `chunk` is a live chunk header and `slot` one of its slots that no block lives in.
pub(crate) unsafe fn clear_slot(chunk: *mut Chunk, slot: usize) {
    debug_assert!(slot > RECORD_SLOTS && slot < CHUNK_BYTES / SLOT_BYTES);
    // SAFETY: forwarded from the caller; the slot's marks are `SLOT_MARKS` bytes inside the
    // record (`slot < SLOTS_PER_CHUNK`), which no other thread touches while the slot holds no
    // block: plain writes, as the slot's own memory would be.
    unsafe {
        let marks = chunk.cast::<u8>().add(MARKS_OFFSET + slot * SLOT_MARKS);
        core::ptr::write_bytes(marks, 0, SLOT_MARKS);
    }
}

impl<P: PageSource> Slab<P> {
    /// Stops the process on a free of `ptr`, whose mark was not set, naming why: a pointer into
    /// the middle of a block, a block never handed out, or one already free (in a cache or on
    /// its slab's list: a double free). Reads the slab under its class lock, never the block.
    ///
    /// # Safety
    /// `ptr` is 16-aligned and lies in a small slab of this `Slab` (as `bin_of_block` found).
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn not_live(&self, ptr: NonNull<u8>) -> ! {
        let addr = ptr.as_ptr() as usize;
        let chunk = ptr.as_ptr().map_addr(|a| a & !CHUNK_MASK).cast::<Chunk>();
        let slot = slot_of(ptr);
        // SAFETY: forwarded from the caller: a live slab chunk, a small slab's slot.
        let class = unsafe { ident(chunk, slot) }.class as usize;
        let offset = addr & (SLOT_BYTES - 1);
        let why = if class >= CLASS_COUNT || !is_block_offset(class, offset) {
            "a pointer into the middle of a small block"
        } else {
            let _list = self.classes[class].lock();
            // SAFETY: a small slab of `class` (its ident says so); its class lock is held.
            let meta = unsafe { &*meta_ptr(chunk, slot) };
            let index = meta.index_of(ptr.as_ptr());
            let mut in_window = false;
            meta.for_each_window_block(|i| in_window |= i == index);
            if index >= meta.fresh as usize || in_window {
                "a block that was never handed out"
            } else if meta.is_live(index) {
                // Live in the slab, not the program's: in a thread cache or on a shelf.
                "a block that is not the program's (in a thread cache: a double free, or a \
                 block never handed out)"
            } else {
                "a block that is already free (a double free)"
            }
        };
        heapkit_core::abort_with(format_args!(
            "heapkit-slab: free(): invalid pointer: invalid free of {why} at {addr:#x}"
        ))
    }
}
