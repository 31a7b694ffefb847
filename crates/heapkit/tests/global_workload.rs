//! A real workload with `HeapKit` as the global allocator: every allocation of this test
//! binary (the test harness's included) goes through it. The results must equal the values
//! computed independently of the allocator (closed forms and fixed checksums).

use std::collections::HashMap;

#[global_allocator]
static GLOBAL: heapkit::HeapKit = heapkit::HeapKit::new();

const KEYS: u64 = if cfg!(miri) { 2_000 } else { 1_000_000 };

fn key(i: u64) -> String {
    format!("key-{i:08}-{}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40)
}

#[test]
fn a_million_string_map_is_built_queried_and_dropped() {
    let mut map: HashMap<String, u64> = HashMap::new();
    for i in 0..KEYS {
        map.insert(key(i), i);
    }
    assert_eq!(map.len() as u64, KEYS);
    let mut sum = 0u64;
    for i in (0..KEYS).step_by(3) {
        sum += map[&key(i)];
    }
    let n = KEYS.div_ceil(3);
    assert_eq!(sum, 3 * n * (n - 1) / 2, "sum of every third key's value");
    assert!(!map.contains_key("key-absent"));
    // Replace every value's key with a longer string: reallocations of many sizes.
    let mut lengths = 0usize;
    for (k, v) in map.iter_mut() {
        let mut s = k.clone();
        s.push_str(&"x".repeat((*v % 100) as usize));
        lengths += s.len();
        *v += 1;
    }
    let base: usize = (0..KEYS).map(|i| key(i).len()).sum();
    let extra: u64 = (0..KEYS).map(|v| v % 100).sum();
    assert_eq!(lengths, base + extra as usize);
    drop(map);
}

#[test]
fn large_vectors_are_sorted_and_deduplicated() {
    let n = if cfg!(miri) { 10_000 } else { 4_000_000 };
    // A permutation-like sequence with duplicates: values in 0..n/2, each about twice.
    let mut v: Vec<u64> = (0..n as u64)
        .map(|i| (i * 7_919) % (n as u64 / 2))
        .collect();
    v.sort_unstable();
    assert!(v.windows(2).all(|w| w[0] <= w[1]));
    v.dedup();
    assert_eq!(v.len(), n / 2, "every value of 0..n/2 appears");
    assert_eq!(
        v.iter().sum::<u64>(),
        (n as u64 / 2) * (n as u64 / 2 - 1) / 2
    );
    // Strings sorted and deduplicated: many small blocks, then a large shrink.
    let mut words: Vec<String> = (0..n / 4).map(|i| format!("w{}", i % 1000)).collect();
    words.sort();
    words.dedup();
    words.shrink_to_fit();
    assert_eq!(words.len(), 1000);
    assert_eq!(words[0], "w0");
}

#[test]
fn threads_allocate_and_free_across_each_other() {
    let threads = if cfg!(miri) { 2 } else { 8 };
    let per_thread = if cfg!(miri) { 100 } else { 100_000 };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(256);
    let producers: Vec<_> = (0..threads)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let len = 1 + (i * 31 + t) % 700;
                    tx.send(vec![(len % 251) as u8; len]).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut total = 0usize;
    for v in rx {
        assert!(v.iter().all(|&b| b == (v.len() % 251) as u8));
        total += v.len();
    }
    for p in producers {
        p.join().unwrap();
    }
    let expected: usize = (0..threads)
        .map(|t| {
            (0..per_thread)
                .map(|i| 1 + (i * 31 + t) % 700)
                .sum::<usize>()
        })
        .sum();
    assert_eq!(total, expected);
}

/// A type aligned to 4 MiB, as a huge page or a DMA buffer asks: `Box` of it used to abort.
#[repr(C, align(4194304))]
struct FourMiBAligned([u8; 64]);

#[test]
#[cfg_attr(miri, ignore)] // mmap: the block is a mapping of its own
fn a_box_of_a_4_mib_aligned_type() {
    let boxes: Vec<Box<FourMiBAligned>> = (0..3u8)
        .map(|i| Box::new(FourMiBAligned([i; 64])))
        .collect();
    for (i, b) in boxes.iter().enumerate() {
        assert_eq!((&**b as *const FourMiBAligned as usize) % (4 << 20), 0);
        assert_eq!(b.0, [i as u8; 64]);
    }
}
