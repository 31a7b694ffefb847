//! The magazine: one thread's bins in one cache, with the direct table before them; its layout,
//! how one is made and freed, and the shared empty magazine that stands for "none".
//!
//! A magazine in memory (the table's pointer is to the first bin):
//!
//! ```text
//!   [ direct table: 66 bin pointers ][ header ][ bin 0 | bin 1 | … | bin n-1 | uncached bin ]
//!     by size step, for C's malloc               one per class           limit 0, always empty
//! ```
//!
//! With `hardened`, the thread's quarantine comes first (`quarantine.rs`: each class's
//! entries in class order, a mask byte per class, the random pool's line), and the header
//! holds its random state.
//!
//! **The tie to `slot.rs`.** Every thread's primary magazine word (declared in `slot.rs`: in
//! `.tdata` through `global_asm!` on x86-64 glibc, a `thread_local!` elsewhere) starts as the
//! empty magazine's first bin, and the exit hook resets it to that. So `slot.rs` names three
//! items of this file, and only these: [`EMPTY_MAGAZINE`] by its linker symbol (`sym`),
//! [`EMPTY_BINS_OFFSET_BYTES`] (the `.tdata` initial value is that symbol plus this offset), and
//! [`empty_magazine`] (the `thread_local!`'s `const` initialiser and the reset). Moving or
//! renaming them means editing `slot.rs`; that the symbol plus the offset is the address
//! `empty_magazine()` returns is asserted below (at compile time) and tested (at run time, on a
//! fresh thread's word).

use crate::bin::{self, Bin};
use crate::cache::ThreadCache;
use core::alloc::Layout;
use core::ptr::{self, NonNull};
use heapkit_core::BatchAllocator;

/// The most classes a backend may have for its blocks to be cached (a limit on the magazine's
/// size). A backend with more is served without caching.
pub const CLASS_COUNT_MAX: usize = 128;

/// A magazine is aligned to a cache line so that two threads' magazines never share one.
const MAGAZINE_ALIGN_BYTES: usize = 64;

// The header takes one bin's place, so that bins stay at their offsets.
static_assertions::assert_eq_size!(Header, Bin);
const _: () = assert!(MAGAZINE_ALIGN_BYTES % core::mem::align_of::<Bin>() == 0);

/// Bins in a magazine for `class_count` classes: one per class, and the *uncached bin* after
/// them, at index `class_count`, whose limit stays 0 (see `BatchAllocator::bin_of_block`): an
/// unsized free of a block with no class lands there, finds no room and takes the slow path,
/// with no test for "no class" on the fast one.
const fn magazine_bins(class_count: usize) -> usize {
    class_count + 1
}

/// The size-indexed shortcut before each magazine's header (mimalloc's `pages_free_direct`):
/// for requests of `1..=DIRECT_MAX_BYTES` bytes aligned to [`DIRECT_STEP_BYTES`], entry
/// `(size - 1 + offset) / DIRECT_STEP_BYTES` is the bin of that size's class, where `offset` is
/// the backend's `CLASS_SIZE_OFFSET_BYTES` (0 unless its class lookup adds bytes to a
/// request). One load instead of the backend's class lookup and the bin's address arithmetic,
/// on C's every `malloc`.
pub const DIRECT_MAX_BYTES: usize = 1024;

/// The width of a size step in the direct table, and the alignment its requests get: C's
/// `max_align_t`.
pub const DIRECT_STEP_BYTES: usize = heapkit_core::MAX_ALIGN_BYTES;

/// Entries in the direct table: one per step up to `DIRECT_MAX_BYTES`, one more for the step
/// a backend's class-size offset pushes the last sizes into (`direct_slot`), rounded up to
/// whole bins so that the header and bins after the table stay aligned.
const DIRECT_LEN: usize = (DIRECT_MAX_BYTES / DIRECT_STEP_BYTES + 1)
    .next_multiple_of(core::mem::size_of::<Bin>() / core::mem::size_of::<*mut Bin>());

const _: () = assert!(DIRECT_MAX_BYTES % DIRECT_STEP_BYTES == 0);
const _: () = assert!(direct_slot(DIRECT_MAX_BYTES, DIRECT_STEP_BYTES - 1) < DIRECT_LEN);
const _: () = assert!(
    (DIRECT_LEN * core::mem::size_of::<*mut Bin>()) % core::mem::size_of::<Bin>() == 0,
    "the header and bins after the table stay aligned"
);

