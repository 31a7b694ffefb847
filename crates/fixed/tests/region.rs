//! Region startup, partitions, and the bump partition as an allocator.

use core::alloc::Layout;
use heapkit_core::{Allocator, Introspect};
use heapkit_fixed::{
    LayoutError, Prefault, Region, RegionLayout, StartupFailure, TakeError, REGION_BYTES_MAX,
};
use heapkit_pages::{BufferPages, FailingPages};

fn pages(len_bytes: usize) -> BufferPages<'static> {
    BufferPages::owned(len_bytes, 4096).unwrap()
}

#[test]
fn layout_table_prints_every_partition() {
    let mut layout = RegionLayout::new();
    layout.pool::<[u64; 4]>("accounts", 1000);
    layout.ring::<u32>("transfers", 64);
    layout.bytes("journal", 8192, 4096);
    layout.bump("init", 512);
    let region = Region::new(layout, pages(64 * 1024), Prefault::Lazy).unwrap();
    let table = format!("{}", region.layout());
    for needle in [
        "accounts",
        "transfers",
        "journal",
        "init",
        "pool",
        "ring",
        "bytes",
        "bump",
    ] {
        assert!(table.contains(needle), "{needle} missing from\n{table}");
    }
    assert!(table.lines().last().unwrap().starts_with("total"));
    assert_eq!(table.lines().count(), 6);
    assert!(region.mapped_bytes() >= region.layout().total_bytes());
    assert_eq!(region.mapped_bytes() % 4096, 0);
}

#[test]
fn every_prefault_mode_starts() {
    for prefault in [
        Prefault::Lazy,
        Prefault::Touch,
        Prefault::Populate,
        Prefault::Lock,
    ] {
        if cfg!(miri) && matches!(prefault, Prefault::Populate | Prefault::Lock) {
            continue;
        }
        let mut layout = RegionLayout::new();
        let id = layout.pool::<u64>("p", 100);
        let region = Region::new(layout, pages(16 * 1024), prefault).unwrap();
        assert_eq!(region.prefault(), prefault);
        let mut pool = region.pool(id).unwrap();
        let slot = pool.try_acquire(5).unwrap();
        assert_eq!(pool.get(slot), Some(&5));
    }
}

#[test]
fn layout_errors_are_startup_errors() {
    let mut layout = RegionLayout::new();
    layout.pool::<u64>("twice", 1);
    layout.ring::<u64>("twice", 1);
    let error = Region::new(layout, pages(8192), Prefault::Lazy).unwrap_err();
    assert_eq!(
        error.failure,
        StartupFailure::Layout(LayoutError::DuplicateName("twice"))
    );
    assert!(error
        .to_string()
        .contains("two partitions are named \"twice\""));
}

#[test]
fn a_region_the_source_cannot_map_is_a_startup_error() {
    let mut layout = RegionLayout::new();
    layout.bytes("big", 1 << 20, 1);
    let error = Region::new(layout, pages(64 * 1024), Prefault::Lazy).unwrap_err();
    assert_eq!(error.failure, StartupFailure::MapFailed);
    assert_eq!(error.asked_bytes, 1 << 20);
    let message = error.to_string();
    assert!(
        message.contains("asked for: 1.0 MiB (1048576 bytes)"),
        "{message}"
    );
    assert!(message.contains("big"), "{message}");

    let failing = FailingPages::new(pages(64 * 1024));
    failing.plan().fail_every_map();
    let mut layout = RegionLayout::new();
    layout.bump("init", 100);
    let error = Region::new(layout, failing, Prefault::Lazy).unwrap_err();
    assert_eq!(error.failure, StartupFailure::MapFailed);
}

#[test]
#[cfg_attr(miri, ignore)] // reads /proc/meminfo
fn more_than_the_machine_has_is_refused_with_the_numbers() {
    let available = heapkit_fixed::mem_available_bytes().expect("Linux has MemAvailable");
    let mut layout = RegionLayout::new();
    layout.bytes(
        "everything",
        (available + (1 << 30)).min(REGION_BYTES_MAX),
        1,
    );
    let error = Region::new(layout, pages(4096), Prefault::Populate).unwrap_err();
    assert_eq!(error.failure, StartupFailure::NotEnoughMemory);
    assert_eq!(error.available_bytes, Some(available));
    let message = error.to_string();
    assert!(
        message.contains("does not have that much memory"),
        "{message}"
    );
    assert!(message.contains("MemAvailable"), "{message}");
    assert!(message.contains("everything"), "{message}");
}

