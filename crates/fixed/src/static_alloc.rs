//! `StaticAllocator<A>`: TigerBeetle's `StaticAllocator` state machine around any allocator.

use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use heapkit_core::report::{abort_with, report};
use heapkit_core::{AllocError, Allocator, Introspect, InvariantError, Stats};

/// The allocator's phase.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Startup: every operation is allowed.
    Init = 0,
    /// Steady state: every operation is a violation.
    Static = 1,
    /// Shutdown: deallocation only.
    Deinit = 2,
}

impl State {
    const ALL: [State; 3] = [State::Init, State::Static, State::Deinit];

    fn from_u8(raw: u8) -> State {
        debug_assert!((raw as usize) < State::ALL.len());
        match raw {
            0 => State::Init,
            1 => State::Static,
            _ => State::Deinit,
        }
    }

    /// The state's name, as messages print it.
    pub const fn name(self) -> &'static str {
        match self {
            State::Init => "Init",
            State::Static => "Static",
            State::Deinit => "Deinit",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a violation (an operation the state forbids) does. Either way a message naming the
/// operation, the size and the state goes to stderr first (except with `RefuseSilently`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OnViolation {
    /// Abort the process (TigerBeetle's choice, and the default): the bug is found where it is.
    Abort,
    /// Refuse: allocations return `AllocError` (as `#[global_allocator]`, Rust then calls
    /// `handle_alloc_error`), and a refused deallocation leaks the block.
    Refuse,
    /// Refuse without a message (tests, and callers that count `violations()` themselves).
    RefuseSilently,
}

/// A transition the state machine does not allow.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TransitionError {
    /// The state the allocator was in (and still is).
    pub from: State,
    /// The state that was asked for.
    pub to: State,
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StaticAllocator: no transition from {} to {} (allowed: Init -> Static -> Deinit)",
            self.from, self.to
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TransitionError {}

#[derive(Copy, Clone)]
enum Operation {
    Allocate,
    Grow,
    Shrink,
    Deallocate,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Allocate => "allocate",
            Operation::Grow => "grow",
            Operation::Shrink => "shrink",
            Operation::Deallocate => "deallocate",
        }
    }

    fn allowed_in(self, state: State) -> bool {
        match state {
            State::Init => true,
            State::Static => false,
            State::Deinit => matches!(self, Operation::Deallocate),
        }
    }
}

/// Wraps an allocator with the Init → Static → Deinit state machine.
///
/// ```text
///            seal()                 begin_deinit()
///   Init ─────────────► Static ─────────────────────► Deinit
///   alloc, grow,        every call is a violation       deallocate only
///   shrink, free        (message, then abort/refuse)    (alloc is a violation)
/// ```
///
/// A program allocates everything while `Init`, seals, and from then on *any* call into the
/// allocator is a bug that is caught where it happens, with a message naming the state, instead
/// of a latency spike or an OOM kill later. Installed as `#[global_allocator]` (through
/// [`heapkit_core::GlobalAdapter`]) it proves "no allocation after init" for the whole process.
///
/// The state is one atomic byte read with `Acquire` on every call: a plain load on x86-64, so
/// the wrapper costs a compare and a predictable branch in `Init`.
///
/// ```
/// use heapkit_fixed::{OnViolation, State, StaticAllocator};
/// use heapkit_core::Allocator;
/// # use heapkit_fixed::{Prefault, Region, RegionLayout};
/// # let mut layout = RegionLayout::new();
/// # layout.bump("init", 4096);
/// # let region = Region::new(layout, heapkit_pages::BufferPages::owned(8192, 4096).unwrap(), Prefault::Lazy).unwrap();
/// let a = StaticAllocator::with_policy(&region, OnViolation::RefuseSilently);
/// let layout = core::alloc::Layout::new::<u64>();
/// let block = a.allocate(layout).unwrap(); // Init: allowed
/// a.seal().unwrap();                       // Init -> Static
/// assert!(a.allocate(layout).is_err());    // Static: refused
/// a.begin_deinit().unwrap();               // Static -> Deinit
/// unsafe { a.deallocate(block.cast(), layout) }; // Deinit: freeing is allowed
/// assert_eq!((a.state(), a.violations()), (State::Deinit, 1));
/// ```
#[derive(Debug)]
pub struct StaticAllocator<A> {
    inner: A,
    state: AtomicU8,
    on_violation: OnViolation,
    violations: AtomicUsize,
}

impl<A> StaticAllocator<A> {
    /// Wraps `inner` in state `Init`; violations abort.
    pub const fn new(inner: A) -> Self {
        Self::with_policy(inner, OnViolation::Abort)
    }

    /// Wraps `inner` in state `Init` with the given violation policy.
    pub const fn with_policy(inner: A, on_violation: OnViolation) -> Self {
        StaticAllocator {
            inner,
            state: AtomicU8::new(State::Init as u8),
            on_violation,
            violations: AtomicUsize::new(0),
        }
    }

    /// The current state.
    #[inline(always)]
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// The violation policy.
    pub fn on_violation(&self) -> OnViolation {
        self.on_violation
    }

    /// How many operations were refused so far (with `Abort`, at most the one that aborted).
    pub fn violations(&self) -> usize {
        self.violations.load(Ordering::Relaxed)
    }

