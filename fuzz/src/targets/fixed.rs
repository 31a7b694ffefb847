//! heapkit-fixed: a `Region` with a pool, a second pool, a ring, a byte partition and a bump
//! partition. Pool acquire / release against a model (double and foreign releases must be
//! refused, the pool unchanged), the ring against a `VecDeque`, the region's bump allocator
//! through a `StaticAllocator` whose state transitions are checked too. Every value is counted
//! when made and when dropped: none may be dropped twice or leaked.

use crate::driver::{AllocOp, Driver, Limits};
use crate::input::{for_each_op, setup};
use crate::pages::JunkPages;
use arbitrary::Arbitrary;
use core::cell::Cell;
use core::ptr::NonNull;
use heapkit_fixed::{
    OnViolation, Pool, Prefault, Region, RegionLayout, ReleaseError, Ring, SlotId, State,
    StaticAllocator,
};
use std::collections::VecDeque;

/// The buffer under the region.
pub const BUFFER_BYTES: usize = 1 << 20;
/// The largest pool or ring capacity.
pub const CAPACITY_MAX: usize = 64;
/// The most released ids remembered for stale releases.
pub const STALE_IDS_MAX: usize = 16;

std::thread_local! {
    static MADE: Cell<u64> = const { Cell::new(0) };
    static DROPPED: Cell<u64> = const { Cell::new(0) };
}

/// A value that counts its construction and its drop, three words wide so that a pointer into
/// the middle of a slot is not a slot.
#[derive(Debug, PartialEq, Eq)]
pub struct Tracked {
    value: u64,
    check: u64,
    _pad: u64,
}

impl Tracked {
    fn new(value: u64) -> Tracked {
        MADE.with(|m| m.set(m.get() + 1));
        Tracked {
            value,
            check: !value,
            _pad: 0,
        }
    }

    fn value(&self) -> u64 {
        assert_eq!(self.check, !self.value, "a value was corrupted: {self:?}");
        self.value
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        assert_eq!(
            self.check, !self.value,
            "dropping a corrupted value: {self:?}"
        );
        self.check = 0xDEAD;
        DROPPED.with(|d| d.set(d.get() + 1));
    }
}

/// Capacities, from the input's first bytes.
#[derive(Arbitrary, Clone, Copy, Debug, Default)]
pub struct Setup {
    pool_capacity: u8,
    ring_capacity: u8,
    bump_kib: u8,
}

/// The ops of this target.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Op {
    /// `try_acquire` (or `try_acquire_ptr`): succeeds exactly when a slot is free.
    Acquire {
        /// The value stored.
        value: u64,
        /// Through `try_acquire_ptr`.
        by_ptr: bool,
    },
    /// `release` (or `release_ptr`) of an acquired slot: gives its value back.
    Release {
        /// Which acquired slot.
        index: u8,
        /// Through `release_ptr`.
        by_ptr: bool,
    },
    /// `release` of an id released before: refused unless its slot was acquired again.
    ReleaseStale {
        /// Which released id.
        index: u8,
    },
    /// `release` into the second pool of an id from the first: refused as foreign.
    ReleaseForeign {
        /// Which acquired slot.
        index: u8,
    },
    /// `release_ptr` of a pointer into the middle of a slot: refused as foreign.
    ReleaseInterior {
        /// Which acquired slot.
        index: u8,
        /// Bytes past the slot's start (1..size).
        offset: u8,
    },
    /// `get_mut` and change the value.
    Update {
        /// Which acquired slot.
        index: u8,
        /// The new value.
        value: u64,
    },
    /// Ring `push_back`: refused exactly when full.
    Push {
        /// The value pushed.
        value: u64,
    },
    /// Ring `pop_front`.
    Pop,
    /// Ring `get(offset)` and `front()`.
    Peek {
        /// The offset from the front.
        offset: u8,
    },
    /// Ring `clear()`.
    Clear,
    /// Write and read back the byte partition.
    Bytes {
        /// Where.
        offset: u16,
        /// What.
        value: u8,
    },
    /// A generic op on the bump partition, through the `StaticAllocator`.
    Alloc(AllocOp),
    /// `seal()`.
    Seal,
    /// `begin_deinit()`.
    BeginDeinit,
    /// `transition_to(state)`.
    Transition {
        /// 0 Init, 1 Static, 2 Deinit.
        to: u8,
    },
}

