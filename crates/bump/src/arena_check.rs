//! `Introspect` for `Arena`: the walk that checks the chunk list, the spares and the bump
//! pointer against the arena's counters, and its stats.
//!
//! A child module of `arena` (declared there) so that it reads the list directly.

use super::Arena;
use crate::chunk::{self, ChunkHeader, CHUNK_ALIGN_BYTES, HEADER_BYTES};
use crate::{ChunkSource, MAX_CHUNKS, MIN_ALIGN_BYTES};
use core::ptr::NonNull;
use heapkit_core::{is_aligned, Introspect, InvariantError, Stats};

impl<S: ChunkSource> Introspect for Arena<S> {
    fn check(&self) -> Result<(), InvariantError> {
        let mut count: usize = 0;
        let mut bytes: usize = 0;
        let mut retired_bytes: usize = 0;
        let mut next = self.current.get();
        while let Some(header) = next {
            count += 1;
            if count > MAX_CHUNKS {
                return Err(InvariantError::new("chunk list longer than MAX_CHUNKS", 0));
            }
            // SAFETY: the list holds live chunks.
            let h = unsafe { &*header.as_ptr() };
            self.check_chunk(header)?;
            bytes += h.len_bytes;
            if Some(header) != self.current.get() {
                retired_bytes += h.filled_bytes;
            }
            next = h.prev;
        }
        // A chunk both in the list and among the spares would be counted twice, so the byte
        // totals below catch it.
        let spare_bytes = self.check_spares()?;
        self.check_current()?;
        let fail = |what| Err(InvariantError::new(what, self as *const Self as usize));
        if count != self.chunk_count.get() {
            return fail("chunk_count differs from the list length");
        }
        if spare_bytes != self.spare_bytes.get() {
            return fail("spare_bytes differs from the sum of spare chunk lengths");
        }
        if bytes + spare_bytes != self.chunk_bytes.get() {
            return fail("chunk_bytes differs from the sum of chunk lengths");
        }
        if retired_bytes != self.retired_used_bytes.get() {
            return fail("retired_used_bytes differs from the retired chunks' fill levels");
        }
        Ok(())
    }

    fn stats(&self) -> Option<Stats> {
        Some(Stats {
            live_bytes: self.used_bytes(),
            mapped_bytes: self.allocated_bytes(),
            ..Stats::default()
        })
    }
}

impl<S: ChunkSource> Arena<S> {
    /// The spare list is sorted largest first and holds sane chunks; returns their total.
    fn check_spares(&self) -> Result<usize, InvariantError> {
        let mut count: usize = 0;
        let mut bytes: usize = 0;
        let mut previous_len_bytes = usize::MAX;
        let mut next = self.spare.get();
        while let Some(spare) = next {
            count += 1;
            let addr = spare.as_ptr() as usize;
            if count > MAX_CHUNKS {
                return Err(InvariantError::new(
                    "spare list longer than MAX_CHUNKS",
                    addr,
                ));
            }
            self.check_chunk(spare)?;
            // SAFETY: the spare list holds live chunks.
            let h = unsafe { &*spare.as_ptr() };
            if h.len_bytes > previous_len_bytes {
                return Err(InvariantError::new(
                    "spare list not sorted largest first",
                    addr,
                ));
            }
            if h.filled_bytes != 0 {
                return Err(InvariantError::new("spare chunk has a fill level", addr));
            }
            previous_len_bytes = h.len_bytes;
            bytes += h.len_bytes;
            next = h.prev;
        }
        Ok(bytes)
    }

    /// `zero_from` lies in the current chunk, and the first bytes it claims are zero (a
    /// bounded sample: the whole claim can be 64 MiB).
    fn check_zero_from(&self, start: *mut u8, end: *mut u8) -> Result<(), InvariantError> {
        const SAMPLE_BYTES: usize = 256;
        let zero_from = self.zero_from.get();
        if zero_from < start || zero_from > end {
            return Err(InvariantError::new(
                "zero_from outside the current chunk",
                zero_from as usize,
            ));
        }
        let claimed = zero_from.max(self.ptr.get());
        let sample_bytes = (end as usize - claimed as usize).min(SAMPLE_BYTES);
        // SAFETY: `[claimed, claimed + sample_bytes)` lies in the current chunk's data area,
        // which is readable, and holds no block (it is at or above `ptr`).
        let sample = unsafe { core::slice::from_raw_parts(claimed, sample_bytes) };
        match sample.iter().position(|&byte| byte != 0) {
            Some(offset) => Err(InvariantError::new(
                "a byte above zero_from is not zero",
                claimed as usize + offset,
            )),
            None => Ok(()),
        }
    }

    /// One chunk's header is sane.
    fn check_chunk(&self, header: NonNull<ChunkHeader>) -> Result<(), InvariantError> {
        // SAFETY: callers pass live chunks.
        let h = unsafe { &*header.as_ptr() };
        let addr = header.as_ptr() as usize;
        let fail = |what| Err(InvariantError::new(what, addr));
        if !h.align_bytes.is_power_of_two() || h.align_bytes < CHUNK_ALIGN_BYTES {
            return fail("chunk alignment is not a power of two >= CHUNK_ALIGN_BYTES");
        }
        if !is_aligned(addr, h.align_bytes) {
            return fail("chunk is not aligned as recorded");
        }
        if h.len_bytes <= HEADER_BYTES || h.len_bytes % self.source.granule_bytes() != 0 {
            return fail("chunk length is not a granule multiple larger than the header");
        }
        // SAFETY: live chunk.
        if h.filled_bytes > unsafe { chunk::capacity_bytes(header) } {
            return fail("chunk filled beyond its capacity");
        }
        Ok(())
    }

    /// The bump pointer lies in the current chunk and is aligned.
    fn check_current(&self) -> Result<(), InvariantError> {
        let (ptr, end) = (self.ptr.get(), self.end.get());
        let fail = |what| Err(InvariantError::new(what, ptr as usize));
        match self.current.get() {
            None if ptr.is_null() && end.is_null() && self.zero_from.get().is_null() => Ok(()),
            None => fail("no chunk but the bump pointer is set"),
            Some(header) => {
                // SAFETY: `current` is live.
                let (start, chunk_end, filled) = unsafe {
                    (
                        chunk::data_start(header),
                        chunk::end(header),
                        (*header.as_ptr()).filled_bytes,
                    )
                };
                if end != chunk_end {
                    return fail("end is not the current chunk's end");
                }
                if ptr < start || ptr > end {
                    return fail("bump pointer outside the current chunk");
                }
                if !is_aligned(ptr as usize, MIN_ALIGN_BYTES) {
                    return fail("bump pointer not MIN_ALIGN_BYTES-aligned");
                }
                if filled != 0 {
                    return fail("current chunk has a stale fill level");
                }
                self.check_zero_from(start, end)
            }
        }
    }
}
