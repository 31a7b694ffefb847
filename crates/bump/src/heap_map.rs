//! `Arena::heap_map`: the arena's chunks one by one, for pictures, tests and debugging.
//!
//! A child module of `arena` (declared there) so that it reads the chunk list directly; it
//! changes nothing and allocates nothing.
//!
//! ```text
//!   heap_map reports the list newest first (the order of its links), the spares last;
//!   `index` numbers the chunks oldest first:
//!   index 0 Retired  [header|used ........|lost]   lost = tail left when the next chunk came
//!   index 1 Retired  [header|used ..............|lost]
//!   index 2 Current  [header|used ....|free      ]   free = room the bump pointer still has
//!   index 3 Spare    [header|free                ]   kept by a reset or rewind for the next
//!                                                    chunk request (largest first)
//! ```

use super::Arena;
use crate::chunk::{self, ChunkHeader, HEADER_BYTES};
use crate::source::ChunkSource;
use crate::MAX_CHUNKS;
use core::ptr::NonNull;

/// What a chunk is to its arena.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ChunkRole {
    /// An older chunk: its fill level is frozen; the tail it did not fill is lost until a
    /// reset or a rewind.
    Retired,
    /// The chunk the bump pointer moves through.
    Current,
    /// A chunk a reset or a rewind gave up, kept (empty) to serve a later chunk request.
    Spare,
}

/// One chunk, as [`Arena::heap_map`] reports it. Sizes only, no address, so a report is the
/// same from one run to the next.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Position in the list, oldest first (0 is the oldest); the spares follow, from index
    /// [`chunk_count`](Arena::chunk_count).
    pub index: usize,
    /// Retired, current or spare.
    pub role: ChunkRole,
    /// The whole chunk, header included (what the source handed out).
    pub len_bytes: usize,
    /// The chunk header at its start.
    pub header_bytes: usize,
    /// Bytes bumped past: blocks and the alignment padding between them.
    pub used_bytes: usize,
    /// The rest of the data area: room left (current), lost tail (retired), all of it (spare).
    pub free_bytes: usize,
}

impl<S: ChunkSource> Arena<S> {
    /// Calls `f` with every chunk the arena holds, newest (the current chunk) first, then the
    /// spare chunks, largest first; `index` numbers them oldest first. One walk of the list,
    /// at most [`MAX_CHUNKS`] chunks; allocates nothing.
    ///
    /// ```
    /// use heapkit_bump::{Arena, ChunkRole};
    /// let arena = Arena::new();
    /// arena.alloc([0u64; 100]);
    /// let mut used_bytes = 0;
    /// arena.heap_map(|chunk| {
    ///     assert_eq!(chunk.role, ChunkRole::Current);
    ///     assert_eq!(chunk.header_bytes + chunk.used_bytes + chunk.free_bytes, chunk.len_bytes);
    ///     used_bytes += chunk.used_bytes;
    /// });
    /// assert_eq!(used_bytes, arena.used_bytes());
    /// ```
    pub fn heap_map(&self, mut f: impl FnMut(&ChunkInfo)) {
        let count = self.chunk_count.get();
        let mut next = self.current.get();
        let mut depth: usize = 0;
        while let Some(header) = next {
            debug_assert!(depth < count && depth < MAX_CHUNKS);
            if depth >= count || depth >= MAX_CHUNKS {
                break; // a corrupt list: `check()` says so; a report must still end
            }
            f(&self.chunk_info(header, count - 1 - depth, false));
            // SAFETY: the list holds live chunks.
            next = unsafe { (*header.as_ptr()).prev };
            depth += 1;
        }
        let mut next = self.spare.get();
        let mut index = count;
        while let Some(spare) = next {
            if index - count >= MAX_CHUNKS {
                break; // as above
            }
            f(&self.chunk_info(spare, index, true));
            // SAFETY: the spare list holds live chunks.
            next = unsafe { (*spare.as_ptr()).prev };
            index += 1;
        }
    }

    /// The report for one live chunk of this arena.
    fn chunk_info(&self, header: NonNull<ChunkHeader>, index: usize, spare: bool) -> ChunkInfo {
        // SAFETY: callers pass live chunks of this arena (the list or the spare).
        let (len_bytes, capacity_bytes, filled_bytes, data_start) = unsafe {
            (
                (*header.as_ptr()).len_bytes,
                chunk::capacity_bytes(header),
                (*header.as_ptr()).filled_bytes,
                chunk::data_start(header) as usize,
            )
        };
        let (role, used_bytes) = if Some(header) == self.current.get() {
            (ChunkRole::Current, self.ptr.get() as usize - data_start)
        } else if spare {
            (ChunkRole::Spare, 0)
        } else {
            (ChunkRole::Retired, filled_bytes)
        };
        debug_assert!(used_bytes <= capacity_bytes);
        ChunkInfo {
            index,
            role,
            len_bytes,
            header_bytes: HEADER_BYTES,
            used_bytes,
            free_bytes: capacity_bytes - used_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapkit_core::Introspect;
    use heapkit_pages::BufferPages;
    use std::vec::Vec;

    fn map(arena: &Arena<BufferPages<'static>>) -> Vec<ChunkInfo> {
        arena.check().unwrap();
        let mut chunks = Vec::new();
        arena.heap_map(|c| chunks.push(*c));
        chunks.sort_by_key(|c| c.index);
        let list: Vec<&ChunkInfo> = chunks
            .iter()
            .filter(|c| c.role != ChunkRole::Spare)
            .collect();
        assert_eq!(list.len(), arena.chunk_count());
        let used: usize = list.iter().map(|c| c.used_bytes).sum();
        assert_eq!(used, arena.used_bytes());
        let held: usize = chunks.iter().map(|c| c.len_bytes).sum();
        assert_eq!(held, arena.allocated_bytes());
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.index, i);
            assert_eq!(c.header_bytes + c.used_bytes + c.free_bytes, c.len_bytes);
        }
        chunks
    }

    #[test]
    fn chunks_are_numbered_oldest_first_with_their_roles() {
        let mut arena = Arena::with_source(BufferPages::owned(256 * 1024, 4096).unwrap());
        assert!(map(&arena).is_empty());
        arena.alloc(1u64);
        let roles = |a: &Arena<_>| map(a).iter().map(|c| c.role).collect::<Vec<_>>();
        assert_eq!(roles(&arena), [ChunkRole::Current]);
        for i in 0..100u32 {
            arena.alloc([i; 16]);
        }
        assert_eq!(roles(&arena), [ChunkRole::Retired, ChunkRole::Current]);
        let first = map(&arena)[0];
        assert_eq!(first.len_bytes, crate::FIRST_CHUNK_BYTES);
        assert!(
            first.free_bytes < 64,
            "a retired chunk loses less than a block"
        );
        let mark = arena.checkpoint();
        for i in 0..200u64 {
            arena.alloc([i; 8]);
        }
        assert_eq!(roles(&arena).len(), 3);
        arena.rewind(mark);
        assert_eq!(
            roles(&arena),
            [ChunkRole::Retired, ChunkRole::Current, ChunkRole::Spare]
        );
        arena.reset();
        let after = map(&arena);
        assert_eq!(
            after.len(),
            3,
            "a reset keeps the chunks for the next round"
        );
        assert_eq!(after[0].role, ChunkRole::Current);
        assert_eq!(after[0].used_bytes, 0);
        assert!(after[1..].iter().all(|c| c.role == ChunkRole::Spare));
        assert!(
            after.windows(2).all(|w| w[0].len_bytes >= w[1].len_bytes),
            "the largest chunk is current, then the spares, largest first"
        );
    }
}
