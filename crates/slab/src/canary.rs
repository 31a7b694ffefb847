//! The `hardened` feature's canaries: the last word of every small block is not the program's
//! but a secret value, keyed by its chunk's secret and the word's own address, and checked
//! when the block is freed. A write past the end of a block (1 byte, 32 bytes, a `memcpy`)
//! changes its canary; a write before the start of a block changes the canary of the block
//! before it in the slab, which the free checks too (GrapheneOS hardened_malloc's
//! `SLAB_CANARY`, with the neighbour's check added).
//!
//! ```text
//!   slot: │ block i-1            ┆canary│ block i              ┆canary│ block i+1 …
//!         │ usable: class - 8    ┆ 8 B  │ usable: class - 8    ┆ 8 B  │
//!                                  ▲ underflow of i          ▲ overflow of i
//!   canary(at, family) = (((at ^ secret) * K) >> 8 | 1) ^ family << 8   (byte 0 ≠ 0, byte 7 = 0)
//! ```
//!
//! - **One secret per chunk**, in the chunk header (`Chunk::canary_secret`), drawn from the
//!   process key and the chunk's address when the chunk is made: read with the class byte the
//!   free and the hand-out read anyway (no GOT entry, no "drawn yet?" branch), and a secret
//!   learnt in one chunk is no use in another. A slab's canaries start at 0 (its blocks are
//!   zeroed or fresh), so none outlives the secret it was made with.
//! - **The first block of a slab** has no block before it: instead, the slot before the slab
//!   ends in a guard page (`slot_guard::guard_before_slot`), so an underflow of it faults.
//! - **Reserved, not squeezed.** With `hardened` a request of `size` takes the class of
//!   `size + CANARY_BYTES` (at least 32 bytes, so that the canary never shares the two words a
//!   cached block's link and free mark use), and every usable size — `malloc_usable_size`,
//!   Rust's `Allocator` lengths — leaves the canary out. Without `hardened`, `CANARY_BYTES` is
//!   0 and nothing here is compiled in: the normal and `secure` builds pay nothing.
//! - **Kept for the slot's life.** The canary is written when the block is handed out and stays
//!   while the block is free (zero on free and the zero check at hand-out skip it), so a
//!   block's canary word is always 0 (never handed out since its slab was made) or a canary.
//!   The neighbour check on a free accepts exactly those, whatever the neighbour's state.
//! - **Byte 0 is never 0, byte 7 always is.** The off-by-one string terminator (`'\0'` one past
//!   the end) always changes byte 0, so it is always caught; any change to byte 7 (the byte
//!   just before the next block: a 1-byte underflow) is caught too. Any other 1-byte write is
//!   caught unless it happens to write the canary's own byte (1 in 256).
//! - **The allocation family** (`malloc`, `operator new`, `operator new[]`) is folded into the
//!   canary of small blocks (`Family`): `free` expects `malloc`'s, and the C++ operators retag
//!   the block (heapkit-malloc's `cxx.rs`), so a `delete` of a `new[]` block, a `delete[]` of a
//!   `new` block and a `free` of either are told apart from an overflow and named.

/// Bytes at the end of every small block reserved for its canary: 8 with `hardened`, else 0.
pub const CANARY_BYTES: usize = if cfg!(feature = "hardened") { 8 } else { 0 };

/// The smallest block a request takes when canaries are on: the two words a cached block's
/// link and free mark use, then the canary, rounded to the 16-byte quantum.
/// (Used only when `CANARY_BYTES` is not 0.)
pub(crate) const CANARY_MIN_BLOCK_BYTES: usize = 32;

const _: () = assert!(CANARY_BYTES == 0 || CANARY_BYTES == core::mem::size_of::<u64>());
const _: () = assert!(
    CANARY_MIN_BLOCK_BYTES >= 2 * heapkit_core::WORD_BYTES + core::mem::size_of::<u64>(),
    "the canary never overlaps the link and free mark of a cached block"
);
const _: () = assert!(CANARY_MIN_BLOCK_BYTES % crate::classes::MIN_BLOCK_BYTES == 0);

