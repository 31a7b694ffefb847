//! The `secure` feature's map of the chunks this process's slabs own: one bit per 2 MiB of
//! address space, so that a free of *any* pointer can be judged before a header is read.
//!
//! Without it, a free of a pointer that no slab handed out (a static, a stack address, a
//! wild pointer) reads "the chunk header" at the pointer rounded down to 2 MiB — usually an
//! unmapped page, so the program dies of SIGSEGV instead of a clear report. mimalloc keeps the
//! same kind of map (its segment map) for `mi_is_in_heap_region`.
//!
//! ```text
//!   address ──► bit (address >> 21) of MAP: 2^26 bits for a 47-bit address space = 8 MiB
//!               of zero-initialised .bss; only the pages around heap addresses are ever
//!               written, the rest reads from the kernel's shared zero page
//! ```

//! Without `secure` the map does not exist: `insert` and `remove` do nothing and `contains`
//! says yes, leaving the header checks to the owner tag.

use crate::geometry::CHUNK_BYTES;
#[cfg(feature = "secure")]
use core::sync::atomic::{AtomicU64, Ordering};

const CHUNK_SHIFT: u32 = CHUNK_BYTES.trailing_zeros();

/// User-space addresses on x86-64 and AArch64 Linux (4-level page tables) are below 2^47.
/// Anything above is not ours (a map for 57-bit addresses would be 2 GiB).
const ADDRESS_BITS: u32 = 47;
const BITS_PER_WORD: usize = 64;
const CHUNK_UNITS: usize = 1 << (ADDRESS_BITS - CHUNK_SHIFT);
const _: () = assert!(1 << CHUNK_SHIFT == CHUNK_BYTES);
const WORDS: usize = CHUNK_UNITS / BITS_PER_WORD;

const _: () = assert!(CHUNK_UNITS % BITS_PER_WORD == 0);
const _: () = assert!(WORDS * 8 == 8 << 20, "the map is 8 MiB of .bss");

#[cfg(feature = "secure")]
static MAP: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

/// The word and bit of the chunk holding `addr`, or `None` above the mapped address space.
#[inline(always)]
fn position(addr: usize) -> Option<(usize, u64)> {
    let unit = addr >> CHUNK_SHIFT;
    (unit < CHUNK_UNITS).then(|| (unit / BITS_PER_WORD, 1u64 << (unit % BITS_PER_WORD)))
}

/// Records that the chunk-aligned run at `chunk_addr` belongs to a slab (before any block of
/// it is handed out).
pub(crate) fn insert(chunk_addr: usize) {
    #[cfg(feature = "secure")]
    if let Some((word, bit)) = position(chunk_addr) {
        MAP[word].fetch_or(bit, Ordering::Release);
    }
    let _ = chunk_addr;
}

/// Forgets the chunk at `chunk_addr` (before it is unmapped).
pub(crate) fn remove(chunk_addr: usize) {
    #[cfg(feature = "secure")]
    if let Some((word, bit)) = position(chunk_addr) {
        MAP[word].fetch_and(!bit, Ordering::Release);
    }
    let _ = chunk_addr;
}

/// Whether the 2 MiB unit holding `addr` is a chunk (or huge mapping start) of some slab, so
/// that its header may be read.
#[inline(always)]
pub(crate) fn contains(addr: usize) -> bool {
    #[cfg(feature = "secure")]
    {
        // The word's index is tested, not the address: the bound is then a compare with a
        // 32-bit immediate of the shifted value the load needs anyway, where a compare of the
        // address needs a 64-bit constant loaded first (one instruction more on every free).
        let unit = addr >> CHUNK_SHIFT;
        let word = heapkit_core::hint::opaque_usize(unit / BITS_PER_WORD);
        match MAP.get(word) {
            Some(word) => word.load(Ordering::Acquire) & (1u64 << (unit % BITS_PER_WORD)) != 0,
            None => false,
        }
    }
    #[cfg(not(feature = "secure"))]
    {
        let _ = (addr, position);
        true
    }
}

#[cfg(all(test, feature = "secure"))]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_found_only_while_recorded() {
        let addr = 0x7123_4560_0000usize;
        assert!(!contains(addr + 12345));
        insert(addr);
        assert!(contains(addr) && contains(addr + (1 << CHUNK_SHIFT) - 1));
        assert!(!contains(addr + (1 << CHUNK_SHIFT)));
        remove(addr);
        assert!(!contains(addr));
        assert!(
            !contains(usize::MAX),
            "beyond the address space is never ours"
        );
    }
}
