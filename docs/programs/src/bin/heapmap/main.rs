//! Draws the book's pictures from the allocators' own introspection (`Bins::heap_map`,
//! `Bins::fragmentation`, `Slab::heap_map`, `Slab::class_stats` behind a `ThreadCache`,
//! `Arena::heap_map`, `Region::layout` with the pool's and ring's state): a scripted sequence
//! of allocations and frees runs through each allocator, and its heap is drawn as SVG after
//! the interesting steps. The bins and slab pictures are here; the others in their modules.
//!
//! `cargo run --manifest-path docs/programs/Cargo.toml --bin heapmap -- docs/images`
//!
//! Prints one caption line per picture (the figures the book quotes). The output is
//! deterministic (offsets, never addresses), so `cargo xtask docs`'s test can re-draw the
//! pictures and compare them with the committed ones.

use core::alloc::Layout;
use core::ptr::NonNull;
use heapkit_bins::{Bins, ChunkState, Config};
use heapkit_core::{Allocator, Introspect, UnsizedAllocator};
use heapkit_docs_programs::svg::{colour, Svg};
use heapkit_pages::BufferPages;
use heapkit_slab::{Slab, SlotKind, SLOTS_PER_CHUNK};

mod bump;
mod fixed;
mod tcache;

/// A picture: its file name and the function that draws it (returning SVG and caption).
type Picture = (&'static str, fn() -> (String, String));

/// Every picture of the book, in chapter order.
const PICTURES: [Picture; 7] = [
    ("bins-steps.svg", bins_steps),
    ("slab-chunk.svg", slab_chunk),
    ("frag-internal.svg", frag_internal),
    ("frag-external.svg", frag_external),
    ("tcache-bins.svg", tcache::tcache_bins),
    ("bump-chunks.svg", bump::bump_chunks),
    ("fixed-region.svg", fixed::fixed_region),
];

/// `heapmap [DIR [NAME...]]`: draws every picture into DIR, or only the NAMEs given.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .cloned()
        .unwrap_or_else(|| "docs/images".into());
    let only = args.get(1..).unwrap_or_default();
    for name in only {
        assert!(
            PICTURES.iter().any(|(known, _)| known == name),
            "no picture named {name:?}"
        );
    }
    std::fs::create_dir_all(&dir).expect("create the output folder");
    for (name, draw) in PICTURES {
        if !only.is_empty() && !only.iter().any(|n| n == name) {
            continue;
        }
        let (svg, caption) = draw();
        let path = format!("{dir}/{name}");
        std::fs::write(&path, svg).expect("write the picture");
        println!("{name}: {caption}");
    }
}

// ---------------------------------------------------------------------------------------------
// heapkit-bins: a boundary-tag heap, one row of chunks per step.

/// One chunk as drawn: offset in its segment, size, state, and the script's name for it.
struct Drawn {
    offset_bytes: usize,
    size_bytes: usize,
    state: ChunkState,
    name: Option<char>,
}

struct BinsTour {
    heap: Bins<BufferPages<'static>>,
    names: Vec<(usize, char)>,
    rows: Vec<(String, Vec<Drawn>)>,
}

impl BinsTour {
    fn new() -> BinsTour {
        // The walkthrough's configuration: a small mmap threshold so a 20 KiB block shows
        // the "huge" path, and no top padding so the heap is easy to read.
        let config = Config {
            mmap_threshold_bytes: 8 * 1024,
            dynamic_mmap_threshold: false,
            top_pad_bytes: 0,
            // The bare arena (no tcache): every free reaches the bins, as the chapters describe.
            tcache_count: 0,
            ..Config::DEFAULT
        };
        let pages = BufferPages::owned(256 * 1024, 4096).expect("buffer");
        BinsTour {
            heap: Bins::with_config(pages, config),
            names: Vec::new(),
            rows: Vec::new(),
        }
    }

