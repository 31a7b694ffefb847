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
//!               glibc.rs: mallinfo2, mallinfo, malloc_trim, malloc_stats, malloc_info, mallopt
//!               ext.rs: heapkit.h's own calls (heapkit_stats, heapkit_purge, the options)
//!               report.rs + sink.rs: the statistics and the XML, formatted on the stack
//!               zero_size.rs: `hardened` only: zero-size blocks in an inaccessible region
//!               family.rs: `hardened` only: malloc/new/new[] tags in small blocks' canaries
//!               prof.rs: heap profiling (HEAPKIT_PROF, heapkit_prof_dump; include/heapkit.h)
//!               trace.rs, trace_ids.rs, trace_clock.rs: the allocation trace recorder (HEAPKIT_TRACE, feature
//!               `trace`), which hears of the calls through divert.rs
//!               divert.rs: the divert of malloc's and free's fast paths to their cold paths,
//!               where the calls are observed; the other entry points' hooks
//!               calls.rs: call counts per function (HEAPKIT_SHOW_STATS), heard through divert.rs
//! ```

mod api;
mod calls;
mod cxx;
mod divert;
mod ext;
#[cfg(feature = "hardened")]
mod family;
mod glibc;
mod heap;
mod init;
#[cfg(feature = "prof")]
mod prof;
mod purger;
mod report;
mod sink;
#[cfg(feature = "trace")]
mod trace;
#[cfg(feature = "trace")]
mod trace_clock;
#[cfg(feature = "trace")]
mod trace_ids;
#[cfg(feature = "hardened")]
mod zero_size;
