//! The OS-facing workloads of `benches/c/stress.c` for the Rust allocators (issue #24), at a
//! scale one criterion iteration can hold: one producer and 2 or 8 consumers freeing its
//! blocks, the large-block replacement loop, and the ownership-transfer stress with threads
//! re-created each round. What they cost the kernel (minor faults, context switches) is read
//! with `getrusage` ([`Usage`]) by `heapkit-probe stress NAME`, one process per allocator.
//!
//! ```text
//!   prodcons   producer ─► ring ─► consumer 1 .. N (free)         PRODCONS_BLOCKS of 64 B
//!   large      20 live buffers, each replaced in turn by one of 2-10 MiB, zero-filled
//!   transfer   16 threads (new each call) allocate 8 B-1 KiB (1 in 4096: 160 KiB-10 MiB),
//!              grow their pointer array with realloc, swap each object into a shared slot,
//!              free what comes back
//! ```

use crate::rng::Rng;
use crate::threads::Handoff;
use crate::workloads::must_alloc;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Instant;

/// The allocators the stress workloads compare (issue #24.4): glibc, the mimalloc and
/// jemalloc crates, and heapkit.
pub const STRESS_ALLOCATORS: [&str; 4] = ["system", "mimalloc", "jemalloc", "heapkit"];

/// Blocks the producer hands over per call of [`ProdCons::run`].
pub const PRODCONS_BLOCKS: usize = 20_000;
/// The producer's block size (stress.c's `PRODCONS_BLOCK_BYTES`).
pub const PRODCONS_BLOCK_BYTES: usize = 64;
/// The consumer counts the suite measures.
pub const PRODCONS_CONSUMERS: [usize; 2] = [2, 8];

/// Live buffers of the large-block loop (stress.c runs it with 20).
pub const LARGE_BUFFERS: usize = 20;
/// Replacements per call of [`LargeBlocks::replace`].
pub const LARGE_REPLACEMENTS: usize = 10;
/// The smallest replacement buffer (stress.c: 5 MiB; smaller here so that a criterion
/// iteration stays short, still far above every allocator's mmap threshold).
const LARGE_MIN_BYTES: usize = 2 << 20;
/// Sizes span this much above the smallest.
const LARGE_SPAN_BYTES: usize = 8 << 20;

/// Threads of the transfer stress, re-created each call (16 on however many cores).
pub const TRANSFER_THREADS: usize = 16;
/// Objects each transfer thread allocates per call.
pub const TRANSFER_OBJECTS_PER_THREAD: usize = 2_000;
/// The shared array objects are swapped through.
const SHARED_SLOTS: usize = 4096;
/// One object in this many is large (160 KiB-10 MiB).
const LARGE_ONE_IN: u64 = 4096;
/// Every block here is at least a word and aligned to one: its size is written in its first
/// word, so whichever thread frees it can rebuild its layout.
const BLOCK_ALIGN_BYTES: usize = 8;
const PAGE_BYTES: usize = 4096;

const _: () = assert!(PRODCONS_BLOCK_BYTES >= BLOCK_ALIGN_BYTES);
const _: () = assert!(LARGE_REPLACEMENTS <= LARGE_BUFFERS);

fn layout_of(size_bytes: usize) -> Layout {
    Layout::from_size_align(size_bytes, BLOCK_ALIGN_BYTES).expect("a valid benchmark layout")
}

/// One producer allocates [`PRODCONS_BLOCKS`] blocks of 64 B and hands them round-robin to
/// `consumers` threads (passing over a full ring; yielding only when all are full), which
/// free them: every free is remote.
pub struct ProdCons {
    rings: Vec<Box<Handoff>>,
}

impl ProdCons {
    /// Rings for up to `consumers_max` consumers (allocated by the benchmark's own global
    /// allocator, not the one measured).
    pub fn new(consumers_max: usize) -> ProdCons {
        ProdCons {
            rings: (0..consumers_max).map(|_| Handoff::new()).collect(),
        }
    }

