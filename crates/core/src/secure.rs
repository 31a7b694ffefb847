//! The secrets of hardened (`secure`) allocators: one random key per process, and the two uses
//! every crate makes of it.
//!
//! - **Encoded links.** A free block's link to the next free block is stored as
//!   `next ^ key ^ rotate(address of the link)`. An attacker who overflows into a free block, or
//!   writes through a dangling pointer, cannot plant a chosen "next" without knowing the key, and
//!   a link copied from one block into another decodes to garbage (glibc's safe-linking uses the
//!   address the same way; mimalloc's secure mode encodes with per-page keys). Decoders check
//!   what they get (alignment, the block's own slab) and abort on nonsense.
//! - **The free mark.** A free block's second word holds [`free_mark`]. A free of a block that
//!   already carries it is probably a double free, and the allocator then makes the exact (slow)
//!   check — the trick of glibc's `tcache_key`, which costs one load and compare per free.
//!
//! The key is drawn from `getrandom(2)` by the first call to [`key`] and never changes; 0 is
//! never a key. The encoding functions read it without that test (one plain load, nothing to
//! keep alive across a call on the fast path), so an allocator calls [`key`] once when it
//! creates a structure whose links it will encode — a slab, a thread's magazine — and before
//! that nothing is encoded. A free-mark test that runs before any key was drawn compares with
//! a fixed value: at worst a false suspicion, which the allocator's exact check clears.

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

    /// The value a free block's second word carries while the block is free.
    #[inline(always)]
    pub fn free_mark(self) -> usize {
        self.key.rotate_left(17) ^ 0x6672_6565_6672_6565 // "freefree"
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

/// The value a free block's second word carries while the block is free.
#[inline(always)]
pub fn free_mark() -> usize {
    Secrets::read().free_mark()
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
        assert_ne!(free_mark(), 0);
    }

    #[test]
    fn secrets_are_read_only_when_hardened() {
        key();
        assert!(Secrets::read_if(false).is_none());
        let secrets = Secrets::read_if(true).expect("hardened builds read the key");
        assert_eq!(secrets.free_mark(), free_mark());
        assert_eq!(secrets.encode_link(0x40, 0x1000), encode_link(0x40, 0x1000));
    }
}
