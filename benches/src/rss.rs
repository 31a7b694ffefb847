//! Memory use: peak and final resident set size (RSS) after a mixed workload, read from
//! `/proc/self/status` (VmHWM, the peak) and `/proc/self/statm` (now). Run each allocator in
//! its own process (`heapkit-probe rss NAME`) so one allocator's cached pages never count
//! against another.
//!
//! ```text
//!   live bytes
//!   peak ┤      ╱╲            phase 1: grow with churn (2 allocations per free)
//!        │    ╱    ╲          phase 2: free random blocks down to a quarter (holes)
//!   1/2  ┤  ╱        ╲  ╱──   phase 3: small blocks up to half (can the holes be reused?)
//!   1/4  ┤╱            ╲╱
//!        └──────────────────
//! ```
//! *Fragmentation* is the final RSS (above the process's baseline) divided by the final live
//! bytes, minus one: 0 means every resident byte holds live data.

use crate::rng::Rng;
use crate::workloads::must_alloc;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout};

/// Live-set entries reserved (and touched) before the baseline is read, so the bookkeeping's
/// own memory is in the baseline and not in any allocator's figure.
const TRACKED_BLOCKS_MAX: usize = 1 << 18;

/// Bytes resident now and at the peak, from procfs (0 where procfs is missing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resident {
    /// Resident now (`/proc/self/statm`, second field, in pages).
    pub now_bytes: usize,
    /// Peak since start or since [`reset_peak`] (`VmHWM` in `/proc/self/status`).
    pub peak_bytes: usize,
}

/// Reads the process's resident set sizes.
pub fn resident() -> Resident {
    // SAFETY: sysconf has no memory-safety preconditions.
    let page_bytes = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let now_pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<usize>().ok())
        .unwrap_or(0);
    let peak_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<usize>().ok()
        })
        .unwrap_or(0);
    Resident {
        now_bytes: now_pages * page_bytes,
        peak_bytes: peak_kib * 1024,
    }
}

/// Resets the peak (VmHWM) to the current RSS (Linux ≥ 4.0); false when the kernel refused.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// What the mixed workload asks of an allocator: allocate, and free (arenas ignore frees).
pub trait Heap {
    /// Allocates `layout` (non-zero size) or stops the probe.
    fn alloc_block(&mut self, layout: Layout) -> *mut u8;
    /// Frees a block from `alloc_block` with its layout.
    ///
    /// # Safety
    /// `block` is live, from this heap, with `layout`.
    unsafe fn free_block(&mut self, block: *mut u8, layout: Layout);
}

/// A [`GlobalAlloc`] as a [`Heap`].
pub struct Global<'a, G>(pub &'a G);

impl<G: GlobalAlloc> Heap for Global<'_, G> {
    fn alloc_block(&mut self, layout: Layout) -> *mut u8 {
        // SAFETY: the workload passes non-zero layouts.
        unsafe { must_alloc(self.0, layout) }
    }
    unsafe fn free_block(&mut self, block: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.dealloc(block, layout) }
    }
}

/// An arena as a [`Heap`]: frees do nothing until the arena is dropped.
pub struct ArenaHeap<A>(pub A);

impl<A: crate::latency::ResetArena> Heap for ArenaHeap<A> {
    fn alloc_block(&mut self, layout: Layout) -> *mut u8 {
        self.0.alloc_block(layout)
    }
    unsafe fn free_block(&mut self, _: *mut u8, _: Layout) {}
}

/// The mixed workload's figures, all in bytes above the baseline.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MemoryUse {
    /// Process RSS before the workload (runtime, binary, bookkeeping).
    pub baseline_bytes: usize,
    /// Largest live (requested) bytes.
    pub peak_live_bytes: usize,
    /// Peak RSS minus the baseline.
    pub peak_rss_bytes: usize,
    /// Live bytes at the end.
    pub final_live_bytes: usize,
    /// RSS at the end minus the baseline.
    pub final_rss_bytes: usize,
}

impl MemoryUse {
    /// Resident bytes per live byte at the end, minus one (0 = no waste).
    pub fn fragmentation(&self) -> f64 {
        self.final_rss_bytes as f64 / self.final_live_bytes.max(1) as f64 - 1.0
    }

    /// Peak resident bytes per peak live byte, minus one.
    pub fn peak_overhead(&self) -> f64 {
        self.peak_rss_bytes as f64 / self.peak_live_bytes.max(1) as f64 - 1.0
    }

