//! `ArenaString`: a growable UTF-8 string whose bytes live in an arena, and `format_in!`.
//!
//! bumpalo's `collections::String` and `format!(in bump, ..)`, built on the arena's in-place
//! growth: while the string is the arena's newest block, `push_str` moves the bump pointer and
//! copies nothing. Every growth has a `try_` form that returns [`AllocError`]; the plain forms
//! call [`handle_alloc_error`](alloc::alloc::handle_alloc_error), as `String` does.
//!
//! ```text
//!   arena chunk   [ ..older blocks.. | h e l l o , ␣ w o r l d | free ... ]
//!                                    ▲ptr          ▲len        ▲capacity = the bump pointer
//!   push_str("!") while newest: the bump pointer moves, no copy; otherwise a copy to a new block
//! ```

use crate::cache::DefaultChunks;
use crate::{Arena, ChunkSource};
use core::alloc::Layout;
use core::fmt;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use heapkit_core::{AllocError, Allocator};

/// The capacity of a string's first block: small strings grow without a copy chain.
const FIRST_CAPACITY_BYTES: usize = 16;

/// A growable string in an [`Arena`], borrowing it: it cannot outlive the arena, and the
/// arena cannot be reset while it lives.
///
/// ```
/// use core::fmt::Write;
/// use heapkit_bump::{Arena, ArenaString};
///
/// let arena = Arena::new();
/// let mut s = ArenaString::new_in(&arena);
/// s.push_str("hello");
/// s.push(',');
/// write!(s, " {} + {} = {}", 1, 2, 1 + 2).unwrap();
/// assert_eq!(s.as_str(), "hello, 1 + 2 = 3");
/// let frozen: &str = s.into_str(); // stays in the arena, no copy
/// assert_eq!(frozen.len(), 16);
/// ```
///
/// The string borrows its arena, so it cannot outlive it:
///
/// ```compile_fail,E0597
/// use heapkit_bump::{format_in, Arena};
///
/// let s = {
///     let arena = Arena::new();
///     format_in!(&arena, "{}", 42) // error: `arena` does not live long enough
/// };
/// ```
pub struct ArenaString<'a, S: ChunkSource = DefaultChunks> {
    arena: &'a Arena<S>,
    /// The first byte; dangling while `capacity_bytes == 0`.
    ptr: NonNull<u8>,
    len_bytes: usize,
    capacity_bytes: usize,
}

impl<'a, S: ChunkSource> ArenaString<'a, S> {
    /// An empty string. Takes nothing from the arena until the first push.
    pub fn new_in(arena: &'a Arena<S>) -> Self {
        ArenaString {
            arena,
            ptr: NonNull::dangling(),
            len_bytes: 0,
            capacity_bytes: 0,
        }
    }

    /// An empty string with room for `capacity_bytes`, or `AllocError`.
    pub fn try_with_capacity_in(
        capacity_bytes: usize,
        arena: &'a Arena<S>,
    ) -> Result<Self, AllocError> {
        let mut s = Self::new_in(arena);
        s.try_reserve(capacity_bytes)?;
        Ok(s)
    }

    /// An empty string with room for `capacity_bytes`; aborts like `String` when the arena
    /// cannot provide it.
    pub fn with_capacity_in(capacity_bytes: usize, arena: &'a Arena<S>) -> Self {
        let mut s = Self::new_in(arena);
        s.reserve(capacity_bytes);
        s
    }

    /// A copy of `src` in the arena, or `AllocError`.
    pub fn try_from_str_in(src: &str, arena: &'a Arena<S>) -> Result<Self, AllocError> {
        let mut s = Self::try_with_capacity_in(src.len(), arena)?;
        s.try_push_str(src)?;
        Ok(s)
    }

    /// A copy of `src` in the arena; aborts like `String` when the arena cannot provide it.
    pub fn from_str_in(src: &str, arena: &'a Arena<S>) -> Self {
        let mut s = Self::with_capacity_in(src.len(), arena);
        s.push_str(src);
        s
    }

