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

/// At most this many dirty pieces are moved into one fresh run after a miss. Each becomes a
/// mapping of its own in the kernel (moved anonymous pages do not merge with their
/// neighbours), so the bound keeps a process far below `vm.max_map_count` (65,530).
pub const GATHER_PIECES: usize = 8;

/// One retained run: its addresses, and since when it is in its state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Run {
    addr: usize,
    /// A pointer whose provenance covers the run (the one it came back through): handed-out
    /// pointers are derived from it, never cast from `addr` (Miri's strict provenance).
    base: *mut u8,
    len_bytes: usize,
    /// When the run became dirty (unmapped) or purged.
    since_ms: u64,
    /// Pages may be resident (not purged since the unmap).
    dirty: bool,
}

impl Run {
    const EMPTY: Run = Run {
        addr: 0,
        base: core::ptr::null_mut(),
        len_bytes: 0,
        since_ms: 0,
        dirty: false,
    };

    const fn end(&self) -> usize {
        self.addr + self.len_bytes
    }

    /// A pointer to `addr` (inside or at the end of the run) with the run's provenance.
    fn ptr(&self, addr: usize) -> NonNull<u8> {
        debug_assert!(addr >= self.addr && addr <= self.end() && addr != 0);
        // SAFETY: a run's addresses are those of live pages, never 0.
        unsafe { NonNull::new_unchecked(self.base.with_addr(addr)) }
    }

    /// Where a block of `len_bytes` aligned to `align_bytes` would start in this run, if it fits.
    fn fit(&self, len_bytes: usize, align_bytes: usize) -> Option<usize> {
        let start = heapkit_core::align_up(self.addr, align_bytes)?;
        let end = start.checked_add(len_bytes)?;
        (end <= self.end()).then_some(start)
    }
}

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

/// The table behind the lock.
struct Table {
    runs: [Run; RETAINED_RUNS],
    count: usize,
    dirty_bytes: usize,
    purged_bytes: usize,
    /// At most the `since_ms` of every dirty run (`u64::MAX` when none): "nothing is due" in
    /// O(1). It can be older than the oldest dirty run; the next walk makes it exact.
    oldest_dirty_ms: u64,
    /// The same for purged runs.
    oldest_purged_ms: u64,
    reused_maps: usize,
    fresh_maps: usize,
    gathered_bytes: usize,
}

/// When runs decay, read once per call.
#[derive(Copy, Clone, Debug)]
struct Decay {
    now_ms: u64,
    delay_ms: u64,
    release_delay_ms: u64,
    /// Dirty bytes allowed before the oldest are purged.
    allowed_dirty_bytes: usize,
}

impl Table {
    const fn new() -> Self {
        Table {
            runs: [Run::EMPTY; RETAINED_RUNS],
            count: 0,
            dirty_bytes: 0,
            purged_bytes: 0,
            oldest_dirty_ms: u64::MAX,
            oldest_purged_ms: u64::MAX,
            reused_maps: 0,
            fresh_maps: 0,
            gathered_bytes: 0,
        }
    }

    fn live(&self) -> &[Run] {
        &self.runs[..self.count]
    }

    fn retained_bytes(&self) -> usize {
        self.dirty_bytes + self.purged_bytes
    }

    /// Adds `run` to the table's figures and slots (which must have room).
    fn push(&mut self, run: Run) {
        debug_assert!(self.count < RETAINED_RUNS && run.len_bytes > 0);
        self.runs[self.count] = run;
        self.count += 1;
        if run.dirty {
            self.dirty_bytes += run.len_bytes;
            self.oldest_dirty_ms = self.oldest_dirty_ms.min(run.since_ms);
        } else {
            self.purged_bytes += run.len_bytes;
            self.oldest_purged_ms = self.oldest_purged_ms.min(run.since_ms);
        }
    }

    /// Takes entry `index` off the table (the last entry moves into its place).
    fn remove(&mut self, index: usize) -> Run {
        let run = self.runs[index];
        self.count -= 1;
        self.runs[index] = self.runs[self.count];
        self.runs[self.count] = Run::EMPTY;
        if run.dirty {
            self.dirty_bytes -= run.len_bytes;
        } else {
            self.purged_bytes -= run.len_bytes;
        }
        run
    }

