//! `FilePages`: page runs carved from a memory-mapped file (memmap2), so that what a heap, an
//! arena or a fixed region writes there outlives the process, or is seen by every process that
//! maps the same file.
//!
//! ```text
//!   file (len_bytes, a page multiple)          mapped MAP_SHARED, read + write
//!   ┌──────────────┬────┬────┬────┬────┬──────┐
//!   │ bitmap pages │ p0 │ p1 │ p2 │ p3 │ …    │  runs first-fit from p0, as in BufferPages
//!   └──────────────┴────┴────┴────┴────┴──────┘
//!   offset 0        data_offset_bytes()          the bitmap is rebuilt (zeroed) on every open;
//!                                                the data pages keep what was written
//! ```
//!
//! The source is a [`BufferPages`] over the mapping: the same bitmap, first fit, `extend` into
//! free pages. So the same sequence of `map` calls on a file of the same length puts each run
//! at the same **file offset** in every run of the program (alignments up to the page size; a
//! larger alignment depends on the address the kernel picked for the mapping).

use crate::BufferPages;
use core::ptr::NonNull;
use heapkit_core::{AllocError, PageSource};
use memmap2::{MmapMut, MmapOptions};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// A page source over a memory-mapped file: runs are pages of the file, shared with every
/// other mapping of it (other processes included) and written back to it.
///
/// # What may be stored, and what not
/// - **Plain bytes and integers** — numbers, fixed-size records, offsets and indices into the
///   file — are valid in any later run and in any process that maps the file.
/// - **Pointers are not**: the file is mapped at an address the kernel picks, different from
///   run to run and from process to process. Store file offsets
///   ([`file_offset`](Self::file_offset)) or indices instead, and turn them back into pointers
///   with [`ptr_at`](Self::ptr_at) after mapping. (A pointer is valid again only if the file is
///   mapped at the same address, which this type does not arrange.)
/// - **An allocator's bookkeeping lives outside the file** (in the `Arena`, `Region` or heap
///   value, and this source's own bitmap is rebuilt on open), and chunk headers inside it hold
///   pointers. So a heap or bump arena over a file gets file-backed memory (larger than RAM,
///   or shared), but reopening the file does not bring the allocator back; what comes back is
///   the bytes at known offsets: a fixed region's `bytes` partitions, or runs mapped in the
///   same order.
/// - **Types with invariants the bytes alone cannot vouch for** (`bool`, `char`, enums,
///   references, anything with `Drop`) must be validated when read back: another process or
///   an older version of the program may have written anything.
/// - **Sharing between processes** needs the usual care: atomics or locks *inside* the file
///   for data written concurrently; this type synchronises only its own bitmap, per process.
///
/// Data reaches the file when the kernel writes the pages back, at the latest when the last
/// mapping is gone; [`flush`](Self::flush) forces it (`msync`). Dropping the source unmaps the
/// file (runs must be given up first, as for any source that owns its memory).
///
/// ```
/// use heapkit_pages::{FilePages, PageSource};
///
/// let path = std::env::temp_dir().join(format!("heapkit-doc-{}.pages", std::process::id()));
/// let pages = FilePages::create(&path, 64 * 1024).unwrap();
/// let run = pages.map(4096, 4096).unwrap();
/// unsafe { run.as_ptr().write_bytes(7, 4096) };
/// let offset = pages.file_offset(run.as_ptr()).unwrap();
/// unsafe { pages.unmap(run, 4096) };
/// drop(pages); // unmapped; the bytes are in the file
///
/// let pages = FilePages::open(&path).unwrap();
/// let run = pages.map(4096, 4096).unwrap();
/// assert_eq!(pages.file_offset(run.as_ptr()), Some(offset)); // same order, same offset
/// assert_eq!(unsafe { run.as_ptr().read() }, 7);
/// # unsafe { pages.unmap(run, 4096) };
/// # drop(pages);
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub struct FilePages {
    // Declared first, so dropped before the mapping it points into.
    pages: BufferPages<'static>,
    map: MmapMut,
}

impl core::fmt::Debug for FilePages {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FilePages")
            .field("len_bytes", &self.map.len())
            .field("pages", &self.pages)
            .finish()
    }
}

impl FilePages {
    /// Opens `path` for reading and writing, creating it if it does not exist, makes it at
    /// least `len_bytes` long (growing it with zero bytes; a longer file is not shortened), and
    /// maps it. Fails with `InvalidInput` when `len_bytes` is 0 or not a multiple of the OS
    /// page size.
    pub fn create(path: impl AsRef<Path>, len_bytes: usize) -> io::Result<Self> {
        check_len(len_bytes)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len_u64 = u64::try_from(len_bytes).map_err(|_| invalid("length too large"))?;
        if file.metadata()?.len() < len_u64 {
            file.set_len(len_u64)?;
        }
        Self::from_file(&file)
    }

