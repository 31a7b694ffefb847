//! `FailingPages<P>`: a page source that fails on purpose, for out-of-memory tests.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};
use heapkit_core::{AllocError, PageSource};
use std::sync::Arc;

const NO_LIMIT: usize = usize::MAX;

/// When a [`FailingPages`] fails. Shared (through an `Arc`) between the source, which sits inside
/// an allocator, and the test, which changes the plan while the allocator runs.
#[derive(Debug)]
pub struct FaultPlan {
    /// `map`/`extend`/`remap` calls still allowed to succeed (`NO_LIMIT` = unlimited).
    maps_left: AtomicUsize,
    /// Most bytes the source may have mapped at once (`NO_LIMIT` = unlimited).
    budget_bytes: AtomicUsize,
    failures: AtomicUsize,
}

impl FaultPlan {
    fn new() -> Self {
        FaultPlan {
            maps_left: AtomicUsize::new(NO_LIMIT),
            budget_bytes: AtomicUsize::new(NO_LIMIT),
            failures: AtomicUsize::new(0),
        }
    }

    /// Every `map`, `extend` and `remap` fails from now on.
    pub fn fail_every_map(&self) {
        self.maps_left.store(0, Ordering::SeqCst);
    }

    /// The next `n` calls succeed (if the inner source can serve them); every later one fails.
    pub fn fail_after_maps(&self, n: usize) {
        self.maps_left.store(n, Ordering::SeqCst);
    }

    /// Fails any call that would make the mapped total exceed `budget_bytes`.
    pub fn limit_mapped_bytes(&self, budget_bytes: usize) {
        self.budget_bytes.store(budget_bytes, Ordering::SeqCst);
    }

    /// Lifts every limit: memory is available again.
    pub fn heal(&self) {
        self.maps_left.store(NO_LIMIT, Ordering::SeqCst);
        self.budget_bytes.store(NO_LIMIT, Ordering::SeqCst);
    }

