//! `SystemHeap`: the platform allocator (`std::alloc::System`) behind heapkit's `Allocator`
//! trait (through heapkit-core's `FromGlobal`), so that the common case — "the usual heap, but
//! sealed after init" — is one line:
//!
//! ```
//! use heapkit_core::GlobalAdapter;
//! use heapkit_fixed::{StaticAllocator, SystemHeap, SYSTEM_HEAP};
//! // In a real program: #[global_allocator]
//! static GLOBAL: GlobalAdapter<StaticAllocator<SystemHeap>> =
//!     GlobalAdapter::new(StaticAllocator::new(SYSTEM_HEAP));
//! ```

/// The platform allocator (`malloc`/`free` on Unix) as a heapkit `Allocator`. Stateless and
/// `Sync`.
pub type SystemHeap = heapkit_core::FromGlobal<std::alloc::System>;

/// The one value of [`SystemHeap`].
pub const SYSTEM_HEAP: SystemHeap = heapkit_core::FromGlobal(std::alloc::System);
