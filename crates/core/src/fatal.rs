//! `fatal`: report a corrupted heap and stop the process, without allocating.
//!
//! A double free or a foreign pointer means the heap can no longer be trusted: going on would
//! corrupt memory silently, and unwinding would run destructors on top of a broken heap. The
//! hardened (`checked`) builds of every heapkit crate therefore stop here, the way glibc stops
//! with "free(): double free detected". The message is assembled in a stack buffer and written
//! with one `write(2)` call: no allocation, no formatting machinery, no locks.

/// The most bytes one message may have; longer messages are cut.
const MESSAGE_BYTES_MAX: usize = 256;

/// A message under construction in a fixed stack buffer.
struct StackMessage {
    bytes: [u8; MESSAGE_BYTES_MAX],
    len: usize,
}

impl StackMessage {
    fn new() -> Self {
        StackMessage {
            bytes: [0; MESSAGE_BYTES_MAX],
            len: 0,
        }
    }

    fn push(&mut self, text: &[u8]) {
        let room = MESSAGE_BYTES_MAX - self.len;
        let take = text.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&text[..take]);
        self.len += take;
    }

    fn push_hex(&mut self, value: usize) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 2 + 2 * core::mem::size_of::<usize>()];
        hex[0] = b'0';
        hex[1] = b'x';
        let nibbles = 2 * core::mem::size_of::<usize>();
        for i in 0..nibbles {
            let shift = 4 * (nibbles - 1 - i);
            hex[2 + i] = DIGITS[(value >> shift) & 0xf];
        }
        self.push(&hex);
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The message `fatal` writes: `"<origin>: <what> at <addr>\n"`.
fn compose(origin: &str, what: &str, addr: usize) -> StackMessage {
    let mut message = StackMessage::new();
    message.push(origin.as_bytes());
    message.push(b": ");
    message.push(what.as_bytes());
    message.push(b" at ");
    message.push_hex(addr);
    message.push(b"\n");
    message
}

/// Writes `"<origin>: <what> at 0x<addr>"` to standard error and aborts the process.
///
/// For faults that leave the heap untrustworthy (double free, invalid free, a corrupted
/// header). Never allocates, never unwinds.
#[cold]
#[inline(never)]
pub fn fatal(origin: &str, what: &str, addr: usize) -> ! {
    let message = compose(origin, what, addr);
    write_stderr(message.as_bytes());
    abort()
}

#[cfg(unix)]
fn write_stderr(bytes: &[u8]) {
    // SAFETY: `bytes` is a valid slice; a short or failed write only shortens the message.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

#[cfg(not(unix))]
fn write_stderr(_bytes: &[u8]) {}

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

    #[test]
    fn the_message_names_origin_fault_and_address() {
        let message = compose("heapkit-slab", "double free", 0x7f00_dead_beef);
        assert_eq!(
            message.as_bytes(),
            b"heapkit-slab: double free at 0x00007f00deadbeef\n"
        );
    }

    #[test]
    fn long_messages_are_cut_not_overflowed() {
        let bytes = [b'x'; 1000];
        let long = core::str::from_utf8(&bytes).unwrap();
        let message = compose("origin", long, 1);
        assert_eq!(message.as_bytes().len(), MESSAGE_BYTES_MAX);
    }
}
