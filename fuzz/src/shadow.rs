//! The shadow model: what must be live, and the checks that compare it with the allocator.
//!
//! heapkit-testkit's proptest model has the same core (its `Model` is private to that crate;
//! the fill pattern is shared: `heapkit_testkit::pattern`); this one adds what the fuzz targets
//! need beyond plain allocate/free: the allocation epoch of
//! every block (arena rewinds drop the blocks newer than a checkpoint) and the newest block
//! (arenas grow and free the last block in place).

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_testkit::pattern::{fill_slice, first_mismatch_in};
use std::collections::BTreeMap;

/// The shadow never holds more than this many blocks: a bound on time and memory per run.
pub const LIVE_BLOCKS_MAX: usize = 96;

/// A live block as the shadow knows it.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    /// Its address.
    pub ptr: NonNull<u8>,
    /// The layout it was asked with (the last grow or shrink's, after one).
    pub layout: Layout,
    /// The length the allocator returned (at least `layout.size()`).
    pub len: usize,
    /// The fill pattern's seed.
    pub seed: u8,
    /// When it was admitted: a counter that grows with every admission.
    pub epoch: u64,
}

impl Block {
    fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

/// The live blocks, keyed by address (zero-length blocks apart: they may share addresses).
#[derive(Default, Debug)]
pub struct Shadow {
    live: BTreeMap<usize, Block>,
    empty: Vec<Block>,
    epoch: u64,
    live_bytes: usize,
}

impl Shadow {
    /// Number of live blocks.
    pub fn len(&self) -> usize {
        self.live.len() + self.empty.len()
    }

    /// Whether nothing is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether another block may be admitted.
    pub fn is_full(&self) -> bool {
        self.len() >= LIVE_BLOCKS_MAX
    }

    /// The sum of the live blocks' returned lengths.
    pub fn live_bytes(&self) -> usize {
        self.live_bytes
    }

    /// The epoch the next admitted block gets (what a checkpoint records).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Checks a block the allocator just returned for `layout` (alignment, length, no overlap
    /// with any live block, zero bytes from `zeroed_from` on), fills it with a fresh pattern
    /// (except the first `keep_bytes`, which a grow or shrink carried over with `seed`), and
    /// records it.
    ///
    /// # Panics
    /// On any mismatch: that is the finding.
    pub fn admit(
        &mut self,
        block: NonNull<[u8]>,
        layout: Layout,
        zeroed_from: Option<usize>,
        kept: Option<(u8, usize)>,
    ) -> Block {
        let ptr = block.cast::<u8>();
        let addr = ptr.as_ptr() as usize;
        let len = block.len();
        assert!(
            addr.is_multiple_of(layout.align()),
            "block {addr:#x} is not aligned to {} ({layout:?})",
            layout.align()
        );
        assert!(
            len >= layout.size(),
            "block {addr:#x} has {len} bytes, fewer than the {} asked ({layout:?})",
            layout.size()
        );
        if len > 0 {
            self.assert_disjoint(addr, len);
        }
        // SAFETY: the allocator just handed out `len` bytes at `ptr`, ours alone while live.
        let bytes = unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr(), len) };
        if let Some(from) = zeroed_from.filter(|&from| from < len) {
            if let Some(at) = bytes[from..].iter().position(|&b| b != 0) {
                panic!(
                    "zeroed block {addr:#x} ({layout:?}, {len} bytes) has {:#x} at byte {}",
                    bytes[from + at],
                    from + at
                );
            }
        }
        let (seed, keep_bytes) = kept.unwrap_or(((self.epoch as u8).wrapping_mul(37), 0));
        let keep_bytes = keep_bytes.min(len);
        fill_slice(&mut bytes[keep_bytes..], seed, keep_bytes);
        let entry = Block {
            ptr,
            layout,
            len,
            seed,
            epoch: self.epoch,
        };
        self.epoch += 1;
        self.restore(entry);
        entry
    }

    /// Puts back a block that was taken out (a failed grow or shrink leaves it live).
    pub fn restore(&mut self, block: Block) {
        self.live_bytes += block.len;
        if block.len > 0 {
            let previous = self.live.insert(block.addr(), block);
            assert!(previous.is_none(), "two live blocks at {:#x}", block.addr());
        } else {
            self.empty.push(block);
        }
    }

    /// Requires `addr..addr + len` to overlap no live block.
    pub fn assert_disjoint(&self, addr: usize, len: usize) {
        if let Some((&before, b)) = self.live.range(..=addr).next_back() {
            assert!(
                before + b.len <= addr,
                "block {addr:#x}+{len} overlaps live block {before:#x}+{} ({:?})",
                b.len,
                b.layout
            );
        }
        if let Some((&after, b)) = self.live.range(addr..).next() {
            assert!(
                addr + len <= after,
                "block {addr:#x}+{len} overlaps live block {after:#x}+{} ({:?})",
                b.len,
                b.layout
            );
        }
    }

    /// Requires the first `len` bytes of `block` to hold its pattern.
    ///
    /// # Panics
    /// When a byte differs: the allocator (or a neighbour's write it allowed) changed it.
    pub fn verify(block: &Block, len: usize) {
        assert!(len <= block.len);
        // SAFETY: the block is live (the shadow says so) and `len <= block.len`.
        let bytes = unsafe { core::slice::from_raw_parts(block.ptr.as_ptr(), len) };
        if let Some(index) = first_mismatch_in(bytes, block.seed) {
            panic!(
                "block {:p} ({:?}, {} bytes) lost its contents at byte {index}: {:#x}",
                block.ptr.as_ptr(),
                block.layout,
                block.len,
                bytes[index]
            );
        }
    }

    /// Verifies every live block.
    pub fn verify_all(&self) {
        self.live.values().for_each(|b| Self::verify(b, b.len));
    }

    /// Removes and returns the block at position `index` (modulo the number of live blocks).
    pub fn take(&mut self, index: usize) -> Option<Block> {
        let count = self.len();
        if count == 0 {
            return None;
        }
        let index = index % count;
        let block = if index < self.empty.len() {
            self.empty.swap_remove(index)
        } else {
            let addr = *self.live.keys().nth(index - self.empty.len())?;
            self.live.remove(&addr)?
        };
        self.live_bytes -= block.len;
        Some(block)
    }

    /// Removes and returns the most recently admitted block.
    pub fn take_newest(&mut self) -> Option<Block> {
        let newest = self
            .live
            .values()
            .chain(self.empty.iter())
            .max_by_key(|b| b.epoch)?;
        let (addr, epoch) = (newest.addr(), newest.epoch);
        let block = if newest.len > 0 {
            self.live.remove(&addr)?
        } else {
            let at = self.empty.iter().position(|b| b.epoch == epoch)?;
            self.empty.swap_remove(at)
        };
        self.live_bytes -= block.len;
        Some(block)
    }

    /// Removes the blocks for which `keep` is false (they were freed wholesale, by a reset or
    /// a rewind) and returns how many went.
    pub fn forget_unless(&mut self, mut keep: impl FnMut(&Block) -> bool) -> usize {
        let before = self.len();
        self.live.retain(|_, b| keep(b));
        self.empty.retain(|b| keep(b));
        self.live_bytes = self.live.values().map(|b| b.len).sum();
        before - self.len()
    }

    /// Removes and returns every block.
    pub fn drain(&mut self) -> Vec<Block> {
        let mut all = std::mem::take(&mut self.empty);
        all.extend(std::mem::take(&mut self.live).into_values());
        self.live_bytes = 0;
        all
    }

    /// The live blocks in address order (zero-length ones first).
    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.empty.iter().chain(self.live.values())
    }
}
