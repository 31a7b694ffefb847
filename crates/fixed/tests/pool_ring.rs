//! Pools and rings against simple models (proptest), plus their error paths.

use heapkit_fixed::{Pool, Prefault, Region, RegionLayout, ReleaseError, SlotId};
use heapkit_pages::BufferPages;
use proptest::prelude::*;
use std::collections::VecDeque;

const CAPACITY: usize = 16;

fn cases() -> u32 {
    if cfg!(miri) {
        8
    } else {
        256
    }
}

fn region_with(layout: RegionLayout) -> Region<BufferPages<'static>> {
    Region::new(
        layout,
        BufferPages::owned(64 * 1024, 4096).unwrap(),
        Prefault::Lazy,
    )
    .unwrap()
}

#[derive(Clone, Debug)]
enum PoolOp {
    Acquire(u64),
    /// Release the n-th id ever handed out (live or not: double releases are part of the test).
    Release(usize),
    Get(usize),
    ReleasePtr(usize),
}

fn pool_op() -> impl Strategy<Value = PoolOp> {
    prop_oneof![
        3 => any::<u64>().prop_map(PoolOp::Acquire),
        2 => any::<usize>().prop_map(PoolOp::Release),
        1 => any::<usize>().prop_map(PoolOp::Get),
        1 => any::<usize>().prop_map(PoolOp::ReleasePtr),
    ]
}

/// What the model knows of one slot: how many times it was released, and its value if any.
#[derive(Clone, Copy, Default)]
struct ModelSlot {
    generation: u32,
    value: Option<u64>,
}

/// What a release or `try_get` of `id` must answer, from the model alone.
fn expected(model: &[ModelSlot], id: SlotId<u64>) -> Result<u64, ReleaseError> {
    let slot = model[id.index() as usize];
    match slot.value {
        None => Err(ReleaseError::NotAcquired { index: id.index() }),
        Some(_) if slot.generation != id.generation() => Err(ReleaseError::Stale {
            index: id.index(),
            id_generation: id.generation(),
            slot_generation: slot.generation,
        }),
        Some(value) => Ok(value),
    }
}

