#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(feature = "nightly", feature(allocator_api))]

//! # Vocabulary
//!
//! - **chunk**: a header (`prev_size`, `size` + flags) followed by the caller's bytes. Every
//!   block is a chunk; so is every piece of free space. Sizes are multiples of 16, at least 32.
//! - **boundary tag**: the size at both ends of a free chunk (header and footer), so either
//!   neighbour can find it in O(1) and merge with it (*coalesce*).
//! - **P bit**: "previous chunk in use", kept in the *next* chunk's header.
//! - **bin**: a doubly linked list of free chunks: *small* bins hold one size each (32..1008),
//!   *large* bins a size range kept sorted (best fit), the *unsorted* bin holds recent frees
//!   until the next `malloc` files them. A bitmap marks non-empty bins.
//! - **fast bin**: a LIFO of small freed chunks left marked in use (no coalescing) until a
//!   *consolidation* merges them.
//! - **top**: the free chunk at the end of the newest segment; grows with the page source and
//!   is trimmed back to it.
//! - **segment**: a run of pages holding chunks; **fencepost**: a two-header end marker of a
//!   retired segment.
//! - **mmapped chunk**: a request above the mmap threshold, a run of its own.
//!
//! ```text
//!   Bins<P> ─┬─ bitmap ─► [ unsorted | small 32 48 .. 1008 | large 1024.. (sorted) ]
//!            ├─ fast bins  32 48 .. 128  (LIFO, not coalesced)      ▲ fd/bk lists
//!            │                                                      │
//!            └─ segments ─► ┌──────┬──────┬──────┬──────┬───────────────┐
//!                           │ bins │ used │ free │ used │      top      │──► extend / map
//!                           └──────┴──────┴──────┴──────┴───────────────┘
//!               mmapped chunks (≥ 128 KiB): runs of their own, straight back on free
//! ```
//!
//! *Chunk* here is glibc's word (a block with its boundary tags); heapkit-slab and heapkit-bump
//! use it for other things, and `tcache.rs` is glibc's in-arena cache, not the heapkit-tcache
//! crate: ARCHITECTURE.md's glossary sets the words side by side.
//!
//! # Codemap
//!
//! | file | concept |
//! |---|---|
//! | `heap.rs` | `Bins<P>`: the heap's state and what both paths share (free-chunk headers, the unsorted bin's front, the fast bins) |
//! | `malloc.rs` | the malloc path (glibc's `_int_malloc`): bins search, splitting, top |
//! | `free.rs` | the free path (glibc's `_int_free`): coalescing, fast-bin and unsorted placement, consolidation, the cheap checks of a bad free |
//! | `chunk.rs` | chunks and boundary tags: the header every block carries and its arithmetic |
//! | `binlist.rs` | the bins: doubly linked free lists by size, and the bitmap of non-empty bins |
//! | `segment.rs` | segments: how the heap grows and shrinks; mmapped chunks |
//! | `tcache.rs` | glibc's per-thread cache (2.26+), kept inside the arena |
//! | `config.rs` | the tunables, glibc's `mallopt` parameters under heapkit names |
//! | `batch.rs` | size classes and batches: what a thread cache (heapkit-tcache) needs |
//! | `locked.rs` | `LockedBins<P>`: one arena shared by threads |
//! | `api.rs` | the `Allocator`, `UnsizedAllocator` and foreign trait impls |
//! | `report.rs` | bad input to `free`: what the cheap checks catch and how it is reported |
//! | `introspect.rs` | `check()`, `heap_map()`, fragmentation figures, `stats()` |

#[cfg(any(test, feature = "std"))]
extern crate std;

mod api;
mod batch;
mod binlist;
mod chunk;
mod config;
mod free;
mod heap;
mod introspect;
mod locked;
mod malloc;
mod report;
mod segment;
mod tcache;

pub use api::MAX_ALIGN_SERVED_BYTES;
pub use batch::{CLASS_COUNT, MAX_CLASS_REQUEST_BYTES};
pub use config::{
    Config, DEFAULT_MMAP_THRESHOLD_BYTES, DEFAULT_TCACHE_COUNT, DEFAULT_TOP_PAD_BYTES,
    DEFAULT_TRIM_THRESHOLD_BYTES, MAX_FAST_BIN_BYTES, MAX_MMAP_THRESHOLD_BYTES, MAX_TCACHE_COUNT,
};
pub use heap::Bins;
pub use introspect::{ChunkInfo, ChunkState, Fragmentation, HeapMap};
pub use locked::LockedBins;
pub use segment::SegmentInfo;

/// The bin index a free chunk of `size_bytes` is filed under (2..=63 small, 64.. large).
pub const fn bin_of_chunk_size(size_bytes: usize) -> usize {
    binlist::bin_index(size_bytes)
}

/// The chunk size that serves a request of `request_bytes` (16-byte alignment), or `None`
/// when the request is too large to serve.
pub const fn chunk_size_for(request_bytes: usize) -> Option<usize> {
    chunk::request_to_size(request_bytes)
}

/// The smallest chunk, header included.
pub const MIN_CHUNK_BYTES: usize = chunk::MIN_CHUNK_BYTES;
/// Number of bins (index 0 is unused, 1 is the unsorted bin).
pub const BIN_COUNT: usize = binlist::NBINS;
/// The smallest chunk size kept in a large bin.
pub const MIN_LARGE_CHUNK_BYTES: usize = binlist::MIN_LARGE_BYTES;
