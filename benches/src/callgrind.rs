//! Callgrind's client requests, so that an instruction count covers only the part of a run that
//! is measured. `cargo xtask replay` runs `heapkit-replay` under
//! `valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no
//! --toggle-collect=*COUNTED_MARKER* --toggle-collect=*UNCOUNTED_MARKER*`: loading the trace
//! runs uninstrumented (several times faster than under callgrind's full instrumentation),
//! [`start_instrumentation`] switches instrumentation on just before the replay, and a replay
//! thread counts only while inside its function named with [`COUNTED_MARKER`] and outside
//! one named with [`UNCOUNTED_MARKER`] (waiting for another thread's operation, whose spin
//! count depends on scheduling).
//!
//! A client request is valgrind's "special instruction sequence" (`valgrind/valgrind.h`): four
//! rotations of `rdi` that add up to 128 bits, so a no-op on the real CPU, then
//! `xchg rbx, rbx`; valgrind recognises the sequence and reads the request from the array `rax`
//! points at. The `crabgrind` crate offers the same, but builds through `bindgen` (libclang)
//! and needs valgrind's headers at build time: too heavy for two requests. Off x86-64 the
//! requests do nothing.

/// The text in the name of the function whose instructions are counted (one per replay
/// thread); callgrind matches `--toggle-collect=*replay_counted*` against demangled names.
pub const COUNTED_MARKER: &str = "replay_counted";

/// The text in the name of the function, called inside the counted one, whose instructions
/// are not counted (waiting for another thread).
pub const UNCOUNTED_MARKER: &str = "replay_uncounted";

/// `VG_USERREQ_TOOL_BASE('C', 'T')`: callgrind's requests start here (`valgrind/callgrind.h`).
const CALLGRIND_BASE: u64 = ((b'C' as u64) << 24) | ((b'T' as u64) << 16);

/// `VG_USERREQ__START_INSTRUMENTATION`: the fifth of callgrind's requests.
const START_INSTRUMENTATION: u64 = CALLGRIND_BASE + 4;

const _: () = assert!(START_INSTRUMENTATION == 0x4354_0004);

/// Switches callgrind's instrumentation on (`CALLGRIND_START_INSTRUMENTATION`); natively, and
/// under any other tool, nothing happens.
pub fn start_instrumentation() {
    client_request(START_INSTRUMENTATION);
}

/// Issues a client request without arguments; returns valgrind's answer (0 natively).
#[cfg(target_arch = "x86_64")]
fn client_request(request: u64) -> u64 {
    let args: [u64; 6] = [request, 0, 0, 0, 0, 0];
    let mut result: u64 = 0;
    // SAFETY: the rotations of rdi add up to 128 bits, leaving it as it was, and the exchange
    // of rbx with itself changes nothing: natively the sequence only clobbers the flags (not
    // declared preserved). Under valgrind, valgrind reads the six words at rax (alive for the
    // whole block) and writes its answer into rdx, declared as an output.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            options(nostack),
        );
    }
    result
}

/// Off x86-64: no request (the replay's instructions are then simply not counted apart).
#[cfg(not(target_arch = "x86_64"))]
fn client_request(_request: u64) -> u64 {
    0
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_request_is_harmless_natively() {
        assert_eq!(super::client_request(super::START_INSTRUMENTATION), 0);
        super::start_instrumentation();
    }
}
