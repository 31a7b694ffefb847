//! Whether the process has one thread: the question glibc's malloc asks (`SINGLE_THREAD_P`)
//! before it takes an arena lock.
//!
//! An uncontended `lock cmpxchg` costs about 5 ns on the machines heapkit is measured on, more
//! than a whole thread-cached malloc+free pair. A program that never starts a second thread pays
//! it for nothing, so [`SpinLock`](crate::SpinLock) skips the atomic read-modify-write while this
//! says the process is single-threaded.
//!
//! On glibc (2.32 or later) the answer is glibc's own `__libc_single_threaded`: non-zero while
//! the process is *definitely* single-threaded. glibc clears it inside `pthread_create`, in the
//! creating thread, before the new thread exists, so a thread that reads non-zero is the only
//! thread there is, and everything a later thread does happens after that thread's creation.
//! Elsewhere (other C libraries, Miri, loom: see [`cfg_glibc!`](crate::cfg_glibc)) the answer
//! is always "maybe not", which keeps every lock atomic. (Without `std` too: glibc is linked
//! whenever the futex's `libc::syscall` is, so the symbol is there.)

/// Whether the calling thread is, right now, the only thread of the process.
///
/// `true` is a promise (no other thread can run until this thread creates one); `false` means
/// "possibly several", never "definitely several".
#[inline]
pub fn process_is_single_threaded() -> bool {
    imp::process_is_single_threaded()
}

crate::cfg_glibc! {
    if {
        mod imp {
            use core::sync::atomic::{AtomicU8, Ordering};

            extern "C" {
                // glibc declares it `char`; `AtomicU8` has the same size and alignment, and
                // reading it atomically keeps the read well defined even while glibc writes it.
                static __libc_single_threaded: AtomicU8;
            }

            #[inline]
            pub fn process_is_single_threaded() -> bool {
                // SAFETY: the symbol is glibc's, defined for exactly this question, of the size
                // and alignment of `AtomicU8`; this only reads it.
                unsafe { __libc_single_threaded.load(Ordering::Relaxed) != 0 }
            }
        }
    } else {
        mod imp {
            #[inline]
            pub fn process_is_single_threaded() -> bool {
                false
            }
        }
    }
}
