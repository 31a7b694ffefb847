//! A pool's slots as pictures and tests see them: which are acquired, and the free list's order.
//!
//! A child module of `pool` (declared there) so that it reads the link array directly; it
//! changes nothing and allocates nothing.
//!
//! ```text
//!   links  [ A ][ 3 ][ A ][ E ][ 1 ]   slot_state(0) = Acquired, slot_state(4) = Free
//!   free_head = 4 ──► 1 ──► 3 ──► E   for_each_free_slot: 4, 1, 3 (the next acquire takes 4)
//! ```

use super::{Pool, ACQUIRED, END, RETIRED};

/// Whether a pool slot holds a value.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Holds a value handed out by `try_acquire`.
    Acquired,
    /// On the free list.
    Free,
    /// Out of use for good: its generation ran out (see [`SlotId`](crate::SlotId)).
    Retired,
}

impl<T> Pool<'_, T> {
    /// The state of slot `index` (one load), or `None` when `index >= capacity`.
    pub fn slot_state(&self, index: usize) -> Option<SlotState> {
        if index >= self.capacity as usize {
            return None;
        }
        Some(match self.link(index as u32) {
            ACQUIRED => SlotState::Acquired,
            RETIRED => SlotState::Retired,
            _ => SlotState::Free,
        })
    }

    /// Calls `f` with each free slot's index in free-list order: the next `try_acquire` takes
    /// the first. At most `capacity` steps, so a corrupt list (which [`check`](Pool::check)
    /// reports) still ends.
    pub fn for_each_free_slot(&self, mut f: impl FnMut(usize)) {
        let mut index = self.free_head;
        let mut steps: u32 = 0;
        while index != END && index < self.capacity && steps < self.capacity {
            f(index as usize);
            index = self.link(index);
            steps += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::GENERATION_LAST;
    use super::*;
    use crate::{PoolId, Prefault, Region, RegionLayout, ReleaseError};
    use heapkit_pages::BufferPages;
    use std::vec::Vec;

    /// A region over a buffer holding one pool "p" of `capacity` slots of `u64`.
    fn region_with_pool(capacity: usize) -> (Region<BufferPages<'static>>, PoolId<u64>) {
        let mut layout = RegionLayout::new();
        let id = layout.pool::<u64>("p", capacity);
        let pages = BufferPages::owned(64 * 1024, 4096).unwrap();
        (Region::new(layout, pages, Prefault::Lazy).unwrap(), id)
    }

    #[test]
    fn states_and_free_order_follow_acquire_and_release() {
        let (region, id) = region_with_pool(5);
        let mut pool = region.pool(id).unwrap();
        let free = |pool: &Pool<'_, u64>| {
            let mut order = Vec::new();
            pool.for_each_free_slot(|i| order.push(i));
            order
        };
        assert_eq!(free(&pool), [0, 1, 2, 3, 4]);
        let ids: Vec<_> = (0..5).map(|v| pool.try_acquire(v).unwrap()).collect();
        assert!(free(&pool).is_empty());
        pool.release(ids[1]).unwrap();
        pool.release(ids[3]).unwrap();
        pool.check().unwrap();
        assert_eq!(free(&pool), [3, 1], "newest release first");
        let states: Vec<_> = (0..5).map(|i| pool.slot_state(i).unwrap()).collect();
        use SlotState::{Acquired as A, Free as F};
        assert_eq!(states, [A, F, A, F, A]);
        assert_eq!(pool.slot_state(5), None);
    }

    #[test]
    fn a_slot_whose_generation_runs_out_is_retired_not_wrapped() {
        let (region, id) = region_with_pool(3);
        let mut pool = region.pool(id).unwrap();
        let ptr = pool.try_acquire_ptr(7).unwrap();
        // 2^32 - 2 releases of slot 0, without the wait.
        pool.set_generation(0, GENERATION_LAST);
        let last = pool.id_of(ptr).unwrap();
        assert_eq!(last.generation(), GENERATION_LAST);
        assert_eq!(pool.release(last), Ok(7));
        pool.check().unwrap();
        assert_eq!(pool.slot_state(0), Some(SlotState::Retired));
        assert_eq!((pool.retired(), pool.available()), (1, 2));
        if cfg!(not(feature = "checked")) {
            // With `checked`, a bad release aborts.
            assert_eq!(
                pool.release(last),
                Err(ReleaseError::NotAcquired { index: 0 })
            );
        }
        let a = pool.try_acquire(1).unwrap();
        let b = pool.try_acquire(2).unwrap();
        assert!(
            pool.try_acquire(3).is_err(),
            "the retired slot is never handed out"
        );
        assert_eq!((a.index(), b.index()), (1, 2));
        drop(pool);

        // The generations outlive the pool: a new borrow keeps the slot retired.
        let pool = region.pool(id).unwrap();
        pool.check().unwrap();
        assert_eq!(pool.slot_state(0), Some(SlotState::Retired));
        assert_eq!(pool.available(), 2);
        assert_eq!(pool.try_get(a), Err(ReleaseError::NotAcquired { index: 1 }));
    }
}
