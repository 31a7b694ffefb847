//! Bad input to `free`: what the cheap checks catch and how it is reported.
//!
//! glibc aborts with "double free or corruption". heapkit-bins, by default, fails a debug
//! assertion (debug builds) or leaves the block alone (release builds: leaking one block is
//! better than corrupting the heap). With the `checked` feature it aborts the process with a
//! clear message written straight to fd 2 from a stack buffer (`heapkit_core::fatal`): no
//! allocation, no unwinding, no formatting machinery that might itself allocate.

/// A misuse of `free` caught by a cheap check.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Misuse {
    /// The chunk is already free (its in-use bit is clear, it is the top chunk, or it is on
    /// top of its fast bin).
    DoubleFree,
    /// The pointer is not the start of a block of this heap (misaligned, implausible size,
    /// outside every segment).
    InvalidPointer,
}

impl Misuse {
    pub(crate) const fn message(self) -> &'static str {
        match self {
            Misuse::DoubleFree => "double free",
            Misuse::InvalidPointer => "free of a pointer that is not a live block",
        }
    }
}

/// Reports a misuse at the caller's pointer `addr`.
#[cold]
#[inline(never)]
pub(crate) fn bad_free(misuse: Misuse, addr: usize) {
    #[cfg(feature = "checked")]
    heapkit_core::fatal("heapkit-bins", misuse.message(), addr);
    #[cfg(not(feature = "checked"))]
    debug_assert!(false, "heapkit-bins: {} at {:#x}", misuse.message(), addr);
    #[cfg(not(feature = "checked"))]
    let _ = (misuse, addr);
}
