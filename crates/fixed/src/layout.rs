//! `RegionLayout`: the declaration of a region, decided before any memory exists.
//!
//! A layout is a table of named partitions. Adding a partition computes its offset at once
//! (each partition starts on a cache line, so partitions used by different threads never share
//! one) and hands back a typed id; the region later checks the id against the table, so an id
//! from another layout, or of another type, is refused rather than misread.
//!
//! Errors (a duplicate name, overflow, too many partitions) are recorded — the first one wins —
//! and reported by `Region::new`, so a layout reads as a plain list of declarations.

use core::fmt;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::sync::atomic::{AtomicU32, Ordering};
use heapkit_core::align_up;

/// The most partitions one region holds (the taken-partition mask is a `u64`).
pub const PARTITIONS_MAX: usize = 32;
/// Every partition starts on a multiple of this (a cache line), so that partitions used by
/// different threads never false-share.
pub const PARTITION_ALIGN_MIN_BYTES: usize = 64;
/// The most slots a pool or ring holds: slot indices are `u32`, with two values reserved as
/// free-list markers.
pub const SLOTS_MAX: usize = 1 << 31;
/// The largest region, in bytes (128 TiB, the x86-64 user address space).
pub const REGION_BYTES_MAX: usize = 1 << 47;
/// Names longer than this are cut in the printed table (they are still compared whole).
pub const NAME_BYTES_MAX: usize = 24;

const _: () = assert!(PARTITIONS_MAX <= u64::BITS as usize);
const _: () = assert!(PARTITION_ALIGN_MIN_BYTES.is_power_of_two());
const _: () = assert!(SLOTS_MAX <= (u32::MAX - 2) as usize);
const _: () = assert!(REGION_BYTES_MAX <= isize::MAX as usize);

/// Bytes of free-list link per pool slot (a `u32` index).
pub(crate) const LINK_BYTES: usize = size_of::<u32>();
/// Bytes of generation per pool slot (a `u32` counted up on each release, so that a stale
/// `SlotId` is refused).
pub(crate) const GENERATION_BYTES: usize = size_of::<u32>();
/// Everything a pool keeps per slot besides the slot itself: its link and its generation.
pub(crate) const SIDE_BYTES_PER_SLOT: usize = LINK_BYTES + GENERATION_BYTES;
// The generation array follows the link array with no padding.
const _: () = assert!(GENERATION_BYTES % LINK_BYTES == 0);

/// What a partition holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PartitionKind {
    /// `capacity` slots of one type plus a `u32` free-list link per slot.
    Pool,
    /// A bounded FIFO queue of `capacity` elements of one type.
    Ring,
    /// `capacity` raw bytes.
    Bytes,
    /// `capacity` bytes of bump arena for init-time allocations (at most one per region).
    Bump,
}

impl PartitionKind {
    fn name(self) -> &'static str {
        match self {
            PartitionKind::Pool => "pool",
            PartitionKind::Ring => "ring",
            PartitionKind::Bytes => "bytes",
            PartitionKind::Bump => "bump",
        }
    }
}

/// One row of the layout table.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The name it was declared with (unique in the layout).
    pub name: &'static str,
    /// What it holds.
    pub kind: PartitionKind,
    /// Slots (pool, ring) or bytes (bytes, bump).
    pub capacity: usize,
    /// Size of one element: the slot type's size, or 1 for byte partitions.
    pub elem_size_bytes: usize,
    /// Alignment of one element.
    pub elem_align_bytes: usize,
    /// Bytes the partition occupies (for a pool: slots, then the link array).
    pub size_bytes: usize,
    /// Where it starts, from the start of the region.
    pub offset_bytes: usize,
    /// Alignment of its start (at least [`PARTITION_ALIGN_MIN_BYTES`]).
    pub align_bytes: usize,
}

impl Partition {
    const EMPTY: Partition = Partition {
        name: "",
        kind: PartitionKind::Bytes,
        capacity: 0,
        elem_size_bytes: 0,
        elem_align_bytes: 0,
        size_bytes: 0,
        offset_bytes: 0,
        align_bytes: 0,
    };