/// The word before a magazine's first bin.
#[repr(C)]
pub(crate) struct Header {
    /// Refills this magazine has done (wrapping): paces `reclaim_idle`.
    pub(crate) refills: u32,
    /// Bins that follow (the backend's class count when the magazine was made).
    pub(crate) class_count: u32,
    /// With `hardened`: the quarantine's random state (quarantine.rs); unused otherwise.
    #[cfg_attr(not(feature = "hardened"), allow(dead_code))]
    pub(crate) draws: u64,
}

/// The magazine of every thread that has none: a bin for each of `CLASS_COUNT_MAX` classes and
/// the uncached bin, each empty with limit 0.
///
/// Table entries point here instead of holding null, so the fast paths need no null test: a
/// pop finds no block and a push finds no room, and both fall through to the slow path, which
/// knows this magazine by its address. Nothing ever writes to it (a bin with limit 0 is never
/// pushed to, an empty one never popped from), which is why a shared `static` can stand behind
/// the `*mut Bin` the table holds.
#[repr(C, align(64))]
struct EmptyMagazine {
    /// Every entry is the uncached bin: empty, so every lookup misses.
    direct: [*mut Bin; DIRECT_LEN],
    header: Header,
    bins: [Bin; magazine_bins(CLASS_COUNT_MAX)],
}

/// `Bin` holds a raw pointer, so the static needs the promise that sharing it is sound.
#[repr(transparent)]
pub(crate) struct SharedEmptyMagazine(EmptyMagazine);

// SAFETY: the magazine is never written (see `EmptyMagazine`); reads from any thread are fine.
unsafe impl Sync for SharedEmptyMagazine {}

/// The one empty magazine. `slot.rs`'s assembly names it by symbol (see the module docs).
pub(crate) static EMPTY_MAGAZINE: SharedEmptyMagazine = SharedEmptyMagazine(EmptyMagazine {
    direct: [(&raw const EMPTY_MAGAZINE.0.bins[CLASS_COUNT_MAX]).cast_mut(); DIRECT_LEN],
    header: Header {
        refills: 0,
        class_count: 0,
        draws: 0,
    },
    bins: [const { Bin::new(0) }; magazine_bins(CLASS_COUNT_MAX)],
});

const _: () = assert!(
    Bin::new(0).limit == 0,
    "the empty magazine's bins refuse pushes"
);

/// The shared empty magazine's first bin (compare with it; never write through it). A `const
/// fn`, so that it can also be the primary magazine word's initial value (part of the tie to
/// `slot.rs`, see the module docs).
#[inline(always)]
pub(crate) const fn empty_magazine() -> *mut Bin {
    (&raw const EMPTY_MAGAZINE.0.bins).cast::<Bin>().cast_mut()
}

/// Where the empty magazine's first bin lies in its static, for the initial value of the
/// primary magazine word that slot.rs declares in assembly (see the module docs: part of the
/// tie to `slot.rs`).
#[cfg_attr(
    not(all(
        target_arch = "x86_64",
        target_os = "linux",
        target_env = "gnu",
        not(miri)
    )),
    allow(dead_code)
)]
pub(crate) const EMPTY_BINS_OFFSET_BYTES: usize = core::mem::offset_of!(EmptyMagazine, bins);

const _: () = assert!(
    core::mem::offset_of!(SharedEmptyMagazine, 0) == 0,
    "EMPTY_MAGAZINE's address + EMPTY_BINS_OFFSET_BYTES is empty_magazine()"
);

/// The header of the magazine whose first bin is `bins`.
pub(crate) fn header(bins: *mut Bin) -> *mut Header {
    bins.cast::<Header>().wrapping_sub(1)
}

/// The bytes of a magazine's direct table.
const DIRECT_TABLE_BYTES: usize = DIRECT_LEN * core::mem::size_of::<*mut Bin>();

/// The bytes before a magazine's direct table: with `hardened`, the quarantine's entries for
/// each of its `class_count` classes (quarantine.rs); none otherwise.
const fn quarantine_bytes(class_count: usize) -> usize {
    #[cfg(feature = "hardened")]
    return crate::quarantine::magazine_bytes(class_count);
    #[cfg(not(feature = "hardened"))]
    {
        let _ = class_count;
        0
    }
}

/// `B`'s class-size offset, checked at compile time to be below the step (`direct_slot`).
pub(crate) const fn direct_offset<B: BatchAllocator>() -> usize {
    assert!(
        B::CLASS_SIZE_OFFSET_BYTES < DIRECT_STEP_BYTES,
        "a class-size offset below the direct table's step"
    );
    B::CLASS_SIZE_OFFSET_BYTES
}

/// The first entry of the direct table before a magazine's header (the magazine's first byte).
#[inline(always)]
pub(crate) fn direct_table(bins: *mut Bin) -> *mut *mut Bin {
    header(bins).cast::<*mut Bin>().wrapping_sub(DIRECT_LEN)
}

