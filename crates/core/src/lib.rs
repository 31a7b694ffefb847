#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(feature = "nightly", feature(allocator_api))]

//! # Vocabulary
//!
//! Every heapkit crate speaks these words:
//!
//! - **page source** ([`PageSource`]): where memory comes from. It hands out *page runs*,
//!   page-granular, page-aligned ranges of address space (`mmap`, `brk`, or a caller's buffer).
//! - **allocator** ([`Allocator`]): an algorithm that carves page runs into *blocks* for its
//!   callers. Blocks are described by a [`Layout`](core::alloc::Layout) (size and alignment).
//! - **block**: what a caller holds between `allocate` and `deallocate`. A block may be larger
//!   than the layout asked for; the allocator reports the real length in the returned slice.
//! - **adapter**: a wrapper that changes how an allocator is *used*, not how it allocates:
//!   [`Locked`] (share a single-threaded allocator), [`GlobalAdapter`] (install as
//!   `#[global_allocator]`), [`Counting`] (statistics).
//! - **lock** ([`SpinLock`]): the one lock every heapkit crate takes, `const` and
//!   allocation-free; a waiter spins a few reads, then sleeps on a *futex* (the lock word itself,
//!   with Linux's `futex` syscall; src/futex.rs) until the holder's unlock wakes it.
//! - **platform** ([`cfg_glibc!`], [`cfg_initial_exec_tls!`]): the platforms heapkit
//!   specialises for, each a `cfg` predicate written once (src/platform.rs).
//! - **initial-exec TLS** ([`initial_exec_word!`], [`initial_exec_block!`]): thread-local
//!   words declared in assembly and read in two instructions, what the C library's fast paths
//!   use on x86-64 glibc instead of a shared library's `__tls_get_addr` (src/initial_exec.rs).
//!
//! ```text
//!   your program ──► GlobalAdapter / allocator-api2 / core::alloc  (the bridges)
//!                          │
//!                          ▼
//!                  Locked<A>, Counting<A>                            (the adapters)
//!                          │
//!                          ▼
//!          Allocator: bins, slab, tcache, bump, fixed               (the algorithms)
//!                          │  map / unmap / purge
//!                          ▼
//!          PageSource: MmapPages, BrkPages, BufferPages              (the sources)
//! ```

#[cfg(feature = "std")]
extern crate std;

mod allocator;
mod classes;
mod error;
mod foreign;
mod futex;
mod global;
pub mod hint;
mod initial_exec;
mod layout;
mod locked;
mod page_source;
mod platform;
pub mod report;
pub mod secure;
mod stats;
mod threads;

pub use allocator::{dangling_block, relocate, Allocator};
pub use classes::{BatchAllocator, UnsizedAllocator};
pub use error::{AllocError, InvariantError};
pub use global::{FromGlobal, GlobalAdapter};
pub use layout::{align_down, align_up, is_aligned, is_power_of_two, MAX_ALIGN_BYTES, WORD_BYTES};
#[cfg(loom)]
#[doc(hidden)]
pub use locked::Weakening;
pub use locked::{Locked, LockedGuard, SpinLock};
pub use page_source::PageSource;
pub use report::{abort_with, fatal, report, write_stderr, StackMessage};
pub use stats::{Counting, Introspect, Stats};
pub use threads::process_is_single_threaded;

/// The allocator-api2 whose `Allocator` heapkit's allocators implement: 0.2 with feature
/// `allocator-api2-02` (or `allocator-api2`), else 0.4 with feature `allocator-api2-04`. Name
/// collections through it (`heapkit_core::allocator_api2::vec::Vec::new_in(&a)`) and a second
/// copy of the crate in a dependency tree cannot be the one a program picks by mistake.
#[cfg(feature = "allocator-api2-02")]
pub use allocator_api2;
/// The allocator-api2 whose `Allocator` heapkit's allocators implement (0.4: feature
/// `allocator-api2-04`, without `allocator-api2-02`).
#[cfg(all(feature = "allocator-api2-04", not(feature = "allocator-api2-02")))]
pub use allocator_api2_04 as allocator_api2;
/// allocator-api2 0.4 (talc's), whichever version [`allocator_api2`] names.
#[cfg(feature = "allocator-api2-04")]
pub use allocator_api2_04;

#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "allocator-api2-02")]
    pub use allocator_api2 as allocator_api2_02;
    #[cfg(feature = "allocator-api2-04")]
    pub use allocator_api2_04;
}
