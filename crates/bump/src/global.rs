//! `GlobalChunks`: the default chunk source, blocks of the program's `#[global_allocator]`.
//!
//! Why this is the default (measured, see the crate README's "An arena per request"): an arena
//! made per request takes one or two small chunks and gives them back at its end. Straight from
//! `mmap` that is a map, a first-touch page fault and an unmap per chunk (12.8 µs per request
//! of 64 x 64 B, 85x bumpalo). The global allocator keeps freed blocks of a few KiB in its own
//! free lists (glibc's bins, mimalloc's pages, heapkit's classes), so the next arena's chunk is
//! the same resident memory: no syscall, no fault, a few tens of nanoseconds. It is also what
//! bumpalo does, works in `no_std` + `alloc` and under Miri, and leaves the policy for big
//! chunks (when to map, when to give memory back) to the allocator the program chose.
//!
//! The price: chunks are not known to be zero, so zeroed allocations are cleared with a
//! memset (an arena over [`MmapPages`](heapkit_pages::MmapPages), through
//! [`Arena::with_source`](crate::Arena::with_source), skips it on fresh chunks).

use crate::source::FromAllocator;
use core::alloc::{GlobalAlloc, Layout};
use heapkit_core::FromGlobal;

/// The program's `#[global_allocator]` (the system allocator unless the program sets one), as
/// a value: every call goes to `alloc::alloc`'s free functions.
#[derive(Copy, Clone, Debug, Default)]
pub struct GlobalHeap;

// SAFETY: every method forwards to the global allocator's free functions, which have exactly
// `GlobalAlloc`'s contract.
unsafe impl GlobalAlloc for GlobalHeap {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller passes a non-zero layout, as `GlobalAlloc::alloc` requires.
        unsafe { alloc::alloc::alloc(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a live block of the global allocator with its layout.
        unsafe { alloc::alloc::dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe { alloc::alloc::alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract, which is `realloc`'s.
        unsafe { alloc::alloc::realloc(ptr, layout, new_size) }
    }
}

/// Chunks from the program's global allocator: the default source of
/// [`Arena::new`](crate::Arena::new). A plain [`FromAllocator`], so it is the same code path
/// as any allocator an arena is nested in.
pub type GlobalChunks = FromAllocator<FromGlobal<GlobalHeap>>;

/// The one value of [`GlobalChunks`] (stateless, `Send` and `Sync`).
pub const GLOBAL_CHUNKS: GlobalChunks = FromAllocator(FromGlobal(GlobalHeap));