    fn malloc(&mut self, name: char, size: usize) -> NonNull<u8> {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let ptr = self.heap.allocate(layout).expect("room").cast::<u8>();
        let chunk_addr = ptr.as_ptr() as usize - 16;
        self.names.retain(|n| n.1 != name && n.0 != chunk_addr);
        self.names.push((chunk_addr, name));
        self.snapshot(format!("{name} = malloc({size})"));
        ptr
    }

    fn free(&mut self, name: char, ptr: NonNull<u8>) {
        // SAFETY: the script frees each live block once.
        unsafe { self.heap.deallocate_unsized(ptr) };
        self.names.retain(|n| n.1 != name);
        self.snapshot(format!("free({name})"));
    }

    fn snapshot(&mut self, what: String) {
        self.heap.check().expect("consistent heap");
        let chunks = self
            .heap
            .heap_map()
            .map(|c| Drawn {
                offset_bytes: c.offset_bytes,
                size_bytes: c.size_bytes,
                state: c.state,
                name: self.names.iter().find(|n| n.0 == c.addr).map(|n| n.1),
            })
            .collect();
        let f = self.heap.fragmentation();
        let label = format!(
            "{}. {what}: used {} B, free {} B in {} chunk(s), top {} B{}",
            self.rows.len() + 1,
            f.used_bytes,
            f.free_bytes - f.top_bytes,
            f.free_chunks,
            f.top_bytes,
            if f.mmapped_bytes > 0 {
                format!(", mmapped {} B", f.mmapped_bytes)
            } else {
                String::new()
            }
        );
        self.rows.push((label, chunks));
    }
}

/// Pixels for a chunk at `bytes_per_px`, at least 12 px; top is cut to 150 px.
fn chunk_px(size_bytes: usize, state: ChunkState, bytes_per_px: f64) -> f64 {
    match state {
        ChunkState::Top => 150.0,
        _ => (size_bytes as f64 / bytes_per_px).max(12.0),
    }
}

fn bins_steps() -> (String, String) {
    let mut t = BinsTour::new();
    let a = t.malloc('a', 100);
    let b = t.malloc('b', 200);
    let c = t.malloc('c', 300);
    let d = t.malloc('d', 1500);
    let e = t.malloc('e', 40);
    t.free('b', b);
    t.free('a', a);
    let f = t.malloc('f', 64);
    t.free('c', c);
    t.free('d', d);
    let g = t.malloc('g', 2000);
    let h = t.malloc('h', 20 * 1024);
    t.free('h', h);
    let (old, new) = (
        Layout::from_size_align(40, 8).unwrap(),
        Layout::from_size_align(600, 8).unwrap(),
    );
    // SAFETY: e is live with layout `old`.
    let e2 = unsafe { t.heap.grow(e, old, new) }.expect("grow");
    assert_eq!(e2.cast::<u8>(), e, "grew in place");
    t.snapshot("e = realloc(e, 600), in place".into());
    t.free('g', g);
    t.free('e', e);
    t.free('f', f);

    let row_pitch = 58.0;
    let mut svg = Svg::with_heading(
        900,
        (70.0 + row_pitch * t.rows.len() as f64) as u32,
        "heapkit-bins: the heap after each step (1 px = 16 B; top cut short)",
        &[
            (colour::META, "segment header + bin sentinels"),
            (colour::USED, "used chunk"),
            (colour::FREE, "free chunk (bin)"),
            (colour::UNTOUCHED, "top"),
        ],
    );
    for (i, (label, chunks)) in t.rows.iter().enumerate() {
        let y = 70.0 + row_pitch * i as f64;
        svg.text(10.0, y + 2.0, 12, "start", label);
        let first = chunks.first().map_or(0, |c| c.offset_bytes);
        let meta_px = first as f64 / 16.0;
        svg.rect(
            10.0,
            y + 8.0,
            meta_px,
            20.0,
            colour::META,
            &format!("{first} B of metadata"),
        );
        let mut x = 10.0 + meta_px;
        for chunk in chunks {
            let w = chunk_px(chunk.size_bytes, chunk.state, 16.0);
            let (fill, text, below) = match chunk.state {
                ChunkState::Used => (
                    colour::USED,
                    chunk.name.map(String::from).unwrap_or_default(),
                    String::new(),
                ),
                ChunkState::Free { bin } => (colour::FREE, String::new(), format!("bin {bin}")),
                ChunkState::Fast { bin } => (colour::FREE, String::new(), format!("fast {bin}")),
                ChunkState::Cached { bin } => {
                    (colour::FREE, String::new(), format!("tcache {bin}"))
                }
                ChunkState::Top => (
                    colour::UNTOUCHED,
                    format!("top {} B", chunk.size_bytes),
                    String::new(),
                ),
                ChunkState::Fence => (colour::META, String::new(), String::new()),
            };
            let tip = format!(
                "+{} {} B {:?}",
                chunk.offset_bytes, chunk.size_bytes, chunk.state
            );
            svg.rect(x, y + 8.0, w, 20.0, fill, &tip);
            if !text.is_empty() {
                svg.text(x + w / 2.0, y + 22.0, 11, "middle", &text);
            }
            if !below.is_empty() {
                svg.text(x + w / 2.0, y + 40.0, 10, "middle", &below);
            }
            x += w;
        }
    }
    let f = t.heap.fragmentation();
    let caption = format!(
        "{} steps; after the last free every chunk has coalesced into top ({} B), free chunks {}, used {} B",
        t.rows.len(),
        f.top_bytes,
        f.free_chunks,
        f.used_bytes
    );
    (svg.finish(), caption)
}