    /// The text of `args` in the arena (what [`try_format_in!`](crate::try_format_in) expands
    /// to), or `AllocError`.
    ///
    /// # Panics
    /// When a `Display` (or other formatting) implementation returns an error although the
    /// string did not, as `format!` does.
    pub fn try_from_fmt(arena: &'a Arena<S>, args: fmt::Arguments<'_>) -> Result<Self, AllocError> {
        /// Records whether an error came from the arena or from a formatting implementation.
        struct Sink<'s, 'a, S: ChunkSource> {
            string: &'s mut ArenaString<'a, S>,
            out_of_memory: bool,
        }
        impl<S: ChunkSource> fmt::Write for Sink<'_, '_, S> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.string.try_push_str(s).map_err(|AllocError| {
                    self.out_of_memory = true;
                    fmt::Error
                })
            }
        }
        let mut string = Self::new_in(arena);
        let mut sink = Sink {
            string: &mut string,
            out_of_memory: false,
        };
        match fmt::write(&mut sink, args) {
            Ok(()) => Ok(string),
            Err(fmt::Error) if sink.out_of_memory => Err(AllocError),
            Err(fmt::Error) => panic!(
                "a formatting trait implementation returned an error when the underlying stream did not"
            ),
        }
    }

    /// The text of `args` in the arena (what [`format_in!`](crate::format_in) expands to);
    /// aborts like `format!` when the arena cannot provide it.
    ///
    /// # Panics
    /// As [`try_from_fmt`](Self::try_from_fmt).
    pub fn from_fmt(arena: &'a Arena<S>, args: fmt::Arguments<'_>) -> Self {
        match Self::try_from_fmt(arena, args) {
            Ok(s) => s,
            // The size that failed is not known here; one byte more than the arena could give
            // is the honest lower bound.
            Err(AllocError) => alloc::alloc::handle_alloc_error(Layout::new::<u8>()),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self
    }

    /// The text, mutably (for in-place changes such as `make_ascii_uppercase`).
    pub fn as_mut_str(&mut self) -> &mut str {
        self
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len_bytes
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len_bytes == 0
    }

    /// Bytes it can hold without growing.
    pub fn capacity(&self) -> usize {
        self.capacity_bytes
    }

    /// The arena it lives in.
    pub fn arena(&self) -> &'a Arena<S> {
        self.arena
    }

    /// Empties it, keeping its capacity.
    pub fn clear(&mut self) {
        self.len_bytes = 0;
    }

    /// Makes room for `additional_bytes` more, or `AllocError` (the string is unchanged).
    /// Grows in place while the string is the arena's newest block; otherwise copies once to a
    /// block at least twice as large.
    pub fn try_reserve(&mut self, additional_bytes: usize) -> Result<(), AllocError> {
        let needed_bytes = self
            .len_bytes
            .checked_add(additional_bytes)
            .ok_or(AllocError)?;
        if needed_bytes <= self.capacity_bytes {
            return Ok(());
        }
        let new_capacity_bytes = needed_bytes
            .max(self.capacity_bytes.saturating_mul(2))
            .max(FIRST_CAPACITY_BYTES);
        let new_layout = Layout::array::<u8>(new_capacity_bytes).map_err(|_| AllocError)?;
        let block = if self.capacity_bytes == 0 {
            self.arena.allocate(new_layout)?
        } else {
            // SAFETY: `ptr` is a block of this arena with the layout `current_layout` gives,
            // and the new layout is larger with the same alignment.
            unsafe {
                self.arena
                    .grow(self.ptr, self.current_layout(), new_layout)?
            }
        };
        self.ptr = block.cast::<u8>();
        // The arena may give more than asked (rounded to its word): all of it is ours.
        self.capacity_bytes = block.len();
        debug_assert!(self.capacity_bytes >= needed_bytes);
        Ok(())
    }

    /// Makes room for `additional_bytes` more; aborts like `String` when the arena cannot.
    pub fn reserve(&mut self, additional_bytes: usize) {
        if self.try_reserve(additional_bytes).is_err() {
            let asked_bytes = self.len_bytes.saturating_add(additional_bytes);
            fail(asked_bytes)
        }
    }

    /// Appends `s`, or `AllocError` (the string is unchanged).
    pub fn try_push_str(&mut self, s: &str) -> Result<(), AllocError> {
        self.try_reserve(s.len())?;
        // SAFETY: `try_reserve` made room for `s.len()` bytes past `len_bytes`; `s` cannot
        // overlap them (they were not part of any `str` until now).
        unsafe {
            core::ptr::copy_nonoverlapping(
                s.as_ptr(),
                self.ptr.as_ptr().add(self.len_bytes),
                s.len(),
            )
        };
        self.len_bytes += s.len();
        Ok(())
    }

    /// Appends `s`; aborts like `String` when the arena cannot provide the room.
    pub fn push_str(&mut self, s: &str) {
        if self.try_push_str(s).is_err() {
            fail(self.len_bytes.saturating_add(s.len()))
        }
    }

    /// Appends `c`, or `AllocError` (the string is unchanged).
    pub fn try_push(&mut self, c: char) -> Result<(), AllocError> {
        self.try_push_str(c.encode_utf8(&mut [0; 4]))
    }

    /// Appends `c`; aborts like `String` when the arena cannot provide the room.
    pub fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]))
    }

    /// The text as a `&mut str` that lives as long as the arena borrow: the string stops
    /// being growable, and its bytes stay where they are (bumpalo's `into_bump_str`).
    pub fn into_str(self) -> &'a mut str {
        let this = ManuallyDrop::new(self);
        // SAFETY: the first `len_bytes` bytes are initialised UTF-8 in an arena block that
        // stays valid for `'a` (only `&mut Arena` methods free blocks, and `'a` borrows it);
        // `ManuallyDrop` keeps `drop` from handing the block back.
        unsafe {
            let bytes = core::slice::from_raw_parts_mut(this.ptr.as_ptr(), this.len_bytes);
            core::str::from_utf8_unchecked_mut(bytes)
        }
    }

    fn current_layout(&self) -> Layout {
        // Cannot fail: the arena handed out a block of this size with alignment 1.
        Layout::array::<u8>(self.capacity_bytes).unwrap_or(Layout::new::<u8>())
    }
}

