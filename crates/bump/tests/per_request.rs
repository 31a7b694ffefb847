//! An arena made and dropped per request reuses its chunks: the default source (the global
//! allocator) hands a dropped arena's chunks to the next one, so a loop of fresh arenas maps
//! nothing and faults in no page once warm. The figure counted is the process's minor page
//! faults (a fresh `mmap` chunk per arena costs at least one per request), never time. This
//! file holds one test so that no other test's faults land in the count.

use core::alloc::Layout;
use heapkit_bump::Arena;
use heapkit_core::Introspect;

#[path = "../examples/support/faults.rs"]
mod faults;

const ARENAS: usize = 1000;
/// The small request: 64 blocks of 64 B (two chunks: 4 KiB, then 8 KiB).
const BLOCKS: usize = 64;
const BLOCK_BYTES: usize = 64;
/// Faults allowed in the whole loop: the test harness's own thread and the kernel's
/// book-keeping fault a few pages; one fresh chunk per arena would be at least `ARENAS`.
const FAULTS_ALLOWED: u64 = 64;
const _: () = assert!(FAULTS_ALLOWED < ARENAS as u64 / 8);

/// One request: a fresh arena, `BLOCKS` blocks written, checked, dropped.
fn request() {
    let arena = Arena::new();
    let layout = Layout::from_size_align(BLOCK_BYTES, 8).unwrap();
    for index in 0..BLOCKS {
        let block = arena.alloc_layout(layout);
        // SAFETY: a fresh block of BLOCK_BYTES bytes.
        unsafe { block.as_ptr().write_bytes(index as u8, BLOCK_BYTES) };
    }
    assert_eq!(arena.chunk_count(), 2);
    arena.check().unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "reads /proc/self/stat, which Miri's isolation hides")]
fn a_thousand_fresh_arenas_fault_in_no_page() {
    request();
    let before = faults::minor_faults();
    for _ in 0..ARENAS {
        request();
    }
    let faults = faults::minor_faults() - before;
    assert!(
        faults <= FAULTS_ALLOWED,
        "{faults} minor faults for {ARENAS} fresh arenas: chunks are not reused"
    );
}

/// Under Miri (no /proc), the same loop checks that every chunk goes back: Miri reports a leak
/// of any chunk an arena kept.
#[test]
fn fresh_arenas_give_every_chunk_back() {
    for _ in 0..if cfg!(miri) { 10 } else { ARENAS } {
        request();
    }
}
