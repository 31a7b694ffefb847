//! Tests of faults that must stop the process (a double free under `checked`, an overwritten
//! free list under `secure`): the test binary re-runs one of its own tests in a child process
//! with an environment variable set, the child commits the fault, and the parent checks how the
//! child died and what it said.
//!
//! ```no_run
//! use heapkit_testkit::child;
//!
//! #[test]
//! fn double_free_aborts() {
//!     const CHILD: &str = "MY_CRATE_DOUBLE_FREE_CHILD";
//!     if child::is_child(CHILD) {
//!         // ... commit the fault; the allocator aborts here ...
//!         unreachable!("the double free must abort");
//!     }
//!     child::assert_aborts_with("double_free_aborts", CHILD, "double free");
//! }
//! ```

use std::process::{Command, ExitStatus};

/// Re-runs this test binary's test `test_name` alone in a child process with `child_env` set,
/// so that the child (which sees the variable, see [`is_child`]) commits the fault. Returns the
/// child's exit status and standard error.
///
/// # Panics
/// If the test binary cannot be started again (a test set-up failure).
fn run(test_name: &str, child_env: &str) -> (ExitStatus, String) {
    let output = Command::new(std::env::current_exe().expect("the test binary's own path"))
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(child_env, "1")
        .output()
        .expect("re-run the test binary as a child");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status, stderr)
}

/// Whether this process is the child [`assert_aborts_with`] started for `child_env`.
pub fn is_child(child_env: &str) -> bool {
    std::env::var_os(child_env).is_some()
}

/// Asserts that a child was killed by `SIGABRT` — an allocator's `abort`, not a clean exit, a
/// panic's exit code or a segmentation fault — and said `message` on standard error.
///
/// # Panics
/// When either does not hold (the test's failure).
fn assert_aborted_with(status: ExitStatus, stderr: &str, message: &str) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "the child did not abort (status {status:?}); stderr: {stderr}"
    );
    assert!(
        stderr.contains(message),
        "expected {message:?} on the child's stderr, got: {stderr}"
    );
}

/// The parent's half of a fault test: re-runs this test binary's test `test_name` alone in a
/// child process with `child_env` set (the child sees it through [`is_child`] and commits the
/// fault), and asserts that the child was killed by `SIGABRT` — an allocator's `abort`, not a
/// clean exit, a panic's exit code or a segmentation fault — after saying `message` on
/// standard error.
///
/// # Panics
/// When the child did not abort saying `message` (the test's failure), or cannot be started.
pub fn assert_aborts_with(test_name: &str, child_env: &str, message: &str) {
    let (status, stderr) = run(test_name, child_env);
    assert_aborted_with(status, &stderr, message);
}