/// Reports a failed growth to `asked_bytes` the way `String` does.
#[cold]
#[inline(never)]
fn fail(asked_bytes: usize) -> ! {
    let layout = Layout::array::<u8>(asked_bytes).unwrap_or(Layout::new::<u8>());
    alloc::alloc::handle_alloc_error(layout)
}

impl<S: ChunkSource> Drop for ArenaString<'_, S> {
    fn drop(&mut self) {
        if self.capacity_bytes > 0 {
            // SAFETY: `ptr` is a live block of this arena with this layout, used by nothing
            // else; the arena reclaims it only when it is its newest block.
            unsafe { self.arena.deallocate(self.ptr, self.current_layout()) }
        }
    }
}

impl<S: ChunkSource> Deref for ArenaString<'_, S> {
    type Target = str;

    fn deref(&self) -> &str {
        // SAFETY: the first `len_bytes` bytes are initialised UTF-8 (only whole `str`s are
        // appended); `ptr` is dangling and aligned when the length is 0.
        unsafe {
            core::str::from_utf8_unchecked(core::slice::from_raw_parts(
                self.ptr.as_ptr(),
                self.len_bytes,
            ))
        }
    }
}

impl<S: ChunkSource> DerefMut for ArenaString<'_, S> {
    fn deref_mut(&mut self) -> &mut str {
        // SAFETY: as in `deref`; `&mut self` makes the bytes unique, and `str` methods keep
        // them UTF-8.
        unsafe {
            core::str::from_utf8_unchecked_mut(core::slice::from_raw_parts_mut(
                self.ptr.as_ptr(),
                self.len_bytes,
            ))
        }
    }
}

impl<S: ChunkSource> fmt::Write for ArenaString<'_, S> {
    /// Appends `s`; an arena that cannot provide the room is `fmt::Error` (the string keeps
    /// what was written before).
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.try_push_str(s).map_err(|AllocError| fmt::Error)
    }
}

impl<S: ChunkSource> fmt::Display for ArenaString<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl<S: ChunkSource> fmt::Debug for ArenaString<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<S: ChunkSource> PartialEq for ArenaString<'_, S> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<S: ChunkSource> Eq for ArenaString<'_, S> {}

impl<S: ChunkSource> PartialEq<str> for ArenaString<'_, S> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<S: ChunkSource> PartialEq<&str> for ArenaString<'_, S> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<S: ChunkSource> AsRef<str> for ArenaString<'_, S> {
    fn as_ref(&self) -> &str {
        self
    }
}

/// Formats into an [`ArenaString`] in an arena, like `format!`: `format_in!(&arena, "..", ..)`.
/// Aborts like `format!` when the arena cannot provide the bytes; see
/// [`try_format_in!`](crate::try_format_in) for an `AllocError` instead.
///
/// ```
/// use heapkit_bump::{format_in, Arena};
///
/// let arena = Arena::new();
/// let name = "world";
/// let greeting = format_in!(&arena, "hello, {name}! {}", 6 * 7);
/// assert_eq!(greeting, "hello, world! 42");
/// ```
#[macro_export]
macro_rules! format_in {
    ($arena:expr, $($arg:tt)*) => {
        $crate::ArenaString::from_fmt($arena, ::core::format_args!($($arg)*))
    };
}

/// Like [`format_in!`](crate::format_in), but `Result<ArenaString, AllocError>`.
///
/// ```
/// use heapkit_bump::{try_format_in, Arena};
///
/// let arena = Arena::new();
/// arena.set_allocation_limit(Some(0)); // no chunk may be taken
/// assert!(try_format_in!(&arena, "{}", 1).is_err());
/// arena.set_allocation_limit(None);
/// assert_eq!(try_format_in!(&arena, "{}", 1).unwrap(), "1");
/// ```
#[macro_export]
macro_rules! try_format_in {
    ($arena:expr, $($arg:tt)*) => {
        $crate::ArenaString::try_from_fmt($arena, ::core::format_args!($($arg)*))
    };
}
