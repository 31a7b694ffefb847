#![doc = include_str!("../README.md")]

//! # Vocabulary
//!
//! - **suite** ([`Suite`]): the configured set of checks run against one allocator.
//! - **model**: a `BTreeMap` of the blocks the allocator should consider live, with the fill
//!   pattern each one must still hold. Every operation is applied to both the allocator and
//!   the model, then the two are compared.
//! - **law**: a short property that must hold for any input (quickcheck).
//! - **reference allocator** ([`PageRunAllocator`]): the simplest correct allocator (one page
//!   run per block), which proves the suite passes a correct allocator; the broken allocators in
//!   the crate's own tests prove it fails incorrect ones.
//! - **generator** ([`Rng`], [`Xorshift64`]): the one seeded generator every test, bench and
//!   example draws from, so a run can be replayed and every allocator sees the same requests.
//! - **minor faults** ([`minor_faults`]): pages the process faulted in, the count tests and
//!   examples assert on instead of time.
//!
//! ```text
//!   ops (proptest) ──► allocator ──► blocks ──┐
//!        │                                    ├── compare: alignment, overlap, zeroing,
//!        └─────────► model (BTreeMap) ────────┘   contents, check(), stats
//! ```

pub mod child;
mod faults;
mod large_align;
mod laws;
mod model;
mod oom;
pub mod pattern;
mod reference;
mod rng;
pub mod static_global;
mod suite;
mod threads;

pub use faults::minor_faults;
pub use large_align::LARGE_ALIGNMENTS_BYTES;
pub use reference::PageRunAllocator;
pub use rng::{Rng, Xorshift64};
pub use suite::Suite;

use heapkit_pages::BufferPages;

/// A page source over a fresh owned buffer of `len_bytes` with 4 KiB pages: what conformance
/// tests (and Miri runs) give the allocator under test.
///
/// # Panics
/// If the system allocator cannot provide the buffer (a test set-up failure, not an allocator
/// path).
pub fn test_pages(len_bytes: usize) -> BufferPages<'static> {
    BufferPages::owned(len_bytes, 4096).expect("test_pages: could not allocate the test buffer")
}