    /// Puts `run` in the table, merged with the neighbours in the same state. When the table is
    /// full, the smallest run (this one, or one already there) goes back to `inner`.
    fn insert<P: PageSource>(&mut self, inner: &P, mut run: Run) {
        while let Some(index) = self
            .live()
            .iter()
            .position(|r| r.dirty == run.dirty && (r.end() == run.addr || run.end() == r.addr))
        {
            let neighbour = self.remove(index);
            run.addr = run.addr.min(neighbour.addr);
            run.len_bytes += neighbour.len_bytes;
            // The older time: pages that waited stay due, whatever joins them (the newer
            // time would let a run that keeps growing by small frees stay dirty forever).
            run.since_ms = run.since_ms.min(neighbour.since_ms);
        }
        if self.count == RETAINED_RUNS {
            let (smallest, len_bytes) = self
                .live()
                .iter()
                .enumerate()
                .map(|(i, r)| (i, r.len_bytes))
                .min_by_key(|&(_, len)| len)
                .unwrap_or((0, usize::MAX));
            if run.len_bytes <= len_bytes {
                release(inner, run);
                return;
            }
            let evicted = self.remove(smallest);
            release(inner, evicted);
        }
        self.push(run);
    }

    /// Takes the best-fitting run for `len_bytes` at `align_bytes` off the table (dirty runs
    /// before purged ones: their pages need no fault), puts its head and tail back, and
    /// returns the start of the piece handed out.
    fn take_fit<P: PageSource>(
        &mut self,
        inner: &P,
        len_bytes: usize,
        align_bytes: usize,
    ) -> Option<NonNull<u8>> {
        let (index, start) = self
            .live()
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.fit(len_bytes, align_bytes).map(|start| (i, start)))
            .min_by_key(|&(i, _)| (!self.runs[i].dirty, self.runs[i].len_bytes))?;
        let run = self.remove(index);
        let head = Run {
            len_bytes: start - run.addr,
            ..run
        };
        let tail = Run {
            addr: start + len_bytes,
            len_bytes: run.end() - start - len_bytes,
            ..run
        };
        for piece in [head, tail] {
            if piece.len_bytes > 0 {
                self.insert(inner, piece);
            }
        }
        Some(run.ptr(start))
    }

    /// On a miss: grows a dirty run in place at its end (`inner.extend`) so that it holds
    /// `len_bytes` at `align_bytes`: only the new pages fault in, as when glibc's heap grows
    /// its top chunk. Returns the start of the piece handed out (the run's head stays).
    fn take_extended<P: PageSource>(
        &mut self,
        inner: &P,
        len_bytes: usize,
        align_bytes: usize,
    ) -> Option<NonNull<u8>> {
        for index in 0..self.count {
            let run = self.runs[index];
            if !run.dirty {
                continue;
            }
            let Some(start) = heapkit_core::align_up(run.addr, align_bytes) else {
                continue;
            };
            let Some(end) = start.checked_add(len_bytes) else {
                continue;
            };
            if start >= run.end() || end <= run.end() {
                continue;
            }
            if inner.extend(run.ptr(run.end()), end - run.end()).is_err() {
                continue;
            }
            let run = self.remove(index);
            if start > run.addr {
                self.insert(
                    inner,
                    Run {
                        len_bytes: start - run.addr,
                        ..run
                    },
                );
            }
            return Some(run.ptr(start));
        }
        None
    }

    /// After a miss: moves resident pieces of dirty runs, largest first, into the fresh run at
    /// `dest` (`inner.move_pages`: page table entries move, no byte is copied), so that the
    /// pages the program touches next are already resident instead of faulting in. At most
    /// [`GATHER_PIECES`] pieces (each one a mapping of its own afterwards); a piece the inner
    /// source cannot move is skipped. Returns the bytes moved in.
    fn gather<P: PageSource>(&mut self, inner: &P, dest: NonNull<u8>, len_bytes: usize) -> usize {
        let mut by_size = self.runs;
        let candidates = &mut by_size[..self.count];
        candidates.sort_unstable_by_key(|r| core::cmp::Reverse(r.len_bytes));
        let (mut filled, mut pieces) = (0, 0);
        for run in candidates.iter().filter(|r| r.dirty) {
            if filled == len_bytes || pieces == GATHER_PIECES {
                break;
            }
            let piece = run.len_bytes.min(len_bytes - filled);
            // SAFETY: the run is retained (unused, within runs of `inner`), the destination
            // is a fresh run of `inner` nobody uses yet; both page-aligned and disjoint.
            let moved = unsafe { inner.move_pages(run.ptr(run.addr), dest.add(filled), piece) };
            if moved.is_err() {
                continue;
            }
            let Some(index) = self.live().iter().position(|r| r.addr == run.addr) else {
                debug_assert!(false, "a gathered run left the table");
                break;
            };
            let run = self.remove(index);
            if piece < run.len_bytes {
                self.insert(
                    inner,
                    Run {
                        addr: run.addr + piece,
                        len_bytes: run.len_bytes - piece,
                        ..run
                    },
                );
            }
            filled += piece;
            pieces += 1;
        }
        filled
    }

    /// Purges what is due under `decay`: the oldest dirty runs while dirty bytes exceed the
    /// allowance, then every dirty run older than the delay; unmaps every purged run older than
    /// the release delay. O(1) when nothing is due.
    fn decay<P: PageSource>(&mut self, inner: &P, decay: Decay) {
        while self.dirty_bytes > decay.allowed_dirty_bytes {
            let oldest = self
                .live()
                .iter()
                .enumerate()
                .filter(|(_, r)| r.dirty)
                .min_by_key(|(_, r)| r.since_ms)
                .map(|(i, _)| i);
            match oldest {
                Some(index) => self.purge_run(inner, index, decay.now_ms),
                None => break,
            }
        }
        if clock::expired(self.oldest_dirty_ms, decay.now_ms, decay.delay_ms) {
            self.purge_expired(inner, decay);
        }
        if clock::expired(self.oldest_purged_ms, decay.now_ms, decay.release_delay_ms) {
            self.release_expired(inner, decay);
        }
    }

    /// Purges dirty entry `index` (its pages go back, its addresses stay).
    fn purge_run<P: PageSource>(&mut self, inner: &P, index: usize, now_ms: u64) {
        let run = self.remove(index);
        debug_assert!(run.dirty);
        // SAFETY: a retained run lies within runs of `inner` that nothing uses (it was
        // unmapped to this layer), page-aligned at both ends.
        unsafe { inner.purge(run.ptr(run.addr), run.len_bytes) };
        self.insert(
            inner,
            Run {
                dirty: false,
                since_ms: now_ms,
                ..run
            },
        );
    }

    /// Purges every dirty run older than the delay, and makes `oldest_dirty_ms` exact.
    fn purge_expired<P: PageSource>(&mut self, inner: &P, decay: Decay) {
        let mut index = 0;
        while index < self.count {
            let run = self.runs[index];
            if run.dirty && clock::expired(run.since_ms, decay.now_ms, decay.delay_ms) {
                // The table changes under the walk: start over (64 entries, a slow path).
                self.purge_run(inner, index, decay.now_ms);
                index = 0;
            } else {
                index += 1;
            }
        }
        self.oldest_dirty_ms = oldest(self.live(), true);
    }

    /// Unmaps every purged run older than the release delay, and makes `oldest_purged_ms`
    /// exact.
    fn release_expired<P: PageSource>(&mut self, inner: &P, decay: Decay) {
        let mut index = 0;
        while index < self.count {
            let run = self.runs[index];
            if !run.dirty && clock::expired(run.since_ms, decay.now_ms, decay.release_delay_ms) {
                let run = self.remove(index);
                release(inner, run);
            } else {
                index += 1;
            }
        }
        self.oldest_purged_ms = oldest(self.live(), false);
    }

    /// Unmaps every run; returns the bytes given back.
    fn release_all<P: PageSource>(&mut self, inner: &P) -> usize {
        let released_bytes = self.retained_bytes();
        while self.count > 0 {
            let run = self.remove(self.count - 1);
            release(inner, run);
        }
        self.oldest_dirty_ms = u64::MAX;
        self.oldest_purged_ms = u64::MAX;
        released_bytes
    }
}

