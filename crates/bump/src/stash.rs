//! The thread's chunk stash: the last small chunk of each length that a dropped arena gave
//! back on this thread, kept for the next arena made on the same thread.
//!
//! An arena made per request takes its first chunks (4 KiB, then 8 KiB, ...) from the global
//! allocator through [`DefaultChunks`](crate::DefaultChunks) and gives them back when dropped.
//! With glibc each is a `malloc` and a `free` of a few KiB, about 270 instructions a chunk
//! (above its per-thread cache's 1,032 B, so every one goes through `_int_malloc` and
//! `_int_free`): a third of a 64 x 64 B request's instructions. The stash keeps one chunk of
//! each length `DefaultChunks` takes from the global allocator (4, 8, 16 and 32 KiB, so at
//! most 60 KiB per thread), which the next arena on the thread takes back with a thread-local
//! load and store. The memory is the global allocator's either way (glibc keeps freed blocks
//! this small in its heap, under its 128 KiB trim threshold); the stash only keeps them off
//! its free lists. What it holds goes back to the global allocator when the thread exits, or
//! when the thread calls [`release_thread_chunks`].
//!
//! Only with `std` (thread-locals); without it `DefaultChunks` calls the global allocator
//! every time, as before.

use crate::chunk::CHUNK_ALIGN_BYTES;
use crate::global::GLOBAL_CHUNKS;
use crate::source::ChunkSource;
use crate::{FIRST_CHUNK_BYTES, SMALL_CHUNK_MAX_BYTES};
use core::cell::Cell;
use core::ptr::{self, NonNull};

/// Slots in a stash: one per chunk length from `FIRST_CHUNK_BYTES` to `SMALL_CHUNK_MAX_BYTES`,
/// doubling.
const SLOTS: usize = (SMALL_CHUNK_MAX_BYTES / FIRST_CHUNK_BYTES).trailing_zeros() as usize + 1;

const _: () = assert!(SMALL_CHUNK_MAX_BYTES.is_power_of_two());
const _: () = assert!(FIRST_CHUNK_BYTES << (SLOTS - 1) == SMALL_CHUNK_MAX_BYTES);

/// One thread's kept chunks: slot `i` holds a chunk of `FIRST_CHUNK_BYTES << i` bytes aligned
/// to `CHUNK_ALIGN_BYTES`, from the global allocator, or null.
struct Stash {
    chunks: [Cell<*mut u8>; SLOTS],
}

impl Stash {
    /// Gives every kept chunk back to the global allocator; returns their bytes.
    fn release(&self) -> usize {
        let mut released_bytes = 0;
        for (slot, kept) in self.chunks.iter().enumerate() {
            if let Some(chunk) = NonNull::new(kept.replace(ptr::null_mut())) {
                let len_bytes = FIRST_CHUNK_BYTES << slot;
                // SAFETY: a kept chunk came from `GLOBAL_CHUNKS.alloc_chunk(len_bytes,
                // CHUNK_ALIGN_BYTES)` (`keep` files it by those two) and is used by nobody.
                unsafe { GLOBAL_CHUNKS.free_chunk(chunk, len_bytes, CHUNK_ALIGN_BYTES) };
                released_bytes += len_bytes;
            }
        }
        released_bytes
    }
}

impl Drop for Stash {
    fn drop(&mut self) {
        self.release();
    }
}

std::thread_local! {
    static STASH: Stash = const {
        Stash {
            chunks: [const { Cell::new(ptr::null_mut()) }; SLOTS],
        }
    };
}

/// The slot for chunks of `len_bytes` aligned to `align_bytes`, if the stash keeps such chunks.
#[inline]
fn slot_of(len_bytes: usize, align_bytes: usize) -> Option<usize> {
    let kept = align_bytes == CHUNK_ALIGN_BYTES
        && len_bytes.is_power_of_two()
        && (FIRST_CHUNK_BYTES..=SMALL_CHUNK_MAX_BYTES).contains(&len_bytes);
    kept.then(|| (len_bytes / FIRST_CHUNK_BYTES).trailing_zeros() as usize)
}

/// A kept chunk of `len_bytes` aligned to `align_bytes`, taken out of this thread's stash; `None`
/// when it holds none (or the thread's stash is gone: the thread is exiting).
#[inline]
pub(crate) fn take(len_bytes: usize, align_bytes: usize) -> Option<NonNull<u8>> {
    let slot = slot_of(len_bytes, align_bytes)?;
    STASH
        .try_with(|stash| NonNull::new(stash.chunks[slot].replace(ptr::null_mut())))
        .ok()
        .flatten()
}

/// Keeps a chunk of the global allocator in this thread's stash; `false` (the caller frees it)
/// when the stash keeps no chunk of this shape, already holds one, or is gone.
///
/// # Safety
/// `chunk` came from `GLOBAL_CHUNKS.alloc_chunk(len_bytes, align_bytes)` and nothing in it is
/// used afterwards.
#[inline]
pub(crate) unsafe fn keep(chunk: NonNull<u8>, len_bytes: usize, align_bytes: usize) -> bool {
    let Some(slot) = slot_of(len_bytes, align_bytes) else {
        return false;
    };
    STASH
        .try_with(|stash| {
            let kept = &stash.chunks[slot];
            if kept.get().is_null() {
                kept.set(chunk.as_ptr());
                true
            } else {
                false
            }
        })
        .unwrap_or(false)
}

/// Gives the chunks that dropped arenas left in this thread's stash back to the global
/// allocator now, rather than when the thread exits; returns their bytes (at most 60 KiB).
///
/// ```
/// let arena = heapkit_bump::Arena::new();
/// arena.alloc(1u64);
/// drop(arena); // its 4 KiB chunk stays with the thread, for the next arena
/// assert_eq!(heapkit_bump::release_thread_chunks(), 4096);
/// assert_eq!(heapkit_bump::release_thread_chunks(), 0);
/// ```
pub fn release_thread_chunks() -> usize {
    STASH.try_with(Stash::release).unwrap_or(0)
}
