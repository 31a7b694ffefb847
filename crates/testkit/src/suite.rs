//! `Suite`: the configuration of a conformance run, and its entry points.

use heapkit_core::{Allocator, Introspect, PageSource};
use heapkit_pages::FailingPages;

/// Proptest cases per allocator when `PROPTEST_CASES` is not set.
pub const DEFAULT_CASES: u32 = if cfg!(miri) { 6 } else { 256 };
/// The largest request the model makes by default.
pub const DEFAULT_MAX_SIZE_BYTES: usize = if cfg!(miri) { 8 * 1024 } else { 1 << 20 };
/// The largest alignment the model asks for by default.
pub const DEFAULT_MAX_ALIGN_BYTES: usize = 4096;
/// Requests at or below this size and at or below [`SMALL_ALIGN_BYTES`] must succeed, unless the
/// suite was told the allocator has a fixed capacity.
pub const SMALL_REQUEST_BYTES: usize = 4096;
/// See [`SMALL_REQUEST_BYTES`].
pub const SMALL_ALIGN_BYTES: usize = 16;
/// The model never holds more than this many live blocks: a bound on memory and time per case.
pub const MAX_LIVE_BLOCKS: usize = 64;

/// The conformance suite for one allocator.
///
/// ```
/// use heapkit_testkit::{test_pages, PageRunAllocator, Suite};
/// use heapkit_core::Counting;
/// Suite::new("page-run").cases(if cfg!(miri) { 2 } else { 16 }).run(|| Counting::new(PageRunAllocator::new(test_pages(8 << 20))));
/// ```
#[derive(Clone, Debug)]
pub struct Suite {
    pub(crate) name: &'static str,
    pub(crate) cases: u32,
    pub(crate) max_size_bytes: usize,
    pub(crate) max_align_bytes: usize,
    pub(crate) live_accounting: bool,
    pub(crate) fixed_capacity: bool,
}

impl Suite {
    /// A suite with the default settings; `name` appears in every failure message.
    pub fn new(name: &'static str) -> Self {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_CASES);
        Suite {
            name,
            cases,
            max_size_bytes: DEFAULT_MAX_SIZE_BYTES,
            max_align_bytes: DEFAULT_MAX_ALIGN_BYTES,
            live_accounting: true,
            fixed_capacity: false,
        }
    }

    /// Runs `n` proptest cases (and about as many quickcheck tests) instead of the default.
    pub fn cases(mut self, n: u32) -> Self {
        assert!(n > 0, "a suite needs at least one case");
        self.cases = n;
        self
    }

    /// The largest size the model asks for.
    pub fn max_size(mut self, bytes: usize) -> Self {
        assert!(bytes > 0);
        self.max_size_bytes = bytes;
        self
    }

    /// The largest alignment the model asks for (a power of two).
    pub fn max_align(mut self, bytes: usize) -> Self {
        assert!(bytes.is_power_of_two());
        self.max_align_bytes = bytes;
        self
    }

    /// The allocator's `Stats::live_bytes` does not fall when a block is freed (an arena), so the
    /// suite does not require it to be zero after everything is freed.
    pub fn no_live_accounting(mut self) -> Self {
        self.live_accounting = false;
        self
    }

    /// The allocator has a fixed capacity, so even small requests may fail with `AllocError`
    /// (the suite still checks that a failure leaves everything intact).
    pub fn fixed_capacity(mut self) -> Self {
        self.fixed_capacity = true;
        self
    }

    /// The model-based property test and the quickcheck laws, each case on a fresh allocator
    /// from `make`. Panics with a description of the smallest failing operation sequence.
    pub fn run<A, F>(&self, make: F)
    where
        A: Allocator + Introspect,
        F: Fn() -> A,
    {
        crate::model::run(self, &make);
        crate::laws::run(self, &make);
    }

    /// Several threads allocate, write, hand blocks to each other and free them (so many blocks
    /// are freed by a thread other than the one that allocated them), for a bounded number of
    /// operations; then `check()` and the stats must agree that nothing is live.
    pub fn run_threads<A, F>(&self, make: F)
    where
        A: Allocator + Introspect + Sync,
        F: Fn() -> A,
    {
        crate::threads::run(self, &make());
    }

    /// Out of memory: over a [`FailingPages`] source the allocator must report `AllocError`,
    /// never panic, keep every live block intact, pass `check()`, and serve requests again once
    /// memory is available.
    pub fn run_out_of_memory<P, A, S, F>(&self, pages: S, make: F)
    where
        P: PageSource,
        A: Allocator + Introspect,
        S: Fn() -> P,
        F: Fn(FailingPages<P>) -> A,
    {
        crate::oom::run(self, &pages, &make);
    }

    /// Large alignments: blocks of 64 B and of a little over 3 MiB aligned to each of
    /// [`LARGE_ALIGNMENTS_BYTES`](crate::LARGE_ALIGNMENTS_BYTES) (4 MiB, 64 MiB, 1 GiB) must be
    /// served, keep their contents through `grow` and `shrink`, read as zero from
    /// `allocate_zeroed`, and leave `check()` passing and nothing live. The allocator needs the
    /// address space (an `mmap` source): a 1 GiB alignment maps up to 2 GiB for a moment.
    pub fn run_large_alignments<A, F>(&self, make: F)
    where
        A: Allocator + Introspect,
        F: Fn() -> A,
    {
        crate::large_align::run(self, &make());
    }

    pub(crate) fn must_succeed(&self, size: usize, align: usize) -> bool {
        !self.fixed_capacity && size <= SMALL_REQUEST_BYTES && align <= SMALL_ALIGN_BYTES
    }
}