    /// How many calls were failed on purpose so far.
    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }

    /// Whether a request for `len_bytes` more, with `mapped_bytes` already mapped, may proceed.
    fn admit(&self, mapped_bytes: usize, len_bytes: usize) -> bool {
        let over_budget =
            mapped_bytes.saturating_add(len_bytes) > self.budget_bytes.load(Ordering::SeqCst);
        let out_of_calls = self
            .maps_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
                NO_LIMIT => Some(NO_LIMIT),
                0 => None,
                n => Some(n - 1),
            })
            .is_err();
        if over_budget || out_of_calls {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// Wraps a source and fails `map` / `extend` / `remap` as its [`FaultPlan`] says; `unmap` and `purge` always
/// pass through.
///
/// ```
/// use heapkit_pages::{FailingPages, MmapPages, PageSource};
/// let pages = FailingPages::new(MmapPages::new());
/// let plan = pages.plan();
/// plan.fail_every_map();
/// assert!(pages.map(4096, 4096).is_err());
/// plan.heal();
/// let run = pages.map(4096, 4096).unwrap();
/// unsafe { pages.unmap(run, 4096) };
/// ```
#[derive(Debug)]
pub struct FailingPages<P> {
    inner: P,
    plan: Arc<FaultPlan>,
}

impl<P: PageSource> FailingPages<P> {
    /// Wraps `inner` with a plan that fails nothing yet.
    pub fn new(inner: P) -> Self {
        FailingPages {
            inner,
            plan: Arc::new(FaultPlan::new()),
        }
    }

    /// A handle on the plan, to change it while an allocator owns the source.
    pub fn plan(&self) -> Arc<FaultPlan> {
        Arc::clone(&self.plan)
    }

    /// The wrapped source.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

// SAFETY: every run comes unchanged from the inner source, which keeps the contract.
unsafe impl<P: PageSource> PageSource for FailingPages<P> {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }

    fn map(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        if !self.plan.admit(self.inner.mapped_bytes(), len_bytes) {
            return Err(AllocError);
        }
        self.inner.map(len_bytes, align_bytes)
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, len_bytes: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.unmap(ptr, len_bytes) }
    }

    unsafe fn purge(&self, ptr: NonNull<u8>, len_bytes: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.purge(ptr, len_bytes) }
    }

    /// Counts as a map for the plan (a call that can fail, with the growth against the
    /// budget), then forwards.
    unsafe fn remap(
        &self,
        ptr: NonNull<u8>,
        old_len_bytes: usize,
        new_len_bytes: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let growth_bytes = new_len_bytes.saturating_sub(old_len_bytes);
        if !self.plan.admit(self.inner.mapped_bytes(), growth_bytes) {
            return Err(AllocError);
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.remap(ptr, old_len_bytes, new_len_bytes) }
    }

    fn extend(&self, end: NonNull<u8>, extra_bytes: usize) -> Result<(), AllocError> {
        if !self.plan.admit(self.inner.mapped_bytes(), extra_bytes) {
            return Err(AllocError);
        }
        self.inner.extend(end, extra_bytes)
    }

    unsafe fn protect(
        &self,
        ptr: NonNull<u8>,
        len_bytes: usize,
        accessible: bool,
    ) -> Result<(), AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.protect(ptr, len_bytes, accessible) }
    }

    fn maps_zeroed(&self) -> bool {
        self.inner.maps_zeroed()
    }

    fn map_reporting_zero(
        &self,
        len_bytes: usize,
        align_bytes: usize,
    ) -> Result<(NonNull<u8>, bool), AllocError> {
        if !self.plan.admit(self.inner.mapped_bytes(), len_bytes) {
            return Err(AllocError);
        }
        self.inner.map_reporting_zero(len_bytes, align_bytes)
    }

    fn release_retained(&self) {
        self.inner.release_retained()
    }

    /// Passes through: a move maps no new memory.
    unsafe fn move_pages(
        &self,
        from: NonNull<u8>,
        to: NonNull<u8>,
        len_bytes: usize,
    ) -> Result<(), AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.move_pages(from, to, len_bytes) }
    }

    fn mapped_bytes(&self) -> usize {
        self.inner.mapped_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BufferPages;

    #[test]
    fn fails_after_n_maps_and_over_budget() {
        let pages = FailingPages::new(BufferPages::owned(64 * 1024, 1024).unwrap());
        let plan = pages.plan();
        plan.fail_after_maps(2);
        assert!(pages.map(1024, 1024).is_ok());
        assert!(pages.map(1024, 1024).is_ok());
        assert!(pages.map(1024, 1024).is_err());
        assert_eq!(plan.failures(), 1);
        plan.heal();
        plan.limit_mapped_bytes(4 * 1024);
        assert!(pages.map(2 * 1024, 1024).is_ok());
        assert!(pages.map(1024, 1024).is_err());
        plan.heal();
        assert!(pages.map(1024, 1024).is_ok());
    }

    #[test]
    #[cfg(all(target_os = "linux", not(miri)))]
    fn remap_counts_as_a_map_and_forwards() {
        let page = crate::os_page_size();
        let pages = FailingPages::new(crate::MmapPages::new());
        let plan = pages.plan();
        let run = pages.map(page, page).unwrap();
        plan.fail_every_map();
        // SAFETY: the whole live run; nothing borrows it.
        assert!(unsafe { pages.remap(run, page, 4 * page) }.is_err());
        assert_eq!(plan.failures(), 1);
        assert_eq!(pages.mapped_bytes(), page, "a failed remap changes nothing");
        plan.heal();
        plan.limit_mapped_bytes(2 * page);
        // SAFETY: as above.
        let over_budget = unsafe { pages.remap(run, page, 4 * page) };
        assert!(over_budget.is_err(), "over budget");
        // SAFETY: as above.
        let grown = unsafe { pages.remap(run, page, 2 * page) }.unwrap();
        assert_eq!(pages.mapped_bytes(), 2 * page);
        // SAFETY: the run is ours.
        unsafe { pages.unmap(grown, 2 * page) };
        assert_eq!(pages.mapped_bytes(), 0);
    }

    #[test]
    fn remap_over_a_source_without_it_is_refused() {
        let pages = FailingPages::new(BufferPages::owned(16 * 1024, 1024).unwrap());
        let run = pages.map(1024, 1024).unwrap();
        // SAFETY: the whole live run; nothing borrows it.
        assert!(unsafe { pages.remap(run, 1024, 2048) }.is_err());
        assert_eq!(pages.mapped_bytes(), 1024);
    }
}
