//! Bins: circular doubly linked lists of free chunks, indexed by size, plus the bitmap of
//! non-empty bins.
//!
//! ```text
//!   index  0        1          2 .. 63            64 .. 126                 127
//!          unused   unsorted   small: one size    large: a size range each  (spare)
//!                   (any size) 32, 48, .. 1008    sorted largest first, with a
//!                                                 skip list over distinct sizes
//! ```
//!
//! Each bin's head is a *sentinel*: a fake chunk placed so that its `fd`/`bk` fields are the
//! bin's two words in the arena header. Lists are circular through the sentinel, so linking
//! and unlinking never branch on "first" or "last" (glibc's `bin_at` trick). The sentinels live
//! in the heap's first segment, not in the `Bins` value, so the value can move freely.

use crate::chunk::{size, ChunkPtr, CHUNK_ALIGN_BYTES};
use core::ptr::{self, addr_of, addr_of_mut};

/// Number of bins (index 0 unused).
pub(crate) const NBINS: usize = 128;
/// The bin of recently freed chunks, sorted into their real bins by the next `malloc`.
pub(crate) const UNSORTED: usize = 1;
/// Bins below this index hold one exact size each.
pub(crate) const NSMALLBINS: usize = 64;
/// The smallest chunk size kept in a large bin.
pub(crate) const MIN_LARGE_BYTES: usize = NSMALLBINS * CHUNK_ALIGN_BYTES;
/// Bytes the sentinels take at the start of the first segment (fake chunk `i` starts at
/// `16 * i`; only its `fd`/`bk` at `16 * i + 16` are ever touched).
pub(crate) const BIN_AREA_BYTES: usize = (NBINS + 1) * CHUNK_ALIGN_BYTES;
/// Words in the non-empty-bins bitmap.
pub(crate) const BINMAP_WORDS: usize = NBINS / 64;

const _: () = assert!(NBINS % 64 == 0);
const _: () = assert!(MIN_LARGE_BYTES == 1024, "glibc's MIN_LARGE_SIZE on 64-bit");
const _: () = assert!(largebin_index(MIN_LARGE_BYTES) == NSMALLBINS);
const _: () = assert!(
    largebin_index(usize::MAX & !15) + 1 < NBINS,
    "a sentinel's nextsize word is the next bin"
);
const _: () = assert!(smallbin_index(MIN_LARGE_BYTES - CHUNK_ALIGN_BYTES) == NSMALLBINS - 1);

/// Whether chunks of `size_bytes` go to a small (exact-size) bin.
#[inline(always)]
pub(crate) const fn in_smallbin_range(size_bytes: usize) -> bool {
    size_bytes < MIN_LARGE_BYTES
}

/// The small bin of a size below [`MIN_LARGE_BYTES`].
#[inline(always)]
pub(crate) const fn smallbin_index(size_bytes: usize) -> usize {
    size_bytes >> 4
}

/// The large bin of a size: 32 bins 64 bytes apart, 16 bins 512 apart, 8 bins 4 KiB apart,
/// 4 bins 32 KiB apart, 2 bins 256 KiB apart, then one for everything larger (glibc's
/// `largebin_index_64`).
#[inline]
pub(crate) const fn largebin_index(size_bytes: usize) -> usize {
    let s = size_bytes;
    if (s >> 6) <= 48 {
        48 + (s >> 6)
    } else if (s >> 9) <= 20 {
        91 + (s >> 9)
    } else if (s >> 12) <= 10 {
        110 + (s >> 12)
    } else if (s >> 15) <= 4 {
        119 + (s >> 15)
    } else if (s >> 18) <= 2 {
        124 + (s >> 18)
    } else {
        126
    }
}

/// The bin a free chunk of `size_bytes` belongs to (once sorted).
#[inline(always)]
pub(crate) const fn bin_index(size_bytes: usize) -> usize {
    if in_smallbin_range(size_bytes) {
        smallbin_index(size_bytes)
    } else {
        largebin_index(size_bytes)
    }
}

