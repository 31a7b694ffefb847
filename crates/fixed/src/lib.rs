#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(feature = "nightly", feature(allocator_api))]

//! # Vocabulary
//!
//! - **region** ([`Region`]): the one mapping that holds all of a program's fixed memory,
//!   reserved (and optionally pre-faulted) at startup. Nothing in it is ever mapped again.
//! - **layout** ([`RegionLayout`]): the declaration of a region, a table of named
//!   **partitions**, each with a fixed capacity. It is decided before the region exists.
//! - **partition**: a contiguous, cache-line aligned range of the region with one kind:
//!   - **pool** ([`Pool`]): `capacity` slots of one type; O(1) acquire / release through an
//!     index free list kept beside the slots (no per-object header);
//!   - **ring** ([`Ring`]): a bounded FIFO queue of one type;
//!   - **bytes**: a raw `&mut [u8]`;
//!   - **bump**: a small arena for init-time allocations; the region's own
//!     [`Allocator`](heapkit_core::Allocator) implementation serves from it.
//! - **slot** ([`SlotId`]): a pool index and its **generation**, handed out by `try_acquire`;
//!   releasing it twice, to the wrong pool, or using it after its slot was acquired again
//!   (a **stale** id) is detected. A slot whose generation runs out is **retired**.
//!   (A *slot* of heapkit-slab or heapkit-tcache is something else: ARCHITECTURE.md's
//!   glossary.)
//! - **system heap** (`SystemHeap`, with `std`): the platform allocator as a heapkit
//!   allocator, the usual thing to seal.
//! - **static allocator** ([`StaticAllocator`]): TigerBeetle's state machine around any
//!   allocator: **Init** (allocate freely) → **Static** (every allocate, grow, shrink or
//!   deallocate is a violation) → **Deinit** (deallocate only).
//!
//! ```text
//!   startup                                   steady state (no allocator calls)
//!   ───────                                   ──────────────────────────────────
//!   RegionLayout ── Region::new ──► one mapping, pre-faulted, MemAvailable checked
//!                                   │
//!     offset 0   ┌──────────────────┴─────────────────────────────────────┐
//!                │ pool "accounts"  [slot 0][slot 1]...[slot N-1][links]  │ ◄─ Pool<T>
//!                │ ring "transfers" [t0][t1]...[tM-1]  head/len           │ ◄─ Ring<T>
//!                │ bytes "journal"  [u8; len]                             │ ◄─ &mut [u8]
//!                │ bump "init"      [used........|top          free]     │ ◄─ Region: Allocator
//!     total      └────────────────────────────────────────────────────────┘
//!
//!   #[global_allocator] GlobalAdapter<StaticAllocator<A>>
//!       Init ──seal()──► Static ──begin_deinit()──► Deinit
//!       alloc/free ok    any call: message + abort     free ok, alloc refused
//! ```

#[cfg(feature = "std")]
extern crate std;

mod bump;
mod layout;
mod meminfo;
mod pool;
mod region;
mod ring;
mod static_alloc;
#[cfg(feature = "std")]
mod system;

pub use layout::{
    BytesId, LayoutError, Partition, PartitionKind, PoolId, RegionLayout, RingId, NAME_BYTES_MAX,
    PARTITIONS_MAX, PARTITION_ALIGN_MIN_BYTES, REGION_BYTES_MAX, SLOTS_MAX,
};
pub use meminfo::mem_available_bytes;
pub use pool::{Pool, ReleaseError, SlotId, SlotState};
pub use region::{Bytes, Prefault, Region, StartupError, StartupFailure, TakeError};
pub use ring::Ring;
pub use static_alloc::{OnViolation, State, StaticAllocator, TransitionError};
#[cfg(feature = "std")]
pub use system::{SystemHeap, SYSTEM_HEAP};
