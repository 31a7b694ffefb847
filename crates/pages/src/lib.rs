#![doc = include_str!("../README.md")]
#![no_std]

//! # Vocabulary
//!
//! - **page**: the unit a source hands out (4 KiB on x86-64 Linux).
//! - **run**: a contiguous, aligned range of whole pages returned by `map`.
//! - **purge**: giving a run's physical memory back while keeping its addresses.
//! - **retained** run: one given back with `unmap` that [`Retained`] keeps for reuse instead;
//!   **dirty** while its pages may be resident, **purged** once they were given back,
//!   **released** when it is finally unmapped from the inner source (the **decay**).
//!
//! ```text
//!   MmapPages    anywhere in the address space; any run can be unmapped or purged
//!   BrkPages     one contiguous heap at the program break; shrinks only from the top
//!   BufferPages  page runs carved from a caller's buffer; no OS at all (no_std, Miri)
//!   StaticPages  BufferPages over a `static` buffer, `const`: a global allocator with no OS
//!   FilePages    page runs carved from a memory-mapped file (`file` feature): kept, shared
//!   FailingPages any of the above, failing on purpose (out-of-memory tests)
//!   Retained     any of the above, keeping unmapped runs for reuse: best fit, decay
//! ```

#[cfg(feature = "std")]
extern crate std;

mod args;
mod brk;
mod buffer;
pub mod clock;
#[cfg(feature = "std")]
mod failing;
#[cfg(feature = "file")]
mod file;
mod mmap;
mod retained;
mod run_table;
mod static_pages;

pub use brk::BrkPages;
pub use buffer::{BufferPages, DEFAULT_PAGE_BYTES, MIN_PAGE_BYTES};
#[cfg(feature = "std")]
pub use failing::{FailingPages, FaultPlan};
#[cfg(feature = "file")]
pub use file::FilePages;
pub use mmap::{os_page_size, MmapPages, PurgeMode};
pub use retained::{
    Retained, RetainedBytes, DYNAMIC_ALLOWANCE_MAX_BYTES, GATHER_PIECES, IN_USE_SHARE_SHIFT,
    RELEASE_DELAY_FACTOR, RETAINED_RUNS,
};
pub use static_pages::{StaticBuffer, StaticPages};

pub use heapkit_core::PageSource;