struct PoolModel<'r> {
    pool: Pool<'r, Tracked>,
    other: Pool<'r, Tracked>,
    live: Vec<(SlotId<Tracked>, u64)>,
    released: Vec<SlotId<Tracked>>,
}

struct Fixed<'r> {
    pools: PoolModel<'r>,
    ring: Ring<'r, Tracked>,
    queue: VecDeque<u64>,
    bytes: heapkit_fixed::Bytes<'r>,
    bytes_model: Vec<u8>,
    driver: Driver<StaticAllocator<&'r Region<JunkPages>>>,
    state: State,
    sealed_at_epoch: Option<u64>,
}

/// The fuzz target.
pub fn run(data: &[u8]) {
    let (setup, data) = setup::<Setup>(data, 3);
    let made_before = MADE.with(Cell::get);
    let dropped_before = DROPPED.with(Cell::get);
    let pool_capacity = usize::from(setup.pool_capacity) % CAPACITY_MAX + 1;
    let ring_capacity = usize::from(setup.ring_capacity) % CAPACITY_MAX + 1;
    let mut layout = RegionLayout::new();
    let pool_id = layout.pool::<Tracked>("pool", pool_capacity);
    let other_id = layout.pool::<Tracked>("other", 4);
    let ring_id = layout.ring::<Tracked>("ring", ring_capacity);
    let bytes_id = layout.bytes("bytes", 1000, 64);
    layout.bump("init", (usize::from(setup.bump_kib) + 1) * 1024);
    let region = Region::new(layout, JunkPages::new(BUFFER_BYTES), Prefault::Lazy)
        .expect("the region fits its buffer");
    let mut fixed = Fixed {
        pools: PoolModel {
            pool: region.pool(pool_id).expect("first take"),
            other: region.pool(other_id).expect("first take"),
            live: Vec::new(),
            released: Vec::new(),
        },
        ring: region.ring(ring_id).expect("first take"),
        queue: VecDeque::new(),
        bytes: region.bytes(bytes_id).expect("first take"),
        bytes_model: Vec::new(),
        driver: Driver::new(
            StaticAllocator::with_policy(&region, OnViolation::RefuseSilently),
            Limits {
                max_size_bytes: 64 * 1024,
                max_align_bytes: 4096,
                must_succeed_below_live_bytes: None,
                live_accounting: false,
            },
        ),
        state: State::Init,
        sealed_at_epoch: None,
    };
    assert!(
        region.pool(pool_id).is_err(),
        "a partition was lent out twice"
    );
    fixed.bytes_model = fixed.bytes.to_vec();
    for_each_op(data, |op: Op| {
        fixed.apply(op);
        fixed.check(&op);
    });
    let Fixed {
        pools,
        ring,
        bytes,
        driver,
        ..
    } = fixed;
    drop((pools, ring, bytes));
    let _sealed = driver.finish();
    heapkit_core::Introspect::check(&region).expect("region check() at the end");

    let made = MADE.with(Cell::get) - made_before;
    let dropped = DROPPED.with(Cell::get) - dropped_before;
    assert_eq!(made, dropped, "values made and dropped differ");
}

