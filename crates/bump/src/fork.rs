//! `fork` and the process-wide [`CHUNK_CACHE`]: `pthread_atfork` handlers that take its lock
//! before a `fork` and release it after, in the parent and in the child.
//!
//! Without them, a thread that forks while another thread is inside the cache (taking or
//! giving back a chunk, under the cache's lock) leaves the child a copy of a lock that nobody
//! in the child will ever release: the child's first arena that needs a large chunk waits
//! forever. heapkit-malloc does the same for its heap (`HeapKit::lock_for_fork`), and slab's
//! `lock_all` is the precedent (crates/slab/src/fork.rs).
//!
//! The handlers are registered once, by the first large chunk [`DefaultChunks`] takes from
//! the cache (so a program that never uses the cache registers nothing), or by
//! [`register_chunk_cache_fork_handlers`] for code that uses `&CHUNK_CACHE` directly. The
//! cache's lock is a leaf: nothing takes another lock, or calls `malloc`, while holding it
//! (its page source is `mmap`), so taking it in the prepare handler cannot invert an order.
//!
//! [`DefaultChunks`]: crate::DefaultChunks

use crate::cache::CHUNK_CACHE;
use core::sync::atomic::{AtomicBool, Ordering};

/// Set by the first registration.
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Registers [`CHUNK_CACHE`]'s `pthread_atfork` handlers if no call has yet; cheap afterwards
/// (one load). Returns whether they are registered (false only if `pthread_atfork` failed,
/// which it does only when out of memory; a later call tries again).
///
/// `DefaultChunks` calls it before its first use of the cache; call it yourself before using
/// `&CHUNK_CACHE` as a chunk source from several threads in a program that forks.
pub fn register_chunk_cache_fork_handlers() -> bool {
    if REGISTERED.load(Ordering::Acquire) {
        return true;
    }
    if REGISTERED.swap(true, Ordering::AcqRel) {
        // Another thread registers them; it does so before it touches the cache.
        return true;
    }
    // SAFETY: the three handlers are `extern "C"` functions that live as long as the process,
    // never unwind, and only take or release the cache's lock.
    let status = unsafe {
        libc::pthread_atfork(
            Some(lock_before_fork),
            Some(unlock_after_fork),
            Some(unlock_after_fork),
        )
    };
    if status != 0 {
        REGISTERED.store(false, Ordering::Release);
    }
    status == 0
}

/// The prepare handler: waits for any thread inside the cache to leave, then holds the lock
/// across the `fork`.
extern "C" fn lock_before_fork() {
    CHUNK_CACHE.raw_lock().lock();
}

/// The parent and child handler: releases what [`lock_before_fork`] took.
extern "C" fn unlock_after_fork() {
    // SAFETY: the prepare handler took the lock on this thread (in the child, on the thread
    // that called `fork`, the child's only one); this is the matching release.
    unsafe { CHUNK_CACHE.raw_lock().unlock() };
}