    /// The JSON object the probe prints (schema in docs/results-schema.md, `rss`).
    pub fn to_json(&self, allocator: &str) -> Value {
        json!({
            "allocator": allocator,
            "workload": "mixed",
            "baseline_bytes": self.baseline_bytes,
            "peak_live_bytes": self.peak_live_bytes,
            "peak_rss_bytes": self.peak_rss_bytes,
            "final_live_bytes": self.final_live_bytes,
            "final_rss_bytes": self.final_rss_bytes,
            "fragmentation": self.fragmentation(),
            "peak_overhead": self.peak_overhead(),
        })
    }
}

/// The three-phase mixed workload (see the module diagram) up to `peak_target_bytes` live.
/// Blocks still live at the end are left to the process's exit: freeing them first would
/// change the final RSS this measures.
pub fn mixed(heap: &mut impl Heap, peak_target_bytes: usize) -> MemoryUse {
    assert!(
        peak_target_bytes >= 1 << 20,
        "too small to measure in pages"
    );
    let mut live: Vec<(*mut u8, Layout)> = Vec::with_capacity(TRACKED_BLOCKS_MAX);
    // Touch the bookkeeping now so its pages are in the baseline.
    // SAFETY: writing within the reserved capacity of a Vec of plain data; len stays 0.
    unsafe { live.as_mut_ptr().write_bytes(0, TRACKED_BLOCKS_MAX) };
    reset_peak();
    let baseline_bytes = resident().now_bytes;
    let mut rng = Rng::new(0x3155_ED00);
    let mut live_bytes = 0usize;
    // Phase 1: grow with churn.
    while live_bytes < peak_target_bytes {
        if live.is_empty() || rng.below(3) != 0 {
            live_bytes += alloc_one(heap, &mut live, rng.layout(16, 65536));
        } else {
            live_bytes -= free_one(heap, &mut live, &mut rng);
        }
    }
    let peak_live_bytes = live_bytes;
    // Phase 2: free random blocks down to a quarter, leaving holes.
    while live_bytes > peak_target_bytes / 4 {
        live_bytes -= free_one(heap, &mut live, &mut rng);
    }
    // Phase 3: small blocks up to half: reusing the holes keeps RSS flat.
    while live_bytes < peak_target_bytes / 2 {
        live_bytes += alloc_one(heap, &mut live, rng.layout(16, 1024));
    }
    let end = resident();
    MemoryUse {
        baseline_bytes,
        peak_live_bytes,
        peak_rss_bytes: end.peak_bytes.saturating_sub(baseline_bytes),
        final_live_bytes: live_bytes,
        final_rss_bytes: end.now_bytes.saturating_sub(baseline_bytes),
    }
}

/// Writes one byte per 4 KiB page of the block and its last byte.
///
/// # Safety
/// `block` is valid for writes of `size_bytes` (non-zero) bytes.
unsafe fn touch(block: *mut u8, size_bytes: usize) {
    let mut offset = 0;
    while offset < size_bytes {
        // SAFETY: offset < size_bytes.
        unsafe { block.add(offset).write(1) };
        offset += 4096;
    }
    // SAFETY: size_bytes > 0, so the last byte is inside the block.
    unsafe { block.add(size_bytes - 1).write(1) };
}

/// Allocates and touches one block, tracking it in `live`; returns its size.
fn alloc_one(heap: &mut impl Heap, live: &mut Vec<(*mut u8, Layout)>, layout: Layout) -> usize {
    assert!(live.len() < TRACKED_BLOCKS_MAX, "raise TRACKED_BLOCKS_MAX");
    let block = heap.alloc_block(layout);
    // SAFETY: the block holds `layout.size()` bytes: touch every page of it, as a program that
    // uses its memory would.
    unsafe { touch(block, layout.size()) };
    live.push((block, layout));
    layout.size()
}

/// Frees a random tracked block; returns its size.
fn free_one(heap: &mut impl Heap, live: &mut Vec<(*mut u8, Layout)>, rng: &mut Rng) -> usize {
    let (block, layout) = live.swap_remove(rng.below(live.len()));
    // SAFETY: the block was live in `live` and is removed from it, so it is freed once.
    unsafe { heap.free_block(block, layout) };
    layout.size()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procfs_reports_resident_memory() {
        let now = resident();
        assert!(
            now.now_bytes > 0 && now.peak_bytes >= now.now_bytes / 2,
            "{now:?}"
        );
    }

    #[test]
    fn the_mixed_workload_measures_an_allocator() {
        let usage = mixed(&mut Global(&crate::allocators::HEAPKIT_SLAB), 2 << 20);
        assert!(usage.peak_live_bytes >= 2 << 20);
        assert!(usage.final_live_bytes >= 1 << 20);
        let json = usage.to_json("heapkit-slab");
        assert!(json["fragmentation"].as_f64().is_some());
    }
}
