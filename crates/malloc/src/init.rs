//! What runs when the library is loaded: read the options, register the fork handlers and, if
//! asked, the statistics report at exit.
//!
//! Nothing here is needed before the first `malloc`: the heap is a `const`-built static. The
//! constructor only adds behaviour on top, so a `malloc` the loader makes before it runs is
//! served like any other.

use crate::heap::HEAP;
use core::ffi::CStr;
use core::fmt::Write;
use heapkit_core::{Introspect, StackMessage};

/// Whether the environment variable `name` is set to a value that means "on" (`1`, `y`, `yes`,
/// `true`, `on`).
fn env_flag(name: &CStr) -> bool {
    // SAFETY: `getenv` reads the environment without allocating; the name is NUL-terminated.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    if value.is_null() {
        return false;
    }
    // SAFETY: `getenv` returns a NUL-terminated string that lives as long as the environment.
    let value = unsafe { CStr::from_ptr(value) }.to_bytes();
    matches!(value, b"1" | b"y" | b"yes" | b"true" | b"on")
}

extern "C" fn print_stats_at_exit() {
    let mut text = StackMessage::new();
    let _ = match HEAP.stats() {
        Some(stats) => writeln!(text, "heapkit: {stats}"),
        None => writeln!(text, "heapkit: no statistics"),
    };
    text.write_to_stderr();
}

extern "C" fn before_fork() {
    HEAP.lock_for_fork();
}

extern "C" fn after_fork_in_parent() {
    // SAFETY: `before_fork` took every lock on this thread, and this is the matching release.
    unsafe { HEAP.unlock_after_fork() };
}

extern "C" fn after_fork_in_child() {
    // SAFETY: the child is a copy of the parent at the moment `before_fork` held every lock; the
    // only thread in the child is this one, the one that took them.
    unsafe { HEAP.unlock_after_fork() };
    // The parent's other threads were not copied, so the thread-cache slots they held would
    // stay taken forever: free them (after the unlock, so that reclaiming their magazines can
    // reach the backend).
    // SAFETY: the child of `fork`, on its only thread, inside no allocator call, before it can
    // start a thread: the contract of `reset_slots_after_fork`.
    unsafe { heapkit::tcache::reset_slots_after_fork() };
}

extern "C" fn on_load() {
    // SAFETY: the handlers only take and release the heap's own spin locks; registering them
    // has no other precondition.
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_in_parent),
            Some(after_fork_in_child),
        )
    };
    if env_flag(c"HEAPKIT_SHOW_STATS") {
        // SAFETY: registering a plain function; it runs once at exit.
        unsafe { libc::atexit(print_stats_at_exit) };
    }
}

/// Runs `on_load` when the dynamic loader (or the C runtime, for static links) initialises the
/// library, before `main`.
#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;
