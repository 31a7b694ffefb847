//! The deterministic generator every workload draws from, so every allocator sees the same
//! sequence of requests: heapkit-testkit's `Rng` (xorshift64*), shared with the conformance
//! suite's thread stress.

pub use heapkit_testkit::Rng;
