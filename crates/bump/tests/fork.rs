//! `fork` while another thread is inside the process-wide chunk cache: the child must find the
//! cache's lock free (the `pthread_atfork` handlers of `fork.rs`), not a copy of a lock held by
//! a thread it does not have. Alone in its binary: it forks.
#![cfg(all(unix, not(miri)))] // fork

use heapkit_bump::{Arena, CHUNK_CACHE, SMALL_CHUNK_MAX_BYTES};
use std::alloc::Layout;
use std::sync::mpsc;
use std::time::Duration;

/// A block too long for the global allocator's chunks: its chunk comes from `CHUNK_CACHE`.
fn large() -> Layout {
    Layout::from_size_align(4 * SMALL_CHUNK_MAX_BYTES, 8).unwrap()
}

/// The child's side: an arena that needs a chunk from the cache, then `_exit(0)`. A child that
/// waits on the lock is ended by the alarm (SIGALRM), which the parent sees.
fn in_child() -> ! {
    // SAFETY: alarm has no memory-safety preconditions.
    unsafe { libc::alarm(10) };
    let arena = Arena::new();
    let code = match arena.try_alloc_layout(large()) {
        Ok(_) => 0,
        Err(_) => 1,
    };
    drop(arena);
    // SAFETY: leaves the child at once, running no destructor or atexit handler.
    unsafe { libc::_exit(code) }
}

#[test]
fn a_child_forked_while_another_thread_holds_the_cache_can_use_it() {
    // The first large chunk registers the handlers.
    let arena = Arena::new();
    arena.try_alloc_layout(large()).unwrap();
    drop(arena);

    let (held_tx, held_rx) = mpsc::channel();
    let holder = std::thread::spawn(move || {
        // As a thread inside the cache (taking or giving back a chunk) holds it.
        CHUNK_CACHE.raw_lock().lock();
        held_tx.send(()).unwrap();
        // Long enough that the fork below starts while the lock is held: its prepare handler
        // then waits here. Not an assertion on time: had the fork come later, the child would
        // find the lock free anyway.
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: taken above on this thread.
        unsafe { CHUNK_CACHE.raw_lock().unlock() };
    });
    held_rx.recv().unwrap();
    // SAFETY: the child only runs `in_child`, which `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        in_child();
    }
    let mut status = 0;
    // SAFETY: waits for the child just made; `status` is a valid out pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status),
        "the child did not exit (signal {}): it waited on a cache lock copied held",
        libc::WTERMSIG(status)
    );
    assert_eq!(libc::WEXITSTATUS(status), 0, "the child's arena failed");
    holder.join().unwrap();
}
