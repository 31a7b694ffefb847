//! The secrets of hardened (`secure`) allocators: one random key per process, and the two uses
//! every crate makes of it.
//!
//! - **Encoded links.** A free block's link to the next free block is stored as
//!   `next ^ key ^ rotate(address of the link)`. An attacker who overflows into a free block, or
//!   writes through a dangling pointer, cannot plant a chosen "next" without knowing the key, and
//!   a link copied from one block into another decodes to garbage (glibc's safe-linking uses the
//!   address the same way; mimalloc's secure mode encodes with per-page keys). Decoders check
//!   the free mark below (and a slab also that the link stays in the slab) and abort on
//!   nonsense.
//! - **The free mark.** A free block's second word holds [`free_mark`] of its first (the stored
//!   link). Two uses:
//!   - a free of a block that already carries a mark that fits its first word is probably a
//!     double free, and the allocator then makes the exact (slow) check — the trick of glibc's
//!     `tcache_key`, which costs two loads and a compare per free;
//!   - a list pop checks the mark of the block it unlinks before it follows the link. The mark
//!     is a bijection of the stored link, so *any* change to the first word alone — the usual
//!     overflow or use-after-free write — is caught on the next pop, every time. (An alignment
//!     test of the decoded link, which this replaced, let one garbage word in eight through.)
//!     Forging a pair of words that passes needs the key.
//!
//! Both defend against *blind* writes. A program bug that lets an attacker read a free block
//! gives away the key (the difference of its two words), as a leak undoes
//! glibc's address-only mangling; no per-block secret is kept.
//!
//! The key is drawn from `getrandom(2)` by the first call to [`key`] and never changes; 0 is
//! never a key. The encoding functions read it without that test (one plain load, nothing to
//! keep alive across a call on the fast path), so an allocator calls [`key`] once when it
//! creates a structure whose links it will encode — a slab, a thread's magazine — and before
//! that nothing is encoded. A free-mark test that runs before any key was drawn sees key 0 and
//! suspects a block whose two words are equal (zeroed memory, say): at worst a false
//! suspicion, which the allocator's exact check clears.

use core::sync::atomic::{AtomicUsize, Ordering};

/// The process key; 0 until the first use draws it.
static KEY: AtomicUsize = AtomicUsize::new(0);

/// The process's key: random, non-zero, the same for the life of the process.
#[inline(always)]
pub fn key() -> usize {
    let key = KEY.load(Ordering::Relaxed);
    if key != 0 {
        return key;
    }
    draw_key()
}

/// Draws the key (once; racing threads agree on the first one stored).
#[cold]
#[inline(never)]
fn draw_key() -> usize {
    let mut drawn: usize = 0;
    // SAFETY: getrandom writes at most `size_of::<usize>()` bytes into `drawn`, which is ours.
    let got = unsafe {
        libc::getrandom(
            (&raw mut drawn).cast(),
            core::mem::size_of::<usize>(),
            libc::GRND_NONBLOCK,
        )
    };
    if got != core::mem::size_of::<usize>() as isize || drawn == 0 {
        // No entropy yet (very early boot) or no syscall: fall back to what address-space
        // randomisation gives — weaker, but still unknown to an attacker without a leak.
        let stack_addr = (&raw const drawn) as usize;
        let code_addr = draw_key as *const () as usize;
        drawn = mix(stack_addr ^ code_addr.rotate_left(29)) | 1;
    }
    match KEY.compare_exchange(0, drawn, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => drawn,
        Err(existing) => existing,
    }
}

