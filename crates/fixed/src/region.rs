//! `Region`: one mapping for all of a program's fixed memory, reserved at startup.

use crate::bump::BumpArena;
use crate::layout::{HumanBytes, LayoutError, Partition, PartitionKind, RegionLayout};
use crate::meminfo::mem_available_bytes;
use crate::{BytesId, Pool, PoolId, Ring, RingId};
use core::alloc::Layout;
use core::fmt;
use core::mem::{align_of, size_of};
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use heapkit_core::{AllocError, Allocator, Introspect, InvariantError, PageSource, Stats};

/// Bits of a pool's tag (what its `SlotId`s carry) that hold the partition index; the rest
/// hold the layout's tag, so ids of different pools differ.
const POOL_TAG_INDEX_BITS: u32 = 5;
const _: () = assert!(crate::PARTITIONS_MAX <= 1 << POOL_TAG_INDEX_BITS);

/// How the region's pages are made resident at startup.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Prefault {
    /// Leave them to be faulted in on first touch (cheapest startup; the `MemAvailable` check
    /// still runs, but memory is not reserved).
    Lazy,
    /// Write one byte in every page: works with any page source, but a machine that cannot
    /// hold the pages answers with the OOM killer during startup rather than an error.
    Touch,
    /// `madvise(MADV_POPULATE_WRITE)` (Linux 5.14+): the kernel faults every page in and
    /// *returns an error* when it cannot. Falls back to `Touch` on older kernels.
    Populate,
    /// `mlock`: faults every page in and pins it (no swap), or fails with an error; needs
    /// `RLIMIT_MEMLOCK` (`ulimit -l`) or `CAP_IPC_LOCK` for large regions.
    Lock,
}

/// What went wrong at startup.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StartupFailure {
    /// The layout is invalid.
    Layout(LayoutError),
    /// The region is larger than `MemAvailable`.
    NotEnoughMemory,
    /// The page source refused to map the region.
    MapFailed,
    /// `MADV_POPULATE_WRITE` failed with this `errno`.
    PopulateFailed {
        /// The OS error number.
        errno: i32,
    },
    /// `mlock` failed with this `errno`.
    LockFailed {
        /// The OS error number.
        errno: i32,
    },
}

/// A region that cannot be built, with everything a person needs to fix the configuration.
///
/// It prints as a paragraph plus the layout table. It is large (it carries the table) but built
/// once, at startup, and never allocates.
#[derive(Clone, Debug)]
pub struct StartupError {
    /// What failed.
    pub failure: StartupFailure,
    /// The region's size, rounded up to whole pages.
    pub asked_bytes: usize,
    /// `MemAvailable` when it was checked, if it could be read.
    pub available_bytes: Option<usize>,
    /// The layout that was asked for.
    pub layout: RegionLayout,
}

impl fmt::Display for StartupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupFailure::Layout(error) => write!(f, "invalid layout: {error}"),
            StartupFailure::NotEnoughMemory => {
                f.write_str("the machine does not have that much memory available")
            }
            StartupFailure::MapFailed => f.write_str("the page source refused to map the region"),
            StartupFailure::PopulateFailed { errno } => {
                write!(f, "pre-faulting the region failed (errno {errno})")
            }
            StartupFailure::LockFailed { errno } => write!(
                f,
                "mlock failed (errno {errno}): raise RLIMIT_MEMLOCK (ulimit -l) or choose another Prefault"
            ),
        }
    }
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "heapkit-fixed: cannot reserve the region at startup: {}.\n  asked for: {} ({} bytes)\n  available: ",
            self.failure,
            HumanBytes(self.asked_bytes),
            self.asked_bytes
        )?;
        match self.available_bytes {
            Some(bytes) => write!(f, "{} ({} bytes, MemAvailable)", HumanBytes(bytes), bytes)?,
            None => f.write_str("unknown (MemAvailable could not be read)")?,
        }
        write!(f, "\n{}", self.layout)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StartupError {}

/// Why a partition could not be taken.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TakeError {
    /// The id is from another layout, or names a partition of another kind or element type.
    Foreign,
    /// The partition is in use (its pool, ring or bytes handle is alive).
    AlreadyTaken(&'static str),
}

