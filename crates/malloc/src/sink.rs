//! `Sink`: text formatted on the stack and written out in pieces, never through the heap — for
//! the reports this library prints from inside a program (`malloc_stats`, `malloc_info`,
//! `HEAPKIT_SHOW_STATS`), where formatting with `String` would call the allocator being
//! reported on.

use core::fmt;

/// The stack buffer's size: a piece is written out whenever it fills.
const BUFFER_BYTES: usize = 512;

/// Where a [`Sink`]'s pieces go.
pub enum Out {
    /// Standard error, with `write(2)` (`heapkit_core::write_stderr`).
    Stderr,
    /// A C `FILE *`, with `fwrite` (which may allocate stdio's buffer: a call into this
    /// library from outside it, with no heapkit lock held, as for any other program).
    File(*mut libc::FILE),
}

/// A `fmt::Write` over a stack buffer, flushed to an [`Out`] when full and when dropped. With a
/// line prefix, every line starts with it (the pid, so that the output of child processes
/// can be told apart).
pub struct Sink<'a> {
    out: Out,
    prefix: &'a str,
    at_line_start: bool,
    buffer: [u8; BUFFER_BYTES],
    len_bytes: usize,
    failed: bool,
}

impl<'a> Sink<'a> {
    /// An empty sink to `out`, starting every line with `prefix`.
    pub fn new(out: Out, prefix: &'a str) -> Self {
        Sink {
            out,
            prefix,
            at_line_start: true,
            buffer: [0; BUFFER_BYTES],
            len_bytes: 0,
            failed: false,
        }
    }

    /// Writes out what the buffer holds; whether every write so far succeeded.
    pub fn flush(&mut self) -> bool {
        let pending = &self.buffer[..self.len_bytes];
        if !pending.is_empty() && !self.failed {
            self.failed = !write_out(&self.out, pending);
        }
        self.len_bytes = 0;
        !self.failed
    }

    fn push(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.len_bytes == BUFFER_BYTES {
                self.flush();
            }
            let take = rest.len().min(BUFFER_BYTES - self.len_bytes);
            self.buffer[self.len_bytes..self.len_bytes + take].copy_from_slice(&rest[..take]);
            self.len_bytes += take;
            rest = &rest[take..];
        }
    }
}

impl fmt::Write for Sink<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for line in text.split_inclusive('\n') {
            if self.at_line_start && !self.prefix.is_empty() {
                self.push(self.prefix.as_bytes());
            }
            self.push(line.as_bytes());
            self.at_line_start = line.ends_with('\n');
        }
        Ok(())
    }
}

impl Drop for Sink<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Writes all of `bytes` to `out`; whether it could.
fn write_out(out: &Out, bytes: &[u8]) -> bool {
    match *out {
        Out::Stderr => {
            heapkit_core::write_stderr(bytes);
            true
        }
        // SAFETY: the caller of the C function gave a valid, open `FILE *`; `bytes` is
        // readable for its length.
        Out::File(file) => unsafe {
            libc::fwrite(bytes.as_ptr().cast(), 1, bytes.len(), file) == bytes.len()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    /// Everything written through a temporary `FILE *`, read back.
    fn through_file(prefix: &str, write: impl FnOnce(&mut Sink<'_>)) -> Vec<u8> {
        // SAFETY: `tmpfile` returns an open stream or null (checked); it is read back from
        // its start and closed once.
        unsafe {
            let file = libc::tmpfile();
            assert!(!file.is_null());
            {
                let mut sink = Sink::new(Out::File(file), prefix);
                write(&mut sink);
                assert!(sink.flush());
            }
            libc::rewind(file);
            let mut all = Vec::new();
            let mut piece = [0u8; 256];
            loop {
                let n = libc::fread(piece.as_mut_ptr().cast(), 1, piece.len(), file);
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&piece[..n]);
            }
            libc::fclose(file);
            all
        }
    }

    #[test]
    fn every_line_gets_the_prefix() {
        let text = through_file("p: ", |sink| {
            write!(sink, "one\ntw").unwrap();
            writeln!(sink, "o").unwrap();
            writeln!(sink, "three").unwrap();
        });
        assert_eq!(text, b"p: one\np: two\np: three\n");
    }

    #[test]
    fn text_longer_than_the_buffer_is_written_whole() {
        let text = through_file("", |sink| {
            for i in 0..1000 {
                write!(sink, "{i},").unwrap();
            }
        });
        let expected: String = (0..1000).map(|i| format!("{i},")).collect();
        assert_eq!(text, expected.as_bytes());
    }
}