/// The direct table's entry for `size_bytes` over a backend whose class lookup adds
/// `offset_bytes` to a size (`BatchAllocator::CLASS_SIZE_OFFSET_BYTES`, below the step): the
/// steps are shifted down by the offset, so that entry `i` covers the sizes whose offset size is
/// in `(16·i, 16·i + 16]` — which share one class whenever the classes are multiples of 16
/// (hardened heapkit-slab's, whose canary adds 8 bytes to every request, among them). With no
/// offset, `(size - 1) / 16`. The offset is a constant: the same instructions either way.
#[inline(always)]
pub(crate) const fn direct_slot(size_bytes: usize, offset_bytes: usize) -> usize {
    (size_bytes - 1 + offset_bytes) / DIRECT_STEP_BYTES
}

/// The smallest and largest size whose [`direct_slot`] is `index` (with `offset_bytes` below
/// the step).
const fn direct_step_sizes(index: usize, offset_bytes: usize) -> (usize, usize) {
    let first = (index * DIRECT_STEP_BYTES + 1).saturating_sub(offset_bytes);
    let first = if first == 0 { 1 } else { first };
    (first, (index + 1) * DIRECT_STEP_BYTES - offset_bytes)
}

/// The bin magazine `bins`'s direct table names for `size_bytes` over backend `B` (its
/// class-size offset, a constant, shifts the steps: [`direct_slot`]).
///
/// # Safety
/// `bins` is a magazine (or the empty one) and `size_bytes` is in `1..=DIRECT_MAX_BYTES`.
#[inline(always)]
pub(crate) unsafe fn direct_bin<B: BatchAllocator>(bins: *mut Bin, size_bytes: usize) -> *mut Bin {
    debug_assert!((1..=DIRECT_MAX_BYTES).contains(&size_bytes));
    // SAFETY: every magazine, the empty one included, has a full direct table before its
    // header, and the slot is below DIRECT_LEN for these sizes and any offset below the step
    // (asserted at compile time, as `direct_offset` asserts the offset).
    unsafe {
        direct_table(bins)
            .add(direct_slot(size_bytes, const { direct_offset::<B>() }))
            .read()
    }
}

/// The index in magazine `bins` of the bin its direct table names for `size_bytes` over
/// backend `B`: the class that serves every size of the step (no class lookup), or the
/// magazine's class count when the table names the uncached bin.
///
/// # Safety
/// As for [`direct_bin`].
#[inline(always)]
pub(crate) unsafe fn direct_index<B: BatchAllocator>(bins: *mut Bin, size_bytes: usize) -> usize {
    // SAFETY: forwarded from the caller; each entry points at a bin of the same magazine (see
    // `make_magazine`; the empty magazine's at its own uncached bin), so the offset is the
    // bin's index.
    unsafe { direct_bin::<B>(bins, size_bytes).offset_from(bins) as usize }
}

impl<B: BatchAllocator> ThreadCache<B> {
    pub(crate) fn magazine_layout(class_count: usize) -> Option<Layout> {
        // The quarantine (`hardened`), the direct table, the header, then the bins.
        let bytes = magazine_bins(class_count)
            .checked_add(1)?
            .checked_mul(core::mem::size_of::<Bin>())?
            .checked_add(DIRECT_TABLE_BYTES)?
            .checked_add(quarantine_bytes(class_count))?;
        Layout::from_size_align(bytes, MAGAZINE_ALIGN_BYTES).ok()
    }

    /// Allocates a magazine from the backend and sets every bin's limit from its class size.
    pub(crate) fn make_magazine(&self) -> *mut Bin {
        if bin::SECURE {
            // Drawn before the first link of this magazine is encoded (see
            // heapkit_core::secure), and copied for the fast paths before the magazine is
            // anyone's (cache.rs, `fast_secrets`).
            #[cfg(feature = "secure")]
            self.key_copy.store(
                heapkit_core::secure::key(),
                core::sync::atomic::Ordering::Relaxed,
            );
        }
        let class_count = self.backend.class_count();
        if class_count == 0 || class_count > CLASS_COUNT_MAX {
            return ptr::null_mut();
        }
        let Some(layout) = Self::magazine_layout(class_count) else {
            return ptr::null_mut();
        };
        let Ok(block) = self.backend.allocate_nonzero(layout) else {
            return ptr::null_mut();
        };
        // SAFETY: the block holds the quarantine's entries, the direct table, a header and
        // `magazine_bins(class_count)` bins, aligned for all four.
        unsafe {
            let base = block
                .cast::<u8>()
                .as_ptr()
                .add(quarantine_bytes(class_count) + DIRECT_TABLE_BYTES)
                .cast::<Header>();
            let bins = base.add(1).cast::<Bin>();
            base.write(Header {
                refills: 0,
                class_count: class_count as u32,
                draws: 0,
            });
            #[cfg(feature = "hardened")]
            crate::quarantine::init(bins, class_count, |class| self.backend.class_size(class));
            for class in 0..class_count {
                bins.add(class)
                    .write(Bin::new(self.backend.class_size(class)));
            }
            bins.add(class_count).write(Bin::new(0));
            for (index, bin) in self.direct_bins(bins, class_count).enumerate() {
                direct_table(bins).add(index).write(bin);
            }
            bins
        }
    }

