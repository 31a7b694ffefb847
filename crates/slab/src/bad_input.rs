//! What happens to a bad free (double free, foreign or interior pointer, wrong class).
//!
//! - With the `checked` feature: the process aborts after writing one line to stderr
//!   (`heapkit_core::fatal`: a stack buffer and one `write(2)`, no allocation, no unwinding).
//! - Otherwise, in debug builds: a `debug_assert!` fails (tests see a panic with the message).
//! - Otherwise (release): the free is ignored. The block leaks, but no structure is corrupted,
//!   which is the only safe thing left to do with a pointer that is not a live block.

/// Reports a bad free of `addr`; returns only when the free is to be ignored.
#[cold]
#[inline(never)]
pub(crate) fn report(what: &'static str, addr: usize) {
    #[cfg(feature = "checked")]
    heapkit_core::fatal("heapkit-slab", what, addr);
    #[cfg(not(feature = "checked"))]
    {
        debug_assert!(false, "heapkit-slab: {what} at {addr:#x}");
        let _ = (what, addr);
    }
}
