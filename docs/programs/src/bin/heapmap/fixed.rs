//! heapkit-fixed: a region's partitions (`Region::layout`), then a pool's slots, a ring's
//! occupancy and the bump partition's fill after each step (`Pool::slot_state`,
//! `Pool::for_each_free_slot`, `Ring::head_index`, `Ring::is_occupied`,
//! `Region::bump_usage_bytes`).

use core::alloc::Layout;
use heapkit_core::Allocator;
use heapkit_docs_programs::svg::{colour, Svg};
use heapkit_fixed::{PartitionKind, Pool, Prefault, Region, RegionLayout, Ring, SlotState};
use heapkit_pages::BufferPages;

/// What a pool slot holds: 16 bytes.
#[derive(Clone, Copy)]
struct Account {
    _id: u64,
    _balance: i64,
}

const POOL_SLOTS: usize = 16;
/// Six 8-byte cells: 48 B, so the next partition's 64-byte alignment leaves padding to see.
const RING_SLOTS: usize = 6;
const BUMP_BYTES: usize = 1024;

/// One frame: the pool's slots (with their free-list position), the ring's cells, the bump.
struct Frame {
    title: String,
    /// Per slot: `None` when acquired, else its position on the free list (0 = next).
    slots: Vec<Option<usize>>,
    ring: Vec<bool>,
    ring_head: usize,
    bump_used_bytes: usize,
}

fn frame(
    title: &str,
    region: &Region<BufferPages<'static>>,
    pool: &Pool<'_, Account>,
    ring: &Ring<'_, u64>,
) -> Frame {
    pool.check().expect("consistent pool");
    ring.check().expect("consistent ring");
    let mut slots: Vec<Option<usize>> = (0..pool.capacity())
        .map(|i| match pool.slot_state(i) {
            Some(SlotState::Free) => Some(usize::MAX),
            _ => None,
        })
        .collect();
    let mut position = 0;
    pool.for_each_free_slot(|i| {
        slots[i] = Some(position);
        position += 1;
    });
    assert!(
        slots.iter().all(|s| *s != Some(usize::MAX)),
        "every free slot is listed"
    );
    Frame {
        title: title.to_string(),
        slots,
        ring: (0..ring.capacity()).map(|i| ring.is_occupied(i)).collect(),
        ring_head: ring.head_index(),
        bump_used_bytes: region.bump_usage_bytes().1,
    }
}

/// Draws the region; returns the picture and its caption.
pub fn fixed_region() -> (String, String) {
    let mut layout = RegionLayout::new();
    let accounts = layout.pool::<Account>("accounts", POOL_SLOTS);
    let inbox = layout.ring::<u64>("inbox", RING_SLOTS);
    layout.bytes("journal", 256, 8);
    layout.bump("init", BUMP_BYTES);
    let pages = BufferPages::owned(64 * 1024, 4096).expect("buffer");
    let region = Region::new(layout, pages, Prefault::Touch).expect("the region fits");
    let mut pool = region.pool(accounts).expect("first take");
    let mut ring = region.ring(inbox).expect("first take");
    let mut frames = vec![frame("start-up: everything free", &region, &pool, &ring)];

    let account = Account {
        _id: 0,
        _balance: 0,
    };
    let ids: Vec<_> = (0..12)
        .map(|_| pool.try_acquire(account).ok().unwrap())
        .collect();
    for slot in [3, 7, 9] {
        pool.release(ids[slot]).expect("acquired");
    }
    for t in 0..6 {
        ring.push_back(t).expect("room");
    }
    for _ in 0..4 {
        ring.pop_front();
    }
    for size in [100, 200, 24] {
        region
            .allocate(Layout::from_size_align(size, 8).unwrap())
            .expect("bump room");
    }
    frames.push(frame(
        "acquire 12, release slots 3, 7, 9; push 6, pop 4; 3 init allocations",
        &region,
        &pool,
        &ring,
    ));
    for t in 6..9 {
        ring.push_back(t).expect("room");
    }
    let reused: Vec<usize> = (0..2)
        .map(|_| pool.try_acquire(account).ok().unwrap().index() as usize)
        .collect();
    frames.push(frame(
        &format!(
            "acquire 2 (slots {} and {}: newest release first); push 3 (the ring wraps)",
            reused[0], reused[1]
        ),
        &region,
        &pool,
        &ring,
    ));
    let bump_refused = region
        .allocate(Layout::from_size_align(BUMP_BYTES, 8).unwrap())
        .is_err();
    assert!(
        bump_refused,
        "the bump partition has no room for its own size again"
    );

    let mut svg = Svg::with_heading(
        900,
        150 + 118 * frames.len() as u32,
        "heapkit-fixed: one region, its partitions, and their state after each step",
        &[
            (colour::USED, "acquired / queued / used"),
            (colour::FREE, "free slot (n = free-list order)"),
            (colour::UNTOUCHED, "empty"),
            (colour::META, "pool links / padding"),
        ],
    );
    let padding_bytes = draw_partitions(&mut svg, 60.0, region.layout());
    for (i, f) in frames.iter().enumerate() {
        draw_frame(&mut svg, 142.0 + 118.0 * i as f64, i + 1, f);
    }
    let last = frames.last().unwrap();
    let acquired = last.slots.iter().filter(|s| s.is_none()).count();
    let queued = last.ring.iter().filter(|&&o| o).count();
    let caption = format!(
        "layout {} B in a {} B mapping, {padding_bytes} B of it alignment padding; at the end \
         pool {acquired}/{POOL_SLOTS} acquired, ring {queued}/{RING_SLOTS} queued, bump {} of \
         {BUMP_BYTES} B used (a further {BUMP_BYTES} B request is refused)",
        region.layout().total_bytes(),
        region.mapped_bytes(),
        last.bump_used_bytes
    );
    (svg.finish(), caption)
}

