//! The two error types: one for a request that cannot be served, one for a broken heap.

use core::fmt;

/// A request could not be served: out of memory, an invalid or overflowing layout, an exhausted
/// capacity, or a refused operation.
///
/// Like `core::alloc::AllocError`, it carries no detail, so that returning it costs nothing and
/// never allocates. An allocator that refuses a request leaves every block it has already handed
/// out untouched.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct AllocError;

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memory allocation failed")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AllocError {}

/// An invariant of an allocator's internal structures does not hold.
///
/// Returned by [`Introspect::check`](crate::Introspect::check). It names the broken rule with a
/// static string and the address where it was found, so that reporting it never allocates.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct InvariantError {
    /// The rule that does not hold, in a sentence (for example "free chunk not in its bin").
    pub what: &'static str,
    /// The address of the structure that breaks it (0 when no address applies).
    pub addr: usize,
}

impl InvariantError {
    /// Creates an error for the rule `what`, broken at `addr`.
    pub const fn new(what: &'static str, addr: usize) -> Self {
        InvariantError { what, addr }
    }
}

impl fmt::Display for InvariantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "heap invariant broken at {:#x}: {}",
            self.addr, self.what
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for InvariantError {}
