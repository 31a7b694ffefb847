//! The background purger (`HEAPKIT_BACKGROUND_PURGE=1`, off by default): one thread that wakes
//! about twice per purge delay and asks the heap for the decay work that is due
//! (`HeapKit::purge_due`), so that a process that stopped calling `malloc` still gives its
//! freed memory back. Without it, purging happens only on the allocator's slow paths.
//!
//! The thread is made with raw `pthread_create`, not `std::thread` (which allocates its name,
//! its `Thread` handle and its result slot through the global allocator — this library),
//! from the library constructor, where no heapkit lock is held. Its loop never allocates: it
//! sleeps with `nanosleep`, reads the delay from an atomic and takes the slab's and the
//! retaining layer's spin locks in their order. Its stack is pthread's own `mmap`, not heap
//! memory. Every signal is blocked in it, so that no signal meant for the program lands on a
//! thread the program does not know.
//!
//! Why it is off by default: a second thread ends glibc's single-threaded shortcut
//! (`heapkit_core::process_is_single_threaded`: every lock then pays its atomic) for the whole
//! process, and some programs count or name their threads. A `fork` child has no purger (only
//! the forking thread is copied, and a child handler of `pthread_atfork` cannot start one:
//! `pthread_create` is not async-signal-safe); the child purges on its slow paths as usual.

use crate::heap::HEAP;
use core::ffi::c_void;
use core::mem::MaybeUninit;
use core::ptr;
use heapkit_core::StackMessage;

/// The shortest sleep between two rounds: a delay of 0 or a few milliseconds would otherwise
/// make the thread spin (the slow paths already purge at once with a delay of 0).
pub const SLEEP_MIN_MS: u64 = 10;

/// The longest sleep between two rounds, so that a delay that was `u64::MAX` (never) or long is
/// seen within a second after it changes.
pub const SLEEP_MAX_MS: u64 = 1000;

/// The purger's stack: its loop is a few frames deep. pthread adds the static TLS and a guard
/// page; should the size be refused, the thread starts with the default stack instead.
const STACK_BYTES: usize = 256 << 10;

const _: () = assert!(SLEEP_MIN_MS <= SLEEP_MAX_MS);
const _: () = assert!(STACK_BYTES >= libc::PTHREAD_STACK_MIN);

/// How long the purger sleeps between rounds for a purge delay of `delay_ms`: half of it, so
/// that a slot freed just after a round is purged at most 1.5 delays after it was freed, within
/// [`SLEEP_MIN_MS`, `SLEEP_MAX_MS`].
pub const fn sleep_ms(delay_ms: u64) -> u64 {
    let half_ms = delay_ms / 2;
    if half_ms < SLEEP_MIN_MS {
        SLEEP_MIN_MS
    } else if half_ms > SLEEP_MAX_MS {
        SLEEP_MAX_MS
    } else {
        half_ms
    }
}

/// Sleeps `ms` milliseconds (less if a signal interrupts: the next round comes early, which is
/// harmless).
fn sleep_for(ms: u64) {
    let pause = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: `pause` is a valid timespec; the remainder pointer may be null.
    unsafe { libc::nanosleep(&pause, ptr::null_mut()) };
}

/// The purger thread's body: sleep, then purge what is due, forever (the thread ends with the
/// process).
extern "C" fn purge_loop(_: *mut c_void) -> *mut c_void {
    // SAFETY: naming the calling thread; the name is NUL-terminated and under 16 bytes.
    unsafe { libc::pthread_setname_np(libc::pthread_self(), c"heapkit-purge".as_ptr()) };
    loop {
        sleep_for(sleep_ms(HEAP.purge_delay_ms()));
        // Read again after the sleep: with the delay at "never" the thread takes no lock.
        if HEAP.purge_delay_ms() != u64::MAX {
            HEAP.purge_due();
        }
    }
}

/// Starts the purger thread, detached, with every signal blocked; says on stderr if it cannot.
/// Call it once, with no heapkit lock held (`pthread_create` may call `malloc`).
pub fn start() {
    let mut all = MaybeUninit::<libc::sigset_t>::uninit();
    let mut saved = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `sigfillset` initialises `all`; `pthread_sigmask` reads it and writes the
    // calling thread's previous mask into `saved`. The new thread inherits the full mask; the
    // caller's is restored below.
    let masked = unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), saved.as_mut_ptr()) == 0
    };
    let started = spawn(Some(STACK_BYTES)) || spawn(None);
    if masked {
        // SAFETY: `saved` was written by the successful `pthread_sigmask` above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, saved.as_ptr(), ptr::null_mut()) };
    }
    if !started {
        let mut text = StackMessage::new();
        let _ = core::fmt::Write::write_str(
            &mut text,
            "heapkit: HEAPKIT_BACKGROUND_PURGE: cannot start the purger thread\n",
        );
        text.write_to_stderr();
    }
}

/// Creates the detached purger thread with a stack of `stack_bytes` (pthread's default when
/// `None`); whether it started.
fn spawn(stack_bytes: Option<usize>) -> bool {
    let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
    let mut thread = MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: `attr` is initialised by `pthread_attr_init` before any other use and destroyed
    // once; `pthread_create` gets a valid attribute object, a function with the expected ABI
    // that ignores its argument, and a place for the thread id.
    unsafe {
        if libc::pthread_attr_init(attr.as_mut_ptr()) != 0 {
            return false;
        }
        let mut ok =
            libc::pthread_attr_setdetachstate(attr.as_mut_ptr(), libc::PTHREAD_CREATE_DETACHED)
                == 0;
        if let Some(bytes) = stack_bytes {
            ok &= libc::pthread_attr_setstacksize(attr.as_mut_ptr(), bytes) == 0;
        }
        ok = ok
            && libc::pthread_create(
                thread.as_mut_ptr(),
                attr.as_ptr(),
                purge_loop,
                ptr::null_mut(),
            ) == 0;
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sleep_is_half_the_delay_within_bounds() {
        assert_eq!(sleep_ms(0), SLEEP_MIN_MS);
        assert_eq!(sleep_ms(5), SLEEP_MIN_MS);
        assert_eq!(sleep_ms(200), 100);
        assert_eq!(sleep_ms(1000), 500);
        assert_eq!(sleep_ms(60_000), SLEEP_MAX_MS);
        assert_eq!(sleep_ms(u64::MAX), SLEEP_MAX_MS);
    }
}
