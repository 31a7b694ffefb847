#![doc = include_str!("../README.md")]
// Under loom only the slot protocol is built; the bins' code is there but unused.
#![cfg_attr(loom, allow(dead_code))]

//! # Vocabulary
//!
//! - **backend**: the [`BatchAllocator`](heapkit_core::BatchAllocator) behind the cache (for
//!   example heapkit-slab's `Slab`). It owns every block; the cache only holds freed ones for a
//!   while.
//! - **class**: the backend's size class index; a layout's class comes from `B::class_of`.
//! - **bin**: one class's cached free blocks for one thread, an intrusive LIFO list with a
//!   count and a limit.
//! - **magazine**: all the bins of one thread in one cache, allocated from the backend when
//!   the thread first uses the cache (its layout: `magazine.rs`).
//! - **slot**: a small process-wide index a live thread holds; each cache keeps one magazine
//!   pointer per slot. The thread-local state is that index (not generic), plus one word for
//!   the primary cache. (Not a slab's 64 KiB slot nor a pool's `SlotId`: ARCHITECTURE.md's
//!   glossary.)
//! - **empty magazine**: a shared, never-written magazine whose bins are empty with limit 0;
//!   the table holds it where a thread has no magazine, so the fast paths test nothing for null.
//! - **uncached bin**: the extra bin after a magazine's class bins, limit 0: an unsized free of
//!   a block with no class is pushed at it, finds no room and takes the slow path.
//! - **direct table**: 66 bin pointers before a magazine's header, by 16-byte size step up to
//!   1024 (the steps shifted down by the backend's `CLASS_SIZE_OFFSET_BYTES`, hardened
//!   heapkit-slab's canary): C's `malloc` finds its bin with one load, no class lookup.
//! - **primary cache / primary word**: the one `'static` cache per process (the C library's
//!   heap) whose magazine for the thread sits in a thread-local word of its own; its entry
//!   points are in `primary.rs`.
//! - **divert**: a mode of the primary cache (set once, in a library constructor) in which no
//!   thread's primary word is set, so the primary fast paths always miss and the cold free
//!   paths tell an observer of each block (`divert.rs`): recording and counting calls at no
//!   cost to the fast paths.
//! - **refill / flush**: moving blocks from / to the backend in batch calls (refills grow from
//!   8 blocks to half a bin; a flush moves half a bin, or all of it for a consumer's bin).
//! - **depot / shelf / batch**: per class, a lock-free shelf of eight entries shared by every
//!   thread of one cache; a flush first *shelves* whole batches (chains of up to 32 blocks
//!   already linked in the bins' format) and a refill first takes one and makes it its bin, so
//!   blocks freed by one thread reach another without the backend (Bonwick's depot,
//!   tcmalloc's transfer cache; `depot.rs`).
//!
//! ```text
//!   thread T ── TLS: slot 3 ─┐
//!                            ▼
//!   ThreadCache { backend, magazines: [E, M0, E, M3, ..., E(UNASSIGNED), E(DETACHED)] }
//!                                                  │     E = the empty magazine
//!   thread T ── TLS: primary word ─────────────────┤     (the primary cache's, the same M3)
//!                                                  ▼
//!                 M3 = [direct table][header][bin 0][bin 1] ... [bin n-1][uncached bin]
//!                                              │ head ─► block ─► block ─► null
//!                                              │ (empty: refill a batch; full: flush half a bin)
//!                                              ▼
//!   depots [class]: shelf of 8 batches ── push (CAS) / take (swap): another thread's bin
//!                                              │ (shelf full, or empty on a refill)
//!                                              ▼
//!   backend: BatchAllocator (allocate_batch / deallocate_batch; large layouts directly)
//! ```
//!
//! # Files
//!
//! - `cache.rs`: `ThreadCache` and its flow: the fast paths, the slow paths, refill (shelf,
//!   then backend), flush (shelf, then backend), `Drop`.
//! - `reclaim.rs`: giving exited threads' magazines back, and the lock that keeps a reclaim
//!   from freeing a magazine the statistics read.
//! - `magazine.rs`: a magazine's layout (direct table, header, bins, uncached bin), making and
//!   freeing one; the shared empty magazine, which `slot.rs`'s TLS initial value names.
//! - `primary.rs`: the primary cache, the C library's entry points through the primary word.
//! - `divert.rs`: the divert of the primary entry points and the observer of their frees.
//! - `bin.rs`: one bin: the intrusive list, its limits, pop / push / batch moves, `secure`'s
//!   encoded links.
//! - `depot.rs`: the lock-free shelf of whole batches per class.
//! - `slot.rs`: the thread-local words (slot, primary word) and the slot bitmap.
//! - `handover.rs`, `sync.rs`: the magazine hand-over between threads, on loom's atomics under
//!   `cfg(loom)`.
//! - `live.rs`: `secure`'s exact test on free: the backend's record of the blocks the program
//!   owns, marked on hand-out and cleared on free before a bin takes the block.
//! - `quarantine.rs`: `hardened` only: freed blocks wait in a random entry of their class's
//!   array, in the freeing thread's magazine, before a bin takes them; the cache's free through
//!   it and its flush.
//! - `introspect.rs`: `check`, the `checked` feature's free-time tests, `bin_state`, the
//!   shelves' walk.
//! - `traits.rs`: `Allocator`, `UnsizedAllocator`, `GlobalAlloc` (and in-place resize).
//! - `free_hook.rs`: the uncached free hook (a profiler hears of frees of classless blocks).

mod bin;
#[cfg(not(loom))]
mod cache;
mod depot;
#[cfg(not(loom))]
mod divert;
#[cfg(not(loom))]
mod free_hook;
mod handover;
#[cfg(not(loom))]
mod introspect;
#[cfg(not(loom))]
mod live;
#[cfg(not(loom))]
mod magazine;
#[cfg(not(loom))]
mod primary;
#[cfg(all(feature = "hardened", not(loom)))]
mod quarantine;
#[cfg(not(loom))]
mod reclaim;
mod slot;
mod sync;
#[cfg(not(loom))]
mod traits;

pub use bin::{BinState, BIN_BLOCKS_MAX, BIN_BLOCKS_MIN, BIN_TARGET_BYTES};
#[cfg(not(loom))]
pub use cache::ThreadCache;
#[cfg(not(loom))]
pub use free_hook::set_uncached_free_hook;
#[cfg(not(loom))]
pub use magazine::{CLASS_COUNT_MAX, DIRECT_MAX_BYTES, DIRECT_STEP_BYTES};
#[cfg(not(loom))]
#[doc(hidden)]
pub use slot::reset_slots_after_fork;
pub use slot::SLOT_COUNT;

#[cfg(not(loom))]
heapkit_core::impl_foreign_allocators!(impl[B: heapkit_core::BatchAllocator] for ThreadCache<B>);

/// The cross-thread code, exposed only to the loom models (tests/loom.rs, tests/loom_depot.rs):
/// the ownership bitmap, the magazine hand-over and the depot's shelves, over loom's atomics.
/// The cache itself (TLS, the bins) is not built under `cfg(loom)`.
#[cfg(loom)]
#[doc(hidden)]
pub mod model {
    pub use crate::depot::{Depot, DEPOT_ENTRIES};
    pub use crate::handover::{inspect_idle, magazine_or_install, reclaim, Idle};
    pub use crate::slot::{ExitCount, Owners};
}
