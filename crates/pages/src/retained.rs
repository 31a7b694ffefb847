//! `Retained<P>`: a page source that keeps unmapped runs for reuse, with decay.
//!
//! snmalloc builds its back end from composable "Range" layers; this is the one that remembers
//! freed address ranges. jemalloc's extents decay dirty → muzzy → released and tcmalloc's page
//! heap releases free spans at a set rate; here a run handed back with `unmap` is kept
//!
//! ```text
//!   unmap ──► dirty ──── purge delay, or over the allowance (oldest first) ───► purged
//!   (pages may be resident)                        (inner.purge: addresses kept)
//!               │                                                    │ 10 × the delay
//!               │ map: best fit, dirty runs first,                   ▼
//!               ▼      head and tail of a split stay      released (inner.unmap)
//!           handed out  ◄── purged runs are reused too (their pages fault in again)
//! ```
//!
//! in a fixed table of [`RETAINED_RUNS`] entries behind a spin lock: nothing is ever
//! allocated. The decay work runs on `map` and `unmap` (and on
//! [`decay_now`](Retained::decay_now), for a background purger), with the coarse clock read
//! there; the run about to be handed out is taken off the table first, so it
//! is never purged on its way out.

use crate::args::check_map_args;
use crate::clock::{self, DEFAULT_PURGE_DELAY_MS, DEFAULT_PURGE_THRESHOLD_BYTES};
use crate::run_table::{Decay, Run, Table};
use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use heapkit_core::{AllocError, InvariantError, PageSource, SpinLock};

/// How many runs a [`Retained`] keeps at most. When the table is full, the smallest run goes
/// back to the inner source: 64 entries of 32 bytes are 2 KiB, scanned on slow paths only.
pub const RETAINED_RUNS: usize = 64;

/// A purged run is unmapped once it has stayed purged this many purge delays (10 s at the
/// default delay of 1 s). Purged runs cost no memory, only address space, one table entry and a
/// VMA; keeping them ten times longer than dirty ones spares the `munmap`/`mmap` pair for a
/// program that comes back within seconds, and still returns the address space of one that
/// went idle (jemalloc's muzzy decay plays the same part, at 10 s by default).
pub const RELEASE_DELAY_FACTOR: u64 = 10;

/// Dirty bytes may grow to `1 / 2^IN_USE_SHARE_SHIFT` of the bytes in use (mapped through this
/// layer and not unmapped) before the oldest are purged, when that is above the purge
/// threshold: the threshold adapts to the heap as glibc's dynamic mmap and trim thresholds do.
/// Measured on the large-block loop of the crate's README (20 live blocks of 5-25 MiB, each
/// replaced 2,000 times, about 300 MiB in use), minor faults and peak RSS: a half 144 k and
/// 394 MB, a quarter 397 k and 394 MB, an eighth 1.16 M and 394 MB (tcmalloc
/// 135 k and 520 MB, glibc 554 k and 456 MB). The peak does not move because reuse and
/// gathering consume the dirty runs before new pages are touched; the share bounds what an
/// idle heap keeps before the delay runs out.
pub const IN_USE_SHARE_SHIFT: u32 = 1;

/// The dirty allowance is also at least twice the largest run given back so far, up to twice
/// this: glibc's dynamic thresholds (a freed mapped chunk raises the mmap threshold to its size,
/// up to 32 MiB on 64-bit, and the trim threshold to twice that). Without it a small heap
/// purged every freed block above the purge threshold at once, and the next one of its size
/// faulted every page in again: the in-process 16-thread transfer stress (blocks of up to
/// 10 MiB, an 8 MiB threshold) took 27,147 minor faults and 260.8 ms per 8 rounds, against
/// 116 faults and 48.6 ms with the threshold raised past them (benches/README.md). Dirty runs
/// still go back after the purge delay.
pub const DYNAMIC_ALLOWANCE_MAX_BYTES: usize = 32 << 20;

/// At most this many dirty pieces are moved into one fresh run after a miss. Each becomes a
/// mapping of its own in the kernel (moved anonymous pages do not merge with their
/// neighbours), so the bound keeps a process far below `vm.max_map_count` (65,530).
pub const GATHER_PIECES: usize = 8;

