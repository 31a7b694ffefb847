#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(feature = "nightly", feature(allocator_api))]

//! # Vocabulary
//!
//! - **chunk**: a 2 MiB run mapped from the page source *aligned to its size*, so
//!   `ptr & !(CHUNK_BYTES - 1)` is its header. Cut into 32 **slots** of 64 KiB.
//! - **slot**: one 64 KiB piece of a chunk: the header (slot 0), a slab, part of a large span,
//!   or free (clean, or *dirty* until purged).
//! - **class**: one of 36 block sizes (16 B … 16 KiB, 4 per doubling).
//! - **slab**: a slot serving one class, cut into equal **blocks**; free blocks are on an
//!   intrusive list, never-used ones behind a bump index.
//! - **span**: a run of slots serving one *large* block (16 KiB … 1 MiB).
//! - **huge** block: above 1 MiB, its own chunk-aligned mapping with a header in front.
//! - **purge**: giving a free slot's physical pages back (`PageSource::purge`) while keeping the
//!   addresses; **trim**: purging everything and unmapping empty chunks.
//!
//! ```text
//!                Slab<P>
//!   ┌──────────────────────────────────────────────────┐
//!   │ class locks [36] ── lists of slabs with room      │
//!   │ chunk lock ──────── chunk list, spans, huge list  │
//!   └────────┬─────────────────────────────────┬────────┘
//!            ▼                                 ▼
//!   chunk (2 MiB aligned)                 huge mapping (2 MiB aligned)
//!   ┌──────┬──────┬──────┬──────┬─────┐   ┌──────┬──────────────────┐
//!   │header│slab  │span  │(tail)│ …   │   │header│ block            │
//!   └──────┴──────┴──────┴──────┴─────┘   └──────┴──────────────────┘
//!     ▲ free(ptr): header = ptr & !(2 MiB - 1), slot = (ptr >> 16) & 31  — no lock, O(1)
//! ```

#[cfg(any(test, feature = "std"))]
extern crate std;

// First: its macro is used by the modules below.
#[macro_use]
mod sync;

mod bad_input;
mod chunk;
mod chunk_map;
mod classes;
mod fork;
mod geometry;
mod guard;
mod heap;
mod huge;
mod introspect;
mod large;
mod peak;
mod slab_meta;
mod small;
mod traits;

pub use classes::{
    class_of_layout, class_of_size, natural_align, waste_per_mille, CLASSES_PER_DOUBLING,
    CLASS_BYTES, CLASS_COUNT, MIN_BLOCK_BYTES, SMALL_MAX_BYTES,
};
pub use geometry::{
    CHUNK_BYTES, DEFAULT_PURGE_DELAY_MS, DEFAULT_PURGE_THRESHOLD_BYTES, LARGE_MAX_BYTES,
    MAX_ALIGN_SERVED_BYTES, PEAK_GRANULE_BYTES, RETAINED_EMPTY_CHUNKS, SLOTS_PER_CHUNK, SLOT_BYTES,
};
pub use heap::Slab;
pub use introspect::{ClassStats, SlotInfo, SlotKind};
