//! The program-level view of a [`HeapKit`]: what the program holds, what heapkit keeps for it
//! (thread caches, the depot, free slots, retained runs), what the OS gave, and what is
//! resident — with names that say which is which.
//!
//! [`Introspect::stats`] on a `HeapKit` counts the slab's traffic: a block sitting in a thread
//! cache is live there. [`ProgramStats`] subtracts the caches' blocks (and the magazines, which
//! are heapkit's metadata) so that `held_bytes` is what the program has and not freed. Nothing
//! is counted on the fast paths: every figure is derived from counts the layers keep anyway
//! (the slab's per-class live blocks, the bins' counts, the page layers' byte counts), plus
//! two figures the OS keeps for the whole process (resident and peak resident).

use crate::HeapKit;
use core::fmt;
use heapkit_core::{Introspect, PageSource};
use heapkit_slab::CLASS_COUNT;
use heapkit_tcache::CLASS_COUNT_MAX;

const _: () = assert!(CLASS_COUNT <= CLASS_COUNT_MAX, "every slab class has a bin");

/// A snapshot of a [`HeapKit`] seen from the program (see [`HeapKit::program_stats`]).
///
/// Byte figures are block sizes as heapkit hands them out (a small block counts its size
/// class, a large one its slots, a huge one its usable bytes), not the sizes asked for. Other
/// threads may allocate while the snapshot is taken, so sums of fields are close, not exact.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramStats {
    /// Bytes in blocks the program holds: handed out and not freed.
    pub held_bytes: usize,
    /// Blocks the program holds.
    pub held_blocks: usize,
    /// Bytes of free blocks kept in thread caches (of live and exited threads) and on the
    /// depot's shelves, ready for the next allocation; the slab counts them as live.
    pub cached_bytes: usize,
    /// Free blocks in thread caches and on the depot's shelves.
    pub cached_blocks: usize,
    /// Bytes of heapkit's own metadata taken from the slab (the threads' magazines).
    pub metadata_bytes: usize,
    /// Bytes mapped from the OS and not given back: chunks, huge blocks and the runs kept by
    /// the retaining layer.
    pub mapped_bytes: usize,
    /// Of `mapped_bytes`: runs the retaining layer keeps for reuse (dirty and purged).
    pub retained_bytes: usize,
    /// Freed memory whose pages may still be resident: the slab's dirty free slots and the
    /// retaining layer's dirty runs. What a purge (`malloc_trim`) gives back at once.
    pub dirty_bytes: usize,
    /// Bytes of free slots the slab has purged (`madvise`) so far, in total.
    pub purged_bytes: usize,
    /// Huge blocks (one mapping each) the program holds.
    pub huge_blocks: usize,
    /// Their usable bytes (part of `held_bytes`).
    pub huge_bytes: usize,
    /// Bytes mapped for those huge blocks (part of `mapped_bytes`).
    pub huge_mapped_bytes: usize,
    /// The slab's highest live bytes (held and cached together).
    pub peak_slab_bytes: usize,
    /// The whole process's resident bytes (`/proc/self/statm`), heapkit's and everything
    /// else's; 0 where the OS does not say.
    pub resident_bytes: usize,
    /// The whole process's peak resident bytes (`getrusage`'s `ru_maxrss`, at least
    /// `resident_bytes`); 0 where unknown.
    pub peak_resident_bytes: usize,
    /// Blocks the slab handed out (to thread caches in batches, and large blocks); the calls
    /// the caches serve are not counted (a counter would cost every `malloc`).
    pub slab_allocations: usize,
    /// Blocks given back to the slab (flushes in batches, large blocks).
    pub slab_deallocations: usize,
    /// Reallocations the slab served in place or by moving.
    pub slab_reallocations: usize,
    /// Requests refused (out of memory).
    pub failures: usize,
}

/// One size class seen from the program (see [`HeapKit::for_each_class`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassFigures {
    /// The class index.
    pub class: usize,
    /// The class's block size.
    pub block_bytes: usize,
    /// Blocks of the class the program holds (magazines included for their class).
    pub held_blocks: usize,
    /// Free blocks of the class in thread caches and on the depot's shelves.
    pub cached_blocks: usize,
    /// Free blocks in the class's slabs (capacity less live).
    pub free_blocks: usize,
    /// Slabs the class holds.
    pub slabs: usize,
}

impl HeapKit {
    /// The blocks every thread cache and shelf holds, per class (a stack array, no
    /// allocation).
    fn cached_per_class(&self) -> [usize; CLASS_COUNT_MAX] {
        let mut cached = [0; CLASS_COUNT_MAX];
        self.cache.for_each_cached(|class, blocks| {
            if let Some(slot) = cached.get_mut(class) {
                *slot += blocks;
            }
        });
        cached
    }