/// The retained bytes of a [`Retained`], by state.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RetainedBytes {
    /// Bytes kept with their pages possibly resident (they count in RSS).
    pub dirty_bytes: usize,
    /// Bytes kept purged: addresses only.
    pub purged_bytes: usize,
    /// Runs in the table.
    pub runs: usize,
    /// `map` calls served from retained runs so far.
    pub reused_maps: usize,
    /// `map` calls the inner source served so far.
    pub fresh_maps: usize,
    /// Bytes of dirty runs moved into fresh runs so far (see [`GATHER_PIECES`]).
    pub gathered_bytes: usize,
}

/// A [`PageSource`] that keeps the runs given back with `unmap` and serves later `map`s from
/// them by best fit, purging and then unmapping what is not reused on a time-based decay.
///
/// - **Reuse**: `map` takes the smallest retained run that holds the request at its alignment
///   (dirty runs first: their pages are resident), hands out the aligned piece and keeps the
///   head and tail; runs given back are merged with neighbours in the same state.
/// - **Decay**: a dirty run older than the purge delay is purged (`inner.purge`), a purged run
///   older than [`RELEASE_DELAY_FACTOR`] delays is unmapped; dirty bytes above the allowance
///   — the purge threshold, a [`1 / 2^IN_USE_SHARE_SHIFT`](IN_USE_SHARE_SHIFT) share of the
///   bytes in use, or twice the largest run given back (at most
///   [`DYNAMIC_ALLOWANCE_MAX_BYTES`]), whichever is largest — are purged oldest first. A threshold of 0 purges every
///   run at once (and a delay of 0 too).
/// - **Memory pressure**: when the inner `map` fails, every retained run is unmapped and the
///   request tried once more before `AllocError`.
/// - **Zeroing**: a reused run holds old bytes, so [`maps_zeroed`](PageSource::maps_zeroed) is
///   false; [`map_reporting_zero`](PageSource::map_reporting_zero) says which runs are fresh.
/// - **Accounting**: [`mapped_bytes`](PageSource::mapped_bytes) is the inner source's figure,
///   so it includes the retained runs (as it includes purged ones);
///   [`retained`](Self::retained) tells them apart.
///
/// The inner source must accept `unmap` and `purge` of any page-aligned range of pages it
/// mapped, even one that spans neighbouring runs (merged here): `MmapPages` and `BufferPages`
/// do. `BrkPages` shrinks only from the top and is no fit.
///
/// ```
/// use heapkit_pages::{BufferPages, PageSource, Retained};
/// let pages = Retained::new(BufferPages::owned(1 << 20, 4096).unwrap());
/// let run = pages.map(64 << 10, 4096).unwrap();
/// unsafe { pages.unmap(run, 64 << 10) };
/// assert_eq!(pages.retained().dirty_bytes, 64 << 10); // kept, not given back
/// assert_eq!(pages.map(16 << 10, 4096).unwrap(), run); // reused by best fit
/// pages.release_all();
/// assert_eq!(pages.retained().dirty_bytes, 0);
/// ```
pub struct Retained<P> {
    inner: P,
    lock: SpinLock,
    table: UnsafeCell<Table>,
    purge_delay_ms: AtomicU64,
    purge_threshold_bytes: AtomicUsize,
    /// The largest run given back with `unmap` so far, at most `DYNAMIC_ALLOWANCE_MAX_BYTES`
    /// (written with the lock held; atomic only so that the layer stays `Sync` without it).
    largest_unmap_bytes: AtomicUsize,
    clock: fn() -> u64,
}

// SAFETY: the table is reached only with `lock` held (`Retained::locked`); the inner source
// is shared as `&P`, which `P: Sync` allows.
unsafe impl<P: Sync> Sync for Retained<P> {}
// SAFETY: the table holds addresses, not references; moving the layer moves the inner source.
unsafe impl<P: Send> Send for Retained<P> {}

