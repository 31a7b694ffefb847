//! The thread's chunk stash: the first chunk of the last arena dropped on this thread, kept
//! for the next arena made on the same thread.
//!
//! An arena made per request takes its first chunk (4 KiB) from the global allocator through
//! [`DefaultChunks`](crate::DefaultChunks) and gives it back when dropped. With glibc that is
//! a `malloc` and a `free` of 4 KiB, about 270 instructions (above its per-thread cache's
//! 1,032 B, so both go through `_int_malloc` and `_int_free`), for a request that may bump a
//! dozen blocks. The stash keeps that one chunk per thread, which the next arena on the thread
//! takes back with a thread-local load and store. The memory is the global allocator's either
//! way (glibc keeps a freed block this small in its heap, under its 128 KiB trim threshold);
//! the stash only keeps it off its free lists. It goes back to the global allocator when the
//! thread exits, or when the thread calls [`release_thread_chunks`].
//!
//! Only the first chunk: a stash of one chunk of each length up to 32 KiB (4, 8, 16, 32 KiB)
//! ran 30% fewer instructions than this one for 64 x 64 B requests (a 4 and an 8 KiB chunk)
//! but measured slower on this machine, 0.55 s against 0.34-0.42 s of user time for 3 M
//! requests, and slower than the global allocator alone (0.45-0.52 s); the cause was not found
//! (crates/bump/README.md, "An arena per request").
//!
//! Only with `std` (thread-locals); without it `DefaultChunks` calls the global allocator
//! every time, as before.

use crate::chunk::CHUNK_ALIGN_BYTES;
use crate::global::GLOBAL_CHUNKS;
use crate::source::ChunkSource;
use crate::FIRST_CHUNK_BYTES;
use core::cell::Cell;
use core::ptr::{self, NonNull};

/// One thread's kept chunk: a chunk of `FIRST_CHUNK_BYTES` aligned to `CHUNK_ALIGN_BYTES`,
/// from the global allocator, or null.
struct Stash {
    chunk: Cell<*mut u8>,
}

impl Stash {
    /// Gives the kept chunk back to the global allocator; returns its bytes (0 if none).
    fn release(&self) -> usize {
        let Some(chunk) = NonNull::new(self.chunk.replace(ptr::null_mut())) else {
            return 0;
        };
        // SAFETY: a kept chunk came from `GLOBAL_CHUNKS.alloc_chunk(FIRST_CHUNK_BYTES,
        // CHUNK_ALIGN_BYTES)` (`keep` takes no other shape) and is used by nobody.
        unsafe { GLOBAL_CHUNKS.free_chunk(chunk, FIRST_CHUNK_BYTES, CHUNK_ALIGN_BYTES) };
        FIRST_CHUNK_BYTES
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
            chunk: Cell::new(ptr::null_mut()),
        }
    };
}

/// Whether the stash keeps chunks of `len_bytes` aligned to `align_bytes`.
#[inline]
fn is_kept_shape(len_bytes: usize, align_bytes: usize) -> bool {
    len_bytes == FIRST_CHUNK_BYTES && align_bytes == CHUNK_ALIGN_BYTES
}

/// The kept chunk, if the shape is the stash's and it holds one, taken out of this thread's
/// stash (`None` too when the thread's stash is gone: the thread is exiting).
#[inline]
pub(crate) fn take(len_bytes: usize, align_bytes: usize) -> Option<NonNull<u8>> {
    if !is_kept_shape(len_bytes, align_bytes) {
        return None;
    }
    STASH
        .try_with(|stash| NonNull::new(stash.chunk.replace(ptr::null_mut())))
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
    if !is_kept_shape(len_bytes, align_bytes) {
        return false;
    }
    STASH
        .try_with(|stash| {
            let empty = stash.chunk.get().is_null();
            if empty {
                stash.chunk.set(chunk.as_ptr());
            }
            empty
        })
        .unwrap_or(false)
}

/// Gives the chunk a dropped arena left in this thread's stash back to the global allocator
/// now, rather than when the thread exits; returns its bytes (0 or `FIRST_CHUNK_BYTES`).
///
/// ```
/// let arena = heapkit_bump::Arena::new();
/// arena.alloc(1u64);
/// drop(arena); // its first chunk (4 KiB) stays with the thread, for the next arena
/// assert_eq!(heapkit_bump::release_thread_chunks(), 4096);
/// assert_eq!(heapkit_bump::release_thread_chunks(), 0);
/// ```
pub fn release_thread_chunks() -> usize {
    STASH.try_with(Stash::release).unwrap_or(0)
}