    /// Where a pool's link array starts, from the partition's start.
    pub(crate) fn links_offset_bytes(&self) -> usize {
        debug_assert!(self.kind == PartitionKind::Pool);
        // Cannot overflow: `size_bytes` was computed from the same product with checks.
        (self.capacity * self.elem_size_bytes).next_multiple_of(LINK_BYTES)
    }

    /// Where a pool's generation array starts (right after the links), from the partition's
    /// start.
    pub(crate) fn generations_offset_bytes(&self) -> usize {
        // Cannot overflow: inside `size_bytes`, as above.
        self.links_offset_bytes() + self.capacity * LINK_BYTES
    }
}

/// A layout that cannot become a region.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// More than [`PARTITIONS_MAX`] partitions.
    TooManyPartitions,
    /// Two partitions share this name.
    DuplicateName(&'static str),
    /// This partition has capacity zero.
    ZeroCapacity(&'static str),
    /// This pool or ring holds a zero-size type (use a counter instead).
    ZeroSizedElement(&'static str),
    /// This pool or ring asks for more than [`SLOTS_MAX`] slots.
    TooManySlots(&'static str),
    /// This partition's bytes, or the region's end after it, exceed [`REGION_BYTES_MAX`].
    TooLarge(&'static str),
    /// This partition's alignment is not a power of two.
    BadAlignment(&'static str),
    /// This is a second bump partition; a region has at most one.
    SecondBump(&'static str),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::TooManyPartitions => {
                write!(f, "more than {PARTITIONS_MAX} partitions")
            }
            LayoutError::DuplicateName(n) => write!(f, "two partitions are named {n:?}"),
            LayoutError::ZeroCapacity(n) => write!(f, "partition {n:?} has capacity 0"),
            LayoutError::ZeroSizedElement(n) => {
                write!(f, "partition {n:?} holds a zero-size type")
            }
            LayoutError::TooManySlots(n) => {
                write!(f, "partition {n:?} asks for more than {SLOTS_MAX} slots")
            }
            LayoutError::TooLarge(n) => write!(
                f,
                "partition {n:?} makes the region larger than {REGION_BYTES_MAX} bytes"
            ),
            LayoutError::BadAlignment(n) => {
                write!(
                    f,
                    "partition {n:?} has an alignment that is not a power of two"
                )
            }
            LayoutError::SecondBump(n) => write!(
                f,
                "partition {n:?} is a second bump partition (a region has at most one)"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LayoutError {}

/// The id of a pool partition of `T` in one layout.
pub struct PoolId<T> {
    pub(crate) layout_tag: u32,
    pub(crate) index: u8,
    _type: PhantomData<fn() -> T>,
}

/// The id of a ring partition of `T` in one layout.
pub struct RingId<T> {
    pub(crate) layout_tag: u32,
    pub(crate) index: u8,
    _type: PhantomData<fn() -> T>,
}

/// The id of a raw byte partition in one layout.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BytesId {
    pub(crate) layout_tag: u32,
    pub(crate) index: u8,
}

// Manual impls: the derives would demand `T: Copy` / `T: Debug`.
macro_rules! typed_id_impls {
    ($id:ident) => {
        impl<T> Clone for $id<T> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<T> Copy for $id<T> {}
        impl<T> fmt::Debug for $id<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($id))
                    .field("layout_tag", &self.layout_tag)
                    .field("index", &self.index)
                    .finish()
            }
        }
    };
}
typed_id_impls!(PoolId);
typed_id_impls!(RingId);

/// Each layout gets a distinct tag, so that ids from one layout are refused by another's region.
static NEXT_LAYOUT_TAG: AtomicU32 = AtomicU32::new(1);

/// The declaration of a region: named partitions with fixed capacities.
///
/// It prints as a table (`{}`), and `Region::layout` returns it.
#[derive(Clone, Debug)]
pub struct RegionLayout {
    tag: u32,
    partitions: [Partition; PARTITIONS_MAX],
    count: usize,
    end_bytes: usize,
    error: Option<LayoutError>,
}

impl Default for RegionLayout {
    fn default() -> Self {
        Self::new()
    }
}

impl RegionLayout {
    /// An empty layout.
    pub fn new() -> Self {
        RegionLayout {
            tag: NEXT_LAYOUT_TAG.fetch_add(1, Ordering::Relaxed),
            partitions: [Partition::EMPTY; PARTITIONS_MAX],
            count: 0,
            end_bytes: 0,
            error: None,
        }
    }

    /// Declares a pool of `capacity` slots of `T`.
    pub fn pool<T>(&mut self, name: &'static str, capacity: usize) -> PoolId<T> {
        let index = self.add_typed::<T>(name, PartitionKind::Pool, capacity);
        PoolId {
            layout_tag: self.tag,
            index,
            _type: PhantomData,
        }
    }

    /// Declares a ring (bounded FIFO queue) of `capacity` elements of `T`.
    pub fn ring<T>(&mut self, name: &'static str, capacity: usize) -> RingId<T> {
        let index = self.add_typed::<T>(name, PartitionKind::Ring, capacity);
        RingId {
            layout_tag: self.tag,
            index,
            _type: PhantomData,
        }
    }

    /// Declares a raw partition of `len_bytes` bytes aligned to `align_bytes`.
    pub fn bytes(&mut self, name: &'static str, len_bytes: usize, align_bytes: usize) -> BytesId {
        let index = self.add(name, PartitionKind::Bytes, len_bytes, 1, align_bytes);
        BytesId {
            layout_tag: self.tag,
            index,
        }
    }

    /// Declares the bump partition of `len_bytes` bytes that the region's `Allocator`
    /// implementation serves init-time allocations from (at most one per layout).
    pub fn bump(&mut self, name: &'static str, len_bytes: usize) {
        if self.bump_index().is_some() {
            self.fail(LayoutError::SecondBump(name));
            return;
        }
        if len_bytes > crate::bump::BUMP_BYTES_MAX {
            self.fail(LayoutError::TooLarge(name));
            return;
        }
        self.add(
            name,
            PartitionKind::Bump,
            len_bytes,
            1,
            heapkit_core::MAX_ALIGN_BYTES,
        );
    }

    fn add_typed<T>(&mut self, name: &'static str, kind: PartitionKind, capacity: usize) -> u8 {
        if size_of::<T>() == 0 {
            self.fail(LayoutError::ZeroSizedElement(name));
        } else if capacity > SLOTS_MAX {
            self.fail(LayoutError::TooManySlots(name));
        }
        self.add(name, kind, capacity, size_of::<T>(), align_of::<T>())
    }

    /// Appends a row; returns its index (or a dummy index after an error, which `Region::new`
    /// reports before any id is used).
    fn add(
        &mut self,
        name: &'static str,
        kind: PartitionKind,
        capacity: usize,
        elem_size_bytes: usize,
        elem_align_bytes: usize,
    ) -> u8 {
        if self.count == PARTITIONS_MAX {
            self.fail(LayoutError::TooManyPartitions);
            return u8::MAX;
        }
        if self.partitions().iter().any(|p| p.name == name) {
            self.fail(LayoutError::DuplicateName(name));
        }
        if capacity == 0 {
            self.fail(LayoutError::ZeroCapacity(name));
        }
        if !elem_align_bytes.is_power_of_two() {
            self.fail(LayoutError::BadAlignment(name));
            return u8::MAX;
        }
        let align_bytes = elem_align_bytes.max(PARTITION_ALIGN_MIN_BYTES);
        let Some((size_bytes, offset_bytes)) =
            self.place(kind, capacity, elem_size_bytes, align_bytes)
        else {
            self.fail(LayoutError::TooLarge(name));
            return u8::MAX;
        };
        let index = self.count;
        self.partitions[index] = Partition {
            name,
            kind,
            capacity,
            elem_size_bytes,
            elem_align_bytes,
            size_bytes,
            offset_bytes,
            align_bytes,
        };
        self.count += 1;
        self.end_bytes = offset_bytes + size_bytes;
        debug_assert!(self.end_bytes <= REGION_BYTES_MAX);
        index as u8
    }

    /// The partition's size and offset, or `None` past [`REGION_BYTES_MAX`].
    fn place(
        &self,
        kind: PartitionKind,
        capacity: usize,
        elem_size_bytes: usize,
        align_bytes: usize,
    ) -> Option<(usize, usize)> {
        let data_bytes = capacity.checked_mul(elem_size_bytes)?;
        let size_bytes = if kind == PartitionKind::Pool {
            let side_bytes = capacity.checked_mul(SIDE_BYTES_PER_SLOT)?;
            align_up(data_bytes, LINK_BYTES)?.checked_add(side_bytes)?
        } else {
            data_bytes
        };
        let offset_bytes = align_up(self.end_bytes, align_bytes)?;
        let end_bytes = offset_bytes.checked_add(size_bytes)?;
        (end_bytes <= REGION_BYTES_MAX).then_some((size_bytes, offset_bytes))
    }

    fn fail(&mut self, error: LayoutError) {
        // The first error is the one to fix; later ones are often its echoes.
        self.error.get_or_insert(error);
    }

    /// The first error recorded while declaring, if any.
    pub fn error(&self) -> Option<LayoutError> {
        self.error
    }

    /// The declared partitions, in declaration (and address) order.
    pub fn partitions(&self) -> &[Partition] {
        &self.partitions[..self.count]
    }

    /// Bytes from the region's start to the end of the last partition (before rounding to
    /// pages).
    pub fn total_bytes(&self) -> usize {
        self.end_bytes
    }

    /// The largest partition alignment (what the region's mapping must be aligned to).
    pub fn align_bytes(&self) -> usize {
        self.partitions()
            .iter()
            .map(|p| p.align_bytes)
            .max()
            .unwrap_or(PARTITION_ALIGN_MIN_BYTES)
    }

    pub(crate) fn tag(&self) -> u32 {
        self.tag
    }

    pub(crate) fn bump_index(&self) -> Option<usize> {
        self.partitions()
            .iter()
            .position(|p| p.kind == PartitionKind::Bump)
    }

    /// The row an id names, if the id is from this layout and of `kind` and (when given)
    /// element size and alignment `elem`.
    pub(crate) fn lookup(
        &self,
        layout_tag: u32,
        index: u8,
        kind: PartitionKind,
        elem: Option<(usize, usize)>,
    ) -> Option<&Partition> {
        if layout_tag != self.tag {
            return None;
        }
        let partition = self.partitions().get(usize::from(index))?;
        let elem_matches = elem.is_none_or(|(size_bytes, align_bytes)| {
            partition.elem_size_bytes == size_bytes && partition.elem_align_bytes == align_bytes
        });
        let matches = partition.kind == kind && elem_matches;
        matches.then_some(partition)
    }
}

/// Writes `bytes` with a binary unit (`1.5 MiB`) for people, without allocating.
pub(crate) struct HumanBytes(pub usize);

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        let mut unit = 0;
        let mut scaled = self.0 as f64;
        while scaled >= 1024.0 && unit + 1 < UNITS.len() {
            scaled /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{scaled:.1} {}", UNITS[unit])
        }
    }
}

impl fmt::Display for RegionLayout {
    /// The layout table: one row per partition, then the total.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<24} {:<5} {:>12} {:>10} {:>14} {:>14} {:>6}",
            "partition", "kind", "capacity", "elem_B", "bytes", "offset", "align"
        )?;
        for p in self.partitions() {
            let name = p
                .name
                .get(..NAME_BYTES_MAX.min(p.name.len()))
                .unwrap_or("?");
            writeln!(
                f,
                "{:<24} {:<5} {:>12} {:>10} {:>14} {:>14} {:>6}",
                name,
                p.kind.name(),
                p.capacity,
                p.elem_size_bytes,
                p.size_bytes,
                p.offset_bytes,
                p.align_bytes
            )?;
        }
        write!(
            f,
            "{:<24} {:<5} {:>12} {:>10} {:>14} ({})",
            "total",
            "",
            "",
            "",
            self.total_bytes(),
            HumanBytes(self.total_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_placed_in_order_on_cache_lines() {
        let mut layout = RegionLayout::new();
        let _a = layout.pool::<[u8; 24]>("a", 3);
        let _b = layout.ring::<u64>("b", 5);
        let _c = layout.bytes("c", 100, 4096);
        layout.bump("d", 10);
        assert_eq!(layout.error(), None);
        let p = layout.partitions();
        assert_eq!(p.len(), 4);
        // Pool: 3 * 24 slot bytes, then 3 * 4 link bytes and 3 * 4 generation bytes.
        assert_eq!((p[0].offset_bytes, p[0].size_bytes), (0, 72 + 12 + 12));
        assert_eq!(p[0].links_offset_bytes(), 72);
        assert_eq!(p[0].generations_offset_bytes(), 84);
        assert_eq!((p[1].offset_bytes, p[1].size_bytes), (128, 40));
        assert_eq!((p[2].offset_bytes, p[2].align_bytes), (4096, 4096));
        assert_eq!(p[3].offset_bytes, 4096 + 128);
        assert_eq!(layout.total_bytes(), 4096 + 128 + 10);
        assert_eq!(layout.align_bytes(), 4096);
    }

    #[test]
    fn errors_are_recorded_first_one_wins() {
        let mut layout = RegionLayout::new();
        layout.pool::<u64>("x", 0);
        layout.pool::<u64>("x", 1);
        assert_eq!(layout.error(), Some(LayoutError::ZeroCapacity("x")));

        let mut layout = RegionLayout::new();
        layout.pool::<()>("unit", 4);
        assert_eq!(layout.error(), Some(LayoutError::ZeroSizedElement("unit")));

        let mut layout = RegionLayout::new();
        layout.pool::<u64>("huge", SLOTS_MAX + 1);
        assert_eq!(layout.error(), Some(LayoutError::TooManySlots("huge")));

        let mut layout = RegionLayout::new();
        layout.bytes("overflow", usize::MAX, 1);
        assert_eq!(layout.error(), Some(LayoutError::TooLarge("overflow")));

        let mut layout = RegionLayout::new();
        layout.bytes("odd", 8, 3);
        assert_eq!(layout.error(), Some(LayoutError::BadAlignment("odd")));

        let mut layout = RegionLayout::new();
        layout.bump("one", 64);
        layout.bump("two", 64);
        assert_eq!(layout.error(), Some(LayoutError::SecondBump("two")));

        let mut layout = RegionLayout::new();
        for _ in 0..PARTITIONS_MAX {
            layout.bytes("", 1, 1);
        }
        assert_eq!(layout.error(), Some(LayoutError::DuplicateName("")));
    }

    #[test]
    fn too_many_partitions_is_an_error() {
        const NAMES: [&str; PARTITIONS_MAX + 1] = [
            "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10", "p11", "p12", "p13",
            "p14", "p15", "p16", "p17", "p18", "p19", "p20", "p21", "p22", "p23", "p24", "p25",
            "p26", "p27", "p28", "p29", "p30", "p31", "p32",
        ];
        let mut layout = RegionLayout::new();
        for name in NAMES {
            layout.bytes(name, 1, 1);
        }
        assert_eq!(layout.error(), Some(LayoutError::TooManyPartitions));
        assert_eq!(layout.partitions().len(), PARTITIONS_MAX);
    }

    #[test]
    fn lookup_refuses_foreign_and_mistyped_ids() {
        let mut layout = RegionLayout::new();
        let id = layout.pool::<u64>("a", 4);
        let other = RegionLayout::new();
        let elem = Some((8, 8));
        assert!(layout
            .lookup(id.layout_tag, id.index, PartitionKind::Pool, elem)
            .is_some());
        assert!(other
            .lookup(id.layout_tag, id.index, PartitionKind::Pool, elem)
            .is_none());
        assert!(layout
            .lookup(id.layout_tag, id.index, PartitionKind::Ring, elem)
            .is_none());
        assert!(layout
            .lookup(id.layout_tag, id.index, PartitionKind::Pool, Some((4, 4)))
            .is_none());
    }

    #[test]
    fn human_bytes() {
        use core::fmt::Write;
        let mut s = heapkit_core::report::StackMessage::new();
        write!(
            s,
            "{} {} {}",
            HumanBytes(100),
            HumanBytes(1536),
            HumanBytes(3 << 30)
        )
        .unwrap();
        assert_eq!(s.as_bytes(), b"100 B 1.5 KiB 3.0 GiB");
    }
}
