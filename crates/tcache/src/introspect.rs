//! Looking inside: `check` (this thread's magazine and the primary word), the `checked`
//! feature's free-time tests, the shelves' walk, and the calling thread's bin figures.

use crate::bin::{self, Bin, BinState};
use crate::cache::ThreadCache;
use crate::handover::{self, Idle};
use crate::magazine::{direct_table, empty_magazine, header};
use crate::slot;
use core::ptr::NonNull;
use heapkit_core::{BatchAllocator, Introspect, InvariantError, SpinLock, Stats};

impl<B: BatchAllocator> ThreadCache<B> {
    /// The calling thread's bin of class `class` in this cache: its count, limit and next
    /// refill, in blocks. `None` when the thread has no magazine here yet (or no slot) or
    /// `class` is not one of the backend's classes. Allocates nothing, changes nothing.
    pub fn bin_state(&self, class: usize) -> Option<BinState> {
        let bins = self.current_magazine();
        if bins == empty_magazine() {
            return None;
        }
        // SAFETY: this thread's magazine: its header precedes the bins, and only this thread
        // writes them.
        unsafe {
            if class >= (*header(bins)).class_count as usize {
                return None;
            }
            Some(BinState::of(&*bins.add(class)))
        }
    }

    /// The `checked` feature's double-free and wrong-class tests.
    ///
    /// # Safety
    /// `ptr` is claimed to be a live block of class `class`; `bins` is this thread's magazine or
    /// the empty one.
    #[cfg(feature = "checked")]
    pub(crate) unsafe fn check_free(&self, bins: *mut Bin, ptr: *mut u8, class: usize) {
        // SAFETY: the caller claims `ptr` is live; the magazine is ours.
        unsafe {
            let found = self.backend.class_of_block(NonNull::new_unchecked(ptr));
            if found.is_some() && found != Some(class) {
                heapkit_core::fatal(
                    "heapkit-tcache",
                    "block freed with a layout of another size class",
                    ptr as usize,
                );
            }
            if bin::contains(bins.add(class), ptr) {
                heapkit_core::fatal(
                    "heapkit-tcache",
                    "double free: block is already in the thread cache",
                    ptr as usize,
                );
            }
        }
    }

    /// Checks this thread's magazine: counts match the lists, limits hold, blocks are aligned
    /// and (where the backend can tell) of the bin's class.
    fn check_current_magazine(&self) -> Result<(), InvariantError> {
        let bins = self.current_magazine();
        let word = slot::primary_magazine();
        if self.is_primary() && word != bins && word != empty_magazine() {
            return Err(InvariantError::new(
                "the primary magazine word names another magazine than the table",
                word as usize,
            ));
        }
        if bins == empty_magazine() {
            return Ok(());
        }
        // SAFETY: this thread's magazine; its header precedes the bins.
        let class_count = unsafe { (*header(bins)).class_count } as usize;
        if class_count != self.backend.class_count() {
            return Err(InvariantError::new(
                "magazine class count differs from backend",
                bins as usize,
            ));
        }
        for class in 0..class_count {
            // SAFETY: `class < class_count`; the bin is ours.
            unsafe { self.check_bin(bins.add(class), class)? };
        }
        // SAFETY: the uncached bin follows the class bins.
        let uncached = unsafe { &*bins.add(class_count) };
        if uncached.limit != 0 || uncached.count != 0 || !uncached.head.is_null() {
            return Err(InvariantError::new(
                "the uncached bin holds blocks or has a limit",
                bins as usize,
            ));
        }
        for (index, expected) in self.direct_bins(bins, class_count).enumerate() {
            // SAFETY: the magazine's direct table has DIRECT_LEN entries.
            let entry = unsafe { direct_table(bins).add(index).read() };
            if entry != expected {
                return Err(InvariantError::new(
                    "direct table entry is not its size's bin",
                    entry as usize,
                ));
            }
        }
        Ok(())
    }

    /// How many blocks wait on the shelves for another thread's refill (a snapshot: other
    /// threads push and take meanwhile). They count as live in the backend's figures.
    pub fn shelved_blocks(&self) -> usize {
        let mut blocks = 0;
        self.for_each_shelved(|_, batch_blocks| blocks += batch_blocks);
        blocks
    }

    /// Calls `visit(class, blocks)` for each batch on the shelves (a snapshot).
    fn for_each_shelved(&self, mut visit: impl FnMut(usize, usize)) {
        let class_count = self.backend.class_count();
        for (class, depot) in self.depots.iter().enumerate().take(class_count) {
            depot.for_each(|_, blocks| visit(class, blocks));
        }
    }

