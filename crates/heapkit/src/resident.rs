//! The process's resident and peak resident bytes, as the OS counts them: read without
//! allocating (a stack buffer and raw `open`/`read`), so that an allocator's statistics can
//! include them.

/// The process's resident bytes: the second field of `/proc/self/statm` (pages) times the
/// page size. 0 when the file cannot be read (not Linux, a sandbox, Miri's isolation).
pub fn resident_bytes() -> usize {
    let mut text = [0u8; 128];
    let len_bytes = read_file(c"/proc/self/statm", &mut text);
    resident_pages(&text[..len_bytes]).saturating_mul(heapkit_pages::os_page_size())
}

/// The second decimal field of `statm`'s text: resident pages (0 when missing or malformed).
fn resident_pages(statm: &[u8]) -> usize {
    let mut fields = statm
        .split(|byte| byte.is_ascii_whitespace())
        .filter(|field| !field.is_empty());
    let Some(field) = fields.nth(1) else {
        return 0;
    };
    field
        .iter()
        .try_fold(0usize, |value, &byte| {
            if !byte.is_ascii_digit() {
                return None;
            }
            value.checked_mul(10)?.checked_add(usize::from(byte - b'0'))
        })
        .unwrap_or(0)
}

/// Reads up to `buffer.len()` bytes of the file at `path` (one `read`, enough for `statm`);
/// the count read, 0 on any error.
#[cfg(all(unix, not(miri)))]
fn read_file(path: &core::ffi::CStr, buffer: &mut [u8]) -> usize {
    // SAFETY: a NUL-terminated path; the flags ask for nothing but reading.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return 0;
    }
    // SAFETY: `buffer` is writable for its length; `fd` is open and ours, closed once.
    let read = unsafe {
        let read = libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len());
        libc::close(fd);
        read
    };
    usize::try_from(read).unwrap_or(0)
}

#[cfg(not(all(unix, not(miri))))]
fn read_file(_: &core::ffi::CStr, _: &mut [u8]) -> usize {
    0
}

/// The process's peak resident bytes (`getrusage`'s `ru_maxrss`, which Linux gives in KiB);
/// 0 when unknown.
#[cfg(all(unix, not(miri)))]
pub fn peak_resident_bytes() -> usize {
    let mut usage = core::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a writable `rusage`; `getrusage` fills it or fails.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: zero-initialised, then filled by the successful call.
    let max_kib = unsafe { usage.assume_init() }.ru_maxrss;
    usize::try_from(max_kib).unwrap_or(0).saturating_mul(1024)
}

/// Unknown here: 0.
#[cfg(not(all(unix, not(miri))))]
pub fn peak_resident_bytes() -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_second_field_is_resident_pages() {
        assert_eq!(resident_pages(b"5000 1234 300 10 0 400 0\n"), 1234);
        assert_eq!(resident_pages(b"5000"), 0);
        assert_eq!(resident_pages(b""), 0);
        assert_eq!(resident_pages(b"5000 12x4 3"), 0);
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri's isolation refuses the open")]
    fn this_process_is_resident() {
        assert!(resident_bytes() > 0);
        assert!(peak_resident_bytes() >= resident_bytes() / 2);
    }
}