    /// The direct table's entries for a magazine: for each size step, the bin of the class
    /// that serves every size of the step with `DIRECT_STEP_BYTES` alignment, or the uncached
    /// bin when the step's sizes do not share one cached class (the lookup then misses and
    /// the caller takes the full path).
    pub(crate) fn direct_bins(
        &self,
        bins: *mut Bin,
        class_count: usize,
    ) -> impl Iterator<Item = *mut Bin> + '_ {
        let class_of_size = |size_bytes: usize| {
            Layout::from_size_align(size_bytes, DIRECT_STEP_BYTES)
                .ok()
                .and_then(|layout| self.backend.class_of(layout))
        };
        let offset = const { direct_offset::<B>() };
        (0..DIRECT_LEN).map(move |index| {
            let (smallest, largest) = direct_step_sizes(index, offset);
            let (smallest, largest) = (class_of_size(smallest), class_of_size(largest));
            let class = match (smallest, largest) {
                (Some(a), Some(b)) if a == b && a < class_count => a,
                _ => class_count,
            };
            bins.wrapping_add(class)
        })
    }

    /// Frees an emptied magazine.
    ///
    /// # Safety
    /// The caller owns the magazine, it holds no blocks, and no table entry points to it.
    pub(crate) unsafe fn free_magazine(&self, bins: *mut Bin) {
        // SAFETY: forwarded; the header precedes the bins and records the class count the
        // magazine was allocated with.
        unsafe {
            let layout = Self::magazine_layout((*header(bins)).class_count as usize);
            debug_assert!(layout.is_some());
            if let Some(layout) = layout {
                let base = direct_table(bins)
                    .cast::<u8>()
                    .sub(quarantine_bytes((*header(bins)).class_count as usize));
                // With `hardened` the backend hands out only blocks that are still all zero,
                // and checks it: a program's block is zeroed when the program frees it (the
                // record changes hands), but a magazine never was the program's, so it is
                // zeroed here, or the next owner of its block would be told of a write after
                // free that the cache made.
                #[cfg(feature = "hardened")]
                ptr::write_bytes(base, 0, layout.size());
                self.backend
                    .deallocate_nonzero(NonNull::new_unchecked(base), layout);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tie to `slot.rs`: the word a new thread starts with (the loader's relocated `.tdata`
    /// image on x86-64 glibc) is `empty_magazine()`, which is the static plus the offset.
    #[test]
    fn a_new_threads_primary_word_is_the_empty_magazine() {
        let base = (&raw const EMPTY_MAGAZINE) as usize;
        assert_eq!(base + EMPTY_BINS_OFFSET_BYTES, empty_magazine() as usize);
        let word = std::thread::spawn(|| crate::slot::primary_magazine() as usize)
            .join()
            .unwrap();
        assert_eq!(word, empty_magazine() as usize);
    }

    /// Each direct-table entry's sizes (what `direct_bins` looks up) are exactly the sizes
    /// `direct_slot` sends to it, with no class-size offset and with hardened heapkit-slab's 8
    /// bytes; every size the C `malloc` sends (up to `DIRECT_MAX_BYTES`) has an entry.
    #[test]
    fn direct_steps_cover_the_sizes_their_slots_name() {
        for offset in [0, 8, DIRECT_STEP_BYTES - 1] {
            for size in 1..=DIRECT_MAX_BYTES + DIRECT_STEP_BYTES - offset {
                let index = direct_slot(size, offset);
                assert!(index < DIRECT_LEN, "size {size} offset {offset}");
                let (first, last) = direct_step_sizes(index, offset);
                assert!(
                    (first..=last).contains(&size),
                    "size {size} offset {offset}"
                );
            }
            for index in 0..DIRECT_LEN {
                let (first, last) = direct_step_sizes(index, offset);
                assert_eq!(direct_slot(first, offset), index);
                assert_eq!(direct_slot(last, offset), index);
            }
        }
    }
}