/// The size a request of `size_bytes` asks of the classes: itself plus the canary, and at
/// least [`CANARY_MIN_BLOCK_BYTES`] (only with `hardened`). The caller has checked
/// `size_bytes <= SMALL_MAX_BYTES` (so nothing overflows).
///
/// Not rounded to the 16-byte quantum first: a request of 56 bytes fits the 64-byte class with
/// its canary, where rounding took it to 80 (python3's common 24-, 38-, 52-56-, 120- and
/// 152-byte requests each moved up a class; the README's script peaked about 12 MB higher). The
/// thread cache's direct table, which `malloc`'s inline path reads with one entry per 16-byte
/// step, shifts its steps by the canary instead (`BatchAllocator::CLASS_SIZE_OFFSET_BYTES`),
/// so every step still has one class.
#[inline(always)]
pub(crate) const fn with_canary(size_bytes: usize) -> usize {
    if CANARY_BYTES == 0 {
        return size_bytes;
    }
    let wanted = size_bytes + CANARY_BYTES;
    // `max` is not `const`.
    if wanted < CANARY_MIN_BLOCK_BYTES {
        CANARY_MIN_BLOCK_BYTES
    } else {
        wanted
    }
}

#[cfg(feature = "hardened")]
pub use hardened::*;

#[cfg(feature = "hardened")]
mod hardened {
    use super::CANARY_BYTES;
    use crate::chunk::{block_header, Chunk};
    use crate::geometry::SLOT_BYTES;
    use crate::slab_meta::SlabMeta;
    use core::ptr::{addr_of, NonNull};
    use core::sync::atomic::{AtomicU64, Ordering};