    /// Calls `visit(class, blocks)` for the blocks every thread's bin of each class holds in
    /// this cache (threads alive and exited; with `hardened`, each thread's quarantine too),
    /// then for each batch on the shelves. A snapshot
    /// for statistics: the blocks are free for the program and live for the backend. Allocates
    /// nothing, changes nothing a thread sees.
    ///
    /// A free slot's magazine (its thread exited) is read while holding the slot, as
    /// [`reclaim_idle`](Self::reclaim_idle) does, so it cannot be freed meanwhile. A live
    /// thread's bin counts are read as they are being written (word-sized volatile reads: a
    /// count may be a few operations old, never torn). A held slot's magazine cannot be freed
    /// during the scan either: its holder is the slot's thread (which frees no magazine) or a
    /// reclaimer, and every reclaimer of this cache needs the `magazine_frees` lock the scan
    /// holds (a reclaim that finds it taken is left for a later refill).
    pub fn for_each_cached(&self, mut visit: impl FnMut(usize, usize)) {
        self.magazine_frees.lock();
        let _release = Release(&self.magazine_frees);
        let owners = slot::owners();
        for (slot, entry) in self.magazines[..slot::SLOT_COUNT].iter().enumerate() {
            let found = handover::inspect_idle(owners, slot, entry, empty_magazine(), |bins| {
                // SAFETY: holding the slot, no thread uses or frees this magazine.
                unsafe { visit_bins(bins, &mut visit) }
            });
            if let Idle::Busy(bins) = found {
                // SAFETY: the entry named this magazine, so it was live; only a reclaim of this
                // cache frees it, and reclaims wait for `magazine_frees`, held above. Its
                // counts are read with volatile word reads (its thread may be writing them).
                unsafe { visit_bins(bins, &mut visit) };
            }
        }
        self.for_each_shelved(&mut visit);
    }

    /// Magazines in this cache and the bytes they take from the backend (they are live
    /// blocks there, but hold no program data).
    pub fn magazines(&self) -> (usize, usize) {
        let count = self.magazines[..slot::SLOT_COUNT]
            .iter()
            .filter(|entry| entry.load(crate::sync::Ordering::Relaxed) != empty_magazine())
            .count();
        // As the backend counts a magazine: its class's block size when it has one.
        let bytes = Self::magazine_layout(self.backend.class_count()).map_or(0, |layout| {
            self.backend
                .class_of(layout)
                .map_or(layout.size(), |class| self.backend.class_size(class))
        });
        (count, count * bytes)
    }

    /// Bytes of blocks on the shelves (a snapshot, like [`shelved_blocks`](Self::shelved_blocks)),
    /// each counted at its class's size.
    pub fn shelved_bytes(&self) -> usize {
        let mut bytes = 0;
        self.for_each_shelved(|class, blocks| bytes += blocks * self.backend.class_size(class));
        bytes
    }

    /// Bytes of blocks cached in the calling thread's magazine, each counted at its class's
    /// size (0 when it has none).
    pub fn thread_cached_bytes(&self) -> usize {
        let bins = self.current_magazine();
        if bins == empty_magazine() {
            return 0;
        }
        // SAFETY: this thread's magazine: only this thread writes it.
        unsafe { self.magazine_bytes(bins) }
    }

    /// Bytes of blocks cached in the magazines of threads that have exited and that no refill
    /// has given back yet ([`reclaim_exited`](Self::reclaim_exited)), each counted at its
    /// class's size. Live threads' magazines are not read: they change under us. Takes each
    /// idle slot for a moment (a thread attaching meanwhile takes another).
    pub fn idle_cached_bytes(&self) -> usize {
        let owners = slot::owners();
        self.magazines[..slot::SLOT_COUNT]
            .iter()
            .enumerate()
            .map(|(slot, entry)| {
                let found = handover::inspect_idle(owners, slot, entry, empty_magazine(), |bins| {
                    // SAFETY: `inspect_idle` holds the slot: nobody else uses the magazine.
                    unsafe { self.magazine_bytes(bins) }
                });
                match found {
                    Idle::Looked(bytes) => bytes,
                    Idle::Empty | Idle::Busy(_) => 0,
                }
            })
            .sum()
    }

    /// The bytes of a magazine's cached blocks.
    ///
    /// # Safety
    /// `bins` is a magazine of this cache that nobody changes during the call.
    unsafe fn magazine_bytes(&self, bins: *mut Bin) -> usize {
        let mut bytes = 0;
        // SAFETY: forwarded from the caller.
        unsafe {
            visit_bins(bins, &mut |class, blocks| {
                bytes += blocks * self.backend.class_size(class);
            });
        }
        bytes
    }

    /// Walks every batch on the shelves: each is a chain of exactly its length, of blocks the
    /// backend places in its class. `&mut self` proves that no thread pushes or takes
    /// meanwhile (a walk racing a refill would read blocks being handed out).
    pub fn check_depots(&mut self) -> Result<(), InvariantError> {
        for (class, depot) in self.depots.iter().enumerate() {
            let mut result = Ok(());
            depot.for_each(|first, blocks| {
                if result.is_ok() {
                    result = self.check_batch(class, first, blocks);
                }
            });
            result?;
        }
        Ok(())
    }

