//! Replays every seed (`corpus/<target>/*`) and every kept finding (`regressions/<target>/*`)
//! through its target on stable Rust, without libFuzzer: the quick part CI runs.

use std::path::Path;

fn replay(folder: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut count = 0;
    for (name, run) in heapkit_fuzz::targets::ALL {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.expect("readable entry").path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).expect("readable seed");
            eprintln!("{name}: {}", path.display());
            run(&data);
            count += 1;
        }
    }
    count
}

#[test]
fn every_seed_passes() {
    assert!(replay("corpus") > 0, "no seeds found under fuzz/corpus");
}

#[test]
fn every_regression_passes() {
    replay("regressions");
}

#[test]
fn empty_and_short_inputs_pass() {
    for (_, run) in heapkit_fuzz::targets::ALL {
        run(&[]);
        run(&[0]);
        run(&[0xFF; 7]);
    }
}

#[test]
fn pseudo_random_inputs_pass() {
    // A few hundred deterministic inputs per target: enough to catch a harness that rejects
    // everything or panics on its own, cheap enough for every CI run.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let runs = if cfg!(debug_assertions) { 40 } else { 300 };
    for (_, run) in heapkit_fuzz::targets::ALL {
        for case in 0..runs {
            let len = 16 + case * 7 % 2000;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect();
            run(&data);
        }
    }
}
