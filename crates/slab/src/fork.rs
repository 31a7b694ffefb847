//! Fork safety: take every lock before `fork`, release them after, in parent and child.
//!
//! A child of `fork` has one thread, the one that called it. If another thread held a class
//! lock at that moment, the child's copy of the lock stays taken forever and its first
//! allocation of that class deadlocks (jemalloc #2019, gperftools #499). Taking every lock in
//! the `pthread_atfork` prepare handler means no thread is inside the slab when the address
//! space is copied; the parent and child handlers release them again.

use crate::heap::Slab;
use heapkit_core::PageSource;

impl<P: PageSource> Slab<P> {
    /// Takes every lock of the slab in the slab's lock order: class locks by ascending index,
    /// then the chunk lock. Blocks until no other thread is inside the slab.
    pub fn lock_all(&self) {
        for class in &self.classes {
            class.raw_lock().lock();
        }
        self.chunks.raw_lock().lock();
    }

    /// Releases the locks [`lock_all`](Self::lock_all) took.
    ///
    /// # Safety
    /// The calling thread took them with `lock_all` and has not released them — or, in the
    /// child of a `fork`, the thread that called `fork` took them and this is that thread.
    pub unsafe fn unlock_all(&self) {
        // SAFETY: the caller holds every lock; each is released once, in reverse order.
        unsafe {
            self.chunks.raw_lock().unlock();
            for class in self.classes.iter().rev() {
                class.raw_lock().unlock();
            }
        }
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use core::alloc::Layout;
    use heapkit_core::Allocator;
    use heapkit_pages::MmapPages;

    #[test]
    fn lock_all_then_unlock_all_leaves_the_slab_usable() {
        let slab = Slab::new(MmapPages::new());
        let layout = Layout::from_size_align(64, 16).unwrap();
        let block = slab.allocate(layout).unwrap();
        slab.lock_all();
        assert!(slab.classes.iter().all(|c| c.raw_lock().is_locked()));
        // SAFETY: taken just above on this thread.
        unsafe { slab.unlock_all() };
        assert!(slab.classes.iter().all(|c| !c.raw_lock().is_locked()));
        // SAFETY: a live block of this slab.
        unsafe { slab.deallocate(block.cast(), layout) };
        let again = slab.allocate(layout).unwrap();
        // SAFETY: as above.
        unsafe { slab.deallocate(again.cast(), layout) };
    }
}
