//! The table behind a [`Retained`](crate::Retained): its runs, and the bookkeeping of their
//! decay. Best fit with splitting, merging of neighbours in the same state, the oldest-first
//! purge over the allowance, and the release of runs that stayed purged too long — all under
//! the layer's lock, with no allocation (a fixed array of [`RETAINED_RUNS`] entries).

use crate::clock;
use crate::retained::{GATHER_PIECES, RETAINED_RUNS};
use core::ptr::NonNull;
use heapkit_core::PageSource;

/// One retained run: its addresses, and since when it is in its state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) addr: usize,
    /// A pointer whose provenance covers the run (the one it came back through): handed-out
    /// pointers are derived from it, never cast from `addr` (Miri's strict provenance).
    pub(crate) base: *mut u8,
    pub(crate) len_bytes: usize,
    /// When the run became dirty (unmapped) or purged.
    pub(crate) since_ms: u64,
    /// Pages may be resident (not purged since the unmap).
    pub(crate) dirty: bool,
}

impl Run {
    pub(crate) const EMPTY: Run = Run {
        addr: 0,
        base: core::ptr::null_mut(),
        len_bytes: 0,
        since_ms: 0,
        dirty: false,
    };

    pub(crate) const fn end(&self) -> usize {
        self.addr + self.len_bytes
    }

    /// A pointer to `addr` (inside or at the end of the run) with the run's provenance.
    pub(crate) fn ptr(&self, addr: usize) -> NonNull<u8> {
        debug_assert!(addr >= self.addr && addr <= self.end() && addr != 0);
        // SAFETY: a run's addresses are those of live pages, never 0.
        unsafe { NonNull::new_unchecked(self.base.with_addr(addr)) }
    }

    /// Where a block of `len_bytes` aligned to `align_bytes` would start in this run, if it fits.
    pub(crate) fn fit(&self, len_bytes: usize, align_bytes: usize) -> Option<usize> {
        let start = heapkit_core::align_up(self.addr, align_bytes)?;
        let end = start.checked_add(len_bytes)?;
        (end <= self.end()).then_some(start)
    }
}

/// The table behind the lock.
pub(crate) struct Table {
    pub(crate) runs: [Run; RETAINED_RUNS],
    pub(crate) count: usize,
    pub(crate) dirty_bytes: usize,
    pub(crate) purged_bytes: usize,
    /// At most the `since_ms` of every dirty run (`u64::MAX` when none): "nothing is due" in
    /// O(1). It can be older than the oldest dirty run; the next walk makes it exact.
    pub(crate) oldest_dirty_ms: u64,
    /// The same for purged runs.
    pub(crate) oldest_purged_ms: u64,
    pub(crate) reused_maps: usize,
    pub(crate) fresh_maps: usize,
    pub(crate) gathered_bytes: usize,
}

/// When runs decay, read once per call.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Decay {
    pub(crate) now_ms: u64,
    pub(crate) delay_ms: u64,
    pub(crate) release_delay_ms: u64,
    /// Dirty bytes allowed before the oldest are purged.
    pub(crate) allowed_dirty_bytes: usize,
}

impl Table {
    pub(crate) const fn new() -> Self {
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

    pub(crate) fn live(&self) -> &[Run] {
        &self.runs[..self.count]
    }

    pub(crate) fn retained_bytes(&self) -> usize {
        self.dirty_bytes + self.purged_bytes
    }

    /// Adds `run` to the table's figures and slots (which must have room).
    pub(crate) fn push(&mut self, run: Run) {
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
    pub(crate) fn remove(&mut self, index: usize) -> Run {
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
    pub(crate) fn insert<P: PageSource>(&mut self, inner: &P, mut run: Run) {
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
    pub(crate) fn take_fit<P: PageSource>(
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
    pub(crate) fn take_extended<P: PageSource>(
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
    pub(crate) fn gather<P: PageSource>(
        &mut self,
        inner: &P,
        dest: NonNull<u8>,
        len_bytes: usize,
    ) -> usize {
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
    pub(crate) fn decay<P: PageSource>(&mut self, inner: &P, decay: Decay) {
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
    pub(crate) fn purge_run<P: PageSource>(&mut self, inner: &P, index: usize, now_ms: u64) {
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
    pub(crate) fn purge_expired<P: PageSource>(&mut self, inner: &P, decay: Decay) {
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
    pub(crate) fn release_expired<P: PageSource>(&mut self, inner: &P, decay: Decay) {
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
    pub(crate) fn release_all<P: PageSource>(&mut self, inner: &P) -> usize {
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
pub(crate) fn oldest(runs: &[Run], dirty: bool) -> u64 {
    runs.iter()
        .filter(|r| r.dirty == dirty)
        .map(|r| r.since_ms)
        .min()
        .unwrap_or(u64::MAX)
}

/// Gives a run back to the inner source.
pub(crate) fn release<P: PageSource>(inner: &P, run: Run) {
    // SAFETY: a retained run lies within runs of `inner` that nothing uses, page-aligned at
    // both ends (see `Retained`'s requirement on the inner source).
    unsafe { inner.unmap(run.ptr(run.addr), run.len_bytes) };
}
