//! The single-threaded lock shortcut: the process starts with one thread (this test has no
//! harness, so nothing has spawned a thread yet), the lock works without its atomic
//! read-modify-write, and once a second thread exists every lock is atomic again and still
//! excludes.

use heapkit_core::{process_is_single_threaded, Locked};
use std::sync::Arc;

fn main() {
    let glibc = cfg!(all(target_os = "linux", target_env = "gnu", not(miri)));
    assert_eq!(
        process_is_single_threaded(),
        glibc,
        "a harness-free test starts single-threaded on glibc (and 'maybe not' elsewhere)"
    );

    // Taken and released on the shortcut: the value it guards is updated and the lock is free
    // afterwards, and a held lock is seen as held.
    let counter = Arc::new(Locked::new(0_u64));
    for _ in 0..1000 {
        *counter.lock() += 1;
    }
    {
        let guard = counter.lock();
        assert!(counter.raw_lock().is_locked());
        assert!(
            !counter.raw_lock().try_lock(),
            "a held lock must not be taken twice"
        );
        drop(guard);
    }
    assert!(!counter.raw_lock().is_locked());
    assert_eq!(*counter.lock(), 1000);

    // A lock held across the creation of a second thread: the new thread must wait for it. It
    // was taken on the shortcut (a plain store of "held"); within the 20 ms below the waiter
    // spins out, marks it contended and sleeps on the futex, so the release, now on the atomic
    // path because a second thread exists, must see the mark and wake it (or this test hangs).
    let held = counter.lock();
    let other = {
        let counter = Arc::clone(&counter);
        std::thread::spawn(move || {
            for _ in 0..100_000 {
                *counter.lock() += 1;
            }
        })
    };
    assert!(
        !process_is_single_threaded(),
        "a second thread exists, so the answer must not be 'single'"
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(
        *held, 1000,
        "the other thread got in while the lock was held"
    );
    drop(held);
    for _ in 0..100_000 {
        *counter.lock() += 1;
    }
    other.join().unwrap();
    assert_eq!(*counter.lock(), 201_000);
    println!("single_thread: ok");
}
