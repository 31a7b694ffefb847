//! Stack capture on the allocation path: up to [`FRAMES_MAX`] return addresses, through the
//! system unwinder's `_Unwind_Backtrace` (libgcc's, which every Rust `std` program and every C
//! program on glibc already links). Release builds here have no frame pointers, so a
//! frame-pointer walk would stop at the first frame; the DWARF unwinder needs none and does not
//! allocate once its tables are set up. The caller holds the sampler's re-entry guard, so a
//! `malloc` the unwinder might make is served unsampled.

use core::ffi::{c_int, c_void};

/// The deepest stack a sample keeps (jemalloc's and tcmalloc's limit too).
pub const FRAMES_MAX: usize = 64;

/// A captured stack: return addresses, innermost first.
#[derive(Clone, Copy, Debug)]
pub struct Stack {
    /// The return addresses; only the first `depth` are meaningful.
    pub frames: [usize; FRAMES_MAX],
    /// How many frames were captured.
    pub depth: usize,
}

impl Stack {
    /// An empty stack.
    pub const fn empty() -> Self {
        Stack {
            frames: [0; FRAMES_MAX],
            depth: 0,
        }
    }

    /// The captured frames, innermost first.
    pub fn frames(&self) -> &[usize] {
        &self.frames[..self.depth]
    }
}

/// `_Unwind_Reason_Code`: go on, and stop.
const URC_NO_REASON: c_int = 0;
const URC_END_OF_STACK: c_int = 5;

extern "C" {
    fn _Unwind_Backtrace(
        trace: extern "C" fn(context: *mut c_void, arg: *mut c_void) -> c_int,
        arg: *mut c_void,
    ) -> c_int;
    fn _Unwind_GetIP(context: *mut c_void) -> usize;
}

/// The walk's state, passed to the callback through its `arg`.
struct Walk {
    stack: Stack,
    skip: usize,
}

extern "C" fn record_frame(context: *mut c_void, arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Walk` that `capture` passed to `_Unwind_Backtrace`, alive and not
    // otherwise borrowed during the walk.
    let walk = unsafe { &mut *arg.cast::<Walk>() };
    // SAFETY: `context` is the unwinder's context for the current frame.
    let ip = unsafe { _Unwind_GetIP(context) };
    if ip == 0 {
        return URC_END_OF_STACK;
    }
    if walk.skip > 0 {
        walk.skip -= 1;
        return URC_NO_REASON;
    }
    walk.stack.frames[walk.stack.depth] = ip;
    walk.stack.depth += 1;
    if walk.stack.depth == FRAMES_MAX {
        URC_END_OF_STACK
    } else {
        URC_NO_REASON
    }
}

/// The calling thread's stack, without the innermost `skip` frames (the profiler's own and the
/// allocator's). Never allocates itself; never unwinds.
#[inline(never)]
pub fn capture(skip: usize) -> Stack {
    let mut walk = Walk {
        stack: Stack::empty(),
        // This function's own frame too.
        skip: skip + 1,
    };
    // SAFETY: the callback only writes into `walk`, which outlives the call; `_Unwind_Backtrace`
    // walks this thread's own stack and returns.
    unsafe { _Unwind_Backtrace(record_frame, (&mut walk as *mut Walk).cast()) };
    walk.stack
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn nested(depth: usize) -> Stack {
        if depth == 0 {
            capture(0)
        } else {
            core::hint::black_box(nested(depth - 1))
        }
    }

    #[test]
    fn captures_the_callers() {
        let stack = nested(5);
        assert!(stack.depth >= 6, "depth {}", stack.depth);
        assert!(stack.frames().iter().all(|&ip| ip != 0));
    }

    #[test]
    fn stops_at_the_limit() {
        let stack = nested(FRAMES_MAX + 10);
        assert_eq!(stack.depth, FRAMES_MAX);
    }
}