fn apply(
    pool: &mut Pool<'_, u64>,
    op: PoolOp,
    issued: &mut Vec<(SlotId<u64>, core::ptr::NonNull<u64>)>,
    model: &mut [ModelSlot],
) {
    let live = model.iter().filter(|s| s.value.is_some()).count();
    match op {
        PoolOp::Acquire(value) => match pool.try_acquire(value) {
            Ok(id) => {
                let slot = &mut model[id.index() as usize];
                assert!(slot.value.is_none(), "slot handed out twice");
                assert_eq!(id.generation(), slot.generation, "generation not kept");
                slot.value = Some(value);
                let ptr = core::ptr::NonNull::from(pool.get(id).unwrap());
                assert_eq!(pool.id_of(ptr), Some(id));
                issued.push((id, ptr));
            }
            Err(back) => {
                assert_eq!(back, value);
                assert_eq!(live, CAPACITY, "refused while slots were free");
            }
        },
        PoolOp::Release(n) | PoolOp::ReleasePtr(n) if !issued.is_empty() => {
            let (id, ptr) = issued[n % issued.len()];
            let want = match op {
                // A pointer names the slot as it is now: never stale.
                PoolOp::ReleasePtr(_) => expected(model, pool.id_of(ptr).unwrap()),
                _ => expected(model, id),
            };
            if cfg!(feature = "checked") && want.is_err() {
                return; // with `checked`, a bad release aborts the process
            }
            let got = match op {
                PoolOp::ReleasePtr(_) => pool.release_ptr(ptr),
                _ => pool.release(id),
            };
            assert_eq!(got, want);
            if got.is_ok() {
                let slot = &mut model[id.index() as usize];
                slot.value = None;
                slot.generation += 1;
            }
        }
        PoolOp::Get(n) if !issued.is_empty() => {
            let (id, _) = issued[n % issued.len()];
            let want = expected(model, id);
            assert_eq!(pool.try_get(id).copied(), want);
            assert_eq!(pool.get(id).copied(), want.ok());
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // No failure files: Miri's isolation forbids `getcwd`, and the model is cheap to rerun.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn pool_matches_model(ops in proptest::collection::vec(pool_op(), 1..64)) {
        let mut layout = RegionLayout::new();
        let id = layout.pool::<u64>("pool", CAPACITY);
        let region = region_with(layout);
        let mut pool = region.pool(id).unwrap();
        let mut issued = Vec::new();
        let mut model = [ModelSlot::default(); CAPACITY];
        for op in ops {
            apply(&mut pool, op, &mut issued, &mut model);
            pool.check().unwrap();
            let live = model.iter().filter(|s| s.value.is_some()).count();
            prop_assert_eq!(pool.len(), live);
            prop_assert_eq!(pool.available(), CAPACITY - live);
        }
    }

    #[test]
    fn ring_matches_model(ops in proptest::collection::vec(proptest::option::of(any::<u32>()), 1..96)) {
        let mut layout = RegionLayout::new();
        let id = layout.ring::<u32>("ring", 7); // not a power of two: wrapping by compare
        let region = region_with(layout);
        let mut ring = region.ring(id).unwrap();
        let mut model = VecDeque::new();
        for op in ops {
            match op {
                Some(value) => {
                    let result = ring.push_back(value);
                    if model.len() == 7 {
                        prop_assert_eq!(result, Err(value));
                    } else {
                        prop_assert_eq!(result, Ok(()));
                        model.push_back(value);
                    }
                }
                None => prop_assert_eq!(ring.pop_front(), model.pop_front()),
            }
            ring.check().unwrap();
            prop_assert_eq!(ring.len(), model.len());
            prop_assert_eq!(ring.front(), model.front());
            prop_assert_eq!(ring.is_full(), model.len() == 7);
            for (offset, value) in model.iter().enumerate() {
                prop_assert_eq!(ring.get(offset), Some(value));
            }
            prop_assert_eq!(ring.get(model.len()), None);
        }
    }
}

#[test]
#[cfg(not(feature = "checked"))] // with `checked`, these releases abort (tests/sealed_global.rs)
fn foreign_ids_and_pointers_are_refused() {
    let mut layout = RegionLayout::new();
    let a = layout.pool::<u64>("a", 4);
    let b = layout.pool::<u64>("b", 4);
    let region = region_with(layout);
    let mut pool_a = region.pool(a).unwrap();
    let mut pool_b = region.pool(b).unwrap();
    let id_b = pool_b.try_acquire(1).unwrap();
    assert_eq!(pool_a.release(id_b), Err(ReleaseError::Foreign));
    assert_eq!(pool_a.get(id_b), None);

    let mut outside = 5u64;
    let outside_ptr = core::ptr::NonNull::from(&mut outside);
    assert_eq!(pool_a.release_ptr(outside_ptr), Err(ReleaseError::Foreign));
    let ptr_b = core::ptr::NonNull::from(pool_b.get(id_b).unwrap());
    assert_eq!(pool_a.release_ptr(ptr_b), Err(ReleaseError::Foreign));
    // A pointer into the middle of a slot is not a slot.
    let inside = pool_a.try_acquire_ptr(9).unwrap();
    let misaligned =
        core::ptr::NonNull::new(inside.as_ptr().cast::<u8>().wrapping_add(1).cast::<u64>())
            .unwrap();
    assert_eq!(pool_a.release_ptr(misaligned), Err(ReleaseError::Foreign));
    assert_eq!(pool_a.release_ptr(inside), Ok(9));
    assert_eq!(
        pool_a.release_ptr(inside),
        Err(ReleaseError::NotAcquired { index: 0 })
    );
    pool_a.check().unwrap();
    pool_b.check().unwrap();
}

#[test]
fn pool_of_large_values_has_no_header() {
    let mut layout = RegionLayout::new();
    layout.pool::<[u8; 100]>("big", 10);
    let row = layout.partitions()[0];
    // 10 slots of 100 bytes, then 10 links and 10 generations of 4 bytes each: nothing per
    // object besides them.
    assert_eq!(row.size_bytes, 10 * 100 + 10 * (4 + 4));
}

#[test]
#[cfg(not(feature = "checked"))] // with `checked`, a stale release aborts
fn an_id_of_a_released_and_reacquired_slot_is_stale() {
    let mut layout = RegionLayout::new();
    let id = layout.pool::<u64>("p", 2);
    let region = region_with(layout);
    let mut pool = region.pool(id).unwrap();
    let old = pool.try_acquire(1).unwrap();
    assert_eq!(pool.release(old), Ok(1));
    let new = pool.try_acquire(2).unwrap();
    assert_eq!(new.index(), old.index(), "the free list reuses the slot");
    assert_ne!(new, old);
    let stale = ReleaseError::Stale {
        index: old.index(),
        id_generation: 0,
        slot_generation: 1,
    };
    assert_eq!(pool.try_get(old), Err(stale));
    assert_eq!(pool.get(old), None);
    assert_eq!(pool.get_mut(old), None);
    assert_eq!(pool.release(old), Err(stale));
    assert_eq!(pool.get(new), Some(&2), "the new object is untouched");
    pool.check().unwrap();
    drop(pool);

    // Dropping the pool released `new` (value 2): its id is stale in the next borrow.
    let mut pool = region.pool(id).unwrap();
    let again = pool.try_acquire(3).unwrap();
    assert_eq!((again.index(), again.generation()), (new.index(), 2));
    assert!(matches!(pool.release(new), Err(ReleaseError::Stale { .. })));
    assert_eq!(pool.release(again), Ok(3));
}