    /// One call with `consumers` (at most the `consumers_max` given to [`new`](Self::new)).
    pub fn run<G: GlobalAlloc + Sync>(&mut self, alloc: &G, consumers: usize) {
        let layout = layout_of(PRODCONS_BLOCK_BYTES);
        let rings = &mut self.rings[..consumers];
        rings.iter_mut().for_each(|ring| ring.clear());
        let rings = &*rings;
        std::thread::scope(|scope| {
            for ring in rings {
                scope.spawn(move || loop {
                    let block = ring.pop();
                    if block.is_null() {
                        return;
                    }
                    // SAFETY: a block of `alloc` with `layout`, freed once here.
                    unsafe { alloc.dealloc(block, layout) };
                });
            }
            let mut next = 0;
            for index in 0..PRODCONS_BLOCKS {
                // SAFETY: non-zero layout; the block is written within its size.
                let block = unsafe { must_alloc(alloc, layout) };
                // SAFETY: as above.
                unsafe { block.write_bytes(index as u8, PRODCONS_BLOCK_BYTES) };
                let mut tried = 0;
                while !rings[next].try_push(block) {
                    next = (next + 1) % consumers;
                    tried += 1;
                    if tried % consumers == 0 {
                        std::thread::yield_now();
                    }
                }
                next = (next + 1) % consumers;
            }
            // The end of the stream: each consumer stops at its null.
            for ring in rings {
                ring.push(std::ptr::null_mut());
            }
        });
    }
}

/// The large-block loop: [`LARGE_BUFFERS`] live buffers; each call replaces the next
/// [`LARGE_REPLACEMENTS`] in turn by a new one of 2-10 MiB, zero-filled as C++'s
/// `std::make_unique<char[]>(n)` does (allocate, then fill with zeros).
pub struct LargeBlocks {
    live: Vec<(*mut u8, usize)>,
    next: usize,
    lcg: u64,
}

impl LargeBlocks {
    /// The initial buffers, from `alloc`.
    pub fn new<G: GlobalAlloc>(alloc: &G) -> LargeBlocks {
        let mut blocks = LargeBlocks {
            live: Vec::with_capacity(LARGE_BUFFERS),
            next: 0,
            lcg: 42,
        };
        for _ in 0..LARGE_BUFFERS {
            let size_bytes = blocks.next_size();
            blocks.live.push((zeroed(alloc, size_bytes), size_bytes));
        }
        blocks
    }

    /// Knuth's MMIX LCG, as stress.c: every allocator gets the same sizes.
    fn next_size(&mut self) -> usize {
        self.lcg = self
            .lcg
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        LARGE_MIN_BYTES + ((self.lcg >> 33) as usize % (LARGE_SPAN_BYTES + 1))
    }

    /// Replaces the next [`LARGE_REPLACEMENTS`] buffers.
    pub fn replace<G: GlobalAlloc>(&mut self, alloc: &G) {
        for _ in 0..LARGE_REPLACEMENTS {
            let (old, old_bytes) = self.live[self.next];
            // SAFETY: a live buffer of `alloc`, freed once with its layout.
            unsafe { alloc.dealloc(old, layout_of(old_bytes)) };
            let size_bytes = self.next_size();
            self.live[self.next] = (zeroed(alloc, size_bytes), size_bytes);
            self.next = (self.next + 1) % LARGE_BUFFERS;
        }
    }

    /// Frees every buffer (they must come from `alloc`).
    pub fn drain<G: GlobalAlloc>(&mut self, alloc: &G) {
        for (block, size_bytes) in self.live.drain(..) {
            // SAFETY: each buffer is live with this layout and freed once.
            unsafe { alloc.dealloc(block, layout_of(size_bytes)) };
        }
    }
}

