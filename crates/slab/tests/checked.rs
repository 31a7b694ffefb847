//! With the `checked` feature a bad free aborts the process with a clear message on stderr.
//! Each case re-runs this test binary as a child that commits the bad free.
#![cfg(feature = "checked")]

use core::alloc::Layout;
use heapkit_core::Allocator;
use heapkit_slab::Slab;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

const CHILD_ENV: &str = "HEAPKIT_SLAB_CHECKED_CHILD";

/// Runs `test` in a child process with `CHILD_ENV` set; returns its stderr after checking that
/// it died of SIGABRT.
fn run_child(test: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "child status {:?}",
        out.status
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
#[cfg_attr(miri, ignore)] // spawns a process
fn double_free_aborts_with_a_message() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let slab = Slab::new(heapkit_testkit::test_pages(4 << 20));
        let layout = Layout::new::<u64>();
        let a = slab.allocate(layout).unwrap().cast::<u8>();
        let _b = slab.allocate(layout).unwrap();
        // SAFETY: the second free is the bad input under test; the process aborts there.
        unsafe {
            slab.deallocate(a, layout);
            slab.deallocate(a, layout);
        }
        unreachable!("the double free must abort");
    }
    let stderr = run_child("double_free_aborts_with_a_message");
    assert!(
        stderr.contains("heapkit-slab: double free of a small block at 0x"),
        "{stderr}"
    );
}

#[test]
#[cfg_attr(miri, ignore)] // spawns a process
fn foreign_pointer_aborts_with_a_message() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let slab = Slab::new(heapkit_testkit::test_pages(4 << 20));
        let other = Slab::new(heapkit_testkit::test_pages(4 << 20));
        let layout = Layout::new::<u64>();
        let _own = slab.allocate(layout).unwrap();
        let foreign = other.allocate(layout).unwrap();
        // SAFETY: deliberately the wrong allocator; the process aborts there.
        unsafe { slab.deallocate(foreign.cast(), layout) };
        unreachable!("the foreign free must abort");
    }
    let stderr = run_child("foreign_pointer_aborts_with_a_message");
    assert!(stderr.contains("(foreign pointer) at 0x"), "{stderr}");
}

/// Only `secure` can judge a free of a huge block whose mapping is gone: its chunk map says no
/// slab holds the address, so the header is never read. Without it the read faults (see the
/// README's "Bad input").
#[test]
#[cfg(feature = "secure")]
#[cfg_attr(miri, ignore)] // spawns a process
fn secure_reports_a_double_free_of_a_huge_block() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let slab = Slab::new(heapkit_pages::MmapPages::new());
        let layout = Layout::from_size_align(heapkit_slab::LARGE_MAX_BYTES + 1, 16).unwrap();
        let huge = slab.allocate(layout).unwrap().cast::<u8>();
        // SAFETY: the second free is the bad input under test; the process aborts there.
        unsafe {
            slab.deallocate(huge, layout);
            slab.deallocate(huge, layout);
        }
        unreachable!("the double free must abort");
    }
    let stderr = run_child("secure_reports_a_double_free_of_a_huge_block");
    assert!(
        stderr.contains(
            "no chunk of any Slab holds (foreign pointer, or a huge block freed twice) at 0x"
        ),
        "{stderr}"
    );
}
