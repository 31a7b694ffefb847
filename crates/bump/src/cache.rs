//! The default chunk source, [`DefaultChunks`]: small chunks from the global allocator, large
//! ones from [`CHUNK_CACHE`], a process-wide cache of released chunks with decay.
//!
//! An arena made per request takes a chunk or two and gives them back at its end. Straight
//! from `mmap`, every request paid a map, a first-touch page fault per page and an unmap:
//! 12.8 µs per request of 64 x 64 B, 85x bumpalo. Two designs were built and measured (the
//! crate README's "An arena per request" has the figures and the commands):
//!
//! - **(a) chunks from the global allocator** ([`GlobalChunks`](crate::GlobalChunks)), as
//!   bumpalo does. Fast for small chunks, which `malloc` keeps in its free lists, per thread.
//!   Big ones fare as the allocator's trimming lets them: with glibc a request of 256 x 4 KiB
//!   (chunks of 4 KiB to 1 MiB) gives back more than the trim threshold, glibc returns it to
//!   the kernel and the next request faults every page in again (209 faults per request;
//!   bumpalo 218), or not, depending on the history of glibc's dynamic thresholds.
//! - **(b) a process-wide, bounded cache of released chunks with decay** ([`CHUNK_CACHE`], a
//!   `static` [`Retained`]`<`[`MmapPages`]`>` of heapkit-pages). A dropped arena's chunks are
//!   kept with their pages; the next arena's requests take them by best fit. What is not
//!   reused is purged after the purge delay (1 s) and unmapped after ten delays; dirty bytes
//!   above `max(8 MiB, half the bytes in use)` are purged at once, oldest first; the
//!   table holds at most 64 runs; a failed `mmap` releases everything and retries. No fault
//!   for big requests, whatever the global allocator; but one spin lock for the whole process
//!   and a table walk per chunk, which costs more than a `malloc` for a small one.
//!
//! On top of (a), each thread keeps the first chunk of the last arena dropped on it (the
//! [stash](crate::release_thread_chunks), `stash.rs`), so that an arena per request on one
//! thread skips the global allocator for it once warm.
//!
//! So the default takes each where it measured best: chunks up to [`SMALL_CHUNK_MAX_BYTES`]
//! (an arena's first four, 60 KiB in all, under glibc's default trim threshold, so giving
//! them back never trims) from the global allocator, with no shared lock on the common path of
//! a small request; longer chunks from the cache, which never faults them in twice and knows
//! which of its runs are fresh from the kernel (zeroed allocations there skip the memset). The
//! split follows from a chunk's length alone. `Arena::with_source` picks any other source:
//! [`GLOBAL_CHUNKS`](crate::GLOBAL_CHUNKS) alone for `no_std` + `alloc` and Miri (no `mmap`),
//! `&CHUNK_CACHE` alone, or `MmapPages` to map and unmap every chunk.

use crate::global::GLOBAL_CHUNKS;
use crate::source::ChunkSource;
use core::ptr::NonNull;
use heapkit_core::{AllocError, PageSource};
use heapkit_pages::{MmapPages, Retained};

/// The process-wide chunk cache behind [`Arena::new`](crate::Arena::new): anonymous `mmap`
/// runs, kept after an arena releases them and reused by the next, with decay. Its
/// [`retained`](Retained::retained) figures tell how many chunk requests it served from kept
/// runs; [`release_all`](Retained::release_all) gives every kept run back at once.
pub static CHUNK_CACHE: Retained<MmapPages> = Retained::new(MmapPages::new());

/// Chunks up to this length come from the global allocator, longer ones from [`CHUNK_CACHE`].
/// The chunks of one arena up to here (4 + 8 + 16 + 32 KiB) total 60 KiB, under glibc's
/// default trim threshold (128 KiB), so giving them all back never makes `malloc` return
/// memory to the kernel; and a `malloc` is cheaper than the cache's locked table walk.
pub const SMALL_CHUNK_MAX_BYTES: usize = 32 << 10;

const _: () = assert!(SMALL_CHUNK_MAX_BYTES >= crate::FIRST_CHUNK_BYTES);
const _: () = assert!(2 * SMALL_CHUNK_MAX_BYTES <= 128 << 10);

/// The default chunk source of [`Arena::new`](crate::Arena::new): chunks up to
/// [`SMALL_CHUNK_MAX_BYTES`] from the global allocator ([`GlobalChunks`](crate::GlobalChunks)),
/// longer ones from the process-wide [`CHUNK_CACHE`]. Which one served a chunk follows from
/// its length alone, so giving it back needs no record. Stateless, `Send` and `Sync`.
#[derive(Copy, Clone, Debug, Default)]
pub struct DefaultChunks;

/// Whether a chunk of `len_bytes` is the global allocator's (else the cache's).
#[inline]
const fn is_small(len_bytes: usize) -> bool {
    len_bytes <= SMALL_CHUNK_MAX_BYTES
}

// SAFETY: every chunk comes from one of two sources that keep `ChunkSource`'s promises, chosen
// by its length; `free_chunk` gets the same length back (its contract), so it returns each
// chunk to the source that gave it.
unsafe impl ChunkSource for DefaultChunks {
    /// The page size: a multiple of the global allocator's granule, and the cache's own.
    #[inline]
    fn granule_bytes(&self) -> usize {
        CHUNK_CACHE.page_size()
    }

    fn alloc_chunk(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        self.alloc_chunk_reporting_zero(len_bytes, align_bytes)
            .map(|(chunk, _)| chunk)
    }

    fn alloc_chunk_reporting_zero(
        &self,
        len_bytes: usize,
        align_bytes: usize,
    ) -> Result<(NonNull<u8>, bool), AllocError> {
        if is_small(len_bytes) {
            #[cfg(feature = "std")]
            if let Some(chunk) = crate::stash::take(len_bytes, align_bytes) {
                return Ok((chunk, false));
            }
            GLOBAL_CHUNKS.alloc_chunk_reporting_zero(len_bytes, align_bytes)
        } else {
            // Before the cache's lock is first taken, so that a `fork` never copies it held.
            #[cfg(unix)]
            crate::fork::register_chunk_cache_fork_handlers();
            CHUNK_CACHE.alloc_chunk_reporting_zero(len_bytes, align_bytes)
        }
    }

    unsafe fn free_chunk(&self, ptr: NonNull<u8>, len_bytes: usize, align_bytes: usize) {
        // SAFETY: the caller passes back a chunk of `alloc_chunk(len_bytes, align_bytes)`,
        // which the same length test sent to this same source (a small one to the global
        // allocator, directly or by way of the stash, which only holds the global allocator's
        // chunks).
        unsafe {
            if is_small(len_bytes) {
                #[cfg(feature = "std")]
                if crate::stash::keep(ptr, len_bytes, align_bytes) {
                    return;
                }
                GLOBAL_CHUNKS.free_chunk(ptr, len_bytes, align_bytes)
            } else {
                CHUNK_CACHE.free_chunk(ptr, len_bytes, align_bytes)
            }
        }
    }
}

const _: () = assert!(SMALL_CHUNK_MAX_BYTES % crate::FIRST_CHUNK_BYTES == 0);
