//! Heap profiling in the C library: the `HEAPKIT_PROF*` options, the dump at exit and the
//! exported `heapkit_prof_dump` (declared in `include/heapkit.h`).
//!
//! The profiler is the facade's (`heapkit::prof`): `malloc`'s inline path tests its one
//! flag and, while it is set, sends every request to the cold path, where `HeapKit::alloc`
//! samples; `free` needs nothing, because sampled blocks are large blocks, whose free already
//! takes the cache's uncached path and its hook.

use crate::init::{apply_number_option, env_value, report_ignored, switch_option};
use core::ffi::{c_char, c_int, CStr};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Where to dump at exit (`HEAPKIT_PROF_DUMP`), set once by the constructor.
static DUMP_PATH: std::sync::OnceLock<&'static [u8]> = std::sync::OnceLock::new();

/// Reads the profiling options; called by the library constructor.
pub(crate) fn configure() {
    let default_mean = heapkit::prof::DEFAULT_SAMPLE_MEAN_BYTES;
    apply_number_option(c"HEAPKIT_PROF_SAMPLE_BYTES", default_mean, |mean_bytes| {
        if heapkit::prof::set_sample_mean_bytes(mean_bytes).is_err() {
            report_ignored(
                c"HEAPKIT_PROF_SAMPLE_BYTES",
                b"0",
                "must be at least 1",
                default_mean,
            );
        }
    });
    if !switch_option(c"HEAPKIT_PROF") {
        return;
    }
    if let Some(path) = env_value(c"HEAPKIT_PROF_DUMP") {
        if path.is_empty() {
            report_ignored(
                c"HEAPKIT_PROF_DUMP",
                path,
                "is an empty path",
                "no dump at exit",
            );
        } else if DUMP_PATH.set(path).is_ok() {
            // SAFETY: registering a plain function; it runs once at exit.
            unsafe { libc::atexit(dump_at_exit) };
        }
    }
    heapkit::prof::activate();
    // Every `malloc` now takes the cold path, through `HeapKit::alloc`'s sampler.
    crate::heap::INLINE_LIMIT_BYTES.store(0, core::sync::atomic::Ordering::Relaxed);
}

/// `path` with every `%p` replaced by the process id.
fn expand_pid(path: &[u8]) -> PathBuf {
    // SAFETY: `getpid` has no preconditions.
    let pid = unsafe { libc::getpid() }.to_string();
    let mut out = Vec::with_capacity(path.len() + pid.len());
    let mut rest = path;
    while let Some(at) = rest.windows(2).position(|pair| pair == b"%p") {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(pid.as_bytes());
        rest = &rest[at + 2..];
    }
    out.extend_from_slice(rest);
    PathBuf::from(OsStr::from_bytes(&out))
}

extern "C" fn dump_at_exit() {
    let Some(path) = DUMP_PATH.get() else {
        return;
    };
    let path = expand_pid(path);
    // On a thread of its own: by the time exit handlers run, this thread's thread-local
    // values (the flame-graph writer keeps some) have been destroyed.
    let dumped = std::thread::Builder::new()
        .name("heapkit-prof-dump".into())
        .spawn({
            let path = path.clone();
            move || heapkit::prof::dump_to_file(&path)
        })
        .map_err(std::io::Error::other)
        .and_then(|dumper| {
            dumper
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the dump panicked")))
        });
    if let Err(error) = dumped {
        eprintln!(
            "heapkit: the heap profile could not be written to {}: {error}",
            path.display()
        );
    }
}

/// `heapkit_prof_dump(path)`: writes the in-use profile to `path` (pprof, gzip) and its flame
/// graph to `path` + `".svg"`. 0 on success; -1 with `errno` set on failure or a NULL path.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn heapkit_prof_dump(path: *const c_char) -> c_int {
    if path.is_null() {
        crate::heap::set_errno(libc::EINVAL);
        return -1;
    }
    // SAFETY: the caller promises a NUL-terminated string.
    let path = unsafe { CStr::from_ptr(path) }.to_bytes();
    match heapkit::prof::dump_to_file(&expand_pid(path)) {
        Ok(()) => 0,
        Err(error) => {
            crate::heap::set_errno(error.raw_os_error().unwrap_or(libc::EIO));
            -1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::expand_pid;

    #[test]
    fn percent_p_becomes_the_pid() {
        let pid = std::process::id().to_string();
        assert_eq!(
            expand_pid(b"/tmp/heap.%p.pb.gz"),
            std::path::PathBuf::from(format!("/tmp/heap.{pid}.pb.gz"))
        );
        assert_eq!(expand_pid(b"plain"), std::path::PathBuf::from("plain"));
        assert_eq!(
            expand_pid(b"%p%p"),
            std::path::PathBuf::from(format!("{pid}{pid}"))
        );
    }
}
