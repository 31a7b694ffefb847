//! `Arena::with_capacity`: an arena that takes its first chunk up front, sized for a known
//! amount, so the requests that follow make no source call until that much is used.
//!
//! A child module of `arena` (declared there) so that it can install the chunk directly.

use super::Arena;
use crate::cache::DefaultChunks;
use crate::source::ChunkSource;
use crate::MIN_ALIGN_BYTES;
use heapkit_core::AllocError;

impl Arena<DefaultChunks> {
    /// An arena over [`DefaultChunks`] holding one chunk with room for at least
    /// `capacity_bytes` (bumpalo's `Bump::with_capacity`); aborts like `Vec::with_capacity`
    /// when the chunk cannot be had. With 0 it takes nothing, like [`Arena::new`].
    ///
    /// ```
    /// let arena = heapkit_bump::Arena::with_capacity(64 * 1024);
    /// assert!(arena.remaining_chunk_bytes() >= 64 * 1024);
    /// let chunks = arena.chunk_count();
    /// arena.alloc_slice_fill_copy(60 * 1024, 0u8);
    /// assert_eq!(arena.chunk_count(), chunks, "served from the chunk taken up front");
    /// ```
    pub fn with_capacity(capacity_bytes: usize) -> Self {
        match Self::try_with_capacity(capacity_bytes) {
            Ok(arena) => arena,
            Err(AllocError) => crate::typed::fail::<u8>(capacity_bytes),
        }
    }

    /// Like [`with_capacity`](Self::with_capacity), but `AllocError` when the chunk cannot be
    /// had (a capacity past `isize::MAX` included).
    pub fn try_with_capacity(capacity_bytes: usize) -> Result<Self, AllocError> {
        Self::try_with_source_and_capacity(DefaultChunks, capacity_bytes)
    }
}

impl<S: ChunkSource> Arena<S> {
    /// An arena taking chunks from `source` that holds one chunk with room for at least
    /// `capacity_bytes` from the start, or `AllocError` when the source refuses it.
    pub fn try_with_source_and_capacity(
        source: S,
        capacity_bytes: usize,
    ) -> Result<Self, AllocError> {
        let arena = Self::with_source(source);
        // `take_chunk` rounds the size up, which only a `Layout`-sized request survives.
        if capacity_bytes > isize::MAX as usize {
            return Err(AllocError);
        }
        if capacity_bytes > 0 {
            let (header, zeroed) = arena.take_chunk(capacity_bytes, MIN_ALIGN_BYTES)?;
            arena.install(header, zeroed);
        }
        debug_assert!(arena.remaining_chunk_bytes() >= capacity_bytes);
        Ok(arena)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GLOBAL_CHUNKS;
    use heapkit_core::Introspect;

    #[test]
    fn the_first_chunk_holds_the_capacity() {
        for capacity_bytes in [1, 4095, 4096, 100_000, 3 << 20] {
            let arena = Arena::try_with_source_and_capacity(GLOBAL_CHUNKS, capacity_bytes).unwrap();
            assert_eq!(arena.chunk_count(), 1);
            assert!(arena.remaining_chunk_bytes() >= capacity_bytes);
            arena.alloc_slice_fill_copy(capacity_bytes, 7u8);
            assert_eq!(arena.chunk_count(), 1, "capacity {capacity_bytes}");
            arena.check().unwrap();
        }
        assert_eq!(Arena::with_capacity(0).chunk_count(), 0);
    }

    #[test]
    fn an_impossible_capacity_is_an_error() {
        assert!(Arena::try_with_capacity(usize::MAX).is_err());
        assert!(Arena::try_with_capacity(isize::MAX as usize).is_err());
    }
}
