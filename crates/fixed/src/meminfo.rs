//! How much memory the machine can still give: `MemAvailable` from `/proc/meminfo`.
//!
//! Read with `open`/`read` into a stack buffer, not `std::fs`, so that it works in `no_std`
//! builds and from a program whose global allocator is already sealed.

/// The most bytes of `/proc/meminfo` read; `MemAvailable` is on the third line.
#[cfg(all(target_os = "linux", not(miri)))]
const MEMINFO_BYTES_MAX: usize = 4096;

/// The kernel's estimate of memory available for new allocations without swapping, in bytes
/// (`MemAvailable` in `/proc/meminfo`), or `None` where it cannot be read (not Linux, Miri,
/// or an old kernel).
pub fn mem_available_bytes() -> Option<usize> {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        let mut buffer = [0u8; MEMINFO_BYTES_MAX];
        let len_bytes = read_meminfo(&mut buffer)?;
        parse_mem_available_bytes(&buffer[..len_bytes])
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    {
        None
    }
}

#[cfg(all(target_os = "linux", not(miri)))]
fn read_meminfo(buffer: &mut [u8; MEMINFO_BYTES_MAX]) -> Option<usize> {
    // SAFETY: the path is a NUL-terminated string constant.
    let fd = unsafe { libc::open(c"/proc/meminfo".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut len_bytes = 0;
    // A bound on the loop: each round reads at least one byte or stops.
    while len_bytes < buffer.len() {
        let rest = &mut buffer[len_bytes..];
        // SAFETY: `rest` is a writable buffer of `rest.len()` bytes for the call.
        let result = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
        if result <= 0 {
            break;
        }
        len_bytes += result as usize;
    }
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    Some(len_bytes)
}

/// Finds `MemAvailable:   123456 kB` and returns it in bytes.
#[cfg_attr(miri, allow(dead_code))] // Miri cannot read /proc; the unit test still runs.
fn parse_mem_available_bytes(text: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"MemAvailable:";
    let line = text
        .split(|&b| b == b'\n')
        .find(|line| line.starts_with(KEY))?;
    let mut kib: usize = 0;
    let mut digits = 0;
    for &b in &line[KEY.len()..] {
        match b {
            b' ' | b'\t' if digits == 0 => {}
            b'0'..=b'9' => {
                kib = kib.checked_mul(10)?.checked_add(usize::from(b - b'0'))?;
                digits += 1;
            }
            _ => break,
        }
    }
    if digits == 0 {
        return None;
    }
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_format() {
        let text = b"MemTotal:       24576000 kB\nMemFree:  1 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(parse_mem_available_bytes(text), Some(2048 * 1024));
        assert_eq!(parse_mem_available_bytes(b"MemFree: 1 kB\n"), None);
        assert_eq!(parse_mem_available_bytes(b"MemAvailable: kB\n"), None);
        assert_eq!(
            parse_mem_available_bytes(b"MemAvailable: 99999999999999999999999 kB\n"),
            None
        );
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn reads_this_machine() {
        #[cfg(target_os = "linux")]
        assert!(mem_available_bytes().unwrap() > 0);
    }
}