// ---------------------------------------------------------------------------------------------
// heapkit-slab: the 32 slots of a chunk, and the blocks of one slab.

/// What a slot looked like, owned (the map callback's data cannot leave it).
#[derive(Clone)]
struct SlotDrawn {
    kind: SlotKind,
    /// For a small slab: per block 0 = live, 1 = freed (listed), 2 = never used.
    blocks: Vec<u8>,
}

fn slab_snapshot(heap: &Slab<BufferPages<'static>>) -> (Vec<SlotDrawn>, Vec<SlotKind>) {
    heap.check().expect("consistent slab heap");
    let mut slots = Vec::new();
    let mut huge = Vec::new();
    heap.heap_map(|slot| {
        if let SlotKind::Huge { .. } = slot.kind {
            huge.push(slot.kind);
            return;
        }
        let mut blocks = Vec::new();
        if let SlotKind::Small {
            capacity,
            untouched,
            ..
        } = slot.kind
        {
            blocks = vec![0u8; capacity];
            slot.for_each_free_block(|i| blocks[i] = 1);
            for b in blocks.iter_mut().skip(capacity - untouched) {
                *b = 2;
            }
        }
        slots.push(SlotDrawn {
            kind: slot.kind,
            blocks,
        });
    });
    (slots, huge)
}

