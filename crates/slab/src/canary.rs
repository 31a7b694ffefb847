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
//!   canary(at, family) = (fold((at ^ s0) · s1) >> 8 | 1) ^ family << 8   (byte 0 ≠ 0, byte 7 = 0)
//!   fold(p) = high 64 bits of the 128-bit product ^ low 64 bits
//! ```
//!
//! - **Keyed, and not invertible from one canary.** The canary is a keyed hash of its word's
//!   address (wyhash's multiply-and-fold, keyed by the chunk's two secret words `s0`, `s1`):
//!   one canary gives 55 bits about 128 unknown ones, so a canary read through a leak tells
//!   nothing that forges another. (Before, it was `((at ^ secret) * K) >> 8`: the multiply by
//!   a known odd constant is invertible, so one leaked canary gave its chunk's secret to
//!   within 512 candidates, and with it every canary of the chunk.) It costs what that did:
//!   one `mul` (the secret is its memory operand, where `imul` needed the constant in a
//!   register) and one `xor` more for the fold.
//!
//! - **One secret per chunk**, two words in the chunk header (`Chunk::canary_secret`), drawn
//!   from the process key and the chunk's address when the chunk is made (through a one-way
//!   step: a chunk secret does not give the key back): read next to the class byte the free
//!   and the hand-out read anyway (no GOT entry, no "drawn yet?" branch), and a secret learnt
//!   in one chunk is no use in another. A slab's canaries start at 0 (its blocks are
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
    use crate::chunk::{block_header, Chunk, ChunkHead};
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

    /// The family's place inside the canary: bits 8 and 9 (byte 0 stays non-zero, byte 7 zero).
    const FAMILY_SHIFT: u32 = 8;
    /// The bits a family may flip: a word that differs from a block's `malloc` canary only
    /// there is one of its canaries (the pattern 3, no family, is accepted too: a blind write
    /// still has to get the other 54 bits right).
    const FAMILY_BITS: u64 = 3 << FAMILY_SHIFT;
    /// Mixed with the process key and a chunk's address into the chunk's canary secret words,
    /// one salt each, so that the words, and the secret and the key, differ.
    const CANARY_SALTS: [usize; 2] = [0xCA4A_121E_5A17_0001, 0x5EC2_E7CA_4A12_1E03];

    /// A chunk's canary secret: two words, the key of [`base`]'s hash.
    pub(crate) type Secret = [u64; 2];

    /// The canary secret of the chunk at `chunk_addr`, drawn when the chunk is made: derived
    /// from the process key and the chunk's address (a secret learnt in one chunk is no use in
    /// another) through a one-way step (the key xored onto the mixed value: `mix` alone is a
    /// bijection, and would give the key that encodes the free lists back from a secret). The
    /// multiplier word is odd, so never 0.
    pub(crate) fn chunk_secret(chunk_addr: usize) -> Secret {
        let key = heapkit_core::secure::key();
        let word = |salt: usize| (heapkit_core::secure::mix(key ^ salt ^ chunk_addr) ^ key) as u64;
        [word(CANARY_SALTS[0]), word(CANARY_SALTS[1]) | 1]
    }

    /// The canary secret of the chunk whose header is `chunk`.
    ///
    /// # Safety
    /// `chunk` is the header of a live slab chunk.
    #[inline(always)]
    unsafe fn secret(chunk: *mut ChunkHead) -> Secret {
        // SAFETY: forwarded from the caller: a live chunk's header, whose secret was written
        // when it was made and stays while it lives. Word by word: read whole, the pair went
        // through a vector register and the stack.
        unsafe {
            let words = addr_of!((*chunk.cast::<Chunk>()).canary_secret).cast::<u64>();
            [words.read(), words.add(1).read()]
        }
    }

    /// The `malloc` canary for the word at `at` with canary secret `secret`: a keyed hash
    /// (one 64×64→128 multiply, its halves folded); the shift clears byte 7, the `| 1` makes
    /// byte 0 non-zero.
    #[inline(always)]
    fn base(at: usize, secret: Secret) -> u64 {
        let product = u128::from(at as u64 ^ secret[0]) * u128::from(secret[1]);
        (((product >> 64) as u64 ^ product as u64) >> 8) | 1
    }

    /// The canary of `family` for the word at `at` with canary secret `secret`.
    #[inline(always)]
    fn value(at: usize, secret: Secret, family: Family) -> u64 {
        base(at, secret) ^ ((family as u64) << FAMILY_SHIFT)
    }

    /// Whether `word`, read at `at`, is a canary of some family.
    #[inline(always)]
    fn is_canary(at: usize, word: u64, secret: Secret) -> bool {
        (word ^ base(at, secret)) & !FAMILY_BITS == 0
    }

    /// The family whose canary `word` (read at `at`) is, or `None` for a word no hand-out
    /// wrote (an overwritten canary, or 0).
    #[inline]
    fn family_of_word(at: usize, word: u64, secret: Secret) -> Option<Family> {
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

    /// Writes the `malloc` canary of the small block at `ptr` (usable size `usable_bytes`),
    /// which is being handed out; `chunk` is its chunk's header.
    ///
    /// # Safety
    /// `ptr` is the start of a small block of the live chunk `chunk` that the caller owns, and
    /// `usable_bytes` its class's usable size.
    #[inline(always)]
    pub(crate) unsafe fn write(chunk: *mut ChunkHead, ptr: NonNull<u8>, usable_bytes: usize) {
        let at = ptr.as_ptr() as usize + usable_bytes;
        // SAFETY: forwarded from the caller.
        let secret = unsafe { secret(chunk) };
        // SAFETY: forwarded from the caller.
        unsafe { word(ptr, usable_bytes) }
            .store(value(at, secret, Family::Malloc), Ordering::Relaxed);
    }

    /// Checks the canary of the small block at `ptr` (usable size `usable_bytes`), which the
    /// program frees (it must be the `malloc` canary), and the canary of the block before it in
    /// its slab (0 or any family's); stops the process naming the fault otherwise. `chunk` is
    /// the block's chunk header.
    ///
    /// # Safety
    /// `ptr` is the start of a small block of the live chunk `chunk`, handed out until now,
    /// and `usable_bytes` its class's usable size.
    #[inline(always)]
    pub(crate) unsafe fn check_on_free(
        chunk: *mut ChunkHead,
        ptr: NonNull<u8>,
        usable_bytes: usize,
    ) {
        let usable = usable_bytes;
        let at = ptr.as_ptr() as usize + usable;
        // SAFETY: forwarded from the caller.
        let secret = unsafe { secret(chunk) };
        // SAFETY: forwarded from the caller.
        let own = unsafe { word(ptr, usable) }.load(Ordering::Relaxed);
        if own != base(at, secret) {
            own_canary_broken(chunk, ptr.as_ptr() as usize, usable, own);
        }
        // Blocks start at the slot's first byte: a block has a neighbour before it in its
        // slab unless it is the first (the slot's guard page, if any, is at its end).
        if ptr.as_ptr() as usize & (SLOT_BYTES - 1) != 0 {
            let before = ptr.as_ptr() as usize - CANARY_BYTES;
            // SAFETY: the last word of the previous block of the same slab, inside the slot.
            let word = unsafe { AtomicU64::from_ptr(before as *mut u64) }.load(Ordering::Relaxed);
            if word != 0 && !is_canary(before, word, secret) {
                underflow(ptr.as_ptr() as usize, usable);
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
        unsafe { check_on_free(block_header(ptr), ptr, usable_bytes) }
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
        family_of_word(at, word, unsafe { secret(block_header(ptr)) })
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
        let secret = unsafe { secret(block_header(ptr)) };
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
            let secret = unsafe { secret(block_header(block)) };
            let intact = word == 0 || is_canary(block.as_ptr() as usize + usable, word, secret);
            (!intact).then_some(block.as_ptr() as usize)
        })
    }

    /// The abort for a block whose own canary is not `malloc`'s: another family's (a
    /// mismatched release) or none (an overflow).
    #[cold]
    #[inline(never)]
    fn own_canary_broken(chunk: *mut ChunkHead, addr: usize, usable: usize, word: u64) -> ! {
        // The secret read again here, off the fast path (an array passed by value would have to
        // be stored in memory there).
        // SAFETY: the caller's chunk: the header of the live chunk of the block at `addr`.
        let secret = unsafe { secret(chunk) };
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
    fn underflow(addr: usize, usable: usize) -> ! {
        let before = addr - usable - CANARY_BYTES;
        heapkit_core::abort_with(format_args!(
            "heapkit-slab: heap underflow: the canary just before the block at {addr:#x} \
             (usable size {usable} bytes) was overwritten: a write before its start (or an \
             overflow of the block before it, at {before:#x})"
        ))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Every canary has byte 0 non-zero and byte 7 zero, each family's is told apart, and
        /// neighbouring words (and chunks) get different canaries.
        #[test]
        fn canaries_keep_their_byte_rules_and_differ_by_address_and_chunk() {
            let chunk = 0x7f12_3440_0000usize;
            let secret = chunk_secret(chunk);
            let other = chunk_secret(chunk + (2 << 20));
            assert_ne!(secret, other, "two chunks share a secret");
            let mut seen = std::collections::HashSet::new();
            for at in (chunk + 0x40_008..chunk + 0x41_008).step_by(16) {
                for family in [Family::Malloc, Family::New, Family::NewArray] {
                    let word = value(at, secret, family);
                    assert_ne!(word & 0xFF, 0, "byte 0 at {at:#x}");
                    assert_eq!(word >> 56, 0, "byte 7 at {at:#x}");
                    assert!(is_canary(at, word, secret));
                    assert_eq!(family_of_word(at, word, secret), Some(family));
                    assert_ne!(
                        value(at, other, family),
                        word,
                        "another chunk's canary fits"
                    );
                }
                assert!(seen.insert(base(at, secret)), "a canary repeats at {at:#x}");
                assert_eq!(family_of_word(at, 0, secret), None);
            }
        }
    }
}
