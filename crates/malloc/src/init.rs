//! What runs when the library is loaded: read the options, register the fork handlers and, if
//! asked, start the background purger and register the statistics report at exit.
//!
//! The options (documented in the crate's README):
//! - `HEAPKIT_SHOW_STATS=1`: print the program-level statistics to stderr at exit, the pid on
//!   every line (`report.rs`), with the calls of each function (`calls.rs`).
//! - `HEAPKIT_PURGE_DELAY_MS=N`: how long a freed slot's (or a freed chunk's or huge block's)
//!   pages may stay resident.
//! - `HEAPKIT_PURGE_THRESHOLD_BYTES=N`: how many bytes of freed slots (and at least of freed
//!   chunks and huge blocks) may stay resident before the oldest are purged at once.
//! - `HEAPKIT_BACKGROUND_PURGE=1`: start the background purger thread (`purger.rs`).
//! - `HEAPKIT_PROF=1`, `HEAPKIT_PROF_SAMPLE_BYTES=N`, `HEAPKIT_PROF_DUMP=path`: heap profiling
//!   (`prof.rs`).
//! - `HEAPKIT_TRACE=path` (feature `trace`): record every allocation call into `path` (`%p` is
//!   the pid), see `trace.rs`.
//!
//! Nothing here is needed before the first `malloc`: the heap is a `const`-built static. The
//! constructor only adds behaviour on top, so a `malloc` the loader makes before it runs is
//! served like any other.

use crate::heap::HEAP;
use core::ffi::CStr;
use core::fmt::Write;
use heapkit::c_library::CLibraryEntry as _;
use heapkit::pages::clock::{DEFAULT_PURGE_DELAY_MS, DEFAULT_PURGE_THRESHOLD_BYTES};
use heapkit_core::StackMessage;

/// The value of the environment variable `name`, if it is set (read without allocating).
pub(crate) fn env_value(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: `getenv` reads the environment without allocating; the name is NUL-terminated.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: `getenv` returns a NUL-terminated string that lives as long as the environment,
    // which the library constructor does not change.
    Some(unsafe { CStr::from_ptr(value) }.to_bytes())
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

/// Whether the switch `name` is on; a value that is neither on nor off is ignored (off, the
/// default) with a line on stderr that echoes it.
pub(crate) fn switch_option(name: &CStr) -> bool {
    match env_value(name) {
        None => false,
        Some(value) => parse_switch(value).unwrap_or_else(|()| {
            report_ignored(name, value, "is not on (1) or off (0)", "off");
            false
        }),
    }
}

/// Says on stderr that the option `name` was set to `value`, which `why`, and that `default`
/// is used instead.
pub(crate) fn report_ignored(
    name: &CStr,
    value: &[u8],
    why: &str,
    default: impl core::fmt::Display,
) {
    let mut text = StackMessage::new();
    let _ = writeln!(
        text,
        "heapkit: ignoring {}={}: {why}; using the default, {default}",
        name.to_str().unwrap_or("an option"),
        core::str::from_utf8(value).unwrap_or("(not UTF-8)"),
    );
    text.write_to_stderr();
}

/// Why a numeric option's value was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum NumberError {
    /// Empty, or a byte that is not a decimal digit.
    NotDecimal,
    /// Digits only, but more than a `u64` holds.
    OutOfRange,
}

impl NumberError {
    fn why(self) -> &'static str {
        match self {
            NumberError::NotDecimal => "is not a decimal number",
            NumberError::OutOfRange => "is out of range (at most 18446744073709551615)",
        }
    }
}

/// `digits` as a decimal `u64`: an error for an empty string or any other byte
/// (`NotDecimal`), or a number past `u64::MAX` (`OutOfRange`).
fn parse_decimal(digits: &[u8]) -> Result<u64, NumberError> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(NumberError::NotDecimal);
    }
    digits.iter().try_fold(0u64, |value, &byte| {
        value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(byte - b'0')))
            .ok_or(NumberError::OutOfRange)
    })
}

/// Applies the numeric option `name` with `apply`, or says on stderr why its value was
/// ignored and that `default` stays.
pub(crate) fn apply_number_option(
    name: &CStr,
    default: impl core::fmt::Display,
    apply: impl FnOnce(u64),
) {
    let Some(value) = env_value(name) else {
        return;
    };
    match parse_decimal(value) {
        Ok(number) => apply(number),
        Err(error) => report_ignored(name, value, error.why(), default),
    }
}

extern "C" fn print_stats_at_exit() {
    crate::report::print_stats();
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
    apply_number_option(
        c"HEAPKIT_PURGE_DELAY_MS",
        format_args!("{DEFAULT_PURGE_DELAY_MS} ms"),
        |delay_ms| HEAP.set_purge_delay_ms(delay_ms),
    );
    apply_number_option(
        c"HEAPKIT_PURGE_THRESHOLD_BYTES",
        format_args!("{DEFAULT_PURGE_THRESHOLD_BYTES} bytes"),
        |bytes| HEAP.set_purge_threshold_bytes(usize::try_from(bytes).unwrap_or(usize::MAX)),
    );
    // Before anything that may start a thread: counting calls diverts the heap's fast paths,
    // which only a process with one thread can do (`divert.rs`).
    if switch_option(c"HEAPKIT_SHOW_STATS") {
        if !crate::calls::start() {
            report_ignored(
                c"HEAPKIT_SHOW_STATS",
                b"1",
                "calls cannot be counted: the process already runs threads",
                "statistics without call counts",
            );
        }
        // SAFETY: registering a plain function; it runs once at exit.
        unsafe { libc::atexit(print_stats_at_exit) };
    }
    #[cfg(feature = "trace")]
    if let Some(template) = env_value(c"HEAPKIT_TRACE") {
        crate::trace::start(template);
    }
    // Last, with the delay set and no heapkit lock held: `pthread_create` may call `malloc`.
    if switch_option(c"HEAPKIT_BACKGROUND_PURGE") {
        crate::purger::start();
    }
    #[cfg(feature = "prof")]
    crate::prof::configure();
}

/// Runs `on_load` when the dynamic loader (or the C runtime, for static links) initialises the
/// library, before `main`.
#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

#[cfg(test)]
mod tests {
    use super::{parse_decimal, parse_switch, NumberError};

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
        assert_eq!(
            parse_decimal(b"18446744073709551616"),
            Err(NumberError::OutOfRange)
        );
        assert_eq!(
            parse_decimal(b"99999999999999999999999"),
            Err(NumberError::OutOfRange)
        );
        assert_eq!(parse_decimal(b""), Err(NumberError::NotDecimal));
        assert_eq!(parse_decimal(b"10ms"), Err(NumberError::NotDecimal));
        assert_eq!(
            parse_decimal(b"99999999999999999999999x"),
            Err(NumberError::NotDecimal)
        );
        assert_eq!(parse_decimal(b"-1"), Err(NumberError::NotDecimal));
    }
}
