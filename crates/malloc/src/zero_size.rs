//! The `hardened` build's zero-size blocks: `malloc(0)` (and `calloc` of nothing, `new` of an
//! empty object, an aligned request of 0 bytes up to 16-byte alignment) returns a unique
//! address inside one reserved, inaccessible region, so that reading or writing the block
//! faults instead of touching a real block's bytes, as in GrapheneOS hardened_malloc.
//!
//! ```text
//!   REGION (1 GiB, PROT_NONE, reserved on the first malloc(0), never backed by memory)
//!   ┌────┬────┬────┬──────────────── … ─┐
//!   │ p0 │ p1 │ p2 │ next ►             │   one 16-byte step per zero-size block
//!   └────┴────┴────┴──────────────── … ─┘
//! ```
//!
//! An address is never handed out twice (a bump, no reuse), so every zero-size block is
//! unique for the process's first 2^26 of them; after that, and when the region cannot be
//! reserved, `malloc(0)` falls back to a one-byte block as in the other builds. `free` of an
//! address in the region does nothing; a double free of one is not detected (nothing to
//! corrupt).

use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The reserved region's size: address space only, never memory.
const REGION_BYTES: usize = 1 << 30;
/// The distance between zero-size blocks (C's `max_align_t`).
const STEP_BYTES: usize = heapkit_core::MAX_ALIGN_BYTES;
/// What `BASE` holds before the region exists: a kernel-half address, which no user pointer
/// minus it brings below `REGION_BYTES`.
const NO_REGION: usize = usize::MAX - REGION_BYTES;

const _: () = assert!(REGION_BYTES % STEP_BYTES == 0);

/// The region's first byte, or `NO_REGION`.
static BASE: AtomicUsize = AtomicUsize::new(NO_REGION);
/// The offset of the next zero-size block.
static NEXT_OFFSET: AtomicUsize = AtomicUsize::new(0);
/// Set once reserving the region has failed: no second attempt on every `malloc(0)`.
static RESERVE_FAILED: AtomicUsize = AtomicUsize::new(0);

/// Whether `ptr` is a zero-size block (an address in the region).
#[inline(always)]
pub fn contains(ptr: *const u8) -> bool {
    (ptr as usize).wrapping_sub(BASE.load(Ordering::Relaxed)) < REGION_BYTES
}

/// A new zero-size block aligned to `align`, or null when the region is spent, cannot be
/// reserved, or `align` is more than a step (the caller then serves a one-byte block).
#[cold]
#[inline(never)]
pub fn allocate(align: usize) -> *mut u8 {
    if align > STEP_BYTES {
        return ptr::null_mut();
    }
    let base = region();
    if base == NO_REGION {
        return ptr::null_mut();
    }
    let offset = NEXT_OFFSET.fetch_add(STEP_BYTES, Ordering::Relaxed);
    if offset >= REGION_BYTES {
        return ptr::null_mut();
    }
    // The region is a mapping of ours; the address is only ever compared, never dereferenced
    // by this library.
    ptr::without_provenance_mut::<u8>(base + offset)
}

/// The region's base, reserving it on first use; `NO_REGION` when it cannot be had.
fn region() -> usize {
    let base = BASE.load(Ordering::Acquire);
    if base != NO_REGION || RESERVE_FAILED.load(Ordering::Relaxed) != 0 {
        return base;
    }
    // SAFETY: an anonymous, inaccessible, unreserved mapping at an address the kernel picks:
    // touches no existing memory.
    let mapped = unsafe {
        libc::mmap(
            ptr::null_mut(),
            REGION_BYTES,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if mapped == libc::MAP_FAILED {
        RESERVE_FAILED.store(1, Ordering::Relaxed);
        return NO_REGION;
    }
    match BASE.compare_exchange(
        NO_REGION,
        mapped as usize,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => mapped as usize,
        Err(winner) => {
            // Another thread reserved it first: give ours back.
            // SAFETY: our own mapping of REGION_BYTES, never handed out.
            unsafe { libc::munmap(mapped, REGION_BYTES) };
            winner
        }
    }
}