fn slab_chunk() -> (String, String) {
    let heap = Slab::new(BufferPages::owned(16 << 20, 4096).expect("buffer"));
    let small = Layout::from_size_align(40, 8).unwrap();
    let medium = Layout::from_size_align(3000, 8).unwrap();
    let large = Layout::from_size_align(100_000, 8).unwrap();
    let huge = Layout::from_size_align(1_500_000, 8).unwrap();
    let mut frames = Vec::new();

    let smalls: Vec<NonNull<u8>> = (0..6)
        .map(|_| heap.allocate(small).unwrap().cast())
        .collect();
    // SAFETY: live blocks of `small`.
    unsafe {
        heap.deallocate(smalls[1], small);
        heap.deallocate(smalls[4], small);
    }
    frames.push((
        "6 x malloc(40), then free blocks 1 and 4",
        slab_snapshot(&heap),
    ));
    let mediums: Vec<NonNull<u8>> = (0..25)
        .map(|_| heap.allocate(medium).unwrap().cast())
        .collect();
    let big = heap.allocate(large).unwrap().cast::<u8>();
    let giant = heap.allocate(huge).unwrap().cast::<u8>();
    frames.push((
        "+ 25 x malloc(3000), malloc(100000), malloc(1500000)",
        slab_snapshot(&heap),
    ));
    // SAFETY: live blocks with their layouts.
    unsafe {
        for m in mediums {
            heap.deallocate(m, medium);
        }
        heap.deallocate(big, large);
        heap.deallocate(giant, huge);
    }
    frames.push((
        "free the 3000 B blocks, the span and the huge block",
        slab_snapshot(&heap),
    ));
    let stats = heap.stats().unwrap();

    let slot_px = 26.0;
    let frame_pitch = 165.0;
    let mut svg = Svg::with_heading(
        900,
        (60.0 + frame_pitch * frames.len() as f64) as u32,
        "heapkit-slab: one 2 MiB chunk = 32 slots of 64 KiB, and the first slab's blocks",
        &[
            (colour::META, "chunk header"),
            (colour::USED, "live"),
            (colour::FREE, "freed (free list)"),
            (colour::UNTOUCHED, "never used / clean"),
            (colour::DIRTY, "dirty free slot"),
        ],
    );
    for (i, (title, (slots, huge))) in frames.iter().enumerate() {
        let y = 70.0 + frame_pitch * i as f64;
        let huge_text = match huge.first() {
            Some(SlotKind::Huge {
                usable_bytes,
                mapped_bytes,
            }) => {
                format!("; huge block: {usable_bytes} B usable in its own {mapped_bytes} B mapping")
            }
            _ => String::new(),
        };
        svg.text(
            10.0,
            y,
            12,
            "start",
            &format!("{}. {title}{huge_text}", i + 1),
        );
        for (index, slot) in slots.iter().take(SLOTS_PER_CHUNK).enumerate() {
            let x = 10.0 + slot_px * index as f64;
            draw_slot(&mut svg, x, y + 8.0, slot_px, index, slot);
        }
        // The first small slab's first 64 blocks, one square each.
        if let Some((index, slab)) = slots.iter().enumerate().find(|(_, s)| !s.blocks.is_empty()) {
            let (block_bytes, capacity) = match slab.kind {
                SlotKind::Small {
                    block_bytes,
                    capacity,
                    ..
                } => (block_bytes, capacity),
                _ => (0, 0),
            };
            svg.text(
                10.0,
                y + 102.0,
                11,
                "start",
                &format!(
                    "slot {index}: a slab of {capacity} blocks of {block_bytes} B; the first 64:"
                ),
            );
            for (b, state) in slab.blocks.iter().take(64).enumerate() {
                let fill = [colour::USED, colour::FREE, colour::UNTOUCHED][*state as usize];
                svg.rect(
                    10.0 + 13.0 * b as f64,
                    y + 109.0,
                    12.0,
                    12.0,
                    fill,
                    &format!("block {b}"),
                );
            }
        }
    }
    let caption = format!(
        "3 frames; at the end live {} B in {} blocks, mapped {} KiB",
        stats.live_bytes,
        stats.live_blocks,
        stats.mapped_bytes >> 10
    );
    (svg.finish(), caption)
}

