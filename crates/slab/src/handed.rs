//! The `secure` feature's record of which small blocks the *program* owns: one bit per 16-byte
//! granule of a chunk, in the chunk header, set while the block starting there is handed out.
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
//!          word  = chunk.handed[granule / 64]    bit = granule % 64      (one lock bts/btr)
//! ```
//!
//! The bit is found from the address alone, with no class and no division: block starts are
//! 16-byte aligned, so every block has a granule of its own. Bits change with atomic
//! read-modify-writes: blocks of one word are handed out and freed by different threads, each
//! holding only its own blocks. A slot's bits are cleared when it becomes a slab
//! ([`clear_slot`]): chunk headers may come from reused memory. Without `secure` nothing here
//! is compiled in.

#[cfg(all(target_arch = "x86_64", not(miri)))]
use crate::chunk::block_header;
use crate::chunk::{ident, meta_ptr, slot_of, Chunk};
use crate::classes::{is_block_offset, CLASS_COUNT};
use crate::geometry::{CHUNK_BYTES, CHUNK_MASK, SLOT_BYTES};
use crate::heap::Slab;
#[cfg(feature = "hardened")]
use crate::scrub;
use crate::slab_meta::SlabMeta;
use core::ptr::{addr_of_mut, NonNull};
use core::sync::atomic::{AtomicU64, Ordering};
use heapkit_core::PageSource;

/// Bytes per bit: every block start is a multiple of this (the smallest class and its
/// alignment).
const GRANULE_BYTES: usize = crate::classes::MIN_BLOCK_BYTES;
const BITS_PER_WORD: usize = u64::BITS as usize;
/// Words of the record per chunk (2 KiB of them: 16 KiB of the 64 KiB header slot).
pub(crate) const HANDED_WORDS: usize = CHUNK_BYTES / GRANULE_BYTES / BITS_PER_WORD;
/// Words of the record per slot.
const SLOT_WORDS: usize = SLOT_BYTES / GRANULE_BYTES / BITS_PER_WORD;

const _: () = assert!(GRANULE_BYTES.is_power_of_two() && GRANULE_BYTES >= 16);
const _: () = assert!(SLOT_WORDS * BITS_PER_WORD * GRANULE_BYTES == SLOT_BYTES);

/// The word of `ptr`'s chunk record that holds `ptr`'s bit, and the bit.
///
/// # Safety
/// `ptr` lies in a live slab chunk (its header is mapped and initialised).
#[inline(always)]
unsafe fn position<'a>(ptr: NonNull<u8>) -> (&'a AtomicU64, u64) {
    let granule = (ptr.as_ptr() as usize & CHUNK_MASK) / GRANULE_BYTES;
    let chunk = ptr.as_ptr().map_addr(|a| a & !CHUNK_MASK).cast::<Chunk>();
    // SAFETY: forwarded from the caller; `granule / 64 < HANDED_WORDS` since the granule
    // index is below CHUNK_BYTES / GRANULE_BYTES. The word is only ever accessed atomically
    // (this module), and the chunk outlives every block in it.
    let word = unsafe {
        let word = addr_of_mut!((*chunk).handed[granule / BITS_PER_WORD]);
        AtomicU64::from_ptr(word)
    };
    (word, 1 << (granule % BITS_PER_WORD))
}

/// Byte offset of the record in a chunk header (an `asm!` displacement below).
#[cfg(all(target_arch = "x86_64", not(miri)))]
const HANDED_OFFSET: usize = core::mem::offset_of!(Chunk, handed);

/// `ptr`'s chunk header and its granule in the chunk: the bit offset of its mark in the
/// record. The header as [`block_header`] finds it (a small block never starts a chunk: slot 0
/// is the header), so that a free, which has just found it so, computes it once.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
fn chunk_and_granule(ptr: NonNull<u8>) -> (*mut Chunk, usize) {
    debug_assert!(
        ptr.as_ptr() as usize & CHUNK_MASK != 0,
        "a small block starts no chunk"
    );
    let granule = (ptr.as_ptr() as usize & CHUNK_MASK) / GRANULE_BYTES;
    (block_header(ptr).cast(), granule)
}

/// Sets `ptr`'s bit; returns whether it was clear. On x86-64 one `lock bts` with the granule
/// as a register bit offset (the instruction finds the word itself: three instructions fewer
/// than splitting word and bit, on every malloc) and the branch on its carry.
///
/// # Safety
/// As for [`position`].
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
unsafe fn set_bit(ptr: NonNull<u8>) -> bool {
    let (chunk, granule) = chunk_and_granule(ptr);
    // SAFETY: forwarded from the caller: the chunk header is mapped and its record
    // initialised; a 64-bit `bts` with a register bit offset touches the word at
    // `record + 8 * (granule / 64)`, inside the record since `granule < HANDED_WORDS * 64`.
    // A locked read-modify-write, as `AtomicU64::fetch_or` would be, of a word that is only
    // ever accessed atomically.
    unsafe {
        core::arch::asm!(
            "lock bts qword ptr [{chunk} + {record}], {granule}",
            "jc {was_set}",
            chunk = in(reg) chunk,
            granule = in(reg) granule,
            record = const HANDED_OFFSET,
            was_set = label { return false },
            options(nostack),
        );
    }
    true
}