    /// The wrapped allocator.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// Moves from `from` to `to` if the allocator is in `from`.
    fn transition(&self, from: State, to: State) -> Result<(), TransitionError> {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|now| TransitionError {
                from: State::from_u8(now),
                to,
            })
    }

    /// `Init` → `Static`: from now on every allocator call is a violation.
    pub fn seal(&self) -> Result<(), TransitionError> {
        self.transition(State::Init, State::Static)
    }

    /// `Static` → `Deinit`: frees are allowed again (for an orderly shutdown), allocations are
    /// still violations.
    pub fn begin_deinit(&self) -> Result<(), TransitionError> {
        self.transition(State::Static, State::Deinit)
    }

    /// Moves to `to` if the state machine allows it from the current state; otherwise nothing
    /// changes. The only legal moves are `Init → Static` and `Static → Deinit`.
    pub fn transition_to(&self, to: State) -> Result<(), TransitionError> {
        match to {
            State::Static => self.seal(),
            State::Deinit => self.begin_deinit(),
            State::Init => Err(TransitionError {
                from: self.state(),
                to,
            }),
        }
    }

    /// Lets `operation` through, or handles the violation (message, count, abort or refuse).
    #[inline(always)]
    fn admit(&self, operation: Operation, layout: Layout) -> Result<(), AllocError> {
        let state = self.state();
        if operation.allowed_in(state) {
            return Ok(());
        }
        self.violate(operation, layout, state);
        Err(AllocError)
    }

    #[cold]
    #[inline(never)]
    fn violate(&self, operation: Operation, layout: Layout, state: State) {
        self.violations.fetch_add(1, Ordering::Relaxed);
        let args = format_args!(
            "heapkit-fixed: StaticAllocator: {} of {} bytes (align {}) in state {}: {}",
            operation.name(),
            layout.size(),
            layout.align(),
            state,
            match state {
                State::Static => "memory is fixed after init (the allocator was sealed)",
                _ => "only deallocation is allowed during deinit",
            }
        );
        match self.on_violation {
            OnViolation::Abort => abort_with(args),
            OnViolation::Refuse => report(args),
            OnViolation::RefuseSilently => {}
        }
    }
}

// SAFETY: every call either forwards to `inner` (whose block contract holds) or refuses without
// touching any block; a refused deallocation leaks the block, which is always sound.
unsafe impl<A: Allocator> Allocator for StaticAllocator<A> {
    #[inline]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.admit(Operation::Allocate, layout)?;
        self.inner.allocate_nonzero(layout)
    }

    #[inline]
    fn allocate_zeroed_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.admit(Operation::Allocate, layout)?;
        self.inner.allocate_zeroed_nonzero(layout)
    }

    #[inline]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        if self.admit(Operation::Deallocate, layout).is_ok() {
            // SAFETY: forwarded from the caller.
            unsafe { self.inner.deallocate_nonzero(ptr, layout) }
        }
    }

    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        self.admit(Operation::Grow, new_layout)?;
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.grow_nonzero(ptr, old_layout, new_layout) }
    }

    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        self.admit(Operation::Shrink, new_layout)?;
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.shrink_nonzero(ptr, old_layout, new_layout) }
    }
}

impl<A: Introspect> Introspect for StaticAllocator<A> {
    fn check(&self) -> Result<(), InvariantError> {
        let raw = self.state.load(Ordering::Relaxed);
        if raw as usize >= State::ALL.len() {
            return Err(InvariantError::new(
                "static allocator: unknown state",
                raw as usize,
            ));
        }
        self.inner.check()
    }

    fn stats(&self) -> Option<Stats> {
        self.inner.stats()
    }
}

heapkit_core::impl_foreign_allocators!(impl[A: Allocator] for StaticAllocator<A>);

#[cfg(test)]
mod tests {
    use super::*;

    /// An allocator that refuses everything, to test the wrapper's own logic.
    struct Nothing;
    // SAFETY: it never hands out a block.
    unsafe impl Allocator for Nothing {
        fn allocate_nonzero(&self, _: Layout) -> Result<NonNull<[u8]>, AllocError> {
            Err(AllocError)
        }
        unsafe fn deallocate_nonzero(&self, _: NonNull<u8>, _: Layout) {}
    }

    #[test]
    fn every_transition_legal_and_illegal() {
        let reach = |state: State| {
            let a = StaticAllocator::with_policy(Nothing, OnViolation::RefuseSilently);
            if state != State::Init {
                a.seal().unwrap();
            }
            if state == State::Deinit {
                a.begin_deinit().unwrap();
            }
            a
        };
        for from in State::ALL {
            for to in State::ALL {
                let a = reach(from);
                let legal = matches!(
                    (from, to),
                    (State::Init, State::Static) | (State::Static, State::Deinit)
                );
                let result = a.transition_to(to);
                assert_eq!(result.is_ok(), legal, "{from} -> {to}");
                if legal {
                    assert_eq!(a.state(), to);
                } else {
                    assert_eq!(result, Err(TransitionError { from, to }));
                    assert_eq!(a.state(), from, "an illegal transition changes nothing");
                }
            }
        }
    }

    #[test]
    fn transition_error_message_names_the_states() {
        use core::fmt::Write;
        let mut message = heapkit_core::report::StackMessage::new();
        let error = TransitionError {
            from: State::Static,
            to: State::Init,
        };
        write!(message, "{error}").unwrap();
        assert!(message
            .as_bytes()
            .starts_with(b"StaticAllocator: no transition from Static to Init"));
    }
}
