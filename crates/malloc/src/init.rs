//! What runs when the library is loaded: read the options, register the fork handlers and, if
//! asked, start the background purger and register the statistics report at exit.
//!
//! The options (documented in the crate's README):
//! - `HEAPKIT_SHOW_STATS=1`: print the heap's statistics to stderr at exit.
//! - `HEAPKIT_PURGE_DELAY_MS=N`: how long a freed slot's (or a freed chunk's or huge block's)
//!   pages may stay resident.
//! - `HEAPKIT_PURGE_THRESHOLD_BYTES=N`: how many bytes of freed slots (and at least of freed
//!   chunks and huge blocks) may stay resident before the oldest are purged at once.
//! - `HEAPKIT_BACKGROUND_PURGE=1`: start the background purger thread (`purger.rs`).
//! - `HEAPKIT_TRACE=path` (feature `trace`): record every allocation call into `path` (`%p` is
//!   the pid), see `trace.rs`.
//!
//! Nothing here is needed before the first `malloc`: the heap is a `const`-built static. The
//! constructor only adds behaviour on top, so a `malloc` the loader makes before it runs is
//! served like any other.

use crate::heap::HEAP;
use core::ffi::CStr;
use core::fmt::Write;
use heapkit_core::{Introspect, StackMessage};

/// The value of the environment variable `name`, if it is set (read without allocating).
fn env_value(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: `getenv` reads the environment without allocating; the name is NUL-terminated.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: `getenv` returns a NUL-terminated string that lives as long as the environment,
    // which the library constructor does not change.
    Some(unsafe { CStr::from_ptr(value) }.to_bytes())
}

/// Whether the environment variable `name` is set to a value that means "on" (`1`, `y`, `yes`,
/// `true`, `on`).
fn env_flag(name: &CStr) -> bool {
    matches!(env_value(name).map(parse_switch), Some(Ok(true)))
}

/// A switch's value: on (`1`, `y`, `yes`, `true`, `on`), off (`0`, `n`, `no`, `false`, `off`,
/// empty), or an error for anything else.
fn parse_switch(value: &[u8]) -> Result<bool, ()> {
    match value {
        b"1" | b"y" | b"yes" | b"true" | b"on" => Ok(true),
        b"0" | b"n" | b"no" | b"false" | b"off" | b"" => Ok(false),
        _ => Err(()),
    }
}

/// Whether the switch `name` is on; a value that is neither on nor off is ignored (off) with a
/// line on stderr.
fn switch_option(name: &CStr) -> bool {
    match env_value(name).map(parse_switch) {
        None => false,
        Some(Ok(on)) => on,
        Some(Err(())) => {
            report_ignored(name, "not 0 or 1");
            false
        }
    }
}

/// Says on stderr that the option `name` was ignored, and `why`.
pub(crate) fn report_ignored(name: &CStr, why: &str) {
    let mut text = StackMessage::new();
    let _ = writeln!(
        text,
        "heapkit: ignoring {}: {why}",
        name.to_str().unwrap_or("an option")
    );
    text.write_to_stderr();
}

/// The value of the environment variable `name` as a decimal number: `None` when it is not
/// set; `Some(Err(()))` when it is set to anything but digits (or overflows a `u64`).
fn env_number(name: &CStr) -> Option<Result<u64, ()>> {
    env_value(name).map(parse_decimal)
}

/// `digits` as a decimal `u64`; an error for an empty string, any other byte, or overflow.
fn parse_decimal(digits: &[u8]) -> Result<u64, ()> {
    if digits.is_empty() {
        return Err(());
    }
    digits.iter().try_fold(0u64, |value, &byte| {
        if !byte.is_ascii_digit() {
            return Err(());
        }
        value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(byte - b'0')))
            .ok_or(())
    })
}

/// Applies the numeric option `name` with `apply`, or says on stderr why it was ignored.
fn apply_number_option(name: &CStr, apply: impl FnOnce(u64)) {
    match env_number(name) {
        None => {}
        Some(Ok(value)) => apply(value),
        Some(Err(())) => report_ignored(name, "not a decimal number"),
    }
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
    #[cfg(feature = "trace")]
    crate::trace::before_fork();
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
    #[cfg(feature = "trace")]
    crate::trace::after_fork_in_child();
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
    // Both govern the slab's free slots and the retaining layer's runs (HeapKit's setters).
    apply_number_option(c"HEAPKIT_PURGE_DELAY_MS", |delay_ms| {
        HEAP.set_purge_delay_ms(delay_ms)
    });
    apply_number_option(c"HEAPKIT_PURGE_THRESHOLD_BYTES", |bytes| {
        HEAP.set_purge_threshold_bytes(usize::try_from(bytes).unwrap_or(usize::MAX))
    });
    #[cfg(feature = "trace")]
    if let Some(template) = env_value(c"HEAPKIT_TRACE") {
        crate::trace::start(template);
    }
    // Last, with the delay set and no heapkit lock held: `pthread_create` may call `malloc`.
    if switch_option(c"HEAPKIT_BACKGROUND_PURGE") {
        crate::purger::start();
    }
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

#[cfg(test)]
mod tests {
    use super::{parse_decimal, parse_switch};

    #[test]
    fn switches_are_on_off_or_refused() {
        assert_eq!(parse_switch(b"1"), Ok(true));
        assert_eq!(parse_switch(b"on"), Ok(true));
        assert_eq!(parse_switch(b"0"), Ok(false));
        assert_eq!(parse_switch(b""), Ok(false));
        assert_eq!(parse_switch(b"2"), Err(()));
        assert_eq!(parse_switch(b"maybe"), Err(()));
    }

    #[test]
    fn decimal_options_parse_digits_only() {
        assert_eq!(parse_decimal(b"0"), Ok(0));
        assert_eq!(parse_decimal(b"1500"), Ok(1500));
        assert_eq!(parse_decimal(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), Err(()), "overflow");
        assert_eq!(parse_decimal(b""), Err(()));
        assert_eq!(parse_decimal(b"10ms"), Err(()));
        assert_eq!(parse_decimal(b"-1"), Err(()));
    }
}