/// The earliest `since_ms` of the runs in state `dirty` (`u64::MAX` when none).
fn oldest(runs: &[Run], dirty: bool) -> u64 {
    runs.iter()
        .filter(|r| r.dirty == dirty)
        .map(|r| r.since_ms)
        .min()
        .unwrap_or(u64::MAX)
}

/// Gives a run back to the inner source.
fn release<P: PageSource>(inner: &P, run: Run) {
    // SAFETY: a retained run lies within runs of `inner` that nothing uses, page-aligned at
    // both ends (see `Retained`'s requirement on the inner source).
    unsafe { inner.unmap(run.ptr(run.addr), run.len_bytes) };
}

/// A [`PageSource`] that keeps the runs given back with `unmap` and serves later `map`s from
/// them by best fit, purging and then unmapping what is not reused on a time-based decay.
///
/// - **Reuse**: `map` takes the smallest retained run that holds the request at its alignment
///   (dirty runs first: their pages are resident), hands out the aligned piece and keeps the
///   head and tail; runs given back are merged with neighbours in the same state.
/// - **Decay**: a dirty run older than the purge delay is purged (`inner.purge`), a purged run
///   older than [`RELEASE_DELAY_FACTOR`] delays is unmapped; dirty bytes above the allowance
///   — the purge threshold, or a [`1 / 2^IN_USE_SHARE_SHIFT`](IN_USE_SHARE_SHIFT) share of the
///   bytes in use when that is larger — are purged oldest first. A threshold of 0 purges every
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
            threshold_bytes.max(in_use_bytes >> IN_USE_SHARE_SHIFT)
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
mod tests {
    use super::*;
    use crate::{BufferPages, FailingPages};
    use std::cell::Cell;

