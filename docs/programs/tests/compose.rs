//! Chapter 8's composed allocator passes the same conformance suite as every heapkit crate.

use heapkit_bins::Bins;
use heapkit_docs_programs::compose::SizeSplit;
use heapkit_slab::Slab;
use heapkit_testkit::{test_pages, Suite};

#[test]
fn size_split_conforms() {
    Suite::new("size-split").cases(64).run(|| SizeSplit {
        small: Slab::new(test_pages(8 << 20)),
        large: Bins::new(test_pages(8 << 20)),
    });
}