/// Clears `ptr`'s bit; returns whether it was set (`lock btr`, as [`set_bit`]).
///
/// # Safety
/// As for [`position`].
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
unsafe fn clear_bit(ptr: NonNull<u8>) -> bool {
    let (chunk, granule) = chunk_and_granule(ptr);
    // SAFETY: as in `set_bit`.
    unsafe {
        core::arch::asm!(
            "lock btr qword ptr [{chunk} + {record}], {granule}",
            "jnc {was_clear}",
            chunk = in(reg) chunk,
            granule = in(reg) granule,
            record = const HANDED_OFFSET,
            was_clear = label { return false },
            options(nostack),
        );
    }
    true
}

/// Sets `ptr`'s bit; returns whether it was clear (elsewhere, and under Miri: an atomic
/// `fetch_or` of its word).
///
/// # Safety
/// As for [`position`].
#[cfg(not(all(target_arch = "x86_64", not(miri))))]
#[inline(always)]
unsafe fn set_bit(ptr: NonNull<u8>) -> bool {
    // SAFETY: forwarded from the caller.
    let (word, bit) = unsafe { position(ptr) };
    // Relaxed: the block itself travels between threads through the program's (or the
    // cache's) own synchronisation, which orders these read-modify-writes of one word.
    word.fetch_or(bit, Ordering::Relaxed) & bit == 0
}

/// Clears `ptr`'s bit; returns whether it was set (as [`set_bit`]).
///
/// # Safety
/// As for [`position`].
#[cfg(not(all(target_arch = "x86_64", not(miri))))]
#[inline(always)]
unsafe fn clear_bit(ptr: NonNull<u8>) -> bool {
    // SAFETY: forwarded from the caller.
    let (word, bit) = unsafe { position(ptr) };
    word.fetch_and(!bit, Ordering::Relaxed) & bit != 0
}

/// Sets `ptr`'s mark; returns whether it was clear.
///
/// # Safety
/// As for [`position`].
#[inline(always)]
pub(crate) unsafe fn mark(ptr: NonNull<u8>) -> bool {
    // The class byte is read before the locked instruction, which the compiler must assume
    // writes memory: after it, the byte would be loaded again.
    #[cfg(feature = "hardened")]
    // SAFETY: forwarded from the caller.
    let block_bytes = unsafe { scrub::block_bytes(ptr) };
    // SAFETY: forwarded from the caller.
    let was_clear = unsafe { set_bit(ptr) };
    #[cfg(feature = "hardened")]
    // SAFETY: forwarded from the caller: a small block, now the program's.
    unsafe {
        scrub::on_hand_out(ptr, block_bytes)
    };
    was_clear
}

/// Clears `ptr`'s mark; returns whether it was set.
///
/// # Safety
/// As for [`position`].
#[inline(always)]
pub(crate) unsafe fn take(ptr: NonNull<u8>) -> bool {
    // Before the locked instruction, as in `mark`: the free path has just read the same
    // class byte (`bin_of_block`), and this read is then that one.
    #[cfg(feature = "hardened")]
    // SAFETY: forwarded from the caller.
    let block_bytes = unsafe { scrub::block_bytes(ptr) };
    // SAFETY: forwarded from the caller.
    let was_set = unsafe { clear_bit(ptr) };
    #[cfg(feature = "hardened")]
    if was_set {
        // SAFETY: forwarded from the caller: the program's block until now, given up.
        unsafe { scrub::on_free(ptr, block_bytes) };
    }
    was_set
}

/// For `check()`: the first block of `meta`'s slab that is marked as the program's but not
/// live in the slab (the mark must imply the live bit), or `None`.
pub(crate) fn first_handed_not_live(meta: &SlabMeta) -> Option<usize> {
    (0..meta.fresh as usize).find_map(|index| {
        let block = meta.start.wrapping_add(index * meta.block_bytes as usize);
        let block = NonNull::new(block)?;
        // SAFETY: a block of a live slab: its chunk header is live.
        let (word, bit) = unsafe { position(block) };
        let marked = word.load(Ordering::Relaxed) & bit != 0;
        (marked && !meta.is_live(index)).then_some(block.as_ptr() as usize)
    })
}

/// Clears the marks of slot `slot` of `chunk`, which is becoming a slab (no block in it is
/// handed out; the header's memory may hold anything).
///
/// # Safety
/// `chunk` is a live chunk header and `slot` one of its slots that no block lives in.
pub(crate) unsafe fn clear_slot(chunk: *mut Chunk, slot: usize) {
    let first = slot * SLOT_WORDS;
    for index in first..first + SLOT_WORDS {
        // SAFETY: forwarded from the caller; `index < HANDED_WORDS` since `slot` is a slot.
        unsafe { AtomicU64::from_ptr(addr_of_mut!((*chunk).handed[index])) }
            .store(0, Ordering::Relaxed);
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