impl fmt::Display for TakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TakeError::Foreign => f.write_str("the id does not name a partition of this region"),
            TakeError::AlreadyTaken(name) => write!(f, "partition {name:?} is already taken"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TakeError {}

/// All of a program's fixed memory: one mapping, split into the partitions of a
/// [`RegionLayout`].
///
/// `Region::new` does everything that can fail, in order, and stops at the first failure with
/// a [`StartupError`] that names the bytes asked for, the partitions and the memory available:
/// 1. the layout is valid (no duplicate names, no overflow);
/// 2. the region fits in `MemAvailable` (a layout the machine cannot hold fails *now*, not at
///    3 AM when the last pool slot is first touched);
/// 3. the page source maps it;
/// 4. it is pre-faulted as asked ([`Prefault`]), so that no page fault and no OOM kill can
///    happen later.
///
/// After that, taking a pool, ring or byte partition cannot fail except by asking twice.
///
/// The region is also an [`Allocator`]: it serves allocations from its bump partition (and
/// refuses them when the layout has none).
pub struct Region<P: PageSource> {
    base: NonNull<u8>,
    mapped_bytes: usize,
    prefault: Prefault,
    layout: RegionLayout,
    /// Bit `i` is set while partition `i` is lent out as a pool, ring or bytes handle.
    taken_mask: AtomicU64,
    bump: Option<BumpArena>,
    pages: P,
}

// SAFETY: the region owns its mapping; its shared state (`taken_mask`, the bump arena) is
// atomic, and partitions are lent to one handle at a time.
unsafe impl<P: PageSource + Send> Send for Region<P> {}
// SAFETY: see above; every `&self` method synchronises through atomics.
unsafe impl<P: PageSource + Sync> Sync for Region<P> {}
// Checked in test builds: naming a page source here keeps heapkit-pages a dev-dependency.
#[cfg(test)]
static_assertions::assert_impl_all!(Region<heapkit_pages::MmapPages>: Send, Sync);

impl<P: PageSource> Region<P> {
    /// Reserves the region for `layout` from `pages` and pre-faults it as asked.
    ///
    /// Every failure is reported here, with the sizes involved; see [`StartupError`].
    #[allow(clippy::result_large_err)] // Startup only; boxing it would allocate.
    pub fn new(layout: RegionLayout, pages: P, prefault: Prefault) -> Result<Self, StartupError> {
        let page_bytes = pages.page_size();
        let mut error = StartupError {
            failure: StartupFailure::MapFailed,
            asked_bytes: layout.total_bytes(),
            available_bytes: mem_available_bytes(),
            layout,
        };
        if let Some(layout_error) = error.layout.error() {
            error.failure = StartupFailure::Layout(layout_error);
            return Err(error);
        }
        // A region with no partitions still maps one page, so that `base` is real.
        let Some(asked_bytes) = heapkit_core::align_up(error.asked_bytes.max(1), page_bytes) else {
            error.failure = StartupFailure::Layout(LayoutError::TooLarge("(page rounding)"));
            return Err(error);
        };
        error.asked_bytes = asked_bytes;
        if error.available_bytes.is_some_and(|a| asked_bytes > a) {
            error.failure = StartupFailure::NotEnoughMemory;
            return Err(error);
        }
        let align_bytes = error.layout.align_bytes().max(page_bytes);
        let Ok(base) = pages.map(asked_bytes, align_bytes) else {
            error.failure = StartupFailure::MapFailed;
            return Err(error);
        };
        if let Err(failure) = prefault_range(base, asked_bytes, page_bytes, prefault) {
            // SAFETY: mapped just above with this length; nothing uses it yet.
            unsafe { pages.unmap(base, asked_bytes) };
            error.failure = failure;
            return Err(error);
        }
        let layout = error.layout;
        zero_pool_generations(base, &layout);
        let bump = layout.bump_index().map(|index| {
            let partition = &layout.partitions()[index];
            // SAFETY: the partition lies inside the mapping (the layout placed it below
            // `total_bytes <= asked_bytes`) and only the arena uses it.
            unsafe { BumpArena::new(base.add(partition.offset_bytes), partition.capacity) }
        });
        Ok(Region {
            base,
            mapped_bytes: asked_bytes,
            prefault,
            layout,
            taken_mask: AtomicU64::new(0),
            bump,
            pages,
        })
    }

    /// The layout: print it (`{}`) for the table of partitions.
    pub fn layout(&self) -> &RegionLayout {
        &self.layout
    }

    /// Bytes mapped for the region (the layout's total, rounded up to pages).
    pub fn mapped_bytes(&self) -> usize {
        self.mapped_bytes
    }

    /// How the region was pre-faulted.
    pub fn prefault(&self) -> Prefault {
        self.prefault
    }

    /// Whether `ptr` points into the region.
    pub fn contains(&self, ptr: *const u8) -> bool {
        let offset = (ptr as usize).wrapping_sub(self.base.as_ptr() as usize);
        offset < self.mapped_bytes
    }

    /// Marks partition `index` taken; fails if it already is.
    fn take(&self, partition: &Partition, index: usize) -> Result<u64, TakeError> {
        debug_assert!(index < crate::PARTITIONS_MAX);
        let bit = 1u64 << index;
        let before = self.taken_mask.fetch_or(bit, Ordering::Acquire);
        if before & bit != 0 {
            return Err(TakeError::AlreadyTaken(partition.name));
        }
        Ok(bit)
    }

    fn find(
        &self,
        layout_tag: u32,
        index: u8,
        kind: PartitionKind,
        elem: Option<(usize, usize)>,
    ) -> Result<&Partition, TakeError> {
        self.layout
            .lookup(layout_tag, index, kind, elem)
            .ok_or(TakeError::Foreign)
    }

    fn partition_ptr(&self, partition: &Partition) -> NonNull<u8> {
        debug_assert!(partition.offset_bytes + partition.size_bytes <= self.mapped_bytes);
        // SAFETY: every partition lies inside the mapping.
        unsafe { self.base.add(partition.offset_bytes) }
    }

    /// Lends out the pool `id` names, with every slot free. The partition is taken until the
    /// pool is dropped (which drops the values still in it).
    pub fn pool<T>(&self, id: PoolId<T>) -> Result<Pool<'_, T>, TakeError> {
        let elem = (size_of::<T>(), align_of::<T>());
        let partition = self.find(id.layout_tag, id.index, PartitionKind::Pool, Some(elem))?;
        let bit = self.take(partition, usize::from(id.index))?;
        let start = self.partition_ptr(partition);
        // SAFETY: the link array starts inside the partition, `u32`-aligned (the layout
        // placed it so).
        let links = unsafe { start.add(partition.links_offset_bytes()) }.cast::<u32>();
        // SAFETY: the generation array follows the links inside the partition, `u32`-aligned.
        let generations = unsafe { start.add(partition.generations_offset_bytes()) }.cast::<u32>();
        let pool_tag = self.layout.tag().wrapping_shl(POOL_TAG_INDEX_BITS) | u32::from(id.index);
        // SAFETY: the partition holds `capacity` slots of `T`, then `capacity` links and
        // `capacity` generations (zeroed by `Region::new`), aligned for each; the taken bit gives
        // this pool sole use of it while the pool lives.
        Ok(unsafe {
            Pool::new(
                partition.name,
                start.cast(),
                (links, generations),
                partition.capacity as u32,
                pool_tag,
                (&self.taken_mask, bit),
            )
        })
    }

    /// Lends out the ring `id` names, empty. The partition is taken until the ring is dropped.
    pub fn ring<T>(&self, id: RingId<T>) -> Result<Ring<'_, T>, TakeError> {
        let elem = (size_of::<T>(), align_of::<T>());
        let partition = self.find(id.layout_tag, id.index, PartitionKind::Ring, Some(elem))?;
        let bit = self.take(partition, usize::from(id.index))?;
        let start = self.partition_ptr(partition);
        // SAFETY: the partition holds `capacity` aligned elements of `T`; the taken bit gives
        // this ring sole use of it.
        Ok(unsafe {
            Ring::new(
                partition.name,
                start.cast(),
                partition.capacity,
                (&self.taken_mask, bit),
            )
        })
    }

    /// Lends out the byte partition `id` names. Its contents are whatever was left in it (zero
    /// on first use with a zeroing page source). Taken until the handle is dropped.
    pub fn bytes(&self, id: BytesId) -> Result<Bytes<'_>, TakeError> {
        let partition = self.find(id.layout_tag, id.index, PartitionKind::Bytes, None)?;
        let bit = self.take(partition, usize::from(id.index))?;
        Ok(Bytes {
            start: self.partition_ptr(partition),
            len_bytes: partition.capacity,
            taken_mask: &self.taken_mask,
            taken_bit: bit,
        })
    }

    /// The bump partition's capacity and the bytes used in it so far (0, 0 without one).
    pub fn bump_usage_bytes(&self) -> (usize, usize) {
        self.bump
            .as_ref()
            .map_or((0, 0), |b| (b.capacity_bytes(), b.used_bytes()))
    }
}