/// The layout as one bar (1 px = 2 B): each partition at its offset, padding between them.
/// Returns the padding bytes.
fn draw_partitions(svg: &mut Svg, y: f64, layout: &RegionLayout) -> usize {
    let px = |bytes: usize| bytes as f64 / 2.0;
    let mut end_bytes = 0;
    let mut padding_bytes = 0;
    svg.text(
        10.0,
        y + 4.0,
        12,
        "start",
        "the layout, by offset (1 px = 2 B):",
    );
    for (index, p) in layout.partitions().iter().enumerate() {
        if p.offset_bytes > end_bytes {
            let gap = p.offset_bytes - end_bytes;
            padding_bytes += gap;
            svg.rect(
                10.0 + px(end_bytes),
                y + 10.0,
                px(gap),
                22.0,
                colour::META,
                "padding",
            );
        }
        let kind = match p.kind {
            PartitionKind::Pool => "pool",
            PartitionKind::Ring => "ring",
            PartitionKind::Bytes => "bytes",
            PartitionKind::Bump => "bump",
        };
        let x = 10.0 + px(p.offset_bytes);
        // A pool is its slots, then a u32 link per slot (the rest of the partition).
        let data_bytes = match p.kind {
            PartitionKind::Pool => p.capacity * p.elem_size_bytes,
            _ => p.size_bytes,
        };
        svg.rect(
            x,
            y + 10.0,
            px(data_bytes),
            22.0,
            colour::UNTOUCHED,
            &format!(
                "{kind} {:?} at +{} B, {} B",
                p.name, p.offset_bytes, p.size_bytes
            ),
        );
        if data_bytes < p.size_bytes {
            let links_bytes = p.size_bytes - data_bytes;
            svg.rect(
                x + px(data_bytes),
                y + 10.0,
                px(links_bytes),
                22.0,
                colour::META,
                &format!("{links_bytes} B of free-list links and generations"),
            );
        }
        // Labels below the bar, staggered: small partitions are narrower than their label.
        let label_y = y + 46.0 + 12.0 * (index % 2) as f64;
        svg.text(
            x,
            label_y,
            10,
            "start",
            &format!(
                "{kind} \"{}\" +{} B, {} B",
                p.name, p.offset_bytes, p.size_bytes
            ),
        );
        end_bytes = p.offset_bytes + p.size_bytes;
    }
    if layout.total_bytes() > end_bytes {
        padding_bytes += layout.total_bytes() - end_bytes;
    }
    padding_bytes
}

/// One frame: pool slots, ring cells, bump bar.
fn draw_frame(svg: &mut Svg, y: f64, number: usize, f: &Frame) {
    svg.text(10.0, y, 12, "start", &format!("{number}. {}", f.title));
    let cell = 22.0;
    svg.text(10.0, y + 24.0, 11, "start", "pool");
    for (i, slot) in f.slots.iter().enumerate() {
        let x = 60.0 + cell * i as f64;
        let (fill, tip) = match slot {
            None => (colour::USED, format!("slot {i}: acquired")),
            Some(n) => (colour::FREE, format!("slot {i}: free, {n} on the list")),
        };
        svg.rect(x, y + 10.0, cell - 2.0, 20.0, fill, &tip);
        if let Some(n) = slot {
            svg.text(x + cell / 2.0 - 1.0, y + 24.0, 9, "middle", &n.to_string());
        }
    }
    // The link array beside the slots: one u32 per slot.
    let links_x = 60.0 + cell * f.slots.len() as f64 + 4.0;
    svg.rect(
        links_x,
        y + 10.0,
        32.0,
        20.0,
        colour::META,
        "links: a u32 per slot",
    );
    svg.text(links_x + 40.0, y + 24.0, 10, "start", "links");
    svg.text(10.0, y + 54.0, 11, "start", "ring");
    for (i, &occupied) in f.ring.iter().enumerate() {
        let x = 60.0 + cell * i as f64;
        let fill = if occupied {
            colour::USED
        } else {
            colour::UNTOUCHED
        };
        svg.rect(x, y + 40.0, cell - 2.0, 20.0, fill, &format!("cell {i}"));
    }
    let head_x = 60.0 + cell * f.ring_head as f64 + cell / 2.0 - 1.0;
    svg.text(head_x, y + 72.0, 9, "middle", "head");
    let queued = f.ring.iter().filter(|&&o| o).count();
    svg.text(
        60.0 + cell * f.ring.len() as f64 + 8.0,
        y + 54.0,
        10,
        "start",
        &format!("{queued}/{} queued", f.ring.len()),
    );
    svg.text(10.0, y + 92.0, 11, "start", "bump");
    let scale = 352.0 / BUMP_BYTES as f64;
    let used_px = f.bump_used_bytes as f64 * scale;
    if f.bump_used_bytes > 0 {
        svg.rect(60.0, y + 78.0, used_px, 20.0, colour::USED, "used");
    }
    svg.rect(
        60.0 + used_px,
        y + 78.0,
        352.0 - used_px,
        20.0,
        colour::UNTOUCHED,
        "free",
    );
    svg.text(
        420.0,
        y + 92.0,
        10,
        "start",
        &format!("{} of {BUMP_BYTES} B used", f.bump_used_bytes),
    );
}
