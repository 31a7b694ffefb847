//! `GlobalChunks`: chunks from the program's `#[global_allocator]`, as bumpalo takes them.
//!
//! Design (a) of the "arena per request" work (the `cache` module's docs, on
//! [`DefaultChunks`](crate::DefaultChunks), compare the two): the global allocator keeps freed
//! blocks of a few KiB in its own free lists, so an arena made per request gets the same
//! resident memory as the one before it, with no syscall. The default source takes chunks up
//! to [`SMALL_CHUNK_MAX_BYTES`](crate::SMALL_CHUNK_MAX_BYTES) from here. Alone it needs no
//! `mmap`: use it on `no_std` + `alloc` targets and under Miri, through
//! `Arena::with_source(GLOBAL_CHUNKS)`.
//!
//! Chunks are not known to be zero, so zeroed allocations are cleared with a memset.

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

/// Chunks from the program's global allocator. A plain [`FromAllocator`], so it is the same
/// code path as any allocator an arena is nested in.
///
/// ```
/// use heapkit_bump::{Arena, GLOBAL_CHUNKS};
/// let arena = Arena::with_source(GLOBAL_CHUNKS);
/// assert_eq!(*arena.alloc(41u32) + 1, 42);
/// ```
pub type GlobalChunks = FromAllocator<FromGlobal<GlobalHeap>>;

/// The one value of [`GlobalChunks`] (stateless, `Send` and `Sync`).
pub const GLOBAL_CHUNKS: GlobalChunks = FromAllocator(FromGlobal(GlobalHeap));