/// Starts every pool slot at generation 0 (the page source need not zero its pages). The
/// generations then live as long as the region, across every pool borrowed from it.
fn zero_pool_generations(base: NonNull<u8>, layout: &RegionLayout) {
    for partition in layout.partitions() {
        if partition.kind == PartitionKind::Pool {
            // SAFETY: the generation array lies inside the partition, inside the mapping, and
            // nothing else uses the mapping yet; `u32` zero bytes are generation 0.
            unsafe {
                base.add(partition.offset_bytes + partition.generations_offset_bytes())
                    .cast::<u32>()
                    .write_bytes(0, partition.capacity)
            };
        }
    }
}

impl<P: PageSource> Drop for Region<P> {
    fn drop(&mut self) {
        // A handle that was `mem::forget`-ten leaves its taken bit set; that is safe code, so
        // it is not asserted against here.
        if self.prefault == Prefault::Lock {
            unlock_range(self.base, self.mapped_bytes);
        }
        // SAFETY: the mapping was made in `new` with this length; the handles that borrowed
        // partitions are gone (they borrow `self`), so nothing uses it any more.
        unsafe { self.pages.unmap(self.base, self.mapped_bytes) };
    }
}

impl<P: PageSource> fmt::Debug for Region<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("base", &self.base)
            .field("mapped_bytes", &self.mapped_bytes)
            .field("prefault", &self.prefault)
            .field("partitions", &self.layout.partitions().len())
            .finish()
    }
}

