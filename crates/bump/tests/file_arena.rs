//! An arena whose chunks are pages of a memory-mapped file (`FilePages`): what it writes is in
//! the file, at offsets the source reports, for another process or a later run to read.

use heapkit_bump::{format_in, Arena};
use heapkit_pages::{os_page_size, FilePages};

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map a file")]
fn an_arena_over_a_file_writes_its_blocks_into_the_file() {
    let path = std::env::temp_dir().join(format!("heapkit-bump-{}.arena", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let pages = FilePages::create(&path, 64 * os_page_size()).unwrap();
    let arena = Arena::with_source(&pages);
    let numbers = arena.alloc_slice_fill_iter(1..101u32);
    let text = format_in!(&arena, "sum {}", numbers.iter().sum::<u32>());
    assert_eq!(text, "sum 5050");
    // Store offsets, not pointers: the file is mapped elsewhere next time.
    let numbers_at = pages.file_offset(numbers.as_ptr().cast()).unwrap();
    let text_at = pages.file_offset(text.as_ptr()).unwrap();
    pages.flush().unwrap();

    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[text_at..text_at + 8], b"sum 5050");
    let first = u32::from_ne_bytes(bytes[numbers_at..numbers_at + 4].try_into().unwrap());
    assert_eq!(first, 1);
    drop(text);
    drop(arena);
    drop(pages);
    std::fs::remove_file(&path).unwrap();
}