impl Fixed<'_> {
    fn check(&self, op: &Op) {
        self.pools
            .pool
            .check()
            .unwrap_or_else(|e| panic!("pool check() after {op:?}: {e:?}"));
        self.pools
            .other
            .check()
            .unwrap_or_else(|e| panic!("other pool check() after {op:?}: {e:?}"));
        self.ring
            .check()
            .unwrap_or_else(|e| panic!("ring check() after {op:?}: {e:?}"));
        self.driver.check(op);
        assert_eq!(
            self.pools.pool.len(),
            self.pools.live.len(),
            "pool len after {op:?}"
        );
        assert_eq!(
            self.pools.other.len(),
            0,
            "the second pool was changed by {op:?}"
        );
        assert_eq!(self.ring.len(), self.queue.len(), "ring len after {op:?}");
        assert_eq!(self.driver.a.state(), self.state, "state after {op:?}");
        if self.state == State::Init {
            assert_eq!(self.driver.a.violations(), 0, "violations while Init");
        }
        if let Some(epoch) = self.sealed_at_epoch {
            let fresh = self
                .driver
                .shadow
                .blocks()
                .find(|b| b.len > 0 && b.epoch >= epoch);
            assert!(fresh.is_none(), "{:?} allocated {fresh:?} after seal", op);
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Acquire { value, by_ptr } => self.pools.acquire(value, by_ptr),
            Op::Release { index, by_ptr } => self.pools.release(index, by_ptr),
            Op::ReleaseStale { index } => self.pools.release_stale(index),
            Op::ReleaseForeign { index } => self.pools.release_foreign(index),
            Op::ReleaseInterior { index, offset } => self.pools.release_interior(index, offset),
            Op::Update { index, value } => self.pools.update(index, value),
            Op::Push { value } => {
                let full = self.queue.len() == self.ring.capacity();
                assert_eq!(self.ring.is_full(), full);
                match self.ring.push_back(Tracked::new(value)) {
                    Ok(()) => {
                        assert!(!full, "push_back into a full ring succeeded");
                        self.queue.push_back(value);
                    }
                    Err(back) => {
                        assert!(full, "push_back refused with room");
                        assert_eq!(back.value(), value, "push_back gave back another value");
                    }
                }
            }
            Op::Pop => {
                let got = self.ring.pop_front().map(|t| t.value());
                assert_eq!(got, self.queue.pop_front(), "pop_front");
            }
            Op::Peek { offset } => {
                let offset = usize::from(offset);
                let got = self.ring.get(offset).map(Tracked::value);
                assert_eq!(got, self.queue.get(offset).copied(), "ring get({offset})");
                assert_eq!(
                    self.ring.front().map(Tracked::value),
                    self.queue.front().copied()
                );
            }
            Op::Clear => {
                self.ring.clear();
                self.queue.clear();
                assert!(self.ring.is_empty());
            }
            Op::Bytes { offset, value } => {
                let at = usize::from(offset) % self.bytes.len();
                self.bytes[at] = value;
                self.bytes_model[at] = value;
                assert!(
                    self.bytes[..] == self.bytes_model[..],
                    "the byte partition changed"
                );
            }
            Op::Alloc(op) => self.driver.apply(op),
            Op::Seal => self.transition(State::Static, self.driver.a.seal()),
            Op::BeginDeinit => self.transition(State::Deinit, self.driver.a.begin_deinit()),
            Op::Transition { to } => {
                let to = [State::Init, State::Static, State::Deinit][usize::from(to) % 3];
                self.transition(to, self.driver.a.transition_to(to));
            }
        }
    }

    /// Only Init → Static and Static → Deinit are legal; a refused move changes nothing.
    fn transition(&mut self, to: State, result: Result<(), heapkit_fixed::TransitionError>) {
        let legal = matches!(
            (self.state, to),
            (State::Init, State::Static) | (State::Static, State::Deinit)
        );
        assert_eq!(
            result.is_ok(),
            legal,
            "{:?} -> {to:?}: {result:?}",
            self.state
        );
        if legal {
            if to == State::Static {
                self.sealed_at_epoch = Some(self.driver.shadow.epoch());
            }
            self.state = to;
        }
    }
}