    fn check_batch(
        &self,
        class: usize,
        first: *mut u8,
        blocks: usize,
    ) -> Result<(), InvariantError> {
        // SAFETY: a shelved chain of cached (live) blocks, which nobody changes while the caller
        // holds `&mut self`.
        unsafe { self.check_list(first, blocks, class, true) }
    }

    /// # Safety
    /// `bin` is a bin of this thread's magazine, of class `class`.
    unsafe fn check_bin(&self, bin: *mut Bin, class: usize) -> Result<(), InvariantError> {
        // SAFETY: the caller owns the bin; every link is a cached (live) block.
        unsafe {
            let (count, limit) = ((*bin).count, (*bin).limit);
            if count > limit as u32 || limit as u32 > bin::BIN_BLOCKS_MAX {
                return Err(InvariantError::new(
                    "bin holds more blocks than its limit",
                    bin as usize,
                ));
            }
            // A bin tolerates a backend that cannot name a block's class (`None`).
            self.check_list((*bin).head, count as usize, class, false)
        }
    }

    /// Walks a list of `count` cached blocks of class `class` (a bin's, or a shelved batch's):
    /// exactly `count` links, each block word-aligned, of the class (or of no class the backend
    /// can name, unless `owner_required`), at least the class's size, and (with `secure`)
    /// carrying a free mark that fits its link — reported here, before `next_of` would stop
    /// the process on it.
    ///
    /// # Safety
    /// `head` starts a list of cached blocks that nobody changes during the call.
    unsafe fn check_list(
        &self,
        head: *mut u8,
        count: usize,
        class: usize,
        owner_required: bool,
    ) -> Result<(), InvariantError> {
        let class_size = self.backend.class_size(class);
        let mut cursor = head;
        let mut seen = 0;
        // SAFETY: forwarded from the caller; every link is a cached (live) block.
        unsafe {
            while !cursor.is_null() {
                if seen == count {
                    return Err(InvariantError::new(
                        "cached list longer than its count",
                        cursor as usize,
                    ));
                }
                if cursor as usize % heapkit_core::WORD_BYTES != 0 {
                    return Err(InvariantError::new(
                        "cached block misaligned",
                        cursor as usize,
                    ));
                }
                let owner = self.backend.class_of_block(NonNull::new_unchecked(cursor));
                if owner != Some(class) && (owner.is_some() || owner_required) {
                    return Err(InvariantError::new(
                        "cached block in a list of another class",
                        cursor as usize,
                    ));
                }
                if self.backend.usable_size(NonNull::new_unchecked(cursor)) < class_size {
                    return Err(InvariantError::new(
                        "cached block smaller than its class",
                        cursor as usize,
                    ));
                }
                if bin::SECURE && !bin::is_marked_free(cursor, bin::secrets()) {
                    return Err(InvariantError::new(
                        "cached block's free mark does not fit its link (overwritten)",
                        cursor as usize,
                    ));
                }
                cursor = bin::next_of(cursor);
                seen += 1;
            }
        }
        if seen != count {
            return Err(InvariantError::new(
                "cached list shorter than its count",
                head as usize,
            ));
        }
        Ok(())
    }
}

impl<B: BatchAllocator + Introspect> Introspect for ThreadCache<B> {
    /// The backend's check, then this thread's magazine (other threads' magazines may be
    /// changing under us, so they are not walked).
    fn check(&self) -> Result<(), InvariantError> {
        self.backend.check()?;
        self.check_current_magazine()
    }

    /// The backend's figures. Blocks cached in magazines count as live there: call
    /// [`flush_thread`](ThreadCache::flush_thread) first for figures without them.
    fn stats(&self) -> Option<Stats> {
        self.backend.stats()
    }
}

/// Calls `visit(class, count)` for every class bin of the magazine `bins` with blocks in it.
///
/// # Safety
/// `bins` is a live magazine (its header precedes the bins).
unsafe fn visit_bins(bins: *mut Bin, visit: &mut impl FnMut(usize, usize)) {
    // SAFETY: forwarded from the caller; the class count never changes after the magazine
    // is made, and each count is one aligned `u32`, read whole.
    unsafe {
        let class_count = (*header(bins)).class_count as usize;
        for class in 0..class_count {
            let count = core::ptr::read_volatile(core::ptr::addr_of!((*bins.add(class)).count));
            if count != 0 {
                visit(class, count as usize);
            }
        }
        // Quarantined blocks are free to the program and live to the backend, as cached ones.
        #[cfg(feature = "hardened")]
        crate::quarantine::for_each(bins, class_count, visit);
    }
}

/// Releases a lock this thread took when dropped (so a visitor that unwinds does not leave it
/// held).
struct Release<'a>(&'a SpinLock);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        // SAFETY: built only right after this thread took the lock; released once, here.
        unsafe { self.0.unlock() };
    }
}
