//! The `hardened` feature's quarantine: a freed block is not handed out again at once. Each
//! class has a small array of recently freed blocks; a free puts its block into a random entry
//! and sends on the block it displaces (the bins, then the backend, take that one), so "free,
//! then allocate the same size" never returns the block just freed, and when a block comes back
//! is not predictable (GrapheneOS hardened_malloc's random-array quarantine).
//!
//! ```text
//!   free(p) ─► take_back (record cleared, block zeroed) ─► class's entries [ a | p | c | … ]
//!                                                            random entry ▲ swap
//!                                           displaced block (was there) ─► bin ─► malloc
//! ```
//!
//! A class keeps at most `QUARANTINE_ENTRIES` blocks and under twice
//! `QUARANTINE_CLASS_BYTES` of them (16 entries up to 4 KiB blocks, fewer above: about 1.1 MiB
//! over heapkit-slab's 36 classes), so the quarantine holds a bounded number of bytes per cache.
//! Entries are swapped atomically: any thread frees into them, and the swap's acquire and
//! release order the zeroing of a block before its next owner's use. A quarantined block is
//! free to the program (its `secure` record is clear: a second free stops the process) and
//! live to the backend until it is displaced, or the cache is dropped.

use crate::magazine::CLASS_COUNT_MAX;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Entries per class at most.
const QUARANTINE_ENTRIES: usize = 16;
/// Bytes of blocks one class may hold, counted in sizes rounded down to a power of two (so
/// under twice this in real bytes; one entry at least).
const QUARANTINE_CLASS_BYTES: usize = 64 << 10;

const _: () = assert!(QUARANTINE_ENTRIES.is_power_of_two());
const _: () = assert!(QUARANTINE_CLASS_BYTES.is_power_of_two());

/// The quarantine of one cache: per class, `QUARANTINE_ENTRIES` entries (null when empty).
pub(crate) struct Quarantine {
    entries: [[AtomicPtr<u8>; QUARANTINE_ENTRIES]; CLASS_COUNT_MAX],
    /// Frees so far: mixed with the process key into each free's random entry.
    draws: AtomicUsize,
}

impl Quarantine {
    /// An empty quarantine.
    pub(crate) const fn new() -> Self {
        Quarantine {
            entries: [const { [const { AtomicPtr::new(ptr::null_mut()) }; QUARANTINE_ENTRIES] };
                CLASS_COUNT_MAX],
            draws: AtomicUsize::new(0),
        }
    }

    /// Puts `block`, just freed, of class `class` (blocks of `class_bytes`) into a random entry
    /// of its class; returns the block it displaced (null when the entry was empty), which the
    /// caller frees on as it would have freed `block`.
    #[inline]
    pub(crate) fn exchange(&self, class: usize, class_bytes: usize, block: *mut u8) -> *mut u8 {
        // Sized by the class size rounded down to a power of two: a shift, not a division, and
        // a power of two of entries, so the random choice is a mask. A class then holds less
        // than twice QUARANTINE_CLASS_BYTES.
        let size_shift = usize::BITS - 1 - class_bytes.max(1).leading_zeros();
        let entries = (QUARANTINE_CLASS_BYTES >> size_shift).clamp(1, QUARANTINE_ENTRIES);
        debug_assert!(entries.is_power_of_two());
        let draw = heapkit_core::secure::mix(
            self.draws.fetch_add(1, Ordering::Relaxed) ^ heapkit_core::secure::key(),
        );
        let index = draw & (entries - 1);
        let Some(class_entries) = self.entries.get(class) else {
            return block; // no class of ours: no quarantine (never happens for a cached class)
        };
        class_entries[index].swap(block, Ordering::AcqRel)
    }

    /// Calls `visit(class, blocks)` for each class with blocks in quarantine: a snapshot for
    /// statistics (entries may change meanwhile), changing nothing.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(usize, usize)) {
        for (class, class_entries) in self.entries.iter().enumerate() {
            let blocks = class_entries
                .iter()
                .filter(|entry| !entry.load(Ordering::Relaxed).is_null())
                .count();
            if blocks > 0 {
                visit(class, blocks);
            }
        }
    }

    /// Empties the quarantine, calling `release(class, block)` for every block in it.
    pub(crate) fn drain(&self, mut release: impl FnMut(usize, *mut u8)) {
        for (class, class_entries) in self.entries.iter().enumerate() {
            for entry in class_entries {
                let block = entry.swap(ptr::null_mut(), Ordering::AcqRel);
                if !block.is_null() {
                    release(class, block);
                }
            }
        }
    }
}

/// Stops the process unless the first two words of `block`, leaving the quarantine for a bin,
/// are still zero (the backend zeroed the block when it was freed). The bin's link and free
/// mark are about to be written there, and would erase a write after free that the full check
/// at the next hand-out is meant to find.
///
/// # Safety
/// `block` is a block of a cached class (at least two words, aligned) that the caller owns.
#[inline(always)]
pub(crate) unsafe fn check_link_words_zero(block: *mut u8) {
    // SAFETY: forwarded from the caller.
    let words = unsafe { block.cast::<[usize; 2]>().read() };
    if words[0] | words[1] != 0 {
        heapkit_core::fatal(
            "heapkit-tcache",
            "write after free: a quarantined block was written to",
            block as usize,
        );
    }
}