/// A block of `size_bytes` filled with zeros by the caller, not by `alloc_zeroed` (which may
/// skip the fill on fresh pages): what the C++ program does.
fn zeroed<G: GlobalAlloc>(alloc: &G, size_bytes: usize) -> *mut u8 {
    // SAFETY: a non-zero layout; the fill stays within the block.
    unsafe {
        let block = must_alloc(alloc, layout_of(size_bytes));
        block.write_bytes(0, size_bytes);
        std::hint::black_box(block)
    }
}

/// The shared array of the transfer stress: each slot holds an object or null.
pub struct Transfer {
    slots: Box<[AtomicPtr<u8>]>,
    round: u64,
}

impl Default for Transfer {
    fn default() -> Self {
        Self::new()
    }
}

impl Transfer {
    /// An empty shared array.
    pub fn new() -> Transfer {
        Transfer {
            slots: (0..SHARED_SLOTS)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            round: 0,
        }
    }

    /// One round: [`TRANSFER_THREADS`] new threads each allocate
    /// [`TRANSFER_OBJECTS_PER_THREAD`] objects and swap them through the shared array.
    pub fn round<G: GlobalAlloc + Sync>(&mut self, alloc: &G) {
        self.round += 1;
        let slots = &*self.slots;
        let round = self.round;
        std::thread::scope(|scope| {
            for thread in 0..TRANSFER_THREADS {
                let seed = 0x9E37_79B9_7F4A_7C15u64
                    .wrapping_mul(round * TRANSFER_THREADS as u64 + thread as u64 + 1);
                scope.spawn(move || transfer_worker(alloc, slots, Rng::new(seed)));
            }
        });
    }

    /// Frees what is left in the shared array (it belongs to no thread).
    pub fn drain<G: GlobalAlloc>(&mut self, alloc: &G) {
        for slot in self.slots.iter() {
            free_object(alloc, slot.swap(std::ptr::null_mut(), Ordering::AcqRel));
        }
    }
}

/// 8 B-1 KiB, and one in [`LARGE_ONE_IN`] of 160 KiB-10 MiB (stress.c's `transfer_size`).
fn transfer_size(r: u64) -> usize {
    if r % LARGE_ONE_IN != 0 {
        return 8 + ((r >> 32) % 1017) as usize;
    }
    let base = (10usize << 20) >> ((r >> 20) % 6);
    base - ((r >> 32) as usize % (base / 2))
}

/// Writes an object as a program would (every byte of a small one, a byte per page of a large
/// one), with its size in its first word.
///
/// # Safety
/// `object` is a live block of at least `size_bytes` (≥ 8), 8-aligned.
unsafe fn touch(object: *mut u8, size_bytes: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        if size_bytes <= 1024 {
            object.write_bytes(size_bytes as u8, size_bytes);
        } else {
            for offset in (0..size_bytes).step_by(PAGE_BYTES) {
                object.add(offset).write(1);
            }
        }
        object.cast::<usize>().write(size_bytes);
    }
}

/// Frees an object of the transfer stress (or nothing, for null), its layout read from its
/// first word.
fn free_object<G: GlobalAlloc>(alloc: &G, object: *mut u8) {
    if object.is_null() {
        return;
    }
    // SAFETY: every object in the shared array was written by `touch`; whoever swapped it
    // out owns it now.
    unsafe {
        let size_bytes = object.cast::<usize>().read();
        alloc.dealloc(object, layout_of(size_bytes));
    }
}

/// A transfer thread's pointer array, grown with `realloc` from the allocator measured.
struct Owned<'a, G: GlobalAlloc> {
    alloc: &'a G,
    items: *mut *mut u8,
    len: usize,
    capacity: usize,
}