/// A raw byte partition lent out by [`Region::bytes`]; derefs to `[u8]`.
pub struct Bytes<'r> {
    start: NonNull<u8>,
    len_bytes: usize,
    taken_mask: &'r AtomicU64,
    taken_bit: u64,
}

// SAFETY: the handle is the partition's only user (the taken bit), like a `&mut [u8]`.
unsafe impl Send for Bytes<'_> {}
// SAFETY: `&Bytes` only gives `&[u8]`.
unsafe impl Sync for Bytes<'_> {}

impl Deref for Bytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the partition is `len_bytes` bytes of the mapping, initialised (mapped
        // memory is), and this handle is its only user.
        unsafe { core::slice::from_raw_parts(self.start.as_ptr(), self.len_bytes) }
    }
}

impl DerefMut for Bytes<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, with `&mut self` making the slice unique.
        unsafe { core::slice::from_raw_parts_mut(self.start.as_ptr(), self.len_bytes) }
    }
}

impl Drop for Bytes<'_> {
    fn drop(&mut self) {
        self.taken_mask
            .fetch_and(!self.taken_bit, Ordering::Release);
    }
}

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.len_bytes)
    }
}

/// Makes the pages of `base..base + len_bytes` resident as `prefault` asks.
fn prefault_range(
    base: NonNull<u8>,
    len_bytes: usize,
    page_bytes: usize,
    prefault: Prefault,
) -> Result<(), StartupFailure> {
    match prefault {
        Prefault::Lazy => Ok(()),
        Prefault::Touch => {
            touch_range(base, len_bytes, page_bytes);
            Ok(())
        }
        Prefault::Populate => populate_range(base, len_bytes, page_bytes),
        Prefault::Lock => lock_range(base, len_bytes),
    }
}

fn touch_range(base: NonNull<u8>, len_bytes: usize, page_bytes: usize) {
    debug_assert!(page_bytes.is_power_of_two());
    for offset_bytes in (0..len_bytes).step_by(page_bytes) {
        // SAFETY: `offset_bytes < len_bytes`: inside the fresh mapping, which nothing uses yet;
        // volatile so the write is not optimised away.
        unsafe { base.add(offset_bytes).write_volatile(0) };
    }
}

#[cfg(all(target_os = "linux", not(miri)))]
fn populate_range(
    base: NonNull<u8>,
    len_bytes: usize,
    page_bytes: usize,
) -> Result<(), StartupFailure> {
    let result =
        // SAFETY: the range is a live, page-aligned mapping of ours; the advice only faults pages
        // in (it does not change their contents, which are unspecified anyway).
        unsafe { libc::madvise(base.as_ptr().cast(), len_bytes, libc::MADV_POPULATE_WRITE) };
    if result == 0 {
        return Ok(());
    }
    match heapkit_core::report::errno() {
        // Kernels before 5.14 do not know the advice.
        libc::EINVAL => {
            touch_range(base, len_bytes, page_bytes);
            Ok(())
        }
        errno => Err(StartupFailure::PopulateFailed { errno }),
    }
}

