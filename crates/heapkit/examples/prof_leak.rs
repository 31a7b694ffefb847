//! A program with a known leak and a known churn site, profiled by `heapkit::prof`.
//!
//! `cargo run --release -p heapkit --features prof --example prof_leak -- heap.pb.gz`
//!
//! `leak_sessions` keeps 48 MiB it never frees (6,144 buffers of 8 KiB); `churn_requests`
//! allocates and frees 2 GiB in blocks of 1-64 KiB, holding at most one at a time;
//! `parse_config` holds 8 MiB until the end. The in-use profile must show the leak on top and
//! the churn near zero; the allocated profile must show the churn on top. Writes the in-use
//! profile (pprof) to the path given, its flame graph to the path + `.svg`, and the allocated
//! profile's flame graph to the path + `.alloc.svg`; prints the top sites.

use heapkit::prof;
use heapkit::HeapKit;
use std::hint::black_box;

#[global_allocator]
static GLOBAL: HeapKit = HeapKit::new();

#[inline(never)]
fn leak_sessions() {
    for session in 0..6144u32 {
        let buffer = vec![session as u8; 8 << 10];
        // The leak: nothing ever frees a session's buffer.
        std::mem::forget(black_box(buffer));
    }
}

#[inline(never)]
fn churn_requests() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut allocated = 0usize;
    while allocated < 2 << 30 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = 1024 + (state % (63 << 10)) as usize;
        drop(black_box(vec![1u8; size]));
        allocated += size;
    }
}

#[inline(never)]
fn parse_config() -> Vec<Box<[u8]>> {
    (0..128)
        .map(|_| vec![2u8; 64 << 10].into_boxed_slice())
        .collect()
}

/// The first frame of `site` that names one of this program's functions (or a closure of one).
fn site_name(site: &prof::Site) -> String {
    for &frame in &site.frames {
        for name in prof::symbol_names(frame) {
            if let Some(short) = ["leak_sessions", "churn_requests", "parse_config"]
                .iter()
                // `contains`: closures and inlined frames are named `parse_config::{{closure}}`.
                .find(|known| name.contains(*known))
            {
                return (*short).to_string();
            }
        }
    }
    "(elsewhere)".to_string()
}

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "heap.pb.gz".into());
    prof::activate();
    let config = parse_config();
    leak_sessions();
    churn_requests();

    let mut by_function = std::collections::BTreeMap::<String, (u64, u64)>::new();
    for site in prof::sites() {
        let entry = by_function.entry(site_name(&site)).or_default();
        entry.0 += site.inuse_bytes;
        entry.1 += site.alloc_bytes;
    }
    println!(
        "{:<16} {:>14} {:>16}",
        "function", "in use (MiB)", "allocated (MiB)"
    );
    for (name, (inuse, alloc)) in &by_function {
        let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
        println!("{name:<16} {:>14.1} {:>16.1}", mib(*inuse), mib(*alloc));
    }
    println!("dropped samples: {}", prof::dropped_samples());

    prof::dump_to_file(path.as_ref())?;
    let mut alloc_svg = std::fs::File::create(format!("{path}.alloc.svg"))?;
    prof::write_flamegraph(prof::Kind::Allocated, &mut alloc_svg)?;
    println!("wrote {path}, {path}.svg, {path}.alloc.svg");
    drop(black_box(config));
    Ok(())
}