impl<P> core::fmt::Debug for Retained<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Retained")
            .field("purge_delay_ms", &self.purge_delay_ms())
            .field("purge_threshold_bytes", &self.purge_threshold_bytes())
            .finish_non_exhaustive()
    }
}

/// The table, with the lock held until it drops.
struct TableGuard<'a> {
    lock: &'a SpinLock,
    table: &'a mut Table,
}

impl Drop for TableGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard exists only while its thread holds the lock (`Retained::locked`).
        unsafe { self.lock.unlock() };
    }
}

impl<P> Retained<P> {
    /// A layer over `inner` with the default purge delay and threshold, keeping nothing yet.
    /// `const`, so a `static` allocator can own one.
    pub const fn new(inner: P) -> Self {
        Self::with_clock(inner, clock::now_ms)
    }

    /// As [`new`](Self::new), with the clock read for the decay (milliseconds, never
    /// decreasing): tests drive the decay with their own.
    pub const fn with_clock(inner: P, clock: fn() -> u64) -> Self {
        Retained {
            inner,
            lock: SpinLock::new(),
            table: UnsafeCell::new(Table::new()),
            purge_delay_ms: AtomicU64::new(DEFAULT_PURGE_DELAY_MS),
            purge_threshold_bytes: AtomicUsize::new(DEFAULT_PURGE_THRESHOLD_BYTES),
            largest_unmap_bytes: AtomicUsize::new(0),
            clock,
        }
    }

    /// The inner source.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// How long a retained run may stay dirty before it is purged ([`DEFAULT_PURGE_DELAY_MS`]
    /// unless changed; `u64::MAX`: forever; 0: at once). Purged runs are unmapped after
    /// [`RELEASE_DELAY_FACTOR`] times as long.
    pub fn purge_delay_ms(&self) -> u64 {
        self.purge_delay_ms.load(Ordering::Relaxed)
    }

    /// Changes the purge delay (see [`purge_delay_ms`](Self::purge_delay_ms)).
    pub fn set_purge_delay_ms(&self, delay_ms: u64) {
        self.purge_delay_ms.store(delay_ms, Ordering::Relaxed);
    }

    /// The dirty bytes always allowed before the oldest are purged
    /// ([`DEFAULT_PURGE_THRESHOLD_BYTES`] unless changed); more are allowed while they are
    /// under a share of the bytes in use ([`IN_USE_SHARE_SHIFT`]). 0 purges every run at once.
    pub fn purge_threshold_bytes(&self) -> usize {
        self.purge_threshold_bytes.load(Ordering::Relaxed)
    }

    /// Changes the purge threshold (see [`purge_threshold_bytes`](Self::purge_threshold_bytes)).
    pub fn set_purge_threshold_bytes(&self, threshold_bytes: usize) {
        self.purge_threshold_bytes
            .store(threshold_bytes, Ordering::Relaxed);
    }

    /// The lock, for `fork` handlers that take every lock of a heap before `fork`. Lock
    /// order: after the locks of whatever calls this source (heapkit-slab's chunk lock).
    pub fn raw_lock(&self) -> &SpinLock {
        &self.lock
    }

    fn locked(&self) -> TableGuard<'_> {
        self.lock.lock();
        TableGuard {
            lock: &self.lock,
            // SAFETY: the lock is held until the guard drops, so no other reference to the
            // table exists meanwhile.
            table: unsafe { &mut *self.table.get() },
        }
    }

    /// What is retained now, and how often `map` reused it.
    pub fn retained(&self) -> RetainedBytes {
        let guard = self.locked();
        let t = &*guard.table;
        RetainedBytes {
            dirty_bytes: t.dirty_bytes,
            purged_bytes: t.purged_bytes,
            runs: t.count,
            reused_maps: t.reused_maps,
            fresh_maps: t.fresh_maps,
            gathered_bytes: t.gathered_bytes,
        }
    }
}

impl<P: PageSource> Retained<P> {
    /// Unmaps every retained run (dirty and purged); returns the bytes given back.
    pub fn release_all(&self) -> usize {
        self.locked().table.release_all(&self.inner)
    }