    /// Maps an existing file, all of it (its length must be a non-zero page multiple, as
    /// `create` makes it).
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Self::from_file(&file)
    }

    /// Maps all of `file` (opened for reading and writing), shared. The file may be closed
    /// afterwards: the mapping keeps it.
    pub fn from_file(file: &File) -> io::Result<Self> {
        let len_bytes =
            usize::try_from(file.metadata()?.len()).map_err(|_| invalid("file too large"))?;
        check_len(len_bytes)?;
        // SAFETY: memmap2's `map_mut` is unsafe because another process (or another mapping in
        // this one) may change the file under us. That is the documented contract of this
        // type: the source hands out raw page runs, never Rust references, and the type's docs
        // tell users to treat the bytes as shared, untrusted data.
        let mut map = unsafe { MmapOptions::new().len(len_bytes).map_mut(file)? };
        let start = NonNull::new(map.as_mut_ptr()).ok_or_else(|| invalid("empty mapping"))?;
        // SAFETY: the mapping is valid for reads and writes for `len_bytes` and is owned by the
        // returned value, which drops the `BufferPages` before the mapping (field order); the
        // runs it hands out may not outlive the source (the `PageSource` contract).
        let pages = unsafe { BufferPages::from_raw_parts(start, len_bytes, page_bytes()) }
            .map_err(|AllocError| invalid("the OS page size is not usable"))?;
        Ok(FilePages { pages, map })
    }

    /// The length of the mapped file.
    pub fn len_bytes(&self) -> usize {
        self.map.len()
    }

    /// Where the pages handed out start in the file: the bytes before hold this source's
    /// page bitmap, which is rebuilt on every open (never store data there).
    pub fn data_offset_bytes(&self) -> usize {
        // The first page run starts at the first data page; `capacity_pages` of them follow,
        // up to the end of the file.
        self.len_bytes() - self.pages.capacity_pages() * page_bytes()
    }

    /// The offset in the file of `ptr`, when it points into the mapping: what to store instead
    /// of a pointer.
    pub fn file_offset(&self, ptr: *const u8) -> Option<usize> {
        let offset = (ptr as usize).checked_sub(self.map.as_ptr() as usize)?;
        (offset < self.len_bytes()).then_some(offset)
    }

    /// The address of file offset `offset` in this mapping (`None` past the end): how a stored
    /// offset becomes a pointer again. Reading or writing through it is the caller's business:
    /// it is inside a run only if a run was mapped there.
    pub fn ptr_at(&self, offset: usize) -> Option<NonNull<u8>> {
        if offset >= self.len_bytes() {
            return None;
        }
        // SAFETY: `offset < len`: inside the mapping, derived from its start.
        NonNull::new(unsafe { self.map.as_ptr().add(offset) }.cast_mut())
    }

    /// Writes the mapped pages back to the file and waits (`msync(MS_SYNC)`).
    pub fn flush(&self) -> io::Result<()> {
        self.map.flush()
    }

    /// Starts writing the mapped pages back to the file without waiting (`MS_ASYNC`).
    pub fn flush_async(&self) -> io::Result<()> {
        self.map.flush_async()
    }
}

/// The OS page size: mappings of a file are made of its pages.
fn page_bytes() -> usize {
    crate::os_page_size()
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

fn check_len(len_bytes: usize) -> io::Result<()> {
    if len_bytes == 0 || len_bytes % page_bytes() != 0 {
        return Err(invalid(
            "a FilePages file must be a non-zero multiple of the page size long",
        ));
    }
    Ok(())
}

// SAFETY: every call goes to the `BufferPages` over the mapping, which keeps the contract; the
// mapping lives as long as this value.
unsafe impl PageSource for FilePages {
    fn page_size(&self) -> usize {
        self.pages.page_size()
    }

    fn map(&self, len_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, AllocError> {
        self.pages.map(len_bytes, align_bytes)
    }

    unsafe fn unmap(&self, ptr: NonNull<u8>, len_bytes: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.pages.unmap(ptr, len_bytes) }
    }

    fn extend(&self, end: NonNull<u8>, extra_bytes: usize) -> Result<(), AllocError> {
        self.pages.extend(end, extra_bytes)
    }

    /// A file's pages hold what was written before (by this run, an earlier one, or another
    /// process): never known to be zero.
    fn maps_zeroed(&self) -> bool {
        false
    }

    fn mapped_bytes(&self) -> usize {
        self.pages.mapped_bytes()
    }
}
