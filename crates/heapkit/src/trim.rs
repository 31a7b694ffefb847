//! [`HeapKit::trim`]: give back everything heapkit keeps for reuse — glibc's `malloc_trim`,
//! heapkit-malloc's `heapkit_purge`.

use crate::HeapKit;
use heapkit_core::PageSource;

/// What a [`HeapKit::trim`] gave back.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Cached blocks returned to the slab (this thread's cache, the shelves, exited threads'
    /// caches).
    pub flushed_blocks: usize,
    /// Bytes of free slots purged (their pages given back, the addresses kept).
    pub purged_bytes: usize,
    /// Bytes unmapped (empty chunks, retained runs).
    pub unmapped_bytes: usize,
    /// Dirty bytes of retained runs given back.
    pub retained_dirty_bytes: usize,
}

impl Trimmed {
    /// Whether anything was given back: `malloc_trim`'s 1.
    pub fn released_any(&self) -> bool {
        self.flushed_blocks != 0
            || self.purged_bytes != 0
            || self.unmapped_bytes != 0
            || self.retained_dirty_bytes != 0
    }
}

impl HeapKit {
    /// Gives back what heapkit keeps for reuse: the calling thread's cached blocks, the
    /// depot's shelves and the caches of exited threads go back to the slab; then the slab's
    /// empty slabs are released, its dirty slots purged, its empty chunks unmapped, and the
    /// retaining layer's runs released (`Slab::trim`). Other live threads' caches are theirs
    /// and stay. Takes the locks in turn; never allocates.
    pub fn trim(&self) -> Trimmed {
        let slab = self.cache.backend();
        let (_, purged_before) = slab.dirty_and_purged_bytes();
        let mapped_before = slab.pages().mapped_bytes();
        let retained_dirty_before = slab.pages().retained().dirty_bytes;
        let flushed_blocks = self.flush_thread() + self.cache.drain_depots() + self.reclaim_idle();
        slab.trim();
        let (_, purged_after) = slab.dirty_and_purged_bytes();
        Trimmed {
            flushed_blocks,
            purged_bytes: purged_after.saturating_sub(purged_before),
            unmapped_bytes: mapped_before.saturating_sub(slab.pages().mapped_bytes()),
            retained_dirty_bytes: retained_dirty_before
                .saturating_sub(slab.pages().retained().dirty_bytes),
        }
    }
}
