//! One module per allocator: its set-up, its own ops, and `run(data)`, the whole fuzz target.

pub mod bins;
pub mod bump;
pub mod fixed;
pub mod slab;
pub mod tcache;
pub mod trace;

/// A target's entry point: runs one input.
pub type Run = fn(&[u8]);

/// Every target by name, for the corpus replay test and tools.
pub const ALL: &[(&str, Run)] = &[
    ("bins", bins::run),
    ("slab", slab::run),
    ("tcache", tcache::run),
    ("bump", bump::run),
    ("fixed", fixed::run),
    ("trace", trace::run),
];