impl<G: GlobalAlloc> Owned<'_, G> {
    fn array_layout(capacity: usize) -> Layout {
        Layout::array::<*mut u8>(capacity).expect("a small pointer array")
    }

    fn push(&mut self, object: *mut u8) {
        if self.len == self.capacity {
            let capacity = self.capacity + self.capacity / 2 + 8;
            // SAFETY: the array is null with capacity 0, else live with its layout; the new
            // size is non-zero.
            self.items = unsafe {
                if self.items.is_null() {
                    must_alloc(self.alloc, Self::array_layout(capacity))
                } else {
                    let grown = self.alloc.realloc(
                        self.items.cast(),
                        Self::array_layout(self.capacity),
                        Self::array_layout(capacity).size(),
                    );
                    assert!(!grown.is_null(), "realloc failed during a benchmark");
                    grown
                }
            }
            .cast();
            self.capacity = capacity;
        }
        // SAFETY: `len < capacity`.
        unsafe { self.items.add(self.len).write(object) };
        self.len += 1;
    }

    /// Swaps every object into a random shared slot, frees what comes back, and frees the
    /// array (the next batch grows it anew, as stress.c).
    fn swap_all(&mut self, slots: &[AtomicPtr<u8>], rng: &mut Rng) {
        for index in 0..self.len {
            // SAFETY: `index < len`: an object this thread owns.
            let object = unsafe { self.items.add(index).read() };
            let slot = &slots[rng.below(slots.len())];
            free_object(self.alloc, slot.swap(object, Ordering::AcqRel));
        }
        if !self.items.is_null() {
            // SAFETY: the array is live with this layout.
            unsafe {
                self.alloc
                    .dealloc(self.items.cast(), Self::array_layout(self.capacity))
            };
        }
        self.items = std::ptr::null_mut();
        self.len = 0;
        self.capacity = 0;
    }
}

fn transfer_worker<G: GlobalAlloc>(alloc: &G, slots: &[AtomicPtr<u8>], mut rng: Rng) {
    let mut owned = Owned {
        alloc,
        items: std::ptr::null_mut(),
        len: 0,
        capacity: 0,
    };
    let mut batch = 64 + rng.below(961);
    for _ in 0..TRANSFER_OBJECTS_PER_THREAD {
        let size_bytes = transfer_size(rng.next_u64());
        // SAFETY: a non-zero layout; `touch` stays within the block.
        unsafe {
            let object = must_alloc(alloc, layout_of(size_bytes));
            touch(object, size_bytes);
            owned.push(object);
        }
        if owned.len == batch {
            owned.swap_all(slots, &mut rng);
            batch = 64 + rng.below(961);
        }
    }
    owned.swap_all(slots, &mut rng);
}

/// What the kernel counted for this process (`getrusage(RUSAGE_SELF)`: every thread, exited
/// ones included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Minor page faults (`ru_minflt`).
    pub minor_faults: u64,
    /// Voluntary context switches (`ru_nvcsw`: the thread slept or waited).
    pub voluntary_switches: u64,
    /// Involuntary context switches (`ru_nivcsw`: the thread was preempted).
    pub involuntary_switches: u64,
}

impl Usage {
    /// The process's figures now (zeros if `getrusage` fails).
    pub fn now() -> Usage {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `usage` is a valid, writable rusage.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
            return Usage::default();
        }
        // SAFETY: getrusage succeeded and wrote the struct (it was zeroed before anyway).
        let usage = unsafe { usage.assume_init() };
        let count = |value: libc::c_long| u64::try_from(value).unwrap_or(0);
        Usage {
            minor_faults: count(usage.ru_minflt),
            voluntary_switches: count(usage.ru_nvcsw),
            involuntary_switches: count(usage.ru_nivcsw),
        }
    }

    /// The figures counted between `before` and `self`.
    pub fn since(self, before: Usage) -> Usage {
        Usage {
            minor_faults: self.minor_faults.saturating_sub(before.minor_faults),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(before.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(before.involuntary_switches),
        }
    }
}