    /// The program-level figures: what the program holds, what the caches keep, what is
    /// mapped and resident. Takes each lock briefly in turn (never two at once), reads
    /// `/proc/self/statm` with a stack buffer; never allocates.
    ///
    /// ```
    /// use heapkit::core::Allocator;
    /// use std::alloc::Layout;
    ///
    /// let heap = heapkit::HeapKit::new();
    /// let layout = Layout::from_size_align(1000, 8).unwrap();
    /// let block = heap.allocate(layout).unwrap();
    /// assert!(heap.program_stats().held_bytes >= 1000);
    /// unsafe { heap.deallocate(block.cast(), layout) };
    /// let stats = heap.program_stats();
    /// assert_eq!(stats.held_bytes, 0); // the freed block waits in this thread's cache:
    /// assert!(stats.cached_bytes >= 1000);
    /// ```
    pub fn program_stats(&self) -> ProgramStats {
        let slab = self.cache.backend();
        let mut cached_blocks = 0;
        let mut cached_bytes = 0;
        for (class, &blocks) in self.cached_per_class().iter().enumerate() {
            if blocks != 0 {
                cached_blocks += blocks;
                // At the full class size, as the slab counts its live bytes: with `hardened`
                // that includes each block's canary, which its usable size leaves out.
                cached_bytes += blocks
                    * heapkit_slab::CLASS_BYTES
                        .get(class)
                        .map_or(0, |&b| b as usize);
            }
        }
        let (magazines, usable_metadata_bytes) = self.cache.magazines();
        let metadata_bytes = usable_metadata_bytes + magazines * heapkit_slab::CANARY_BYTES;
        let traffic = slab.stats().unwrap_or_default();
        let (slab_dirty_bytes, purged_bytes) = slab.dirty_and_purged_bytes();
        let retained = slab.pages().retained();
        let (huge_blocks, huge_bytes, huge_mapped_bytes) = slab.huge_blocks();
        let resident_bytes = crate::resident::resident_bytes();
        ProgramStats {
            held_bytes: traffic
                .live_bytes
                .saturating_sub(cached_bytes + metadata_bytes),
            held_blocks: traffic
                .live_blocks
                .saturating_sub(cached_blocks + magazines),
            cached_bytes,
            cached_blocks,
            metadata_bytes,
            mapped_bytes: slab.pages().mapped_bytes(),
            retained_bytes: retained.dirty_bytes + retained.purged_bytes,
            dirty_bytes: slab_dirty_bytes + retained.dirty_bytes,
            purged_bytes,
            huge_blocks,
            huge_bytes,
            huge_mapped_bytes,
            peak_slab_bytes: traffic.peak_bytes,
            resident_bytes,
            // Linux updates the high-water mark lazily: it may lag the pages just faulted in.
            peak_resident_bytes: crate::resident::peak_resident_bytes().max(resident_bytes),
            slab_allocations: traffic.allocations,
            slab_deallocations: traffic.deallocations,
            slab_reallocations: traffic.reallocations,
            failures: traffic.failures,
        }
    }

    /// Calls `f` once per size class, in order, with the program's view of it. Takes each
    /// class lock briefly in turn; never allocates.
    pub fn for_each_class(&self, mut f: impl FnMut(&ClassFigures)) {
        let slab = self.cache.backend();
        let cached = self.cached_per_class();
        for (class, &cached_blocks) in cached.iter().enumerate().take(CLASS_COUNT) {
            let figures = slab.class_stats(class);
            f(&ClassFigures {
                class,
                block_bytes: figures.block_bytes,
                held_blocks: figures.live_blocks.saturating_sub(cached_blocks),
                cached_blocks,
                free_blocks: figures.capacity_blocks.saturating_sub(figures.live_blocks),
                slabs: figures.slabs,
            });
        }
    }
}

impl fmt::Display for ProgramStats {
    /// Several lines, each ending in a newline, for a person to read (heapkit-malloc's
    /// `HEAPKIT_SHOW_STATS` and `malloc_stats` print them with the pid in front of each).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "held by the program: {} B in {} blocks ({} huge blocks, {} B mapped for them)",
            self.held_bytes, self.held_blocks, self.huge_blocks, self.huge_mapped_bytes
        )?;
        writeln!(
            f,
            "free in thread caches: {} B in {} blocks; metadata {} B",
            self.cached_bytes, self.cached_blocks, self.metadata_bytes
        )?;
        writeln!(
            f,
            "mapped: {} B ({} B retained for reuse); dirty {} B; purged so far {} B",
            self.mapped_bytes, self.retained_bytes, self.dirty_bytes, self.purged_bytes
        )?;
        writeln!(
            f,
            "resident (process): {} B, peak {} B; slab peak {} B",
            self.resident_bytes, self.peak_resident_bytes, self.peak_slab_bytes
        )?;
        writeln!(
            f,
            "slab traffic: {} blocks out, {} back, {} reallocs, {} failures",
            self.slab_allocations, self.slab_deallocations, self.slab_reallocations, self.failures
        )
    }
}