/// A 64-bit finaliser (splitmix64's): spreads every input bit over the output.
#[inline(always)]
pub const fn mix(value: usize) -> usize {
    let mut z = (value as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as usize
}

/// The key as drawn so far, without drawing it (0 before the first [`key`]).
#[inline(always)]
fn drawn_key() -> usize {
    KEY.load(Ordering::Relaxed)
}

/// The key, read once, for a fast path that both encodes a link and tests or writes the free
/// mark: the key is an atomic, and the compiler keeps every atomic read, so three calls of the
/// free functions below read it three times where one [`Secrets::read`] reads it once.
#[derive(Clone, Copy, Debug)]
pub struct Secrets {
    key: usize,
}

impl Secrets {
    /// The key as drawn so far. Call [`key`] once before the first encoding.
    #[inline(always)]
    pub fn read() -> Secrets {
        Secrets { key: drawn_key() }
    }

    /// The secrets of `key`, a copy of [`key`]'s value that the caller keeps next to the
    /// structures it encodes (a thread cache's field: one load there, where the process
    /// key behind a shared library's GOT costs two). A copy of anything else encodes
    /// links that no other reader decodes.
    #[inline(always)]
    pub fn of_copy(key: usize) -> Secrets {
        Secrets { key }
    }

    /// The key as drawn so far when `hardened` (a crate's `SECURE` constant), `None`
    /// otherwise: a build without hardening then reads no key at all, where an unused
    /// [`Secrets::read`] would still cost its atomic load.
    #[inline(always)]
    pub fn read_if(hardened: bool) -> Option<Secrets> {
        if hardened {
            Some(Secrets::read())
        } else {
            None
        }
    }

    /// The stored form of link `next` kept at address `at`.
    #[inline(always)]
    pub fn encode_link(self, next: usize, at: usize) -> usize {
        debug_assert!(self.key != 0, "encode before the key was drawn");
        next ^ self.key ^ at.rotate_left(32)
    }

    /// The link stored as `stored` at address `at` (the inverse of
    /// [`encode_link`](Secrets::encode_link)).
    #[inline(always)]
    pub fn decode_link(self, stored: usize, at: usize) -> usize {
        stored ^ self.key ^ at.rotate_left(32)
    }

    /// The value a free block's second word carries while the block is free and its first
    /// word holds `stored_link` (an encoded link): the link plus the key.
    ///
    /// Adding a constant is a bijection, so two different links never share a mark: a write
    /// over the link alone never leaves a matching pair, and forging a pair needs the key. An
    /// add rather than an xor: the mark is then not `next ^ rotate(at)`, a heap pointer that
    /// an address leak undoes; and the fast paths, which hold the stored link and the key in
    /// registers to decode the link anyway, check it with one `lea` and one `cmp`.
    #[inline(always)]
    pub fn free_mark(self, stored_link: usize) -> usize {
        stored_link.wrapping_add(self.key)
    }

    /// Whether `words`, the first two words of a block, are a stored link and its free mark:
    /// the block is free (or a live block happens to hold such a pair, one chance in 2^64 for
    /// data the key did not make).
    #[inline(always)]
    pub fn is_marked_free(self, words: [usize; 2]) -> bool {
        words[1] == self.free_mark(words[0])
    }

    /// The two words a free block starts with: link `next` stored encoded for address `at`,
    /// then its free mark.
    #[inline(always)]
    pub fn free_words(self, next: usize, at: usize) -> [usize; 2] {
        let stored = self.encode_link(next, at);
        [stored, self.free_mark(stored)]
    }
}

/// The stored form of link `next` kept at address `at`. Call [`key`] once before the first
/// encoding.
#[inline(always)]
pub fn encode_link(next: usize, at: usize) -> usize {
    Secrets::read().encode_link(next, at)
}

/// The link stored as `stored` at address `at` (the inverse of [`encode_link`]).
#[inline(always)]
pub fn decode_link(stored: usize, at: usize) -> usize {
    Secrets::read().decode_link(stored, at)
}

/// The value a free block's second word carries while its first holds `stored_link`.
#[inline(always)]
pub fn free_mark(stored_link: usize) -> usize {
    Secrets::read().free_mark(stored_link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_stable_and_not_zero() {
        let first = key();
        assert_ne!(first, 0);
        assert_eq!(key(), first);
    }

    #[test]
    fn links_round_trip_and_depend_on_their_address() {
        key();
        let next = 0x7f00_1234_5670usize;
        let at = 0x7f00_1234_0000usize;
        let stored = encode_link(next, at);
        assert_ne!(stored, next, "a stored link is not the plain pointer");
        assert_eq!(decode_link(stored, at), next);
        assert_ne!(
            decode_link(stored, at + 16),
            next,
            "a link moved elsewhere decodes wrong"
        );
        assert_eq!(decode_link(encode_link(0, at), at), 0);
        assert_ne!(free_mark(stored), 0);
    }

    #[test]
    fn a_mark_fits_only_its_own_link() {
        key();
        let secrets = Secrets::read();
        let words = secrets.free_words(0x7f00_1234_5670, 0x7f00_1234_0000);
        assert!(secrets.is_marked_free(words));
        // Every single-bit change of the link, and the planted addresses a probe writes, break
        // the pair: the mark is a bijection of the link.
        for bit in 0..usize::BITS {
            assert!(!secrets.is_marked_free([words[0] ^ (1 << bit), words[1]]));
        }
        for planted in [0, 0x40_4040, 0x7f00_1234_5670, usize::MAX] {
            assert!(!secrets.is_marked_free([planted, words[1]]));
        }
        assert!(!secrets.is_marked_free([0, 0]), "zeroed memory is not free");
    }

    #[test]
    fn secrets_are_read_only_when_hardened() {
        key();
        assert!(Secrets::read_if(false).is_none());
        let secrets = Secrets::read_if(true).expect("hardened builds read the key");
        assert_eq!(secrets.free_mark(0x40), free_mark(0x40));
        assert_eq!(secrets.encode_link(0x40, 0x1000), encode_link(0x40, 0x1000));
    }
}
