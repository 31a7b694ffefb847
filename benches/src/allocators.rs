//! Every allocator the suite measures, behind one face: [`GlobalAlloc`].
//!
//! The general-purpose allocators are `static`s, as they would be in a program
//! (`#[global_allocator]`); the suite reaches each through [`for_each`] with a generic
//! visitor, so the workload code is compiled (and inlined) once per allocator rather than
//! called through a `dyn` pointer that would hide the fast paths.

use heapkit::HeapKit;
use heapkit_bins::Bins;
use heapkit_core::{GlobalAdapter, Locked};
use heapkit_pages::MmapPages;
use heapkit_slab::Slab;
use std::alloc::{GlobalAlloc, System};

/// glibc's malloc (ptmalloc2): the reference every ratio is taken against.
pub static SYSTEM: System = System;
/// The `mimalloc` crate (mimalloc compiled in, not preloaded).
#[cfg(feature = "peers")]
pub static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
/// The `tikv-jemallocator` crate (jemalloc compiled in, with its `_rjem_` prefix).
#[cfg(feature = "peers")]
pub static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
/// heapkit's composed allocator: thread caches over the slab over mmap.
pub static HEAPKIT: HeapKit = HeapKit::new();
/// heapkit-slab alone (no thread cache): size classes in slabs; `Sync` by itself.
pub static HEAPKIT_SLAB: GlobalAdapter<Slab<MmapPages>> =
    GlobalAdapter::new(Slab::new(MmapPages::new()));
/// heapkit-bins behind one spin lock (ptmalloc2's algorithm without its arenas).
pub static HEAPKIT_BINS: GlobalAdapter<Locked<Bins<MmapPages>>> =
    GlobalAdapter::new(Locked::new(Bins::new(MmapPages::new())));

/// The names [`for_each`] visits, in order (the report keeps this order).
pub const NAMES: [&str; 6] = [
    "system",
    "mimalloc",
    "jemalloc",
    "heapkit",
    "heapkit-slab",
    "heapkit-bins",
];

/// Code run once per allocator, monomorphised for each.
pub trait Visit {
    /// Called with the allocator's report name and the allocator itself.
    fn visit<G: GlobalAlloc + Sync + 'static>(&mut self, name: &'static str, alloc: &'static G);
}

/// Calls `visitor` with every general-purpose allocator, in [`NAMES`] order (the peers only
/// with the `peers` feature, the default).
pub fn for_each(visitor: &mut impl Visit) {
    visitor.visit(NAMES[0], &SYSTEM);
    #[cfg(feature = "peers")]
    {
        visitor.visit(NAMES[1], &MIMALLOC);
        visitor.visit(NAMES[2], &JEMALLOC);
    }
    visitor.visit(NAMES[3], &HEAPKIT);
    visitor.visit(NAMES[4], &HEAPKIT_SLAB);
    visitor.visit(NAMES[5], &HEAPKIT_BINS);
}

/// Calls `visitor` with the allocator called `name`; false when there is none.
pub fn with_name(name: &str, visitor: &mut impl Visit) -> bool {
    struct One<'a, V> {
        name: &'a str,
        inner: &'a mut V,
        found: bool,
    }
    impl<V: Visit> Visit for One<'_, V> {
        fn visit<G: GlobalAlloc + Sync + 'static>(
            &mut self,
            name: &'static str,
            alloc: &'static G,
        ) {
            if name == self.name {
                self.found = true;
                self.inner.visit(name, alloc);
            }
        }
    }
    let mut one = One {
        name,
        inner: visitor,
        found: false,
    };
    for_each(&mut one);
    one.found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::Layout;

    struct Smoke(Vec<&'static str>);
    impl Visit for Smoke {
        fn visit<G: GlobalAlloc + Sync + 'static>(
            &mut self,
            name: &'static str,
            alloc: &'static G,
        ) {
            let layout = Layout::from_size_align(100, 16).unwrap();
            // SAFETY: a non-zero layout; the block is written within its size and freed once
            // with the same layout.
            unsafe {
                let block = alloc.alloc(layout);
                assert!(!block.is_null(), "{name} refused 100 bytes");
                assert_eq!(block as usize % 16, 0, "{name} misaligned");
                block.write_bytes(0xAB, 100);
                alloc.dealloc(block, layout);
            }
            self.0.push(name);
        }
    }

    #[test]
    fn every_allocator_serves_a_block() {
        let mut smoke = Smoke(Vec::new());
        for_each(&mut smoke);
        assert_eq!(smoke.0, NAMES);
        assert!(with_name("heapkit-bins", &mut smoke));
        assert!(!with_name("no-such-allocator", &mut smoke));
    }
}
