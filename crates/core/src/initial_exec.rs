//! Thread-local storage in the *initial-exec* model, on stable Rust: the words heapkit's C
//! library reads on its fast paths (the thread cache's slot and primary magazine, the trace
//! recorder's state), declared in assembly and reached in two or three instructions.
//!
//! Rust has no stable way to choose a TLS model (`#[thread_local]` and `-Z tls-model` are
//! nightly), and a shared library gets the general-dynamic model: every access calls
//! `__tls_get_addr`, about 11 instructions. So the storage is declared with `global_asm!` in
//! `.tdata` (with initial values) or `.tbss` (zeroed), and found through its `@GOTTPOFF` entry,
//! the offset of this thread's copy from the thread pointer — the model glibc, jemalloc and
//! mimalloc use for their own thread caches. In an executable the linker relaxes the GOT load
//! to a constant.
//!
//! ```text
//!   initial_exec_word!   8 bytes in .tdata   read:    mov r, [rip + sym@GOTTPOFF]
//!                                                     mov v, fs:[r]
//!                                            write:   mov r, [rip + sym@GOTTPOFF]
//!                                                     mov fs:[r], v
//!   initial_exec_block!  n bytes in .tbss    address: mov a, fs:[0]
//!                                                     add a, [rip + sym@GOTTPOFF]
//! ```
//!
//! - **Only where [`cfg_initial_exec_tls!`](crate::cfg_initial_exec_tls) says so** (x86-64
//!   glibc): the assembly is x86-64's and the `fs:` thread pointer its TLS ABI; elsewhere the
//!   callers use `std::thread_local!`. Expand these macros inside that macro's `if` block.
//! - **The cost**: the storage lives in the static TLS block, so a library that uses it and is
//!   loaded with `dlopen` takes its size from glibc's surplus static TLS (a few hundred bytes
//!   are reserved for exactly this; glibc only, hence the predicate).
//! - **Symbols**: global inside the link (other codegen units refer to them) but hidden: never
//!   exported from a shared library, never interposed. One per linked copy of the crate that
//!   declares it, so a symbol name must be unique to its crate (`heapkit_<crate>_<what>`).
//! - Each macro declares the storage *and* defines its accessors, so an accessor can only name
//!   storage of the size and alignment it assumes.

/// Declares an 8-byte, 8-aligned thread-local word in the initial-exec model and defines two
/// private functions that read and write the calling thread's copy (see the module docs).
///
/// ```text
/// heapkit_core::initial_exec_word! {
///     symbol: "heapkit_tcache_thread_slot",           // the word's name in the link
///     initial: ".quad {value}" (value = const UNASSIGNED), // every thread's first value
///     read: read_slot_word,                           // fn read_slot_word() -> usize
///     write: write_slot_word,                         // fn write_slot_word(value: usize)
/// }
/// ```
///
/// `initial` is an assembler directive, with `global_asm!` operands in the parentheses (`const`
/// values, `sym` addresses, which the loader relocates before any thread copies `.tdata`).
/// Expand it only inside [`cfg_initial_exec_tls!`](crate::cfg_initial_exec_tls)'s `if` block.
#[macro_export]
macro_rules! initial_exec_word {
    (
        symbol: $symbol:literal,
        initial: $initial:literal ($($operands:tt)*),
        read: $read:ident,
        write: $write:ident $(,)?
    ) => {
        $crate::__initial_exec_storage!(
            ".tdata,\"awT\",@progbits", $symbol, "8", $initial, $($operands)*
        );

        /// This thread's copy of the word (initial-exec TLS: two instructions).
        #[inline(always)]
        fn $read() -> usize {
            let value: usize;
            // SAFETY: reads this thread's copy of the 8-byte, 8-aligned TLS word declared just
            // above, which every thread has from its start (`.tdata`); the GOT entry holds its
            // offset from the thread pointer. `readonly` (not `nomem`) so the compiler re-reads
            // it after any write.
            unsafe {
                ::core::arch::asm!(
                    concat!("mov {offset}, qword ptr [rip + ", $symbol, "@GOTTPOFF]"),
                    "mov {value}, qword ptr fs:[{offset}]",
                    offset = out(reg) _,
                    value = lateout(reg) value,
                    options(nostack, readonly, preserves_flags, pure),
                );
            }
            value
        }

        /// Sets this thread's copy of the word (initial-exec TLS: two instructions).
        #[inline(always)]
        fn $write(value: usize) {
            // SAFETY: writes this thread's own copy of the word (see the reader); nothing else
            // aliases it.
            unsafe {
                ::core::arch::asm!(
                    concat!("mov {offset}, qword ptr [rip + ", $symbol, "@GOTTPOFF]"),
                    "mov qword ptr fs:[{offset}], {value}",
                    offset = out(reg) _,
                    value = in(reg) value,
                    options(nostack, preserves_flags),
                );
            }
        }
    };
}

/// Declares a zeroed, 8-aligned thread-local block of `bytes` bytes in the initial-exec model
/// (`.tbss`) and defines a private function that returns the address of the calling thread's
/// copy (see the module docs).
///
/// ```text
/// heapkit_core::initial_exec_block! {
///     symbol: "heapkit_malloc_trace_state",   // the block's name in the link
///     bytes: THREAD_STATE_BYTES,              // a `const` expression
///     address: state_address,                 // fn state_address() -> usize
/// }
/// ```
///
/// Whatever the caller keeps there must be valid as all zero bits and need no more than 8-byte
/// alignment. Expand it only inside [`cfg_initial_exec_tls!`](crate::cfg_initial_exec_tls)'s
/// `if` block.
#[macro_export]
macro_rules! initial_exec_block {
    (
        symbol: $symbol:literal,
        bytes: $bytes:expr,
        address: $address:ident $(,)?
    ) => {
        $crate::__initial_exec_storage!(
            ".tbss,\"awT\",@nobits", $symbol, "{bytes}", ".zero {bytes}", bytes = const $bytes
        );

        /// The address of this thread's copy of the block (initial-exec TLS: two instructions).
        #[inline(always)]
        fn $address() -> usize {
            let address: usize;
            // SAFETY: `fs:[0]` holds the thread pointer itself (the x86-64 TLS ABI), and the
            // GOT entry the offset of this thread's copy of the block declared just above from
            // it; only computes an address.
            unsafe {
                ::core::arch::asm!(
                    "mov {address}, qword ptr fs:[0]",
                    concat!("add {address}, qword ptr [rip + ", $symbol, "@GOTTPOFF]"),
                    address = out(reg) address,
                    options(nostack, readonly, pure),
                );
            }
            address
        }
    };
}

/// The storage of [`initial_exec_word!`](crate::initial_exec_word) and
/// [`initial_exec_block!`](crate::initial_exec_block): `$symbol`, 8-aligned, of `$size` bytes
/// (assembly: a number or an operand), holding `$contents` (a directive), in `$section` (the
/// arguments of `.pushsection`), global in the link but hidden; `$operands` as `global_asm!`
/// takes them.
#[doc(hidden)]
#[macro_export]
macro_rules! __initial_exec_storage {
    ($section:literal, $symbol:literal, $size:literal, $contents:literal, $($operands:tt)*) => {
        ::core::arch::global_asm!(
            concat!(".pushsection ", $section),
            ".p2align 3",
            concat!(".globl ", $symbol),
            concat!(".hidden ", $symbol),
            concat!(".type ", $symbol, ",@object"),
            concat!(".size ", $symbol, ",", $size),
            concat!($symbol, ":"),
            $contents,
            ".popsection",
            $($operands)*
        );
    };
}
