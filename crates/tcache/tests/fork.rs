//! `reset_slots_after_fork`: in the child of a `fork`, the slots of the parent's other threads
//! are freed, so their magazines can be reclaimed; the forking thread keeps its own.
#![cfg(all(unix, not(miri)))] // fork

mod support;

use heapkit_core::Allocator;
use heapkit_tcache::{BinState, ThreadCache};
use std::alloc::Layout;
use std::sync::mpsc;
use support::Pow2;

const CLASS_64: usize = 2; // Pow2: 16, 32, 64, ...

fn layout() -> Layout {
    Layout::from_size_align(64, 8).unwrap()
}

/// Child exit codes: which expectation failed.
const OK: i32 = 0;
const RECLAIMED_A_LIVE_SLOT: i32 = 10;
const NOTHING_RECLAIMED_AFTER_RESET: i32 = 11;
const LOST_OWN_MAGAZINE: i32 = 12;

/// The child's side: only async-signal-safe-enough work (the test backend takes spin locks no
/// thread held at the fork), and `_exit` so no test-harness code runs twice.
fn in_child(cache: &ThreadCache<Pow2>, mine: Option<BinState>) -> i32 {
    // The other thread's slot is still marked held: nothing to reclaim yet.
    if cache.reclaim_idle() != 0 {
        return RECLAIMED_A_LIVE_SLOT;
    }
    // SAFETY: the child of fork, on its only thread, inside no cache call, before any thread.
    unsafe { heapkit_tcache::reset_slots_after_fork() };
    if cache.reclaim_idle() == 0 {
        return NOTHING_RECLAIMED_AFTER_RESET;
    }
    // Our own slot was kept, so our magazine (with its cached block) is still ours.
    if cache.bin_state(CLASS_64) != mine {
        return LOST_OWN_MAGAZINE;
    }
    OK
}

#[test]
fn the_child_frees_the_slots_of_threads_it_does_not_have() {
    let cache = ThreadCache::new(Pow2::new());
    // This thread: one block cached in its magazine.
    let mine = cache.allocate(layout()).unwrap();
    // SAFETY: a live block, freed once with its layout.
    unsafe { cache.deallocate(mine.cast(), layout()) };
    let mine = cache.bin_state(CLASS_64);
    assert!(mine.is_some_and(|state| state.count >= 1));

    // Another thread caches blocks, then waits (holding its slot) until the fork is done.
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let cache = &cache;
    std::thread::scope(|scope| {
        let helper = scope.spawn(move || {
            let blocks: Vec<_> = (0..10).map(|_| cache.allocate(layout()).unwrap()).collect();
            for b in blocks {
                // SAFETY: live blocks, each freed once with its layout.
                unsafe { cache.deallocate(b.cast(), layout()) };
            }
            ready_tx.send(()).unwrap();
            done_rx.recv().unwrap();
        });
        ready_rx.recv().unwrap();
        // SAFETY: the child only runs `in_child` and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = in_child(cache, mine);
            // SAFETY: leaves the child at once, running no destructor or atexit handler.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just made; `status` is a valid out pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFEXITED(status), "child did not exit: {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), OK, "child's failed check");
        done_tx.send(()).unwrap();
        // An explicit join waits for the thread's TLS destructors (which free its slot); the
        // end of the scope alone does not.
        helper.join().unwrap();
    });
    // In the parent nothing changed: the other thread has exited, so now its magazine is idle.
    assert!(cache.reclaim_idle() > 0);
    assert_eq!(
        cache.bin_state(CLASS_64),
        mine,
        "this thread's bin is untouched"
    );
}