/// The sentinel of bin `index` in the bin area at `area`.
///
/// # Safety
/// `area` is the start of an initialised bin area; `index < NBINS`.
#[inline(always)]
pub(crate) unsafe fn bin_at(area: *mut u8, index: usize) -> ChunkPtr {
    debug_assert!(index < NBINS);
    // SAFETY: the area spans BIN_AREA_BYTES, so fake chunk `index` and its fd/bk are inside.
    unsafe { area.add(index * CHUNK_ALIGN_BYTES).cast() }
}

/// `fd` of a free chunk or sentinel.
///
/// # Safety
/// `c` is a free chunk or a sentinel.
#[inline(always)]
pub(crate) unsafe fn fd(c: ChunkPtr) -> ChunkPtr {
    // SAFETY: forwarded from the caller.
    unsafe { addr_of!((*c).fd).read() }
}

/// `bk` of a free chunk or sentinel.
///
/// # Safety
/// `c` is a free chunk or a sentinel.
#[inline(always)]
pub(crate) unsafe fn bk(c: ChunkPtr) -> ChunkPtr {
    // SAFETY: forwarded from the caller.
    unsafe { addr_of!((*c).bk).read() }
}

/// # Safety
/// `c` is a free chunk or a sentinel.
#[inline(always)]
pub(crate) unsafe fn set_fd(c: ChunkPtr, v: ChunkPtr) {
    // SAFETY: forwarded from the caller.
    unsafe { addr_of_mut!((*c).fd).write(v) }
}

/// # Safety
/// `c` is a free chunk or a sentinel.
#[inline(always)]
pub(crate) unsafe fn set_bk(c: ChunkPtr, v: ChunkPtr) {
    // SAFETY: forwarded from the caller.
    unsafe { addr_of_mut!((*c).bk).write(v) }
}

/// # Safety
/// `c` is a free chunk of large-bin size.
#[inline(always)]
pub(crate) unsafe fn fd_nextsize(c: ChunkPtr) -> ChunkPtr {
    // SAFETY: forwarded from the caller.
    unsafe { addr_of!((*c).fd_nextsize).read() }
}

/// # Safety
/// `c` is a free chunk of large-bin size.
#[inline(always)]
pub(crate) unsafe fn bk_nextsize(c: ChunkPtr) -> ChunkPtr {
    // SAFETY: forwarded from the caller.
    unsafe { addr_of!((*c).bk_nextsize).read() }
}

/// # Safety
/// `c` is a free chunk of large-bin size.
#[inline(always)]
pub(crate) unsafe fn set_fd_nextsize(c: ChunkPtr, v: ChunkPtr) {
    // SAFETY: forwarded from the caller.
    unsafe { addr_of_mut!((*c).fd_nextsize).write(v) }
}

/// # Safety
/// `c` is a free chunk of large-bin size.
#[inline(always)]
pub(crate) unsafe fn set_bk_nextsize(c: ChunkPtr, v: ChunkPtr) {
    // SAFETY: forwarded from the caller.
    unsafe { addr_of_mut!((*c).bk_nextsize).write(v) }
}

/// Makes every bin of a fresh area empty (each sentinel points at itself).
///
/// # Safety
/// `area` points at `BIN_AREA_BYTES` writable bytes, 16-aligned.
pub(crate) unsafe fn init_area(area: *mut u8) {
    for index in 0..NBINS {
        // SAFETY: index < NBINS; the area is writable.
        unsafe {
            let bin = bin_at(area, index);
            set_fd(bin, bin);
            set_bk(bin, bin);
        }
    }
}

