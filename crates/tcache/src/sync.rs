//! The atomics of the slot protocol, from one place: `core`'s normally, loom's under
//! `cfg(loom)`, so that the loom models (tests/loom.rs) run the crate's own protocol code
//! ([`Owners`](crate::slot::Owners) and [`handover`](crate::handover)) with every interleaving
//! and memory-order outcome explored.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