    /// Runs the decay that is due now, as `map` and `unmap` do on their way (the same
    /// `Table::decay`): dirty runs past the allowance or older than the purge delay are purged,
    /// purged runs older than [`RELEASE_DELAY_FACTOR`] delays unmapped. For a caller that
    /// makes no `map`/`unmap` call for a while — a background purger — so that an idle
    /// process still gives its memory back. Takes the lock; O(1) when nothing is due.
    pub fn decay_now(&self) {
        let guard = self.locked();
        let table = &mut *guard.table;
        let decay = self.decay(table, (self.clock)());
        table.decay(&self.inner, decay);
    }

    /// The decay settings at `now_ms`, for `table` as it is (the bytes in use are the inner
    /// source's mapped bytes less the retained ones).
    fn decay(&self, table: &Table, now_ms: u64) -> Decay {
        let delay_ms = self.purge_delay_ms();
        let threshold_bytes = self.purge_threshold_bytes();
        let in_use_bytes = self
            .inner
            .mapped_bytes()
            .saturating_sub(table.retained_bytes());
        let allowed_dirty_bytes = if threshold_bytes == 0 {
            0
        } else {
            let largest_bytes = self.largest_unmap_bytes.load(Ordering::Relaxed);
            threshold_bytes
                .max(in_use_bytes >> IN_USE_SHARE_SHIFT)
                .max(2 * largest_bytes)
        };
        Decay {
            now_ms,
            delay_ms,
            release_delay_ms: delay_ms.saturating_mul(RELEASE_DELAY_FACTOR),
            allowed_dirty_bytes,
        }
    }

    /// Checks the table: runs non-empty, page-aligned and disjoint, neighbours in the same
    /// state merged, the byte figures and the oldest-time bounds true.
    pub fn check(&self) -> Result<(), InvariantError> {
        let page_bytes = self.inner.page_size();
        let guard = self.locked();
        let t = &*guard.table;
        let (mut dirty_bytes, mut purged_bytes) = (0, 0);
        for (i, run) in t.live().iter().enumerate() {
            if run.len_bytes == 0 || run.addr % page_bytes != 0 || run.len_bytes % page_bytes != 0 {
                return Err(InvariantError::new(
                    "retained run empty or not page-aligned",
                    run.addr,
                ));
            }
            if run.addr.checked_add(run.len_bytes).is_none() {
                return Err(InvariantError::new("retained run wraps", run.addr));
            }
            for other in &t.live()[i + 1..] {
                if run.addr < other.end() && other.addr < run.end() {
                    return Err(InvariantError::new("retained runs overlap", run.addr));
                }
                if run.dirty == other.dirty && (run.end() == other.addr || other.end() == run.addr)
                {
                    return Err(InvariantError::new(
                        "neighbouring runs not merged",
                        run.addr,
                    ));
                }
            }
            let oldest = if run.dirty {
                dirty_bytes += run.len_bytes;
                t.oldest_dirty_ms
            } else {
                purged_bytes += run.len_bytes;
                t.oldest_purged_ms
            };
            if run.since_ms < oldest {
                return Err(InvariantError::new(
                    "run older than the oldest bound",
                    run.addr,
                ));
            }
        }
        if (dirty_bytes, purged_bytes) != (t.dirty_bytes, t.purged_bytes) {
            return Err(InvariantError::new("retained byte figures wrong", 0));
        }
        if t.runs[t.count..].iter().any(|r| *r != Run::EMPTY) {
            return Err(InvariantError::new("stale entry past the table's count", 0));
        }
        Ok(())
    }
}