/// Links `p` between `bck` and `fwd` (`bck.fd == fwd`).
///
/// # Safety
/// `p` is a free chunk in no list; `bck`/`fwd` are adjacent members of one list.
#[inline(always)]
pub(crate) unsafe fn link_between(p: ChunkPtr, bck: ChunkPtr, fwd: ChunkPtr) {
    // SAFETY: forwarded from the caller.
    unsafe {
        debug_assert!(fd(bck) == fwd && bk(fwd) == bck);
        set_fd(p, fwd);
        set_bk(p, bck);
        set_fd(bck, p);
        set_bk(fwd, p);
    }
}

/// Removes a free chunk from whatever bin it is in, keeping a large bin's skip list intact.
///
/// # Safety
/// `p` is a free chunk in a bin; large chunks in a sorted large bin have valid nextsize links
/// and those in the unsorted bin have `fd_nextsize == null`.
#[inline]
pub(crate) unsafe fn unlink(p: ChunkPtr) {
    // SAFETY: forwarded from the caller: p, its neighbours and (for large chunks) its skip-list
    // neighbours are live list members.
    unsafe {
        let (f, b) = (fd(p), bk(p));
        debug_assert!(bk(f) == p && fd(b) == p, "corrupted double-linked list");
        set_bk(f, b);
        set_fd(b, f);
        if in_smallbin_range(size(p)) || fd_nextsize(p).is_null() {
            return;
        }
        unlink_nextsize(p, f);
    }
}

/// The skip-list half of [`unlink`]: `p` was the first chunk of its size (the only one with
/// nextsize links), so `f` (the next of the same size, if any) takes its place.
///
/// `f` may be the sentinel: its `fd_nextsize` word is the next bin's `fd`, a non-null pointer,
/// so it never looks like a same-size follower (this is why large bins stop below the last).
///
/// # Safety
/// As for [`unlink`]; `p` has non-null nextsize links and `f` was its `fd`.
unsafe fn unlink_nextsize(p: ChunkPtr, f: ChunkPtr) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let (fns, bns) = (fd_nextsize(p), bk_nextsize(p));
        if fd_nextsize(f).is_null() {
            if fns == p {
                set_fd_nextsize(f, f);
                set_bk_nextsize(f, f);
            } else {
                set_fd_nextsize(f, fns);
                set_bk_nextsize(f, bns);
                set_bk_nextsize(fns, f);
                set_fd_nextsize(bns, f);
            }
        } else {
            set_bk_nextsize(fns, bns);
            set_fd_nextsize(bns, fns);
        }
    }
}

/// Inserts a free large chunk into its sorted large bin (largest first; ties after the first
/// of their size so the skip list need not change).
///
/// # Safety
/// `bin` is the sentinel of `p`'s large bin; `p` is a free chunk in no list.
pub(crate) unsafe fn insert_large(bin: ChunkPtr, p: ChunkPtr) {
    // SAFETY: forwarded from the caller; every chunk reached is a member of the bin.
    unsafe {
        let p_size = size(p);
        let mut fwd = fd(bin);
        let bck;
        if fwd == bin {
            set_fd_nextsize(p, p);
            set_bk_nextsize(p, p);
            bck = bin;
        } else if p_size < size(bk(bin)) {
            // Smaller than the smallest: goes last, and into the skip list before the first.
            let first = fd(bin);
            fwd = bin;
            bck = bk(bin);
            set_fd_nextsize(p, first);
            set_bk_nextsize(p, bk_nextsize(first));
            set_fd_nextsize(bk_nextsize(first), p);
            set_bk_nextsize(first, p);
        } else {
            while p_size < size(fwd) {
                fwd = fd_nextsize(fwd);
            }
            if p_size == size(fwd) {
                // Second of its size: no skip-list change.
                fwd = fd(fwd);
                set_fd_nextsize(p, ptr::null_mut());
                set_bk_nextsize(p, ptr::null_mut());
            } else {
                set_fd_nextsize(p, fwd);
                set_bk_nextsize(p, bk_nextsize(fwd));
                set_fd_nextsize(bk_nextsize(fwd), p);
                set_bk_nextsize(fwd, p);
            }
            bck = bk(fwd);
        }
        link_between(p, bck, fwd);
    }
}