#[cfg(not(all(target_os = "linux", not(miri))))]
fn populate_range(
    base: NonNull<u8>,
    len_bytes: usize,
    page_bytes: usize,
) -> Result<(), StartupFailure> {
    touch_range(base, len_bytes, page_bytes);
    Ok(())
}

fn lock_range(base: NonNull<u8>, len_bytes: usize) -> Result<(), StartupFailure> {
    #[cfg(all(unix, not(miri)))]
    {
        // SAFETY: the range is a live mapping of ours; locking does not change its contents.
        if unsafe { libc::mlock(base.as_ptr().cast(), len_bytes) } != 0 {
            return Err(StartupFailure::LockFailed {
                errno: heapkit_core::report::errno(),
            });
        }
        Ok(())
    }
    #[cfg(not(all(unix, not(miri))))]
    {
        let _ = (base, len_bytes);
        Err(StartupFailure::LockFailed { errno: 0 })
    }
}

fn unlock_range(base: NonNull<u8>, len_bytes: usize) {
    #[cfg(all(unix, not(miri)))]
    // SAFETY: the range was locked in `new`; unlocking only lets the kernel swap it again.
    unsafe {
        libc::munlock(base.as_ptr().cast(), len_bytes);
    }
    #[cfg(not(all(unix, not(miri))))]
    let _ = (base, len_bytes);
}

// SAFETY: blocks come from the bump arena, which hands out disjoint, aligned ranges of the
// region's mapping; they stay valid until freed or the region (and so the arena) is dropped.
unsafe impl<P: PageSource> Allocator for Region<P> {
    #[inline]
    fn allocate_nonzero(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.bump.as_ref().ok_or(AllocError)?.allocate(layout)
    }

    #[inline]
    unsafe fn deallocate_nonzero(&self, ptr: NonNull<u8>, layout: Layout) {
        debug_assert!(
            self.bump.is_some(),
            "free to a region without a bump partition"
        );
        if let Some(bump) = &self.bump {
            // SAFETY: forwarded from the caller: a live block of the arena.
            unsafe { bump.deallocate(ptr, layout) }
        }
    }

    unsafe fn grow_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.resize(ptr, old_layout, new_layout) }
    }

    unsafe fn shrink_nonzero(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.resize(ptr, old_layout, new_layout) }
    }
}

impl<P: PageSource> Region<P> {
    /// Resizes in place when the arena can, else allocates, copies and frees.
    ///
    /// # Safety
    /// `ptr` is a live block of this region's arena fitted by `old_layout`; both sizes > 0.
    unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old_layout: Layout,
        new_layout: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let bump = self.bump.as_ref().ok_or(AllocError)?;
        // SAFETY: forwarded from the caller.
        if let Some(block) = unsafe { bump.resize_in_place(ptr, old_layout, new_layout) } {
            return Ok(block);
        }
        let block = bump.allocate(new_layout)?;
        let keep_bytes = old_layout.size().min(new_layout.size());
        // SAFETY: distinct live blocks of the arena, each with at least `keep_bytes` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(ptr.as_ptr(), block.cast::<u8>().as_ptr(), keep_bytes);
            bump.deallocate(ptr, old_layout);
        }
        Ok(block)
    }
}

impl<P: PageSource> Introspect for Region<P> {
    fn check(&self) -> Result<(), InvariantError> {
        let addr = self.base.as_ptr() as usize;
        let taken = self.taken_mask.load(Ordering::Relaxed);
        let count = self.layout.partitions().len();
        if count < 64 && taken >> count != 0 {
            return Err(InvariantError::new(
                "region: a taken bit past the partitions",
                addr,
            ));
        }
        if self.layout.total_bytes() > self.mapped_bytes {
            return Err(InvariantError::new(
                "region: layout larger than the mapping",
                addr,
            ));
        }
        match &self.bump {
            Some(bump) => bump.check(),
            None => Ok(()),
        }
    }

    fn stats(&self) -> Option<Stats> {
        let bump = self.bump.as_ref();
        Some(Stats {
            live_bytes: bump.map_or(0, |b| b.live_bytes()),
            live_blocks: bump.map_or(0, |b| b.live_blocks()),
            peak_bytes: bump.map_or(0, |b| b.peak_bytes()),
            mapped_bytes: self.mapped_bytes,
            ..Stats::default()
        })
    }
}

heapkit_core::impl_foreign_allocators!(impl[P: PageSource] for Region<P>);
