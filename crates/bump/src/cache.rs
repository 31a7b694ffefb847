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

use heapkit_pages::{MmapPages, Retained};

/// The process-wide chunk cache behind [`Arena::new`](crate::Arena::new): anonymous `mmap`
/// runs, kept after an arena releases them and reused by the next, with decay. Its
/// [`retained`](Retained::retained) figures tell how many chunk requests it served from kept
/// runs; [`release_all`](Retained::release_all) gives every kept run back at once.
pub static CHUNK_CACHE: Retained<MmapPages> = Retained::new(MmapPages::new());

/// The default chunk source: a reference to [`CHUNK_CACHE`] (a page source, hence a
/// [`ChunkSource`](crate::ChunkSource)).
pub type CachedChunks = &'static Retained<MmapPages>;
