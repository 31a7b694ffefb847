//! The chunk cache: [`CHUNK_CACHE`], the process-wide source of [`Arena::new`](crate::Arena::new).
//!
//! An arena made per request takes a chunk or two and gives them back at its end. Straight
//! from `mmap`, every request paid a map, a first-touch page fault per page and an unmap:
//! 12.8 µs per request of 64 x 64 B, 85x bumpalo. Two ways out were built and measured (the
//! crate README's "An arena per request" has the figures and commands):
//!
//! - **(a) chunks from the global allocator** ([`GlobalChunks`](crate::GlobalChunks)), as
//!   bumpalo does. As fast as bumpalo on small requests, and just as bad on big ones: with
//!   glibc, a request of 256 x 4 KiB (1 MiB in chunks of 4 KiB to 1 MiB) gives back more than
//!   the trim threshold at its end, glibc returns it to the kernel and the next request faults
//!   every page in again (209 faults per request, like bumpalo's 218).
//! - **(b) a process-wide, bounded cache of released chunks with decay** (this module): a
//!   `static` [`Retained`]`<`[`MmapPages`]`>` from heapkit-pages. A dropped arena's chunks are
//!   kept with their pages; the next arena's chunk requests take them by best fit. What is not
//!   reused is purged after the purge delay (1 s) and unmapped after ten delays; dirty bytes
//!   above `max(8 MiB, a quarter of the bytes in use)` are purged at once, oldest first; the
//!   table holds at most 64 runs; a failed `mmap` releases everything and retries. Small
//!   requests cost the same as (a) (a spin lock and a scan of a few runs per chunk instead of
//!   a `malloc`), big ones 100x less than bumpalo: no fault at all.
//!
//! (b) is the default: it is never worse than (a) and removes the faults (a) keeps wherever
//! the global allocator trims; it gives memory back on a schedule of its own rather than the
//! global allocator's; and a chunk fresh from the kernel is still known to be zero
//! ([`ChunkSource::alloc_chunk_reporting_zero`](crate::ChunkSource::alloc_chunk_reporting_zero)),
//! so a big zeroed allocation in a fresh chunk costs no memset. (a) stays available for
//! `no_std` + `alloc` targets and Miri, where there is no `mmap`.
//!
//! The cache is shared by every default arena of the process, behind one spin lock taken once
//! per chunk (never per allocation). `Arena::with_source` picks any other source.

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
            GLOBAL_CHUNKS.alloc_chunk_reporting_zero(len_bytes, align_bytes)
        } else {
            (&CHUNK_CACHE).alloc_chunk_reporting_zero(len_bytes, align_bytes)
        }
    }

    unsafe fn free_chunk(&self, ptr: NonNull<u8>, len_bytes: usize, align_bytes: usize) {
        // SAFETY: the caller passes back a chunk of `alloc_chunk(len_bytes, align_bytes)`,
        // which the same length test sent to this same source.
        unsafe {
            if is_small(len_bytes) {
                GLOBAL_CHUNKS.free_chunk(ptr, len_bytes, align_bytes)
            } else {
                (&CHUNK_CACHE).free_chunk(ptr, len_bytes, align_bytes)
            }
        }
    }
}

const _: () = assert!(SMALL_CHUNK_MAX_BYTES % crate::FIRST_CHUNK_BYTES == 0);
