//! Recording samples and reading the profiles back.

use crate::rng::sample_probability;
use crate::sampler::{sample_mean_bytes, samples_may_exist, Guard};
use crate::stack::{self, Stack};
use crate::store::{LiveSample, OBJECT_UNIT, STORE};
use core::alloc::Layout;
use core::ptr::NonNull;

/// Frames of the profiler and the allocator's sampled path above the program's own: the
/// capture, [`capture_stack`] and the allocator's cold function. Frames that are left are
/// harmless (a viewer shows them at the top of every stack); frames cut would lose the caller.
const PROFILER_FRAMES: usize = 1;

/// The calling thread's stack for a sample, without the profiler's frames. Call it from the
/// allocator's sampled path, holding the [`Guard`].
#[inline(never)]
pub fn capture_stack() -> Stack {
    stack::capture(PROFILER_FRAMES)
}

/// Records that the block at `ptr` (`usable_bytes` long) was sampled for a request of
/// `layout`, with the stack `stack`. Returns false when the store was full (the sample is
/// counted as dropped; the block is simply not tracked). Never allocates.
pub fn record(ptr: NonNull<u8>, layout: Layout, usable_bytes: usize, stack: &Stack) -> bool {
    let requested = layout.size();
    let probability = sample_probability(requested.max(1), sample_mean_bytes());
    let sample = LiveSample {
        addr: ptr.as_ptr() as usize,
        requested_bytes: requested,
        usable_bytes,
        align_bytes: layout.align(),
        thread: thread_id(),
        stack: 0,
        // `as` saturates; a probability is never 0 for a non-empty request.
        scaled_bytes: (requested as f64 / probability).round() as u64,
        scaled_objects: (OBJECT_UNIT as f64 / probability).round() as u64,
    };
    STORE.insert(stack, sample)
}

/// Tells the profiler the block at `ptr` is being freed: its sample, if it has one, leaves the
/// in-use profile. Cheap when profiling never ran; never allocates. An allocator calls it for
/// every block that may have been sampled (heapkit: every block of no size class).
pub fn on_free(ptr: NonNull<u8>) {
    // Inside the profiler this thread may hold the store's lock, and frees only the profiler's
    // own buffers, which are never sampled.
    if !samples_may_exist() || crate::sampler::in_profiler() {
        return;
    }
    STORE.remove(ptr);
}

fn thread_id() -> u32 {
    // SAFETY: `gettid` has no preconditions and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    u32::try_from(tid).unwrap_or(0)
}

/// One call site (a distinct stack) and its scaled totals.
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    /// Return addresses, innermost first.
    pub frames: Vec<usize>,
    /// Estimated bytes allocated here and still live.
    pub inuse_bytes: u64,
    /// Estimated objects allocated here and still live.
    pub inuse_objects: f64,
    /// Estimated bytes allocated here since profiling started.
    pub alloc_bytes: u64,
    /// Estimated objects allocated here since profiling started.
    pub alloc_objects: f64,
}

/// One live sampled block.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The block's address.
    pub addr: usize,
    /// The bytes the program asked for.
    pub requested_bytes: usize,
    /// The bytes the block has.
    pub usable_bytes: usize,
    /// The alignment asked for.
    pub align_bytes: usize,
    /// The allocating thread's kernel id.
    pub thread: u32,
    /// The estimated bytes it stands for (requested bytes over the sampling probability).
    pub scaled_bytes: u64,
    /// Return addresses, innermost first.
    pub frames: Vec<usize>,
}

/// Every site with samples since profiling started, with its in-use and allocated totals.
pub fn sites() -> Vec<Site> {
    let _guard = Guard::enter();
    let mut sites = Vec::new();
    STORE.for_each_stack(|record| {
        sites.push(Site {
            frames: record.stack.frames().to_vec(),
            inuse_bytes: record.inuse_bytes,
            inuse_objects: record.inuse_objects as f64 / OBJECT_UNIT as f64,
            alloc_bytes: record.alloc_bytes,
            alloc_objects: record.alloc_objects as f64 / OBJECT_UNIT as f64,
        })
    });
    sites
}

/// Every live sampled block.
pub fn live_samples() -> Vec<Sample> {
    let _guard = Guard::enter();
    let mut samples = Vec::new();
    STORE.for_each_live(|live, stack| {
        samples.push(Sample {
            addr: live.addr,
            requested_bytes: live.requested_bytes,
            usable_bytes: live.usable_bytes,
            align_bytes: live.align_bytes,
            thread: live.thread,
            scaled_bytes: live.scaled_bytes,
            frames: stack.frames().to_vec(),
        })
    });
    samples
}

/// The estimated bytes in use over every site.
pub fn inuse_bytes() -> u64 {
    sites().iter().map(|site| site.inuse_bytes).sum()
}

/// Samples lost because the store was full.
pub fn dropped_samples() -> u64 {
    STORE.dropped()
}

/// Live samples held, and distinct stacks.
pub fn store_counts() -> (usize, usize) {
    STORE.counts()
}

/// Takes the profiler's lock, for `fork`'s prepare handler, *before* the heap's locks: a reader
/// of the profile allocates while it holds this lock, and the heap never calls the profiler
/// while it holds one of its own (a sample is recorded after its block is allocated, a free is
/// reported before the block reaches the backend).
pub fn lock_for_fork() {
    STORE.lock();
}

/// Releases what [`lock_for_fork`] took.
///
/// # Safety
/// The calling thread took it (in a fork child: the parent's forking thread did, and this is
/// that thread).
pub unsafe fn unlock_after_fork() {
    // SAFETY: forwarded from the caller.
    unsafe { STORE.unlock() }
}
