//! Where a ring's elements sit in its buffer, for pictures and tests.
//!
//! A child module of `ring` (declared there) so that it reads `head` directly.
//!
//! ```text
//!   [ x x . . . x x x ]   head_index = 5, len = 5: elements at 5, 6, 7, 0, 1 (wrapped)
//! ```

use super::Ring;

impl<T> Ring<'_, T> {
    /// The buffer index of the front element (where `pop_front` reads); the `len()` elements
    /// follow it, wrapping at `capacity()`.
    pub fn head_index(&self) -> usize {
        self.head
    }

    /// Whether buffer index `index` holds an element (`false` past the capacity).
    pub fn is_occupied(&self, index: usize) -> bool {
        if index >= self.capacity {
            return false;
        }
        // Distance from head going forward, wrapping once: no `%`, as in the ring itself.
        let distance = if index >= self.head {
            index - self.head
        } else {
            index + self.capacity - self.head
        };
        distance < self.len
    }
}

#[cfg(test)]
mod tests {
    use crate::{Prefault, Region, RegionLayout};
    use heapkit_pages::BufferPages;
    use std::vec::Vec;

    #[test]
    fn occupancy_wraps_around_the_buffer() {
        let mut layout = RegionLayout::new();
        let id = layout.ring::<u32>("r", 8);
        let region = Region::new(
            layout,
            BufferPages::owned(64 * 1024, 4096).unwrap(),
            Prefault::Lazy,
        )
        .unwrap();
        let mut ring = region.ring(id).unwrap();
        for v in 0..8 {
            ring.push_back(v).unwrap();
        }
        for _ in 0..5 {
            ring.pop_front().unwrap();
        }
        ring.push_back(8).unwrap();
        ring.push_back(9).unwrap();
        ring.check().unwrap();
        assert_eq!(ring.head_index(), 5);
        let occupied: Vec<usize> = (0..9).filter(|&i| ring.is_occupied(i)).collect();
        assert_eq!(occupied, [0, 1, 5, 6, 7]);
    }
}
