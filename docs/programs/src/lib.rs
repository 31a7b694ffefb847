//! The programs behind heapkit's book (`docs/`): a small SVG writer for the pictures that
//! `src/bin/heapmap/` draws from the allocators' own introspection, and chapter 8's worked
//! example, a new allocator composed from existing crates ([`compose`]).


pub mod compose;
pub mod svg;