fn draw_slot(svg: &mut Svg, x: f64, y: f64, w: f64, index: usize, slot: &SlotDrawn) {
    let h = 60.0;
    match slot.kind {
        SlotKind::Header => {
            svg.rect(x, y, w, h, colour::META, "slot 0: chunk header");
            svg.text(x + w / 2.0, y + h + 12.0, 9, "middle", "hdr");
        }
        SlotKind::Free { dirty } => {
            let fill = if dirty {
                colour::DIRTY
            } else {
                colour::UNTOUCHED
            };
            svg.rect(
                x,
                y,
                w,
                h,
                fill,
                &format!("slot {index}: free{}", if dirty { ", dirty" } else { "" }),
            );
        }
        SlotKind::Small {
            block_bytes,
            capacity,
            live,
            untouched,
            ..
        } => {
            // A stacked bar: live (bottom), freed, never used (top).
            let freed = capacity - live - untouched;
            let tip = format!("slot {index}: {block_bytes} B class, {live}/{capacity} live");
            let mut top = y;
            for (count, fill) in [
                (untouched, colour::UNTOUCHED),
                (freed, colour::FREE),
                (live, colour::USED),
            ] {
                let part = h * count as f64 / capacity as f64;
                if part > 0.0 {
                    svg.rect(x, top, w, part, fill, &tip);
                }
                top += part;
            }
            svg.text(
                x + w / 2.0,
                y + h + 12.0,
                9,
                "middle",
                &block_bytes.to_string(),
            );
        }
        SlotKind::Large { slots } => {
            svg.rect(
                x,
                y,
                w * slots as f64,
                h,
                colour::USED,
                &format!("slot {index}: large span of {slots} slots"),
            );
            svg.text(
                x + w * slots as f64 / 2.0,
                y + h + 12.0,
                9,
                "middle",
                "large",
            );
        }
        SlotKind::LargeTail | SlotKind::Huge { .. } => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Fragmentation.

/// Internal fragmentation: what each allocator hands out for the same requests.
fn frag_internal() -> (String, String) {
    let requests = [17usize, 100, 129, 200, 520, 1025, 3000, 5000];
    let slab = Slab::new(BufferPages::owned(8 << 20, 4096).expect("buffer"));
    let bins = Bins::new(BufferPages::owned(1 << 20, 4096).expect("buffer"));
    let mut svg = Svg::with_heading(
        900,
        80 + 44 * requests.len() as u32,
        "Internal fragmentation: the same requests in a slab (size classes) and in bins (headers)",
        &[
            (colour::USED, "asked for"),
            (colour::WASTE, "rounding waste"),
            (colour::META, "chunk header"),
        ],
    );
    let scale = 700.0 / 5120.0;
    let (mut asked, mut slab_total, mut bins_total) = (0usize, 0usize, 0usize);
    for (i, &size) in requests.iter().enumerate() {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let slab_block = slab.allocate(layout).unwrap().len();
        let bins_usable = bins.allocate(layout).unwrap().len();
        let bins_chunk = heapkit_bins::chunk_size_for(size).unwrap();
        asked += size;
        slab_total += slab_block;
        bins_total += bins_chunk;
        let y = 60.0 + 44.0 * i as f64;
        svg.text(10.0, y + 12.0, 11, "start", &format!("{size:>5} B"));
        // Slab row: asked + waste up to the class size.
        svg.rect(
            70.0,
            y,
            size as f64 * scale,
            14.0,
            colour::USED,
            &format!("asked {size} B"),
        );
        svg.rect(
            70.0 + size as f64 * scale,
            y,
            (slab_block - size) as f64 * scale,
            14.0,
            colour::WASTE,
            &format!("slab class {slab_block} B"),
        );
        svg.text(
            70.0 + slab_block as f64 * scale + 6.0,
            y + 12.0,
            10,
            "start",
            &format!(
                "slab {slab_block} B (+{:.0}%)",
                100.0 * (slab_block - size) as f64 / size as f64
            ),
        );
        // Bins row: asked + rounding + header.
        let y2 = y + 17.0;
        svg.rect(
            70.0,
            y2,
            size as f64 * scale,
            14.0,
            colour::USED,
            &format!("asked {size} B"),
        );
        svg.rect(
            70.0 + size as f64 * scale,
            y2,
            (bins_usable - size) as f64 * scale,
            14.0,
            colour::WASTE,
            "rounding",
        );
        svg.rect(
            70.0 + bins_usable as f64 * scale,
            y2,
            (bins_chunk - bins_usable) as f64 * scale,
            14.0,
            colour::META,
            "header",
        );
        svg.text(
            70.0 + bins_chunk as f64 * scale + 6.0,
            y2 + 12.0,
            10,
            "start",
            &format!(
                "bins chunk {bins_chunk} B (+{:.0}%)",
                100.0 * (bins_chunk - size) as f64 / size as f64
            ),
        );
    }
    let caption = format!(
        "asked {asked} B in {} blocks; slab hands out {slab_total} B (+{:.1}%), bins' chunks take {bins_total} B (+{:.1}%)",
        requests.len(),
        100.0 * (slab_total - asked) as f64 / asked as f64,
        100.0 * (bins_total - asked) as f64 / asked as f64
    );
    (svg.finish(), caption)
}

/// External fragmentation: free memory in holes too small for the next request.
fn frag_external() -> (String, String) {
    let config = Config {
        top_pad_bytes: 0,
        // The bare arena (no tcache): every free reaches the bins, as the chapters describe.
        tcache_count: 0,
        ..Config::DEFAULT
    };
    let heap = Bins::with_config(
        BufferPages::owned(256 * 1024, 4096).expect("buffer"),
        config,
    );
    let layout = Layout::from_size_align(1000, 8).unwrap();
    let blocks: Vec<NonNull<u8>> = (0..12)
        .map(|_| heap.allocate(layout).unwrap().cast())
        .collect();
    for (i, b) in blocks.iter().enumerate() {
        if i % 2 == 0 {
            // SAFETY: each even block is live and freed once.
            unsafe { heap.deallocate(*b, layout) };
        }
    }
    // Sort the unsorted bin into the small bins with a request that fits no hole.
    let big = Layout::from_size_align(2000, 8).unwrap();
    let before = heap.fragmentation();
    let holes: Vec<usize> = heap
        .heap_map()
        .filter(|c| matches!(c.state, ChunkState::Free { .. }))
        .map(|c| c.size_bytes)
        .collect();
    let hole_bytes: usize = holes.iter().sum();
    let largest_hole = holes.iter().copied().max().unwrap_or(0);
    let top_before = before.top_bytes;
    let _g = heap.allocate(big).unwrap();
    let after = heap.fragmentation();
    heap.check().expect("consistent");

    let mut svg = Svg::new(900, 140);
    svg.text(10.0, 20.0, 14, "start", "External fragmentation: 12 x malloc(1000), free every other one, then malloc(2000) (1 px = 24 B)");
    svg.legend(
        10.0,
        42.0,
        &[
            (colour::META, "metadata"),
            (colour::USED, "used"),
            (colour::FREE, "free hole"),
            (colour::UNTOUCHED, "top"),
        ],
    );
    let mut x = 10.0;
    let y = 60.0;
    let first = heap.heap_map().next().map_or(0, |c| c.offset_bytes);
    svg.rect(x, y, first as f64 / 24.0, 30.0, colour::META, "metadata");
    x += first as f64 / 24.0;
    for c in heap.heap_map() {
        let w = chunk_px(c.size_bytes, c.state, 24.0);
        let fill = match c.state {
            ChunkState::Used => colour::USED,
            ChunkState::Top => colour::UNTOUCHED,
            ChunkState::Fence => colour::META,
            _ => colour::FREE,
        };
        svg.rect(
            x,
            y,
            w,
            30.0,
            fill,
            &format!("{} B {:?}", c.size_bytes, c.state),
        );
        if c.size_bytes == heapkit_bins::chunk_size_for(2000).unwrap()
            && c.state == ChunkState::Used
        {
            svg.text(x + w / 2.0, y + 20.0, 11, "middle", "2000");
        }
        x += w;
    }
    let caption = format!(
        "{} holes = {hole_bytes} B free, largest hole {largest_hole} B: the 2000 B request fits none and is cut from top ({top_before} B -> {} B); holes' external fragmentation 1 - {largest_hole}/{hole_bytes} = {:.2}; Fragmentation::external() with top = {:.2}",
        holes.len(),
        after.top_bytes,
        1.0 - largest_hole as f64 / hole_bytes as f64,
        after.external()
    );
    svg.text(10.0, 120.0, 11, "start", &format!("{} holes, {hole_bytes} B free in total, largest {largest_hole} B: the 2000 B block had to come from top", holes.len()));
    (svg.finish(), caption)
}