    const PAGE: usize = 4096;

    std::thread_local! {
        /// Each test thread's own clock, moved by hand.
        static NOW_MS: Cell<u64> = const { Cell::new(0) };
    }

    fn test_clock() -> u64 {
        NOW_MS.with(Cell::get)
    }

    fn advance(ms: u64) {
        NOW_MS.with(|now| now.set(now.get() + ms));
    }

    fn layer(pages: usize) -> Retained<BufferPages<'static>> {
        Retained::with_clock(BufferPages::owned(pages * PAGE, PAGE).unwrap(), test_clock)
    }

    std::thread_local! {
        /// The last run this thread mapped: in a `BufferPages` every run carries the whole
        /// buffer's provenance, so `unmap` below derives its pointers from it (no
        /// integer-to-pointer cast, which Miri's strict provenance refuses).
        static LAST_RUN: Cell<*mut u8> = const { Cell::new(core::ptr::null_mut()) };
    }

    fn map(r: &impl PageSource, pages: usize, align_pages: usize) -> usize {
        let run = r.map(pages * PAGE, align_pages * PAGE).unwrap().as_ptr();
        LAST_RUN.with(|last| last.set(run));
        run as usize
    }

    fn unmap(r: &impl PageSource, addr: usize, pages: usize) {
        let ptr = LAST_RUN.with(|last| last.get().with_addr(addr));
        // SAFETY: the tests give back only runs they mapped and no longer use.
        unsafe { r.unmap(NonNull::new(ptr).unwrap(), pages * PAGE) };
    }

    #[test]
    fn unmapped_runs_are_kept_and_reused_by_best_fit() {
        let r = layer(256);
        let big = map(&r, 16, 1);
        let _gap1 = map(&r, 1, 1);
        let small = map(&r, 4, 1);
        let _gap2 = map(&r, 1, 1);
        unmap(&r, big, 16);
        unmap(&r, small, 4);
        assert_eq!(r.retained().dirty_bytes, 20 * PAGE);
        assert_eq!(map(&r, 3, 1), small, "the smallest run that fits");
        assert_eq!(map(&r, 10, 1), big);
        let after = r.retained();
        assert_eq!((after.dirty_bytes, after.runs), (7 * PAGE, 2), "tails stay");
        assert_eq!(after.reused_maps, 2);
        r.check().unwrap();
    }

    #[test]
    fn a_split_honours_the_alignment_and_keeps_head_and_tail() {
        let r = layer(256);
        let run = map(&r, 64, 1);
        unmap(&r, run, 64);
        let aligned = map(&r, 8, 16);
        assert_eq!(aligned % (16 * PAGE), 0);
        assert!(aligned >= run && aligned + 8 * PAGE <= run + 64 * PAGE);
        let head_pages = (aligned - run) / PAGE;
        assert_eq!(r.retained().dirty_bytes, 56 * PAGE);
        assert_eq!(r.retained().runs, 1 + usize::from(head_pages > 0));
        r.check().unwrap();
        unmap(&r, aligned, 8);
        assert_eq!(r.retained().runs, 1, "merged back into one run");
        r.check().unwrap();
    }

    #[test]
    fn dirty_runs_are_purged_after_the_delay_then_released() {
        let r = layer(64);
        r.set_purge_delay_ms(100);
        let run = map(&r, 4, 1);
        let _gap = map(&r, 1, 1);
        let other = map(&r, 4, 1);
        unmap(&r, run, 4);
        advance(99);
        unmap(&r, other, 4); // a slow path at 99 ms: nothing is due yet
        assert_eq!(r.retained().purged_bytes, 0);
        advance(1);
        let third = map(&r, 1, 1); // at 100 ms: the first run is due (the new one is taken out)
        let seen = r.retained();
        assert_eq!(seen.purged_bytes, 3 * PAGE, "what is left of the first run");
        assert_eq!(seen.dirty_bytes, 4 * PAGE);
        advance(10 * 100);
        unmap(&r, third, 1);
        let seen = r.retained();
        assert_eq!(
            seen.purged_bytes,
            4 * PAGE,
            "the second run purged; the first released"
        );
        assert_eq!(
            r.inner().mapped_bytes(),
            6 * PAGE,
            "third, the gap, the second run"
        );
        r.check().unwrap();
    }

    #[test]
    fn decay_now_purges_and_releases_what_is_due_without_map_or_unmap() {
        let r = layer(64);
        r.set_purge_delay_ms(100);
        let run = map(&r, 4, 1);
        let _live = map(&r, 1, 1);
        unmap(&r, run, 4);
        advance(99);
        r.decay_now();
        assert_eq!(r.retained().dirty_bytes, 4 * PAGE, "not due yet");
        advance(1);
        r.decay_now();
        let seen = r.retained();
        assert_eq!((seen.dirty_bytes, seen.purged_bytes), (0, 4 * PAGE));
        advance(10 * 100 - 1);
        r.decay_now();
        assert_eq!(
            r.retained().purged_bytes,
            4 * PAGE,
            "released ten delays after"
        );
        advance(1);
        r.decay_now();
        assert_eq!(r.retained().runs, 0);
        assert_eq!(r.inner().mapped_bytes(), PAGE, "only the live run is left");
        r.check().unwrap();
    }

    #[test]
    fn decay_now_does_nothing_when_the_delay_is_never() {
        let r = layer(64);
        r.set_purge_delay_ms(u64::MAX);
        let run = map(&r, 4, 1);
        let _live = map(&r, 1, 1);
        unmap(&r, run, 4);
        advance(u64::MAX / 2);
        r.decay_now();
        assert_eq!(r.retained().dirty_bytes, 4 * PAGE);
    }

    #[test]
    fn a_delay_of_zero_purges_at_once_and_max_never() {
        let r = layer(64);
        r.set_purge_delay_ms(0);
        let run = map(&r, 4, 1);
        unmap(&r, run, 4);
        assert_eq!(r.retained().dirty_bytes, 0);
        r.set_purge_delay_ms(u64::MAX);
        let run = map(&r, 4, 1);
        let _gap = map(&r, 1, 1); // the run cannot grow in place
        unmap(&r, run, 4);
        advance(u64::MAX / 2);
        let _miss = map(&r, 8, 1); // a miss, still a slow path
        assert_eq!(r.retained().dirty_bytes, 4 * PAGE);
    }

    #[test]
    fn dirty_bytes_over_the_allowance_are_purged_oldest_first() {
        let r = layer(512);
        r.set_purge_threshold_bytes(8 * PAGE);
        r.set_purge_delay_ms(u64::MAX);
        let runs: std::vec::Vec<usize> = (0..3).map(|_| map(&r, 6, 1)).collect();
        let _gap = map(&r, 1, 1);
        unmap(&r, runs[0], 6);
        advance(1);
        unmap(&r, runs[2], 6);
        // 12 dirty pages over 8 allowed (3 × 6 pages in use at most: half is below 8).
        let seen = r.retained();
        assert_eq!((seen.dirty_bytes, seen.purged_bytes), (6 * PAGE, 6 * PAGE));
        assert_eq!(map(&r, 6, 1), runs[2], "the newer run stayed dirty");
        r.check().unwrap();
    }

    #[test]
    fn the_allowance_grows_with_the_bytes_in_use() {
        let r = layer(1024);
        r.set_purge_threshold_bytes(8 * PAGE);
        r.set_purge_delay_ms(u64::MAX);
        let _held = map(&r, 400, 1); // half of it: 200 pages may stay dirty
        let run = map(&r, 50, 1);
        unmap(&r, run, 50);
        assert_eq!(r.retained().dirty_bytes, 50 * PAGE);
        r.set_purge_threshold_bytes(0);
        let other = map(&r, 1, 1);
        unmap(&r, other, 1);
        assert_eq!(
            r.retained().dirty_bytes,
            0,
            "a threshold of 0 purges every run"
        );
    }

    #[test]
    fn a_failed_map_releases_everything_and_tries_again() {
        let failing = FailingPages::new(BufferPages::owned(64 * PAGE, PAGE).unwrap());
        let plan = failing.plan();
        let r = Retained::with_clock(failing, test_clock);
        let run = map(&r, 16, 1);
        unmap(&r, run, 16);
        plan.limit_mapped_bytes(32 * PAGE);
        // 16 retained + 20 asked > 32: the first try fails, the retry after the release passes.
        let big = map(&r, 20, 1);
        assert_eq!(r.retained().dirty_bytes, 0);
        assert_eq!(r.mapped_bytes(), 20 * PAGE);
        assert!(
            r.map(20 * PAGE, PAGE).is_err(),
            "still out of memory: AllocError"
        );
        unmap(&r, big, 20);
        r.check().unwrap();
    }

    #[test]
    fn a_full_table_gives_the_smallest_run_back() {
        let r = layer(4 * RETAINED_RUNS + 64);
        let runs: std::vec::Vec<(usize, usize)> = (0..=RETAINED_RUNS)
            .map(|i| {
                let pages = if i == 7 { 1 } else { 2 };
                let run = map(&r, pages, 1);
                let _gap = map(&r, 1, 1);
                (run, pages)
            })
            .collect();
        let mapped = r.mapped_bytes();
        for &(run, pages) in &runs {
            unmap(&r, run, pages);
        }
        assert_eq!(r.retained().runs, RETAINED_RUNS);
        assert_eq!(r.mapped_bytes(), mapped - PAGE, "the 1-page run went back");
        r.check().unwrap();
        assert_eq!(r.release_all(), 2 * RETAINED_RUNS * PAGE);
        r.check().unwrap();
    }

    #[test]
    fn release_retained_gives_everything_back() {
        let r = layer(64);
        let run = map(&r, 8, 1);
        unmap(&r, run, 8);
        r.release_retained();
        assert_eq!(r.mapped_bytes(), 0);
        assert_eq!(
            r.retained(),
            RetainedBytes {
                fresh_maps: 1,
                ..RetainedBytes::default()
            }
        );
    }

    #[test]
    #[cfg_attr(miri, ignore)] // mmap
    fn fresh_runs_report_zero_and_reused_ones_do_not() {
        let r = Retained::new(crate::MmapPages::new());
        let (run, zero) = r.map_reporting_zero(4 * PAGE, PAGE).unwrap();
        assert!(zero);
        // SAFETY: the run is ours, 4 pages long.
        unsafe { run.as_ptr().write_bytes(1, 4 * PAGE) };
        unmap(&r, run.as_ptr() as usize, 4);
        let (again, zero) = r.map_reporting_zero(4 * PAGE, PAGE).unwrap();
        assert_eq!((again, zero), (run, false));
        unmap(&r, again.as_ptr() as usize, 4);
        r.release_all();
        assert_eq!(r.mapped_bytes(), 0);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // mmap and mremap
    fn a_miss_gathers_resident_pieces_into_the_fresh_run() {
        let r = Retained::new(crate::MmapPages::new());
        let (a, _) = r.map_reporting_zero(4 * PAGE, PAGE).unwrap();
        // A live page between them: the two runs cannot merge into one.
        let (gap, _) = r.map_reporting_zero(PAGE, PAGE).unwrap();
        let (b, _) = r.map_reporting_zero(2 * PAGE, PAGE).unwrap();
        // SAFETY: both runs are ours.
        unsafe {
            a.as_ptr().write_bytes(0xA, 4 * PAGE);
            b.as_ptr().write_bytes(0xB, 2 * PAGE);
        }
        unmap(&r, a.as_ptr() as usize, 4);
        unmap(&r, b.as_ptr() as usize, 2);
        let (big, zero) = r.map_reporting_zero(16 * PAGE, PAGE).unwrap();
        assert!(!zero, "old pages were moved in");
        let seen = r.retained();
        assert_eq!(seen.gathered_bytes, 6 * PAGE);
        assert_eq!((seen.dirty_bytes, seen.runs), (0, 0));
        assert_eq!(r.mapped_bytes(), 17 * PAGE);
        // SAFETY: the run is ours, 16 pages long.
        let bytes = unsafe { core::slice::from_raw_parts(big.as_ptr(), 16 * PAGE) };
        assert!(
            bytes[..4 * PAGE].iter().all(|&x| x == 0xA),
            "largest piece first"
        );
        assert!(bytes[4 * PAGE..6 * PAGE].iter().all(|&x| x == 0xB));
        assert!(bytes[6 * PAGE..].iter().all(|&x| x == 0));
        r.check().unwrap();
        unmap(&r, big.as_ptr() as usize, 16);
        unmap(&r, gap.as_ptr() as usize, 1);
        r.release_all();
        assert_eq!(r.mapped_bytes(), 0);
    }

    #[test]
    fn a_miss_grows_a_dirty_run_in_place_where_the_source_can() {
        let r = layer(64);
        let run = map(&r, 4, 1);
        unmap(&r, run, 4);
        // BufferPages extends into the free pages after the run: only they are new.
        assert_eq!(map(&r, 10, 1), run);
        let seen = r.retained();
        assert_eq!((seen.reused_maps, seen.fresh_maps, seen.runs), (1, 1, 0));
        assert_eq!(r.mapped_bytes(), 10 * PAGE);
        r.check().unwrap();
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            Map { pages: usize, align_shift: u32 },
            Unmap { index: usize, tail_pages: usize },
            Advance { ms: u64 },
            Release,
        }

        /// Operations per case: fewer under Miri, which runs every byte write.
        const MODEL_OPS: usize = if cfg!(miri) { 40 } else { 200 };

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (1usize..24, 0u32..5).prop_map(|(pages, align_shift)| Op::Map { pages, align_shift }),
                4 => (any::<usize>(), 0usize..3).prop_map(|(index, tail_pages)| Op::Unmap { index, tail_pages }),
                1 => (0u64..300).prop_map(|ms| Op::Advance { ms }),
                1 => Just(Op::Release),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: if cfg!(miri) { 2 } else { 64 },
                // No regression files: Miri's isolation has no working directory.
                failure_persistence: None,
                ..ProptestConfig::default()
            })]
            /// Random map/unmap sequences never hand out overlapping or misaligned runs, never
            /// hand out a run that was not given back, and the table stays sound.
            #[test]
            fn runs_never_overlap(ops in proptest::collection::vec(op(), 1..MODEL_OPS), delay_ms in 0u64..200, threshold_pages in 0usize..32) {
                run_model(layer(256), ops, delay_ms, threshold_pages)?;
            }

            /// The same over `mmap`, where misses gather resident pieces with `mremap`.
            #[test]
            #[cfg_attr(miri, ignore)]
            fn runs_never_overlap_over_mmap(ops in proptest::collection::vec(op(), 1..120), delay_ms in 0u64..200, threshold_pages in 0usize..32) {
                run_model(Retained::with_clock(crate::MmapPages::new(), test_clock), ops, delay_ms, threshold_pages)?;
            }
        }

        fn run_model<P: PageSource>(
            r: Retained<P>,
            ops: std::vec::Vec<Op>,
            delay_ms: u64,
            threshold_pages: usize,
        ) -> Result<(), TestCaseError> {
            r.set_purge_delay_ms(delay_ms);
            r.set_purge_threshold_bytes(threshold_pages * PAGE);
            let mut live: std::vec::Vec<(NonNull<u8>, usize, u8)> = std::vec::Vec::new();
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Map { pages, align_shift } => {
                        let align = PAGE << align_shift;
                        if let Ok(run) = r.map(pages * PAGE, align) {
                            let addr = run.as_ptr() as usize;
                            prop_assert_eq!(addr % align, 0);
                            for &(other, len, _) in &live {
                                let other = other.as_ptr() as usize;
                                prop_assert!(
                                    addr + pages * PAGE <= other || other + len <= addr,
                                    "overlap at step {}",
                                    step
                                );
                            }
                            let mark = step as u8;
                            // The first and last byte of every page: runs overlap by whole
                            // pages, and Miri runs every byte written.
                            for page in 0..pages {
                                // SAFETY: both bytes lie in this live run of ours.
                                unsafe {
                                    run.as_ptr().add(page * PAGE).write(mark);
                                    run.as_ptr().add(page * PAGE + PAGE - 1).write(mark);
                                }
                            }
                            live.push((run, pages * PAGE, mark));
                        }
                    }
                    Op::Unmap { index, tail_pages } if !live.is_empty() => {
                        let i = index % live.len();
                        let (addr, len, mark) = live[i];
                        for offset in (0..len).step_by(PAGE).flat_map(|p| [p, p + PAGE - 1]) {
                            // SAFETY: a byte of a live run of ours.
                            let byte = unsafe { addr.as_ptr().add(offset).read() };
                            prop_assert_eq!(byte, mark, "a live run was touched");
                        }
                        let tail = (tail_pages * PAGE).min(len - PAGE);
                        if tail > 0 {
                            // Give back the tail only: the head stays live.
                            // SAFETY: the tail lies inside the live run, unused from now on.
                            unsafe { r.unmap(addr.add(len - tail), tail) };
                            live[i].1 = len - tail;
                        } else {
                            // SAFETY: the whole live run, unused from now on.
                            unsafe { r.unmap(addr, len) };
                            live.swap_remove(i);
                        }
                    }
                    Op::Unmap { .. } => {}
                    Op::Advance { ms } => advance(ms),
                    Op::Release => r.release_retained(),
                }
                prop_assert!(r.check().is_ok(), "{:?}", r.check());
                let live_bytes: usize = live.iter().map(|&(_, len, _)| len).sum();
                let kept = r.retained();
                prop_assert_eq!(
                    r.mapped_bytes(),
                    live_bytes + kept.dirty_bytes + kept.purged_bytes
                );
            }
            for (addr, len, _) in live {
                // SAFETY: as above.
                unsafe { r.unmap(addr, len) };
            }
            r.release_all();
            prop_assert_eq!(r.mapped_bytes(), 0);
            Ok(())
        }
    }
}
