//! heapkit-bump: an arena's chunks after each step, from `Arena::heap_map`.
//!
//! The arena takes its chunks from a `BufferPages` with 4 KiB pages, so the chunk sizes are
//! the same on every machine (an mmap arena's first chunk is one OS page).

use heapkit_bump::{Arena, ChunkInfo, ChunkRole};
use heapkit_core::Introspect;
use heapkit_docs_programs::svg::{colour, Svg};
use heapkit_pages::BufferPages;

type TestArena = Arena<BufferPages<'static>>;

/// Bytes per pixel: the largest row (4 + 8 + 16 KiB of chunks) fits the picture.
const BYTES_PER_PX: f64 = 40.0;

/// The arena's chunks, oldest first, the spare last, with the arena checked.
fn chunks(arena: &TestArena) -> Vec<ChunkInfo> {
    arena.check().expect("consistent arena");
    let mut chunks = Vec::new();
    arena.heap_map(|c| chunks.push(*c));
    chunks.sort_by_key(|c| c.index);
    chunks
}

/// Bytes retired chunks lost at their tails (the arena's internal fragmentation).
fn lost_bytes(chunks: &[ChunkInfo]) -> usize {
    chunks
        .iter()
        .filter(|c| c.role == ChunkRole::Retired)
        .map(|c| c.free_bytes)
        .sum()
}

/// Draws the steps; returns the picture and its caption.
pub fn bump_chunks() -> (String, String) {
    let mut arena = Arena::with_source(BufferPages::owned(1 << 20, 4096).expect("buffer"));
    let mut rows: Vec<(String, Vec<ChunkInfo>)> = Vec::new();
    let mut step = |what: &str, arena: &TestArena| rows.push((what.to_string(), chunks(arena)));

    arena.alloc(42u64);
    arena.alloc_str("a string copied into the arena");
    step("alloc(u64), alloc_str(30 B): the first chunk", &arena);
    for i in 0..100u32 {
        arena.alloc([i; 16]);
    }
    step(
        "100 x alloc([u32; 16]): a second chunk, twice the size",
        &arena,
    );
    let mark = arena.checkpoint();
    for i in 0..200u64 {
        arena.alloc([i; 8]);
    }
    step("checkpoint, then 200 x alloc([u64; 8])", &arena);
    let before_rewind = arena.used_bytes();
    arena.rewind(mark);
    step(
        "rewind(checkpoint): the newest chunk becomes the spare",
        &arena,
    );
    arena.reset();
    step("reset(): only the largest chunk is kept, empty", &arena);
    arena.alloc_slice_copy(&[1u8, 2, 3]);
    step("alloc_slice_copy(3 B) after the reset", &arena);

    let row_pitch = 72.0;
    let mut svg = Svg::with_heading(
        900,
        (70.0 + row_pitch * rows.len() as f64) as u32,
        "heapkit-bump: the arena's chunks after each step (oldest left; 1 px = 40 B)",
        &[
            (colour::META, "chunk header"),
            (colour::USED, "used"),
            (colour::WASTE, "lost tail"),
            (colour::UNTOUCHED, "room / spare"),
        ],
    );
    for (i, (what, chunks)) in rows.iter().enumerate() {
        let y = 70.0 + row_pitch * i as f64;
        let held: usize = chunks.iter().map(|c| c.len_bytes).sum();
        let used: usize = chunks.iter().map(|c| c.used_bytes).sum();
        svg.text(
            10.0,
            y + 2.0,
            12,
            "start",
            &format!(
                "{}. {what}: used {used} B of {held} B held, lost {} B",
                i + 1,
                lost_bytes(chunks)
            ),
        );
        let mut x = 10.0;
        for chunk in chunks {
            x = draw_chunk(&mut svg, x, y + 8.0, chunk) + 8.0;
        }
    }
    let widest = &rows[2].1;
    let caption = format!(
        "{} steps; at the widest {} chunks hold {} B for {before_rewind} B used ({} B lost at \
         retired chunks' tails); after reset() {} chunks ({} B) are kept empty for the next round",
        rows.len(),
        widest.len(),
        widest.iter().map(|c| c.len_bytes).sum::<usize>(),
        lost_bytes(widest),
        rows[4].1.len(),
        rows[4].1.iter().map(|c| c.len_bytes).sum::<usize>()
    );
    (svg.finish(), caption)
}

/// One chunk: header, used, then the rest (lost or room); returns the x after it.
fn draw_chunk(svg: &mut Svg, x: f64, y: f64, c: &ChunkInfo) -> f64 {
    let px = |bytes: usize| bytes as f64 / BYTES_PER_PX;
    let (rest_fill, rest_what) = match c.role {
        ChunkRole::Retired => (colour::WASTE, "lost"),
        ChunkRole::Current => (colour::UNTOUCHED, "room"),
        ChunkRole::Spare => (colour::UNTOUCHED, "spare"),
    };
    let header_px = px(c.header_bytes).max(2.0);
    svg.rect(
        x,
        y,
        header_px,
        20.0,
        colour::META,
        &format!("header {} B", c.header_bytes),
    );
    let mut at = x + header_px;
    if c.used_bytes > 0 {
        svg.rect(
            at,
            y,
            px(c.used_bytes),
            20.0,
            colour::USED,
            &format!("used {} B", c.used_bytes),
        );
        at += px(c.used_bytes);
    }
    if c.free_bytes > 0 {
        let w = px(c.free_bytes).max(2.0);
        svg.rect(
            at,
            y,
            w,
            20.0,
            rest_fill,
            &format!("{rest_what} {} B", c.free_bytes),
        );
        at += w;
    }
    let role = match c.role {
        ChunkRole::Retired => "retired",
        ChunkRole::Current => "current",
        ChunkRole::Spare => "spare",
    };
    // Two short lines: a 4 KiB chunk is only ~100 px wide.
    svg.text(
        x,
        y + 32.0,
        10,
        "start",
        &format!("chunk {}: {} KiB", c.index, c.len_bytes >> 10),
    );
    svg.text(x, y + 43.0, 10, "start", role);
    at
}
