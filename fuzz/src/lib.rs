#![doc = include_str!("../README.md")]

//! # Vocabulary
//!
//! - **target**: one libFuzzer entry point per allocator (`fuzz_targets/<name>.rs`), a one-line
//!   call into [`targets`], so the same code replays the seed corpus under plain `cargo test`.
//! - **op**: one decoded step (allocate, free, grow, shrink, and each allocator's own: trim,
//!   batch, flush, checkpoint/rewind, acquire/release, ...). Inputs decode into at most
//!   [`input::OPS_MAX`] ops with the `arbitrary` crate; a short input is a short sequence.
//! - **shadow**: the model of what must be live ([`shadow::Shadow`]): every block with its
//!   layout, returned length and fill seed. After every op the allocator's `check()` must pass
//!   and the shadow must agree (alignment, no overlap, contents kept, zeroed means zero).
//! - **junk pages** ([`pages::JunkPages`]): a `BufferPages` over a buffer reused across runs
//!   that fills every mapped, purged or unmapped run with junk, so an allocator that reads memory
//!   it never wrote (or relies on zeroes it was not promised) fails the same way every time.
//!
//! ```text
//!   bytes ──arbitrary──► [op, op, op, ...] ──┬──► allocator (over JunkPages) ──► blocks
//!                                            │         │ check() after every op
//!                                            └──► shadow (BTreeMap addr → block)
//!                                                      │ aligned? disjoint? pattern kept?
//!   any mismatch or failed check() = panic = a libFuzzer crash with the input saved
//! ```

pub mod driver;
pub mod input;
pub mod pages;
pub mod shadow;
pub mod targets;