impl PoolModel<'_> {
    fn acquire(&mut self, value: u64, by_ptr: bool) {
        let room = self.live.len() < self.pool.capacity();
        assert_eq!(
            self.pool.available(),
            self.pool.capacity() - self.live.len()
        );
        let id = if by_ptr {
            match self.pool.try_acquire_ptr(Tracked::new(value)) {
                Ok(ptr) => Some(self.pool.id_of(ptr).expect("an acquired pointer is a slot")),
                Err(back) => {
                    assert_eq!(back.value(), value);
                    None
                }
            }
        } else {
            match self.pool.try_acquire(Tracked::new(value)) {
                Ok(id) => Some(id),
                Err(back) => {
                    assert_eq!(back.value(), value);
                    None
                }
            }
        };
        assert_eq!(
            id.is_some(),
            room,
            "acquire with {} of {} taken",
            self.live.len(),
            self.pool.capacity()
        );
        if let Some(id) = id {
            assert!(
                self.live.iter().all(|(live, _)| live.index() != id.index()),
                "slot {} handed out twice",
                id.index()
            );
            assert_eq!(self.pool.get(id).map(Tracked::value), Some(value));
            self.live.push((id, value));
        }
    }

    fn release(&mut self, index: u8, by_ptr: bool) {
        if self.live.is_empty() {
            return;
        }
        let (id, value) = self.live.swap_remove(usize::from(index) % self.live.len());
        let result = if by_ptr {
            let ptr = NonNull::from(self.pool.get(id).expect("acquired"));
            self.pool.release_ptr(ptr)
        } else {
            self.pool.release(id)
        };
        let got =
            result.unwrap_or_else(|e| panic!("release of acquired slot {}: {e:?}", id.index()));
        assert_eq!(got.value(), value, "release gave back another value");
        assert!(self.pool.get(id).is_none(), "a released slot still reads");
        if self.released.len() < STALE_IDS_MAX {
            self.released.push(id);
        }
    }

    fn release_stale(&mut self, index: u8) {
        if self.released.is_empty() {
            return;
        }
        let id = self.released[usize::from(index) % self.released.len()];
        // Ids carry a generation: a slot acquired again refuses the old id as stale.
        let reacquired = self
            .live
            .iter()
            .position(|(live, _)| live.index() == id.index());
        match (self.pool.release(id), reacquired) {
            (Err(ReleaseError::Stale { index, .. }), Some(_)) => assert_eq!(index, id.index()),
            (Err(ReleaseError::NotAcquired { index }), None) => assert_eq!(index, id.index()),
            (result, reacquired) => {
                panic!(
                    "stale release of slot {}: {result:?} (re-acquired: {reacquired:?})",
                    id.index()
                )
            }
        }
    }

    fn release_foreign(&mut self, index: u8) {
        if self.live.is_empty() {
            return;
        }
        let (id, _) = self.live[usize::from(index) % self.live.len()];
        let result = self.other.release(id);
        assert!(
            matches!(result, Err(ReleaseError::Foreign)),
            "an id of another pool was not refused: {result:?}"
        );
    }

    fn release_interior(&mut self, index: u8, offset: u8) {
        if self.live.is_empty() {
            return;
        }
        let (id, value) = self.live[usize::from(index) % self.live.len()];
        let size = core::mem::size_of::<Tracked>();
        let offset = usize::from(offset) % (size - 1) + 1;
        let slot = NonNull::from(self.pool.get(id).expect("acquired")).cast::<u8>();
        // SAFETY: `offset < size`: still inside the slot.
        let interior = unsafe { slot.add(offset) }.cast::<Tracked>();
        let result = self.pool.release_ptr(interior);
        assert!(
            matches!(result, Err(ReleaseError::Foreign)),
            "a pointer {offset} bytes into a slot was not refused: {result:?}"
        );
        assert_eq!(self.pool.get(id).map(Tracked::value), Some(value));
    }

    fn update(&mut self, index: u8, value: u64) {
        if self.live.is_empty() {
            return;
        }
        let at = usize::from(index) % self.live.len();
        let id = self.live[at].0;
        let slot = self.pool.get_mut(id).expect("acquired");
        assert_eq!(slot.value(), self.live[at].1);
        *slot = Tracked::new(value);
        self.live[at].1 = value;
    }
}
