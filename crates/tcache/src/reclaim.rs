//! Giving magazines back: the cached blocks and magazines of threads that have exited return
//! to the backend on a later refill of any thread ([`ThreadCache::reclaim_exited`]), or when
//! asked ([`ThreadCache::reclaim_idle`]). The slot protocol that makes a reclaimer the
//! magazine's only user is `handover.rs`'s; the lock that keeps reclaims from freeing a
//! magazine the statistics are reading (`ThreadCache::magazine_frees`) is here.

use crate::cache::ThreadCache;
use crate::handover;
use crate::magazine::empty_magazine;
use crate::slot::{self, SLOT_COUNT};
use crate::sync::Ordering;
use heapkit_core::BatchAllocator;

impl<B: BatchAllocator> ThreadCache<B> {
    /// Gives back the magazines of threads that have exited since this cache last looked
    /// (see [`reclaim_idle`](Self::reclaim_idle)); returns how many blocks went to the backend,
    /// 0 at once (two loads) when no thread has exited.
    ///
    /// Every refill calls it, so a thread's cached blocks return to the backend within one
    /// refill of any other thread after it exits. heapkit's `purge_due` (the background purger)
    /// calls it too, for a process whose remaining threads do not allocate.
    pub fn reclaim_exited(&self) -> usize {
        let exits = slot::exits();
        if self.exits_seen.load(Ordering::Relaxed) == exits {
            return 0;
        }
        self.holding_magazine_frees(|| {
            // Recorded before the scan: an exit counted during it moves the count again, and
            // the next refill scans again. Not recorded when an inspection held the lock: the
            // next refill tries again.
            self.exits_seen.store(exits, Ordering::Relaxed);
            self.reclaim_idle_holding()
        })
    }

    /// Returns the cached blocks of threads that have exited (their slots are free) to the
    /// backend and frees their magazines; returns how many blocks (0 while
    /// [`for_each_cached`](Self::for_each_cached) runs: the next refill tries again).
    ///
    /// A thread's exit cannot do this itself (thread-local storage is not generic, so the exit
    /// hook does not know which caches the thread used); it frees its slot and counts the
    /// exit, and the next refill in this cache runs this ([`reclaim_exited`](Self::reclaim_exited)).
    /// Scans every slot's entry: 256 loads when nothing is idle.
    pub fn reclaim_idle(&self) -> usize {
        self.holding_magazine_frees(|| self.reclaim_idle_holding())
    }

    /// Runs `reclaim` holding [`magazine_frees`](Self::magazine_frees) if it is free right
    /// now; 0 (nothing reclaimed) when an inspection holds it.
    fn holding_magazine_frees(&self, reclaim: impl FnOnce() -> usize) -> usize {
        if !self.magazine_frees.try_lock() {
            return 0;
        }
        let blocks = reclaim();
        // SAFETY: taken by the `try_lock` above, released once.
        unsafe { self.magazine_frees.unlock() };
        blocks
    }

    #[doc(hidden)]
    /// Takes the lock that reclaims and [`for_each_cached`](Self::for_each_cached) hold, for a
    /// `pthread_atfork` prepare handler: a child forked while another thread held it would
    /// find it held forever. Take it before the backend's locks (a reclaim holds it while it
    /// flushes into the backend).
    pub fn lock_magazine_frees(&self) {
        self.magazine_frees.lock();
    }

    #[doc(hidden)]
    /// Releases what [`lock_magazine_frees`](Self::lock_magazine_frees) took.
    ///
    /// # Safety
    /// The calling thread took it with `lock_magazine_frees` — or, in the child of a `fork`,
    /// the thread that called `fork` did, and this is that thread.
    pub unsafe fn unlock_magazine_frees(&self) {
        // SAFETY: forwarded from the caller.
        unsafe { self.magazine_frees.unlock() };
    }

    /// [`reclaim_idle`](Self::reclaim_idle)'s scan; the caller holds `magazine_frees`.
    fn reclaim_idle_holding(&self) -> usize {
        let owners = slot::owners();
        let mut blocks = 0;
        for (slot, entry) in self.magazines[..SLOT_COUNT].iter().enumerate() {
            blocks += handover::reclaim(owners, slot, entry, empty_magazine(), |bins| {
                // SAFETY: `reclaim` holds the slot and has detached the magazine from the
                // table: no thread uses it, and no entry points to it.
                unsafe {
                    let flushed = self.flush_magazine(bins);
                    self.free_magazine(bins);
                    flushed
                }
            });
        }
        blocks
    }
}
