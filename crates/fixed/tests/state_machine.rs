//! `StaticAllocator`: which operations each state allows, and every transition.

use core::alloc::Layout;
use heapkit_core::{Allocator, Introspect};
use heapkit_fixed::{
    OnViolation, Prefault, Region, RegionLayout, State, StaticAllocator, TransitionError,
};
use heapkit_pages::BufferPages;

type Heap = StaticAllocator<Region<BufferPages<'static>>>;

fn heap() -> Heap {
    let mut layout = RegionLayout::new();
    layout.bump("init", 16 * 1024);
    let pages = BufferPages::owned(32 * 1024, 4096).unwrap();
    StaticAllocator::with_policy(
        Region::new(layout, pages, Prefault::Lazy).unwrap(),
        OnViolation::RefuseSilently,
    )
}

fn heap_in(state: State) -> Heap {
    let heap = heap();
    if state != State::Init {
        heap.seal().unwrap();
    }
    if state == State::Deinit {
        heap.begin_deinit().unwrap();
    }
    assert_eq!(heap.state(), state);
    heap
}

const ALL: [State; 3] = [State::Init, State::Static, State::Deinit];
const SMALL: Layout = Layout::new::<[u64; 2]>();
const LARGE: Layout = Layout::new::<[u64; 8]>();

#[test]
fn transitions_legal_and_illegal() {
    for from in ALL {
        for to in ALL {
            let heap = heap_in(from);
            let legal = matches!(
                (from, to),
                (State::Init, State::Static) | (State::Static, State::Deinit)
            );
            match heap.transition_to(to) {
                Ok(()) => assert!(legal, "{from} -> {to} was allowed"),
                Err(error) => {
                    assert!(!legal, "{from} -> {to} was refused");
                    assert_eq!(error, TransitionError { from, to });
                    assert_eq!(heap.state(), from);
                }
            }
        }
    }
}

#[test]
fn init_allows_everything() {
    let heap = heap_in(State::Init);
    let a = heap.allocate(SMALL).unwrap();
    let z = heap.allocate_zeroed(SMALL).unwrap();
    // SAFETY: live blocks with these layouts.
    unsafe {
        let z = heap.grow(z.cast(), SMALL, LARGE).unwrap();
        let z = heap.shrink(z.cast(), LARGE, SMALL).unwrap();
        heap.deallocate(z.cast(), SMALL);
        heap.deallocate(a.cast(), SMALL);
    }
    assert_eq!(heap.violations(), 0);
    assert_eq!(heap.stats().unwrap().live_bytes, 0);
    heap.check().unwrap();
}

#[test]
fn static_refuses_everything_and_loses_nothing() {
    let heap = heap();
    let block = heap.allocate(SMALL).unwrap();
    // SAFETY: a fresh block of 16 bytes.
    unsafe { block.cast::<u64>().write(77) };
    heap.seal().unwrap();
    assert!(heap.allocate(SMALL).is_err());
    assert!(heap.allocate_zeroed(SMALL).is_err());
    // SAFETY: `block` is live with `SMALL` throughout; refused calls leave it untouched.
    unsafe {
        assert!(heap.grow(block.cast(), SMALL, LARGE).is_err());
        assert!(heap
            .shrink(block.cast(), SMALL, Layout::new::<u64>())
            .is_err());
        heap.deallocate(block.cast(), SMALL); // refused: leaked, still readable
        assert_eq!(block.cast::<u64>().read(), 77);
    }
    assert_eq!(heap.violations(), 5);
    assert_eq!(heap.stats().unwrap().live_blocks, 1);
    heap.check().unwrap();
}

#[test]
fn deinit_frees_but_does_not_allocate() {
    let heap = heap();
    let block = heap.allocate(SMALL).unwrap();
    heap.seal().unwrap();
    heap.begin_deinit().unwrap();
    assert!(heap.allocate(SMALL).is_err());
    // SAFETY: `block` is live with `SMALL`.
    unsafe {
        assert!(heap.grow(block.cast(), SMALL, LARGE).is_err());
        heap.deallocate(block.cast(), SMALL);
    }
    assert_eq!(heap.violations(), 2);
    assert_eq!(heap.stats().unwrap().live_bytes, 0);
    heap.check().unwrap();
}

#[test]
fn zero_size_requests_never_reach_the_state_machine() {
    let heap = heap_in(State::Static);
    let zst = Layout::new::<()>();
    let block = heap.allocate(zst).unwrap();
    // SAFETY: a zero-size block.
    unsafe { heap.deallocate(block.cast(), zst) };
    assert_eq!(heap.violations(), 0);
}

#[test]
fn default_policy_is_abort() {
    let heap = StaticAllocator::new(());
    assert_eq!(heap.on_violation(), OnViolation::Abort);
    assert_eq!(heap.state(), State::Init);
}
