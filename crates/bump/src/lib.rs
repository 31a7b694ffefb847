#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(feature = "nightly", feature(allocator_api))]

//! # Vocabulary
//!
//! - **arena** ([`Arena`]): hands out memory by moving one pointer forward; frees everything
//!   at once ([`Arena::reset`], drop, or the end of a [`Scope`]).
//! - **chunk**: a run of memory the arena got from its [`ChunkSource`]. It starts with a small
//!   header (the link to the previous chunk, its size); the rest is bumped through. Chunk
//!   sizes double, from [`FIRST_CHUNK_BYTES`] up to [`MAX_GROWTH_CHUNK_BYTES`]. (heapkit-bins
//!   and heapkit-slab mean other things by *chunk*: ARCHITECTURE.md's glossary.)
//! - **chunk source** ([`ChunkSource`]): where chunks come from and go back to. The default,
//!   [`DefaultChunks`], takes chunks up to [`SMALL_CHUNK_MAX_BYTES`] from the global allocator
//!   ([`GlobalChunks`], as bumpalo does) and longer ones from the **chunk cache**
//!   ([`CHUNK_CACHE`]): `mmap` runs that dropped arenas gave back, kept with their pages for
//!   the next arena and returned to the kernel on a decay. Either way an arena per request
//!   maps nothing and faults nothing once warm. Any
//!   [`PageSource`](heapkit_core::PageSource) or heapkit allocator ([`FromAllocator`]) goes
//!   through [`Arena::with_source`].
//! - **stash**: with `std`, the first chunk (4 KiB) of the last arena dropped on this thread,
//!   kept by [`DefaultChunks`] for the thread's next arena instead of a `free` and a `malloc`;
//!   [`release_thread_chunks`] empties it (thread exit does).
//! - **bump pointer** (`ptr`) and **end**: the next free byte of the *current* chunk and the
//!   end of that chunk. Both live in the `Arena` itself (not in the chunk), so the fast path
//!   reads two fields, compares once and writes one.
//! - **used bytes**: bytes bumped past (blocks plus alignment padding). **chunk bytes**: bytes
//!   of chunks held, spare included (what the source sees mapped).
//! - **checkpoint**: a saved (chunk, ptr) pair; rewinding to it frees everything after it. The
//!   safe form is [`Arena::scope`].
//! - **spare chunks**: chunks a reset or a rewind emptied, kept largest first to serve the next
//!   chunk requests without going back to the source, so a loop of rounds (or of scopes) maps
//!   nothing and page-faults nothing once warm. [`Arena::set_retain_limit`] bounds them.
//! - **arena string** ([`ArenaString`], [`format_in!`]): a growable `str` whose bytes live in
//!   the arena and grow in place while it is the newest block; `fmt::Write`, so `write!` and
//!   `format_in!(&arena, ..)` build text with no global allocation.
//! - **capacity** ([`Arena::with_capacity`]): an arena that takes its first chunk up front.
//! - **zero frontier** (`zero_from`): where the current chunk's never-used, known-zero bytes
//!   start; zeroed allocations above it skip the memset.
//!
//! ```text
//!   Arena { ptr, end, current } ─────────────────────────────────┐
//!                                                                 ▼
//!   chunk 0 (4 KiB)            chunk 1 (8 KiB)                  chunk 2 (16 KiB) = current
//!   ┌──────┬──────────────┐    ┌──────┬───────────────────┐     ┌──────┬─────────┬─────────────┐
//!   │header│ blocks  │ lost│ ◄─ │header│ blocks       │lost│ ◄── │header│ blocks  │  free       │
//!   └──────┴──────────────┘prev└──────┴───────────────────┘prev └──────┴─────────┴─────────────┘
//!                                                                               ▲ptr          ▲end
//!   allocate(size, align):  block = align_up(ptr, align); if block + size <= end { ptr = block + size }
//!                           else: a new chunk, twice the size (the rest of this one is lost)
//!   deallocate(block):      if block is the last one (block + size == ptr) { ptr = block } else nothing
//!   reset():                every chunk becomes a spare (up to the retain limit), the largest
//!                           one current again; ptr = its start. The next round refills the
//!                           spares largest first: no mmap, no page fault.
//! ```

#[cfg(feature = "std")]
extern crate std;

extern crate alloc;

mod allocator;
mod arena;
mod boxed;
mod cache;
mod chunk;
mod fill;
#[cfg(unix)]
mod fork;
mod global;
mod scope;
mod source;
#[cfg(feature = "std")]
mod stash;
mod string;
mod typed;

pub use arena::{Arena, Checkpoint, ChunkInfo, ChunkRole};
pub use boxed::ArenaBox;
pub use cache::{DefaultChunks, CHUNK_CACHE, SMALL_CHUNK_MAX_BYTES};
#[cfg(unix)]
pub use fork::register_chunk_cache_fork_handlers;
pub use global::{GlobalChunks, GlobalHeap, GLOBAL_CHUNKS};
pub use scope::Scope;
pub use source::{ChunkSource, FromAllocator};
#[cfg(feature = "std")]
pub use stash::release_thread_chunks;
pub use string::ArenaString;

pub use heapkit_core::{AllocError, Stats};

/// Every block starts on a multiple of this, and every block length is rounded up to it, so
/// the bump pointer is always this aligned: requests aligned up to it need no padding
/// arithmetic on the fast path. (bumpalo's default is 1, which saves a few bytes per odd-sized
/// string but costs an `and`/`neg` pair on every allocation of an aligned type.)
pub const MIN_ALIGN_BYTES: usize = heapkit_core::WORD_BYTES;

/// Size of the first chunk an arena takes (rounded up to the source's granule, e.g. a page).
pub const FIRST_CHUNK_BYTES: usize = 4096;

/// Geometric growth stops here: later chunks are this size unless one request needs more
/// (then it gets a chunk of its own size). 64 MiB keeps mmap calls rare (an arena that holds
/// 1 GiB maps about 24 chunks) while an idle arena holds at most one such chunk after `reset`.
pub const MAX_GROWTH_CHUNK_BYTES: usize = 64 << 20;

/// The largest alignment the arena serves. Larger alignments would waste more than a whole
/// growth-capped chunk in padding, so they are refused with `AllocError`.
pub const MAX_ALIGN_SERVED_BYTES: usize = MAX_GROWTH_CHUNK_BYTES;

/// Upper bound on the chunks one arena holds; `check()` walks at most this many. With
/// 64 MiB chunks it is 64 TiB, more than any machine has, so it never limits a real program.
pub const MAX_CHUNKS: usize = 1 << 20;

const _: () = assert!(MIN_ALIGN_BYTES.is_power_of_two());
const _: () = assert!(FIRST_CHUNK_BYTES.is_power_of_two());
const _: () = assert!(MAX_GROWTH_CHUNK_BYTES.is_power_of_two());
const _: () = assert!(FIRST_CHUNK_BYTES <= MAX_GROWTH_CHUNK_BYTES);
const _: () = assert!(FIRST_CHUNK_BYTES > chunk::HEADER_BYTES);
const _: () = assert!(chunk::HEADER_BYTES % MIN_ALIGN_BYTES == 0);
const _: () = assert!(MAX_ALIGN_SERVED_BYTES <= MAX_GROWTH_CHUNK_BYTES);