    /// Who allocated a small block: the C library tags blocks of `operator new` and
    /// `operator new[]` so that the wrong release function is caught.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Family {
        /// `malloc` and its relatives, and Rust's allocators (what every hand-out writes).
        Malloc = 0,
        /// C++ `operator new`.
        New = 1,
        /// C++ `operator new[]`.
        NewArray = 2,
    }

    impl Family {
        /// The function that allocates blocks of this family, for messages.
        pub fn allocator_name(self) -> &'static str {
            match self {
                Family::Malloc => "malloc()",
                Family::New => "operator new",
                Family::NewArray => "operator new[]",
            }
        }

        const ALL: [Family; 3] = [Family::Malloc, Family::New, Family::NewArray];
    }

    /// Odd multiplier that spreads the address and the secret over the word.
    const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;
    /// The family's place inside the canary: bits 8 and 9 (byte 0 stays non-zero, byte 7 zero).
    const FAMILY_SHIFT: u32 = 8;
    /// The bits a family may flip: a word that differs from a block's `malloc` canary only
    /// there is one of its canaries (the pattern 3, no family, is accepted too: a blind write
    /// still has to get the other 54 bits right).
    const FAMILY_BITS: u64 = 3 << FAMILY_SHIFT;
    /// Mixed with the process key and a chunk's address into the chunk's canary secret, so
    /// that the secret and the key differ.
    const CANARY_SALT: usize = 0xCA4A_121E_5A17_0001;

    /// The canary secret of the chunk at `chunk_addr`, drawn when the chunk is made: derived
    /// from the process key (so that a leaked canary does not give away the key that encodes
    /// the free lists) and the chunk's address (a secret learnt in one chunk is no use in
    /// another). Never 0.
    pub(crate) fn chunk_secret(chunk_addr: usize) -> u64 {
        let key = heapkit_core::secure::key();
        heapkit_core::secure::mix(key ^ CANARY_SALT ^ chunk_addr) as u64 | 1
    }

    /// The canary secret for the small block at `block`: its chunk's.
    ///
    /// # Safety
    /// `block` is the start of a small block of a live slab chunk.
    #[inline(always)]
    unsafe fn secret(block: NonNull<u8>) -> u64 {
        let chunk = block_header(block).cast::<Chunk>();
        // SAFETY: forwarded from the caller: a live chunk's header, whose secret was written
        // when it was made and stays while it lives.
        unsafe { addr_of!((*chunk).canary_secret).read() }
    }

    /// The `malloc` canary for the word at `at` with canary secret `secret`: one multiply;
    /// the shift clears byte 7, the `| 1` makes byte 0 non-zero.
    #[inline(always)]
    fn base(at: usize, secret: u64) -> u64 {
        ((at as u64 ^ secret).wrapping_mul(SPREAD) >> 8) | 1
    }

    /// The canary of `family` for the word at `at` with canary secret `secret`.
    #[inline(always)]
    fn value(at: usize, secret: u64, family: Family) -> u64 {
        base(at, secret) ^ ((family as u64) << FAMILY_SHIFT)
    }

    /// Whether `word`, read at `at`, is a canary of some family.
    #[inline(always)]
    fn is_canary(at: usize, word: u64, secret: u64) -> bool {
        (word ^ base(at, secret)) & !FAMILY_BITS == 0
    }

    /// The family whose canary `word` (read at `at`) is, or `None` for a word no hand-out
    /// wrote (an overwritten canary, or 0).
    #[inline]
    fn family_of_word(at: usize, word: u64, secret: u64) -> Option<Family> {
        let base = base(at, secret);
        Family::ALL
            .into_iter()
            .find(|&family| word == base ^ ((family as u64) << FAMILY_SHIFT))
    }

    /// The canary word of the block at `block` whose usable part is `usable_bytes` long.
    ///
    /// # Safety
    /// `block` is a small block of a live slab and `usable_bytes` its class size minus
    /// [`CANARY_BYTES`].
    #[inline(always)]
    unsafe fn word<'a>(block: NonNull<u8>, usable_bytes: usize) -> &'a AtomicU64 {
        // SAFETY: forwarded from the caller: the last word of the block, 8-aligned (blocks
        // are 16-aligned multiples of 16). Atomic because the free of the next block reads it
        // while another thread may hand this block out.
        unsafe { AtomicU64::from_ptr(block.as_ptr().add(usable_bytes).cast::<u64>()) }
    }

    /// Writes the `malloc` canary of the small block at `ptr`, which is being handed out.
    ///
    /// # Safety
    /// `ptr` is the start of a small block of a live chunk that the caller owns.
    #[inline(always)]
    pub(crate) unsafe fn write(ptr: NonNull<u8>, block_bytes: usize) {
        let usable = block_bytes - CANARY_BYTES;
        let at = ptr.as_ptr() as usize + usable;
        // SAFETY: forwarded from the caller.
        let secret = unsafe { secret(ptr) };
        // SAFETY: forwarded from the caller.
        unsafe { word(ptr, usable) }.store(value(at, secret, Family::Malloc), Ordering::Relaxed);
    }

    /// Checks the canary of the small block at `ptr`, which the program frees (it must be the
    /// `malloc` canary), and the canary of the block before it in its slab (0 or any
    /// family's); stops the process naming the fault otherwise.
    ///
    /// # Safety
    /// `ptr` is the start of a small block of a live chunk, handed out until now.
    #[inline(always)]
    pub(crate) unsafe fn check_on_free(ptr: NonNull<u8>, block_bytes: usize) {
        let usable = block_bytes - CANARY_BYTES;
        let at = ptr.as_ptr() as usize + usable;
        // SAFETY: forwarded from the caller.
        let secret = unsafe { secret(ptr) };
        // SAFETY: forwarded from the caller.
        let own = unsafe { word(ptr, usable) }.load(Ordering::Relaxed);
        if own != base(at, secret) {
            own_canary_broken(ptr.as_ptr() as usize, usable, own, secret);
        }
        // Blocks start at the slot's first byte: a block has a neighbour before it in its
        // slab unless it is the first (the slot's guard page, if any, is at its end).
        if ptr.as_ptr() as usize & (SLOT_BYTES - 1) != 0 {
            let before = ptr.as_ptr() as usize - CANARY_BYTES;
            // SAFETY: the last word of the previous block of the same slab, inside the slot.
            let word = unsafe { AtomicU64::from_ptr(before as *mut u64) }.load(Ordering::Relaxed);
            if word != 0 && !is_canary(before, word, secret) {
                underflow(ptr.as_ptr() as usize, usable, block_bytes);
            }
        }
    }

    /// Checks the canaries of the live small block at `ptr` (usable size `usable_bytes`) as a
    /// free would — its own must be `malloc`'s — and stops the process on a fault: for a
    /// `realloc` that keeps the block in place.
    ///
    /// # Safety
    /// `ptr` is a live small block of a heapkit slab whose usable size is `usable_bytes`.
    pub unsafe fn check_live(ptr: NonNull<u8>, usable_bytes: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { check_on_free(ptr, usable_bytes + CANARY_BYTES) }
    }

    /// The family of the live small block at `ptr` (usable size `usable_bytes`), or `None`
    /// when its canary was overwritten — for the C library's release functions, which then
    /// free it and let the check on free report the overflow.
    ///
    /// # Safety
    /// `ptr` is a live small block of a heapkit slab whose usable size is `usable_bytes`.
    pub unsafe fn family(ptr: NonNull<u8>, usable_bytes: usize) -> Option<Family> {
        let at = ptr.as_ptr() as usize + usable_bytes;
        // SAFETY: forwarded from the caller.
        let word = unsafe { word(ptr, usable_bytes) }.load(Ordering::Relaxed);
        // SAFETY: forwarded from the caller.
        family_of_word(at, word, unsafe { secret(ptr) })
    }

    /// Rewrites the canary of the live small block at `ptr` (usable size `usable_bytes`) as
    /// `family`'s.
    ///
    /// # Safety
    /// `ptr` is a live small block of a heapkit slab, owned by the caller, whose usable size
    /// is `usable_bytes`.
    pub unsafe fn set_family(ptr: NonNull<u8>, usable_bytes: usize, family: Family) {
        let at = ptr.as_ptr() as usize + usable_bytes;
        // SAFETY: forwarded from the caller.
        let secret = unsafe { secret(ptr) };
        // SAFETY: forwarded from the caller.
        unsafe { word(ptr, usable_bytes) }.store(value(at, secret, family), Ordering::Relaxed);
    }

    /// For `check()`: the first block of `meta`'s slab whose canary word is neither 0 nor a
    /// canary, or `None`.
    pub(crate) fn first_broken(meta: &SlabMeta) -> Option<usize> {
        let usable = meta.block_bytes as usize - CANARY_BYTES;
        (0..meta.fresh as usize).find_map(|index| {
            let block = meta.start.wrapping_add(index * meta.block_bytes as usize);
            let block = NonNull::new(block)?;
            // SAFETY: a block of a live slab (below `fresh`, so inside its capacity).
            let word = unsafe { word(block, usable) }.load(Ordering::Relaxed);
            // SAFETY: as above.
            let secret = unsafe { secret(block) };
            let intact = word == 0 || is_canary(block.as_ptr() as usize + usable, word, secret);
            (!intact).then_some(block.as_ptr() as usize)
        })
    }

    /// The abort for a block whose own canary is not `malloc`'s: another family's (a
    /// mismatched release) or none (an overflow).
    #[cold]
    #[inline(never)]
    fn own_canary_broken(addr: usize, usable: usize, word: u64, secret: u64) -> ! {
        match family_of_word(addr + usable, word, secret) {
            Some(family) => heapkit_core::abort_with(format_args!(
                "heapkit-slab: mismatched free: free() (or realloc()) of a block allocated by {} \
                 at {addr:#x}",
                family.allocator_name()
            )),
            None => heapkit_core::abort_with(format_args!(
                "heapkit-slab: heap overflow: the canary after the block at {addr:#x} (usable \
                 size {usable} bytes) was overwritten: a write past its end"
            )),
        }
    }

    #[cold]
    #[inline(never)]
    fn underflow(addr: usize, usable: usize, block_bytes: usize) -> ! {
        let before = addr - block_bytes;
        heapkit_core::abort_with(format_args!(
            "heapkit-slab: heap underflow: the canary just before the block at {addr:#x} \
             (usable size {usable} bytes) was overwritten: a write before its start (or an \
             overflow of the block before it, at {before:#x})"
        ))
    }
}
