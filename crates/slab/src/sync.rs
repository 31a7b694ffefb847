//! The slab's shared atomics from one place: `core`'s normally, loom's under `cfg(loom)`, so
//! that the loom models (tests/loom.rs) run the slab's own code with every interleaving and
//! memory-order outcome of these atomics explored. The class and chunk locks switch in
//! heapkit-core (`Locked` is built on a loom-modelled lock under `cfg(loom)`).
//!
//! Loom's atomics cannot be built in a `const` context, so the constructors that build them
//! are `const fn` only outside loom ([`const_fn_unless_loom!`]): one body, two signatures.
//!
//! Process-wide statics (the owner-id counter, the `secure` chunk map) keep `core`'s atomics
//! under loom too: a loom atomic cannot live in a `static`, and neither orders any data.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU64, AtomicUsize};

/// Emits the function as a `const fn`, or as a plain `fn` under `cfg(loom)` (where the
/// atomics and locks it builds are loom's, which have no `const` constructors).
macro_rules! const_fn_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])*
        $vis const fn $($rest)*

        #[cfg(loom)]
        $(#[$attr])*
        $vis fn $($rest)*
    };
}
