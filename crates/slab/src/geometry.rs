//! The fixed geometry: chunk, slot and large-object limits, and the assertions that tie them.
//!
//! Why 2 MiB chunks of 64 KiB slots:
//! - 2 MiB is the x86-64 transparent-huge-page size, so a chunk can be one huge page; and it is
//!   small enough that a test heap of 8 MiB (`heapkit_testkit::test_pages`) holds three chunks.
//! - 64 KiB slots are mimalloc's small-page size: big enough that even the 16 KiB class gets 4
//!   blocks, small enough that a class that is used for a handful of objects pins little.
//!   Slots are touched lazily (a bump index hands out never-used blocks), so a slab costs RSS
//!   only for the 4 KiB pages its blocks really reached.
//! - Slot 0 holds the chunk header (slot metadata and the per-slab live bitmaps); the rest of
//!   slot 0 is never touched, so it costs address space but no memory. With `secure`, slots 1
//!   and 2 hold the handed-out record (a byte per 16 bytes of the chunk, `handed.rs`), touched
//!   4 KiB per slab in use; blocks and spans start at slot 3 (`chunk::HEADER_SLOTS`).

/// Bytes in a chunk; chunks are mapped aligned to this, so masking a pointer finds the header.
pub const CHUNK_BYTES: usize = 2 << 20;
/// Bytes in a slot: a small slab, or one piece of a large span.
pub const SLOT_BYTES: usize = 64 << 10;
/// Slots per chunk, the header slot included.
pub const SLOTS_PER_CHUNK: usize = CHUNK_BYTES / SLOT_BYTES;
/// log2 of [`SLOT_BYTES`].
pub const SLOT_SHIFT: u32 = SLOT_BYTES.trailing_zeros();
/// The largest object served by a span of slots inside a chunk; larger ones get their own
/// mapping. Half a chunk, so that one large object never forces a chunk of its own.
pub const LARGE_MAX_BYTES: usize = CHUNK_BYTES / 2;
/// The largest alignment served (1 GiB, as glibc and heapkit-bins); larger ones are refused
/// with `AllocError`. Alignments below a chunk put a huge block at most that far into its
/// chunk-aligned mapping; from a chunk up, the block starts one chunk into its mapping, on a
/// boundary of its alignment, with the header in the chunk below it (`huge.rs`), so it costs
/// the alignment in address space once (the lead is unmapped at once) and nothing resident.
pub const MAX_ALIGN_SERVED_BYTES: usize = 1 << 30;
/// Empty chunks kept mapped (purged) for reuse; further empty chunks are unmapped at once.
pub const RETAINED_EMPTY_CHUNKS: usize = 1;
pub use heapkit_pages::clock::{DEFAULT_PURGE_DELAY_MS, DEFAULT_PURGE_THRESHOLD_BYTES};
/// How far each size class's live bytes may drift from the shared total before the class
/// folds its change in (one slot: a slab's worth). `Stats::peak_bytes` is therefore exact
/// while one source changes at a time (one class, or the large and huge blocks); otherwise
/// each class not folded at the peak can hide or add less than one granule: less than
/// `(CLASS_COUNT - 1) × PEAK_GRANULE_BYTES` (2.2 MiB) among classes alone, one granule more
/// when large or huge blocks change meanwhile (tests/loom.rs, `peak_within_bound_*`).
pub const PEAK_GRANULE_BYTES: usize = SLOT_BYTES;

/// Mask that keeps the offset inside a chunk.
pub(crate) const CHUNK_MASK: usize = CHUNK_BYTES - 1;

const _: () = assert!(CHUNK_BYTES.is_power_of_two() && SLOT_BYTES.is_power_of_two());
const _: () = assert!(
    SLOTS_PER_CHUNK >= 4 && SLOTS_PER_CHUNK <= 64,
    "slot masks are u64"
);
const _: () = assert!(LARGE_MAX_BYTES <= (SLOTS_PER_CHUNK - 1) * SLOT_BYTES);
const _: () = assert!(LARGE_MAX_BYTES % SLOT_BYTES == 0);
const _: () =
    assert!(MAX_ALIGN_SERVED_BYTES.is_power_of_two() && MAX_ALIGN_SERVED_BYTES >= CHUNK_BYTES);
const _: () = assert!(
    PEAK_GRANULE_BYTES >= crate::classes::SMALL_MAX_BYTES
        && PEAK_GRANULE_BYTES <= isize::MAX as usize,
    "one block never overshoots the granule twice over; the drift fits an isize"
);
