//! Pools and rings against simple models (proptest), plus their error paths.

use heapkit_fixed::{Pool, Prefault, Region, RegionLayout, ReleaseError, SlotId};
use heapkit_pages::BufferPages;
use proptest::prelude::*;
use std::collections::{HashMap, VecDeque};

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

fn apply(
    pool: &mut Pool<'_, u64>,
    op: PoolOp,
    issued: &mut Vec<(SlotId<u64>, core::ptr::NonNull<u64>)>,
    live: &mut HashMap<u32, u64>,
) {
    match op {
        PoolOp::Acquire(value) => match pool.try_acquire(value) {
            Ok(id) => {
                assert!(
                    live.insert(id.index(), value).is_none(),
                    "slot handed out twice"
                );
                let ptr = core::ptr::NonNull::from(pool.get(id).unwrap());
                assert_eq!(pool.id_of(ptr), Some(id));
                issued.push((id, ptr));
            }
            Err(back) => {
                assert_eq!(back, value);
                assert_eq!(live.len(), CAPACITY, "refused while slots were free");
            }
        },
        PoolOp::Release(n) | PoolOp::ReleasePtr(n) if !issued.is_empty() => {
            let (id, ptr) = issued[n % issued.len()];
            if cfg!(feature = "checked") && !live.contains_key(&id.index()) {
                return; // with `checked`, a double release aborts the process
            }
            let result = match op {
                PoolOp::ReleasePtr(_) => pool.release_ptr(ptr),
                _ => pool.release(id),
            };
            match live.remove(&id.index()) {
                Some(value) => assert_eq!(result, Ok(value)),
                None => assert_eq!(result, Err(ReleaseError::NotAcquired { index: id.index() })),
            }
        }
        PoolOp::Get(n) if !issued.is_empty() => {
            let (id, _) = issued[n % issued.len()];
            assert_eq!(pool.get(id), live.get(&id.index()));
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
        let mut live = HashMap::new();
        for op in ops {
            apply(&mut pool, op, &mut issued, &mut live);
            pool.check().unwrap();
            prop_assert_eq!(pool.len(), live.len());
            prop_assert_eq!(pool.available(), CAPACITY - live.len());
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
    // 10 slots of 100 bytes, then 10 links of 4 bytes: nothing per object besides the link.
    assert_eq!(row.size_bytes, 10 * 100 + 10 * 4);
}
