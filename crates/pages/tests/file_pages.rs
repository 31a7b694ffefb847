//! `FilePages`: bytes written to runs come back after the file is unmapped and mapped again,
//! two mappings of one file share their bytes, and bad files are refused with a clear error.

use heapkit_pages::{os_page_size, FilePages, PageSource};
use std::io::ErrorKind;
use std::path::PathBuf;

/// A file in the temp directory named for this process and test, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("heapkit-file-pages-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn fill(run: core::ptr::NonNull<u8>, len_bytes: usize, seed: u8) {
    for i in 0..len_bytes {
        // SAFETY: `i < len_bytes`, inside a live run.
        unsafe { run.as_ptr().add(i).write(seed.wrapping_add(i as u8)) };
    }
}

fn holds(run: core::ptr::NonNull<u8>, len_bytes: usize, seed: u8) -> bool {
    // SAFETY: `i < len_bytes`, inside a live run.
    (0..len_bytes).all(|i| unsafe { run.as_ptr().add(i).read() } == seed.wrapping_add(i as u8))
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map a file")]
fn writes_survive_unmap_and_remap() {
    let file = TempFile::new("remap");
    let page = os_page_size();
    let lens = [page, 3 * page, 2 * page];
    let mut offsets = Vec::new();
    {
        let pages = FilePages::create(&file.0, 64 * page).unwrap();
        assert!(!pages.maps_zeroed());
        for (i, &len) in lens.iter().enumerate() {
            let run = pages.map(len, page).unwrap();
            fill(run, len, i as u8 * 50);
            let offset = pages.file_offset(run.as_ptr()).unwrap();
            assert!(offset >= pages.data_offset_bytes());
            assert_eq!(pages.ptr_at(offset), Some(run));
            offsets.push((offset, run));
        }
        pages.flush().unwrap();
        for (&len, &(_, run)) in lens.iter().zip(&offsets) {
            // SAFETY: mapped above with this length; not used again.
            unsafe { pages.unmap(run, len) };
        }
        assert_eq!(pages.mapped_bytes(), 0);
    } // the file is unmapped here
    assert_eq!(std::fs::metadata(&file.0).unwrap().len(), 64 * page as u64);

    let pages = FilePages::open(&file.0).unwrap();
    let mut runs = Vec::new();
    for (i, (&len, &(offset, _))) in lens.iter().zip(&offsets).enumerate() {
        // Mapped again in the same order: the same file offsets (first fit from the start).
        let run = pages.map(len, page).unwrap();
        assert_eq!(pages.file_offset(run.as_ptr()), Some(offset));
        assert!(holds(run, len, i as u8 * 50), "run {i} lost its bytes");
        runs.push((run, len));
    }
    for (run, len) in runs {
        // SAFETY: mapped above with this length.
        unsafe { pages.unmap(run, len) };
    }
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map a file")]
fn two_mappings_of_one_file_share_their_bytes() {
    let file = TempFile::new("shared");
    let page = os_page_size();
    let writer = FilePages::create(&file.0, 8 * page).unwrap();
    let reader = FilePages::open(&file.0).unwrap();
    let run = writer.map(2 * page, page).unwrap();
    fill(run, 2 * page, 9);
    let offset = writer.file_offset(run.as_ptr()).unwrap();
    // Another process would do the same: map the file, turn the stored offset into a pointer.
    let seen = reader.ptr_at(offset).unwrap();
    assert_ne!(seen, run, "a second mapping lives at another address");
    assert!(holds(seen, 2 * page, 9));
    // SAFETY: mapped above.
    unsafe { writer.unmap(run, 2 * page) };
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map a file")]
fn bad_lengths_and_files_are_refused_and_change_nothing() {
    let file = TempFile::new("bad");
    let page = os_page_size();
    for len in [0, 1, page + 1] {
        let error = FilePages::create(&file.0, len).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "len {len}");
        assert!(!file.0.exists(), "a refused create made the file");
    }
    assert_eq!(
        FilePages::open(&file.0).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    std::fs::write(&file.0, b"not a page multiple").unwrap();
    assert_eq!(
        FilePages::open(&file.0).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(std::fs::read(&file.0).unwrap(), b"not a page multiple");

    // A longer file is kept whole by `create`; runs past the end are refused.
    std::fs::write(&file.0, vec![1u8; 4 * page]).unwrap();
    let pages = FilePages::create(&file.0, 2 * page).unwrap();
    assert_eq!(pages.len_bytes(), 4 * page);
    assert!(pages.map(8 * page, page).is_err());
    assert!(pages.map(page + 1, page).is_err());
    assert_eq!(pages.ptr_at(4 * page), None);
    assert_eq!(pages.file_offset(core::ptr::null()), None);
}
