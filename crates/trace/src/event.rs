//! Events: what one allocation call was.

/// The alignment an event without the `ALIGN` flag has: 16 bytes (`max_align_t` on x86-64).
pub const DEFAULT_ALIGN_LOG2: u8 = 4;

/// The tag bit that says an `align_log2` byte follows the size.
pub(crate) const ALIGN_FLAG: u8 = 0x10;
/// The tag bits that hold the kind (the reader's).
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(crate) const KIND_MASK: u8 = 0x0F;

/// Which call an event records (the tag's low four bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// `malloc`, and `realloc(NULL, n)`.
    Malloc = 1,
    /// `calloc`, with the product of its arguments as the size.
    Calloc = 2,
    /// `realloc` of a live block to a non-zero size; the object keeps its id.
    Realloc = 3,
    /// `free`, and `realloc(p, 0)`.
    Free = 4,
    /// `memalign`, `posix_memalign`, `aligned_alloc`, `valloc`, `pvalloc`.
    Aligned = 5,
    /// C++ `operator new`.
    New = 6,
    /// C++ `operator new[]`.
    NewArray = 7,
    /// C++ `operator delete`.
    Delete = 8,
    /// C++ `operator delete[]`.
    DeleteArray = 9,
}

impl Kind {
    /// Every kind, in tag order.
    pub const ALL: [Kind; 9] = [
        Kind::Malloc,
        Kind::Calloc,
        Kind::Realloc,
        Kind::Free,
        Kind::Aligned,
        Kind::New,
        Kind::NewArray,
        Kind::Delete,
        Kind::DeleteArray,
    ];

    /// The kind a tag's low bits name, if any.
    pub fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// Whether the event creates a new object (and a new id).
    pub const fn creates(self) -> bool {
        matches!(
            self,
            Kind::Malloc | Kind::Calloc | Kind::Aligned | Kind::New | Kind::NewArray
        )
    }

    /// Whether the event ends an object.
    pub const fn frees(self) -> bool {
        matches!(self, Kind::Free | Kind::Delete | Kind::DeleteArray)
    }

    /// Whether the event carries a size.
    pub const fn has_size(self) -> bool {
        !self.frees()
    }

    /// The name the format gives the kind.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Malloc => "malloc",
            Kind::Calloc => "calloc",
            Kind::Realloc => "realloc",
            Kind::Free => "free",
            Kind::Aligned => "aligned",
            Kind::New => "new",
            Kind::NewArray => "new[]",
            Kind::Delete => "delete",
            Kind::DeleteArray => "delete[]",
        }
    }
}

/// One allocation call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// What the call was.
    pub kind: Kind,
    /// The object it created, resized or freed (never 0 in a recorded trace).
    pub id: u64,
    /// The bytes asked for (0 for frees).
    pub size: u64,
    /// log2 of the alignment asked for ([`DEFAULT_ALIGN_LOG2`] for plain calls and frees).
    pub align_log2: u8,
    /// When it happened, in ticks of the header's clock (a reading, as the header's
    /// `start_ticks` is).
    pub ticks: u64,
}

impl Event {
    /// An event of `kind` on object `id`, with the default alignment.
    pub const fn new(kind: Kind, id: u64, size: u64, ticks: u64) -> Event {
        Event {
            kind,
            id,
            size,
            align_log2: DEFAULT_ALIGN_LOG2,
            ticks,
        }
    }

    /// The same event with alignment `1 << align_log2`.
    pub const fn aligned(mut self, align_log2: u8) -> Event {
        self.align_log2 = align_log2;
        self
    }

    /// The alignment in bytes (saturating at `2^63`).
    pub const fn align_bytes(&self) -> u64 {
        1u64 << (self.align_log2 & 63)
    }

    /// Whether the encoding carries an alignment byte: always for [`Kind::Aligned`], for other
    /// creating kinds when the alignment is not the default.
    pub(crate) const fn carries_align(&self) -> bool {
        matches!(self.kind, Kind::Aligned)
            || (self.kind.creates() && self.align_log2 != DEFAULT_ALIGN_LOG2)
    }
}
