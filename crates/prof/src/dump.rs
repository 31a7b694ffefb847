//! Dumps: the profiles as pprof protobuf (gzip) and as flame-graph SVG, through `pprof_util`
//! (the crate behind `jemalloc_pprof`), symbolised in-process at dump time. Only here does the
//! profiler allocate, inside its guard, so its own allocations are never sampled.

use crate::profile::{sites, Site};
use crate::sampler::Guard;
use pprof_util::{FlamegraphOptions, StackProfile, WeightedStack};
use std::io::{self, Write};
use std::path::Path;

/// Which of the two profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bytes allocated and still live (pprof's `inuse_space`).
    InUse,
    /// Bytes allocated since profiling started (pprof's `alloc_space`).
    Allocated,
}

impl Kind {
    fn sample_type(self) -> (&'static str, &'static str) {
        match self {
            Kind::InUse => ("inuse_space", "bytes"),
            Kind::Allocated => ("alloc_space", "bytes"),
        }
    }

    fn weight(self, site: &Site) -> u64 {
        match self {
            Kind::InUse => site.inuse_bytes,
            Kind::Allocated => site.alloc_bytes,
        }
    }
}

/// The profile of `kind` as `pprof_util` takes it: one weighted stack per site with a non-zero
/// weight, outermost frame first (its order).
fn stack_profile(kind: Kind) -> StackProfile {
    let mut profile = StackProfile::default();
    for site in sites() {
        let weight = kind.weight(&site);
        if weight == 0 {
            continue;
        }
        let mut addrs = site.frames;
        addrs.reverse();
        profile.push_stack(
            WeightedStack {
                addrs,
                weight: weight as f64,
            },
            None,
        );
    }
    profile
}

/// Writes the `kind` profile as gzipped pprof protobuf (`go tool pprof` reads it).
pub fn write_pprof(kind: Kind, out: &mut dyn Write) -> io::Result<()> {
    let _guard = Guard::enter();
    let bytes = stack_profile(kind).to_pprof(kind.sample_type(), ("space", "bytes"), None);
    out.write_all(&bytes)
}

/// Writes the `kind` profile as a flame-graph SVG.
pub fn write_flamegraph(kind: Kind, out: &mut dyn Write) -> io::Result<()> {
    let _guard = Guard::enter();
    let mut options = FlamegraphOptions::default();
    options.title = match kind {
        Kind::InUse => "heapkit: bytes in use".into(),
        Kind::Allocated => "heapkit: bytes allocated".into(),
    };
    options.count_name = "bytes".into();
    let profile = stack_profile(kind);
    if profile.stacks.is_empty() {
        // inferno refuses an empty graph; an empty profile is still a valid answer.
        return out.write_all(EMPTY_SVG.as_bytes());
    }
    let svg = profile
        .to_flamegraph(&mut options)
        .map_err(io::Error::other)?;
    out.write_all(&svg)
}

/// The flame graph of a profile with no samples.
const EMPTY_SVG: &str = concat!(
    r#"<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40">"#,
    r#"<text x="10" y="25">heapkit: no samples</text></svg>"#,
    "\n"
);

/// Writes the in-use profile to `path` as pprof and its flame graph to `path` with `.svg`
/// appended.
pub fn dump_to_file(path: &Path) -> io::Result<()> {
    let _guard = Guard::enter();
    let mut pprof = std::fs::File::create(path)?;
    write_pprof(Kind::InUse, &mut pprof)?;
    let mut svg_path = path.as_os_str().to_owned();
    svg_path.push(".svg");
    let mut svg = std::fs::File::create(svg_path)?;
    write_flamegraph(Kind::InUse, &mut svg)
}

/// The names of the functions at `addr` (a return address; inlined frames give several),
/// innermost first.
pub fn symbol_names(addr: usize) -> Vec<String> {
    let _guard = Guard::enter();
    let mut names = Vec::new();
    // A return address points after the call: look up the call itself.
    backtrace::resolve(addr.saturating_sub(1) as *mut core::ffi::c_void, |symbol| {
        if let Some(name) = symbol.name() {
            names.push(format!("{name:#}"));
        }
    });
    names
}