#[test]
fn partitions_are_lent_once_and_ids_are_checked() {
    let mut layout = RegionLayout::new();
    let a = layout.pool::<u64>("a", 4);
    let r = layout.ring::<u64>("r", 4);
    let b = layout.bytes("b", 64, 8);
    let mut other = RegionLayout::new();
    let foreign = other.pool::<u64>("a", 4);
    let region = Region::new(layout, pages(16 * 1024), Prefault::Lazy).unwrap();

    assert_eq!(region.pool(foreign).unwrap_err(), TakeError::Foreign);
    {
        let _pool = region.pool(a).unwrap();
        let _ring = region.ring(r).unwrap();
        let _bytes = region.bytes(b).unwrap();
        assert_eq!(region.pool(a).unwrap_err(), TakeError::AlreadyTaken("a"));
        assert_eq!(region.ring(r).unwrap_err(), TakeError::AlreadyTaken("r"));
        assert_eq!(region.bytes(b).unwrap_err(), TakeError::AlreadyTaken("b"));
        region.check().unwrap();
    }
    // Dropped handles give their partitions back; a pool comes back empty.
    let mut pool = region.pool(a).unwrap();
    assert_eq!(pool.len(), 0);
    assert_eq!(pool.available(), 4);
    pool.try_acquire(1).unwrap();
}

#[test]
fn values_left_in_pools_and_rings_are_dropped() {
    use std::rc::Rc;
    let mut layout = RegionLayout::new();
    let p = layout.pool::<Rc<()>>("p", 4);
    let r = layout.ring::<Rc<()>>("r", 4);
    let region = Region::new(layout, pages(16 * 1024), Prefault::Lazy).unwrap();
    let counted = Rc::new(());
    {
        let mut pool = region.pool(p).unwrap();
        let mut ring = region.ring(r).unwrap();
        for _ in 0..3 {
            pool.try_acquire(Rc::clone(&counted)).unwrap();
            ring.push_back(Rc::clone(&counted)).unwrap();
        }
        let released = pool.try_acquire(Rc::clone(&counted)).unwrap();
        drop(pool.release(released).unwrap());
        assert_eq!(Rc::strong_count(&counted), 7);
    }
    assert_eq!(Rc::strong_count(&counted), 1);
}

#[test]
fn the_bump_partition_serves_the_region_allocator() {
    let mut layout = RegionLayout::new();
    layout.bump("init", 256);
    let region = Region::new(layout, pages(8192), Prefault::Lazy).unwrap();
    let small = Layout::from_size_align(100, 16).unwrap();
    let a = region.allocate(small).unwrap();
    let b = region.allocate(small).unwrap();
    assert!(
        region.allocate(small).is_err(),
        "256 bytes hold two blocks of 100"
    );
    assert_eq!(region.bump_usage_bytes(), (256, 212));
    region.check().unwrap();
    // SAFETY: `b` then `a` are live blocks with this layout.
    unsafe {
        region.deallocate(b.cast(), small);
        region.deallocate(a.cast(), small);
    }
    assert_eq!(region.bump_usage_bytes(), (256, 0));
    let stats = region.stats().unwrap();
    assert_eq!(
        (stats.live_bytes, stats.live_blocks, stats.peak_bytes),
        (0, 0, 200)
    );

    let mut layout = RegionLayout::new();
    layout.pool::<u8>("no-bump", 1);
    let region = Region::new(layout, pages(8192), Prefault::Lazy).unwrap();
    assert!(region.allocate(small).is_err());
}

#[test]
fn bump_grows_in_place_then_moves() {
    let mut layout = RegionLayout::new();
    layout.bump("init", 1024);
    let region = Region::new(layout, pages(8192), Prefault::Lazy).unwrap();
    let l8 = Layout::from_size_align(8, 8).unwrap();
    let l64 = Layout::from_size_align(64, 8).unwrap();
    let a = region.allocate(l8).unwrap();
    // SAFETY: `a` is a live block of 8 bytes.
    unsafe { a.cast::<u64>().write(42) };
    // SAFETY: `a` is live with `l8`.
    let a = unsafe { region.grow(a.cast(), l8, l64) }.unwrap();
    let b = region.allocate(l8).unwrap();
    let a2 =
        // SAFETY: `a` is live with `l64`; it is not last any more, so it moves.
        unsafe { region.grow(a.cast(), l64, Layout::from_size_align(128, 8).unwrap()) }.unwrap();
    assert_ne!(a2.cast::<u8>(), a.cast::<u8>());
    // SAFETY: the content was copied.
    assert_eq!(unsafe { a2.cast::<u64>().read() }, 42);
    region.check().unwrap();
    // SAFETY: live blocks with these layouts.
    unsafe {
        region.deallocate(b.cast(), l8);
        region.deallocate(a2.cast(), Layout::from_size_align(128, 8).unwrap());
    }
    assert_eq!(region.stats().unwrap().live_bytes, 0);
}
