#![doc = include_str!("../README.md")]

//! # Vocabulary
//!
//! - **sampling** ([`sampler`]): byte-weighted Poisson sampling. Each thread counts the bytes
//!   it allocates down from an exponential draw with a configurable mean (default 512 KiB);
//!   the request that takes the count to zero is sampled. A block of `n` bytes is so sampled
//!   with probability `1 - exp(-n / mean)`, and stands for `n / p` bytes and `1 / p` objects.
//! - **guard**: a per-thread flag set while the thread is inside the profiler; requests made
//!   meanwhile are never sampled.
//! - **stack** ([`stack`]): up to 64 return addresses, captured on the allocation path without
//!   allocating (the system unwinder); symbolised only at dump time.
//! - **store**: the live table (address → sample) and the stack table (stack → totals), in
//!   memory mapped from the OS (`MmapPages`), never from the profiled heap; bounded, with a
//!   counter of dropped samples.
//! - **profiles**: *in use* (sampled blocks not yet freed) and *allocated* (every sample since
//!   start), both scaled by the sampling probability; as [`Site`]s, [`Sample`]s, pprof
//!   protobuf or a flame-graph SVG (feature `pprof`, through `pprof_util`).
//!
//! ```text
//!   allocator's fast path ── is_active()? ──no──► usual path
//!                                 │ yes (cold)
//!                                 ▼
//!   should_sample(size) ── countdown > 0 ──► usual path
//!                                 │ expired: Guard, capture_stack(), allocate, record()
//!                                 ▼
//!   store (mmap) ◄── on_free(ptr) from the allocator's free of a block that may be sampled
//!        │ sites(), live_samples(), write_pprof(), write_flamegraph(), dump_to_file()
//!        ▼
//!   pprof_util (symbolize, flame graph)
//! ```
//!
//! The crate does not allocate; the allocator hooks it (heapkit's facade does with its `prof`
//! feature) and decides how a sampled block is recognised when freed.

#[cfg(feature = "pprof")]
mod dump;
mod profile;
pub mod rng;
pub mod sampler;
pub mod stack;
mod store;

#[cfg(feature = "pprof")]
pub use dump::{dump_to_file, symbol_names, write_flamegraph, write_pprof, Kind};
pub use profile::{
    capture_stack, dropped_samples, inuse_bytes, live_samples, lock_for_fork, on_free, record,
    sites, store_counts, unlock_after_fork, Sample, Site,
};
pub use sampler::{
    activate, deactivate, is_active, sample_mean_bytes, samples_may_exist, set_sample_mean_bytes,
    should_sample, Guard, ZeroMean, DEFAULT_SAMPLE_MEAN_BYTES,
};
pub use store::{LIVE_CAPACITY, OBJECT_UNIT, STACK_CAPACITY};