/// One workload's figures in a probe: its wall time and what the kernel counted meanwhile.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The workload and its parameter, as the criterion id names them (`prodcons/8`).
    pub workload: String,
    /// Operations done: blocks handed over, buffers replaced, objects transferred.
    pub ops: u64,
    /// Wall time of the whole run.
    pub wall_ns: u64,
    /// What `getrusage` counted during the run.
    pub usage: Usage,
}

/// Runs `calls` calls of `run` and measures them.
fn measure(workload: String, ops_per_call: usize, calls: usize, mut run: impl FnMut()) -> Measured {
    let before = Usage::now();
    let start = Instant::now();
    for _ in 0..calls {
        run();
    }
    let wall_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Measured {
        workload,
        ops: (ops_per_call * calls) as u64,
        wall_ns,
        usage: Usage::now().since(before),
    }
}

/// Every stress workload on `alloc`, measured (`heapkit-probe stress NAME`; run each
/// allocator in its own process, so that faults and switches are its own). `quick` runs a
/// quarter of the calls.
pub fn measure_all<G: GlobalAlloc + Sync>(alloc: &G, quick: bool) -> Vec<Measured> {
    let calls = |full: usize| if quick { full.div_ceil(4) } else { full };
    let mut results = Vec::new();
    let mut prodcons = ProdCons::new(PRODCONS_CONSUMERS.iter().copied().max().unwrap_or(1));
    for consumers in PRODCONS_CONSUMERS {
        results.push(measure(
            format!("prodcons/{consumers}"),
            PRODCONS_BLOCKS,
            calls(40),
            || prodcons.run(alloc, consumers),
        ));
    }
    let mut large = LargeBlocks::new(alloc);
    results.push(measure(
        "large/20x2-10MiB".to_string(),
        LARGE_REPLACEMENTS,
        calls(20),
        || large.replace(alloc),
    ));
    large.drain(alloc);
    let mut transfer = Transfer::new();
    results.push(measure(
        format!("transfer/{TRANSFER_THREADS}"),
        TRANSFER_THREADS * TRANSFER_OBJECTS_PER_THREAD,
        calls(8),
        || transfer.round(alloc),
    ));
    transfer.drain(alloc);
    results
}

/// The probe's JSON line for allocator `name`.
pub fn to_json(name: &str, results: &[Measured]) -> Value {
    let workloads: Vec<Value> = results
        .iter()
        .map(|m| {
            json!({
                "workload": m.workload,
                "ops": m.ops,
                "wall_ns": m.wall_ns,
                "minor_faults": m.usage.minor_faults,
                "voluntary_switches": m.usage.voluntary_switches,
                "involuntary_switches": m.usage.involuntary_switches,
            })
        })
        .collect();
    json!({ "allocator": name, "mode": "stress", "workloads": workloads })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocators::{for_each, Visit};

    struct All;
    impl Visit for All {
        fn visit<G: GlobalAlloc + Sync + 'static>(&mut self, _: &'static str, alloc: &'static G) {
            ProdCons::new(2).run(alloc, 2);
            let mut large = LargeBlocks::new(alloc);
            large.replace(alloc);
            large.drain(alloc);
            let mut transfer = Transfer::new();
            transfer.round(alloc);
            transfer.drain(alloc);
        }
    }

    #[test]
    fn stress_workloads_run_on_every_allocator() {
        for_each(&mut All);
    }

    #[test]
    fn transfer_sizes_are_small_or_large() {
        assert_eq!(transfer_size((1 << 32) | 1), 9);
        let large = transfer_size(0);
        assert!((5 << 20..=10 << 20).contains(&large), "{large}");
    }

    #[test]
    fn usage_counts_the_faults_of_fresh_pages() {
        let before = Usage::now();
        // Above glibc's largest mmap threshold (32 MiB): fresh pages, whatever ran before.
        let pages = vec![1u8; 40 << 20];
        std::hint::black_box(&pages);
        assert!(Usage::now().since(before).minor_faults > 0);
    }
}
