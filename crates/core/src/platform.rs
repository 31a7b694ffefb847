//! The platforms heapkit specialises for, each named by one `cfg` predicate written here once
//! and used by every crate through a macro that picks between two sets of items:
//!
//! ```text
//!   heapkit_core::cfg_glibc! {              heapkit_core::cfg_initial_exec_tls! {
//!       if { items for glibc }                  if { items for initial-exec TLS }
//!       else { items for everything else }      else { items for everything else }
//!   }                                       }
//! ```
//!
//! - **glibc**: Linux with the GNU C library, run natively (not under Miri, whose interpreter
//!   has none of glibc's symbols, nor in the loom models, which replace threads). Its symbols
//!   (`__libc_single_threaded`, threads.rs) and its surplus of static TLS, which a library
//!   loaded with `dlopen` may use, can be relied on.
//! - **initial-exec TLS**: glibc on x86-64, where heapkit's C library declares the thread-local
//!   words of its fast paths in assembly (initial_exec.rs), because stable Rust cannot choose a
//!   TLS model and a shared library's default one calls `__tls_get_addr` on every access.
//!
//! A predicate is a `cfg`, not a `const`: the items it gates refer to symbols (glibc's, the
//! assembly's) that must not even be named elsewhere. The macros expand in the caller's crate,
//! but every condition here is a target or a global `--cfg` (`miri`, `loom`), the same in every
//! crate of a build, so each crate sees the answer heapkit-core sees.

// The predicate's two answers: the `not(..)` is the condition of the first, negated.

/// Expands the items of its `if` block on glibc (Linux with the GNU C library, not under Miri
/// nor loom: see the module docs), those of its `else` block everywhere else.
#[cfg(all(target_os = "linux", target_env = "gnu", not(miri), not(loom)))]
#[macro_export]
macro_rules! cfg_glibc {
    (if { $($glibc:item)* } else { $($other:item)* }) => {
        $($glibc)*
    };
}

/// Expands the items of its `if` block on glibc (Linux with the GNU C library, not under Miri
/// nor loom: see the module docs), those of its `else` block everywhere else.
#[cfg(not(all(target_os = "linux", target_env = "gnu", not(miri), not(loom))))]
#[macro_export]
macro_rules! cfg_glibc {
    (if { $($glibc:item)* } else { $($other:item)* }) => {
        $($other)*
    };
}

/// Expands the items of its `if` block where heapkit uses the initial-exec TLS model through
/// assembly (glibc on x86-64: [`initial_exec_word!`](crate::initial_exec_word) and
/// [`initial_exec_block!`](crate::initial_exec_block)), those of its `else` block (a
/// `std::thread_local!`) everywhere else.
#[macro_export]
macro_rules! cfg_initial_exec_tls {
    (if { $($initial_exec:item)* } else { $($other:item)* }) => {
        $crate::cfg_glibc! {
            if {
                $(#[cfg(target_arch = "x86_64")] $initial_exec)*
                $(#[cfg(not(target_arch = "x86_64"))] $other)*
            } else {
                $($other)*
            }
        }
    };
}
