//! A region in a memory-mapped file: a byte partition keeps its bytes across runs (here: the
//! region dropped and built again over the file opened anew), while pools start empty.

use heapkit_fixed::{Prefault, Region, RegionLayout};
use heapkit_pages::FilePages;

fn layout() -> (
    RegionLayout,
    heapkit_fixed::BytesId,
    heapkit_fixed::PoolId<u64>,
) {
    let mut layout = RegionLayout::new();
    let journal = layout.bytes("journal", 8192, 4096);
    let pool = layout.pool::<u64>("ids", 16);
    (layout, journal, pool)
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map a file")]
fn a_byte_partition_in_a_file_outlives_the_region() {
    let path = std::env::temp_dir().join(format!("heapkit-fixed-{}.region", std::process::id()));
    let _ = std::fs::remove_file(&path);
    {
        let (layout, journal, pool) = layout();
        let region = Region::new(
            layout,
            FilePages::create(&path, 256 * 1024).unwrap(),
            Prefault::Lazy,
        )
        .unwrap();
        let mut bytes = region.bytes(journal).unwrap();
        bytes[..5].copy_from_slice(b"hello");
        bytes[8191] = 42;
        let mut ids = region.pool(pool).unwrap();
        ids.try_acquire(7).unwrap();
    } // region, pool and mapping gone

    let (layout, journal, pool) = layout();
    let region = Region::new(layout, FilePages::open(&path).unwrap(), Prefault::Lazy).unwrap();
    let bytes = region.bytes(journal).unwrap();
    assert_eq!(&bytes[..5], b"hello", "the journal came back");
    assert_eq!(bytes[8191], 42);
    let ids = region.pool(pool).unwrap();
    assert!(ids.is_empty(), "a pool starts empty in every run");
    drop((bytes, ids));
    drop(region);
    std::fs::remove_file(&path).unwrap();
}