// SAFETY: every run handed out is either fresh from the inner source or a piece of a run the
// caller gave back (disjoint from every live run, since it was unmapped), taken off the table
// before it is handed out; the table's runs are disjoint (merging and splitting keep that),
// so no two live runs overlap. Alignment is checked by `Run::fit`.
unsafe impl<P: PageSource> PageSource for Retained<P> {
    #[inline]
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }

    fn map(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        self.map_reporting_zero(len_bytes, align_bytes)
            .map(|(run, _)| run)
    }

    fn map_reporting_zero(
        &self,
        len_bytes: usize,
        align_bytes: usize,
    ) -> Result<(NonNull<u8>, bool), AllocError> {
        let align_bytes = check_map_args(self.inner.page_size(), len_bytes, align_bytes)?;
        let gather = {
            let guard = self.locked();
            let table = &mut *guard.table;
            if table.count > 0 {
                let taken = table
                    .take_fit(&self.inner, len_bytes, align_bytes)
                    .or_else(|| table.take_extended(&self.inner, len_bytes, align_bytes));
                let decay = self.decay(table, (self.clock)());
                table.decay(&self.inner, decay);
                if let Some(start) = taken {
                    table.reused_maps += 1;
                    return Ok((start, false));
                }
            }
            table.fresh_maps += 1;
            table.dirty_bytes > 0
        };
        // Mapped without the lock: a slow `mmap` must not stall the other threads' reuse.
        let (run, zeroed) = match self.inner.map_reporting_zero(len_bytes, align_bytes) {
            Ok(mapped) => mapped,
            Err(_) if self.release_all() > 0 => {
                return self.inner.map_reporting_zero(len_bytes, align_bytes);
            }
            Err(e) => return Err(e),
        };
        if !gather {
            return Ok((run, zeroed));
        }
        let guard = self.locked();
        let table = &mut *guard.table;
        let moved_bytes = table.gather(&self.inner, run, len_bytes);
        table.gathered_bytes += moved_bytes;
        Ok((run, zeroed && moved_bytes == 0))
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, len_bytes: usize) {
        let page_bytes = self.inner.page_size();
        debug_assert!(ptr.as_ptr() as usize % page_bytes == 0 && len_bytes % page_bytes == 0);
        if len_bytes == 0 {
            return;
        }
        let guard = self.locked();
        let table = &mut *guard.table;
        let now_ms = (self.clock)();
        let run = Run {
            addr: ptr.as_ptr() as usize,
            base: ptr.as_ptr(),
            len_bytes,
            since_ms: now_ms,
            dirty: true,
        };
        table.insert(&self.inner, run);
        self.largest_unmap_bytes.fetch_max(
            len_bytes.min(DYNAMIC_ALLOWANCE_MAX_BYTES),
            Ordering::Relaxed,
        );
        let decay = self.decay(table, now_ms);
        table.decay(&self.inner, decay);
    }

    unsafe fn purge(&self, ptr: NonNull<u8>, len_bytes: usize) {
        // SAFETY: forwarded from the caller: a range of a live run, which is the inner's.
        unsafe { self.inner.purge(ptr, len_bytes) }
    }

    fn extend(&self, end: NonNull<u8>, extra_bytes: usize) -> Result<(), AllocError> {
        // The inner source extends only into pages it has not mapped; retained runs are
        // mapped as far as it knows, so growth never reaches them.
        self.inner.extend(end, extra_bytes)
    }

    unsafe fn remap(
        &self,
        ptr: NonNull<u8>,
        old_len_bytes: usize,
        new_len_bytes: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded from the caller. A live run handed out here lies within pages of
        // the inner source; an inner source that cannot move such a range refuses, and the
        // caller copies instead.
        unsafe { self.inner.remap(ptr, old_len_bytes, new_len_bytes) }
    }

    unsafe fn protect(
        &self,
        ptr: NonNull<u8>,
        len_bytes: usize,
        accessible: bool,
    ) -> Result<(), AllocError> {
        // SAFETY: forwarded from the caller. Callers make a run accessible again before they
        // unmap it (heapkit-slab lifts its guard pages), so a retained run is never guarded.
        unsafe { self.inner.protect(ptr, len_bytes, accessible) }
    }

    /// False: a reused run holds the bytes it held when it was given back.
    fn maps_zeroed(&self) -> bool {
        false
    }

    fn release_retained(&self) {
        self.release_all();
        self.inner.release_retained();
    }

    /// The inner source's figure: retained runs (dirty and purged) count until they are
    /// released; [`retained`](Retained::retained) tells how many bytes they are.
    fn mapped_bytes(&self) -> usize {
        self.inner.mapped_bytes()
    }
}

#[cfg(all(test, feature = "std"))]
mod tests;
