//! The store through the public API (its own process: the store is the process's): samples
//! recorded for made-up addresses, found again by `on_free`, totals back to zero, and a full
//! store counting what it drops.

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_prof as prof;

fn addr(i: usize) -> NonNull<u8> {
    NonNull::new(((i + 1) * 64) as *mut u8).expect("non-null")
}

#[test]
fn records_frees_and_drops() {
    prof::activate();
    let stack = prof::capture_stack();
    let layout = Layout::from_size_align(1 << 20, 16).expect("layout");
    let n = prof::LIVE_CAPACITY;
    for i in 0..n {
        assert!(prof::record(addr(i), layout, 1 << 20, &stack), "sample {i}");
    }
    assert_eq!(prof::store_counts().0, n);
    // Full: one more is dropped and counted.
    assert!(!prof::record(addr(n), layout, 1 << 20, &stack));
    assert_eq!(prof::dropped_samples(), 1);
    let per_block = prof::sites()[0].inuse_bytes / n as u64;
    // A 1 MiB block at a 512 KiB mean is sampled with p = 1 - e^-2; it stands for 1 MiB / p.
    let expected = (f64::from(1u32 << 20) / (1.0 - (-2.0f64).exp())).round() as u64;
    assert_eq!(per_block, expected);

    // Free every other block (backward-shift deletion keeps the rest findable), then the rest.
    for i in (0..n).step_by(2) {
        prof::on_free(addr(i));
    }
    assert_eq!(prof::store_counts().0, n / 2);
    assert_eq!(prof::live_samples().len(), n / 2);
    for i in (1..n).step_by(2) {
        prof::on_free(addr(i));
    }
    // Freeing an unknown block changes nothing.
    prof::on_free(addr(n + 5));
    assert_eq!(prof::store_counts().0, 0);
    let sites = prof::sites();
    assert_eq!(sites.len(), 1, "one stack");
    assert_eq!(sites[0].inuse_bytes, 0);
    assert_eq!(sites[0].alloc_bytes, expected * n as u64);
}
