#![doc = include_str!("../README.md")]

//! # Vocabulary
//!
//! - **the heap** (`heap::HEAP`): one `heapkit::HeapKit` in a crate-private `static`, built by
//!   a `const fn`, so it needs no initialisation before the first `malloc` — the loader may call
//!   `malloc` before any constructor of this library has run.
//! - **entry point**: an `extern "C"` function exported under the C library's name (`malloc`,
//!   `free`, …) or a C++ operator's mangled name. Every entry point checks its arguments, turns
//!   them into a `Layout`, calls the heap and turns the result back into C's conventions
//!   (NULL and `errno`), and never panics.
//! - **options**: `HEAPKIT_*` environment variables, read once by the library constructor.
//!
//! ```text
//!   program ──► malloc / free / realloc / new / delete …   (api.rs, cxx.rs: C conventions)
//!                    │
//!                    ▼
//!               HEAP: HeapKit = ThreadCache<Slab<Retained<MmapPages>>>  (heap.rs)
//!                    │            thread caches ─► size-class slabs ─► retained runs ─► mmap
//!                    ▼
//!               init.rs: options, fork handlers, statistics at exit
//!               purger.rs: the opt-in background purger thread (HEAPKIT_BACKGROUND_PURGE)
//! ```

mod api;
mod cxx;
mod heap;
mod init;
mod purger;
