//! Messages that must reach a human from inside an allocator, without allocating.
//!
//! `eprintln!` may allocate (the stderr lock's buffer, `String` formatting for some
//! arguments), and these messages are written from *inside* an allocator, where an allocation
//! would recurse into the very allocator that is failing. So the text is formatted into a fixed
//! stack buffer ([`StackMessage`]) and written to fd 2 with `write(2)`.
//!
//! A double free or a foreign pointer means the heap can no longer be trusted: going on would
//! corrupt memory silently, and unwinding would run destructors on top of a broken heap. The
//! hardened (`checked`) builds of every heapkit crate therefore stop with [`fatal`] or
//! [`abort_with`], the way glibc stops with "free(): double free detected".

use core::fmt;

/// The longest message written, in bytes; longer ones are cut (the start names the problem).
pub const MESSAGE_BYTES_MAX: usize = 512;

/// A `fmt::Write` sink over a fixed stack buffer that truncates instead of failing.
pub struct StackMessage {
    buffer: [u8; MESSAGE_BYTES_MAX],
    len_bytes: usize,
}

impl Default for StackMessage {
    fn default() -> Self {
        Self::new()
    }
}

impl StackMessage {
    /// An empty message.
    pub const fn new() -> Self {
        StackMessage {
            buffer: [0; MESSAGE_BYTES_MAX],
            len_bytes: 0,
        }
    }

    /// The text so far.
    pub fn as_bytes(&self) -> &[u8] {
        debug_assert!(self.len_bytes <= MESSAGE_BYTES_MAX);
        &self.buffer[..self.len_bytes]
    }

    /// Writes the text to standard error.
    pub fn write_to_stderr(&self) {
        write_stderr(self.as_bytes());
    }
}

impl fmt::Write for StackMessage {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room_bytes = MESSAGE_BYTES_MAX - self.len_bytes;
        let take_bytes = text.len().min(room_bytes);
        self.buffer[self.len_bytes..self.len_bytes + take_bytes]
            .copy_from_slice(&text.as_bytes()[..take_bytes]);
        self.len_bytes += take_bytes;
        // Never report an error: a cut message is better than none.
        Ok(())
    }
}

/// Writes `bytes` to stderr, retrying partial writes and `EINTR`; other errors are ignored
/// because there is nowhere left to report them.
pub fn write_stderr(bytes: &[u8]) {
    let mut written_bytes = 0;
    // A bound on the loop: each round writes at least one byte or gives up.
    let mut rounds_left = bytes.len() + 8;
    while written_bytes < bytes.len() && rounds_left > 0 {
        rounds_left -= 1;
        let rest = &bytes[written_bytes..];
        match write_fd2(rest) {
            None => return,
            Some(n) => written_bytes += n,
        }
    }
}

/// One `write(2)` to fd 2: `Some(bytes written)` (0 after `EINTR`, to be retried), or `None`
/// when the write failed for good.
#[cfg(unix)]
fn write_fd2(bytes: &[u8]) -> Option<usize> {
    // SAFETY: `bytes` is a valid, initialised buffer of `bytes.len()` bytes for the call.
    let result = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
    if result > 0 {
        return Some(result as usize);
    }
    if result < 0 && errno() == libc::EINTR {
        // Interrupted before anything was written: the caller tries again.
        return Some(0);
    }
    None
}

#[cfg(not(unix))]
fn write_fd2(_bytes: &[u8]) -> Option<usize> {
    None
}

/// The current thread's `errno` (0 where it cannot be read).
pub fn errno() -> i32 {
    #[cfg(all(target_os = "linux", not(miri)))]
    // SAFETY: `__errno_location` returns this thread's errno slot, valid for the thread's life.
    unsafe {
        *libc::__errno_location()
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    0
}

/// Formats `args` into a stack buffer and writes it to stderr, with a trailing newline.
pub fn report(args: fmt::Arguments<'_>) {
    let mut message = StackMessage::new();
    let _ = fmt::write(&mut message, args);
    let _ = fmt::Write::write_str(&mut message, "\n");
    message.write_to_stderr();
}

/// Reports `args` and aborts the process: never unwinds, never allocates.
#[cold]
#[inline(never)]
pub fn abort_with(args: fmt::Arguments<'_>) -> ! {
    report(args);
    abort()
}

/// Writes `"<origin>: <what> at 0x<addr>"` to standard error and aborts the process.
///
/// For faults that leave the heap untrustworthy (double free, invalid free, a corrupted
/// header). Never allocates, never unwinds.
#[cold]
#[inline(never)]
pub fn fatal(origin: &str, what: &str, addr: usize) -> ! {
    abort_with(format_args!("{origin}: {what} at {addr:#x}"))
}

#[cfg(unix)]
fn abort() -> ! {
    // SAFETY: abort has no preconditions; it does not return.
    unsafe { libc::abort() }
}

#[cfg(not(unix))]
fn abort() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn stack_message_truncates_instead_of_failing() {
        let mut message = StackMessage::new();
        for _ in 0..MESSAGE_BYTES_MAX {
            assert!(message.write_str("ab").is_ok());
        }
        assert_eq!(message.as_bytes().len(), MESSAGE_BYTES_MAX);
        assert!(message.as_bytes().starts_with(b"abab"));
    }

    #[test]
    fn stack_message_formats() {
        let mut message = StackMessage::new();
        let state = "Static";
        write!(
            message,
            "{} bytes in state {state} at {:#x}",
            8, 0xbeefusize
        )
        .unwrap();
        assert_eq!(message.as_bytes(), b"8 bytes in state Static at 0xbeef");
    }
}
