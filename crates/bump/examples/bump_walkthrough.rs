//! The arena step by step: each line shows what one operation did to the chunks, so a reader can
//! watch the bump pointer move, a new chunk arrive (twice the size of the last), a checkpoint
//! rewind (the chunk it frees is kept as a spare, so a loop of scopes does not map and unmap),
//! and a reset keep every chunk for the next round (the largest current, the others spares).
//!
//! `cargo run -p heapkit-bump --example bump_walkthrough`

use heapkit_bump::Arena;

/// One line of state: chunks held, bytes in them, bytes handed out, room left in the current
/// chunk.
fn show(step: &str, arena: &Arena) {
    println!(
        "{step:<48} | chunks {:>2} | chunk bytes {:>6} | used {:>6} | room {:>5}",
        arena.chunk_count(),
        arena.allocated_bytes(),
        arena.used_bytes(),
        arena.remaining_chunk_bytes()
    );
}

fn main() {
    let mut arena = Arena::new();
    show("Arena::new() (nothing mapped yet)", &arena);

    let first = arena.alloc(1u64);
    *first += 41;
    show("alloc(u64): the first chunk is mapped", &arena);

    let name = arena.alloc_str("a string copied into the arena");
    show("alloc_str(30 bytes): the pointer bumps", &arena);
    assert!(name.starts_with("a string"));

    for i in 0..100u32 {
        arena.alloc([i; 16]); // 64 bytes each
    }
    show("100 x alloc([u32; 16]): a second, larger chunk", &arena);

    let mark = arena.checkpoint();
    for i in 0..200u64 {
        arena.alloc([i; 8]);
    }
    show("checkpoint, then 200 x alloc([u64; 8])", &arena);

    arena.rewind(mark);
    show("rewind(checkpoint): back to the mark", &arena);

    arena.reset();
    show("reset(): chunks kept, the largest current", &arena);

    let again = arena.alloc_slice_copy(&[1u8, 2, 3]);
    show("alloc_slice_copy(3 bytes) after reset", &arena);
    assert_eq!(again, &[1, 2, 3]);
}
