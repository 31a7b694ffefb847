//! `heapkit-replay run ALLOCATOR TRACE [--threads original|1] [--lenient] [--no-touch]`:
//! replays a recorded trace through one allocator in this process and prints one JSON line
//! (docs/results-schema.md, "Replay"); `heapkit-replay stats TRACE [--lenient]` prints the
//! trace's own figures (the seed's advice, the live-bytes curve); `heapkit-replay list` the
//! allocator names. `cargo xtask replay` runs one process per allocator.

use heapkit_benches::allocators::{self, Visit};
use heapkit_benches::replay::{self, Plan, Threads};
use heapkit_benches::trace_advice;
use serde_json::{json, Value};
use std::alloc::GlobalAlloc;
use std::process::ExitCode;

struct Run<'a> {
    plan: &'a Plan,
    touching: bool,
    out: Option<Value>,
}

impl Visit for Run<'_> {
    fn visit<G: GlobalAlloc + Sync + 'static>(&mut self, name: &'static str, alloc: &'static G) {
        let outcome = replay::replay(self.plan, alloc, self.touching);
        self.out = Some(outcome.to_json(name, self.plan));
    }
}

fn load(
    path: &str,
    lenient: bool,
) -> Result<(heapkit_trace::Header, Vec<heapkit_trace::Record>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    replay::load(&bytes, lenient).map_err(|e| format!("{path}: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lenient = args.iter().any(|a| a == "--lenient");
    let touching = !args.iter().any(|a| a == "--no-touch");
    let threads = match args
        .iter()
        .position(|a| a == "--threads")
        .map(|i| args.get(i + 1))
    {
        None => Threads::Original,
        Some(Some(v)) if v == "original" => Threads::Original,
        Some(Some(v)) if v == "1" => Threads::One,
        Some(_) => {
            eprintln!("heapkit-replay: --threads takes `original` or `1`");
            return ExitCode::from(2);
        }
    };
    let mut positional = Vec::new();
    let mut skip = false;
    for arg in &args {
        if skip {
            skip = false;
        } else if arg == "--threads" {
            skip = true;
        } else if !arg.starts_with("--") {
            positional.push(arg.as_str());
        }
    }
    let result = match positional.as_slice() {
        ["list"] => {
            for name in replay::allocator_names() {
                println!("{name}");
            }
            return ExitCode::SUCCESS;
        }
        ["stats", path] => load(path, lenient).map(|(header, records)| {
            let plan = replay::plan(&records, threads);
            json!({
                "trace": path,
                "events": records.len(),
                "threads": plan.threads.len(),
                "objects": plan.objects,
                "peak_live_bytes": plan.summary.peak_live_bytes,
                "final_live_bytes": plan.summary.final_live_bytes,
                "skipped": plan.summary.skipped,
                "live_curve": plan.live_curve,
                "advice": trace_advice::analyse(&header, &records),
            })
        }),
        ["run", name, path] => load(path, lenient).and_then(|(_, records)| {
            let plan = replay::plan(&records, threads);
            let mut run = Run {
                plan: &plan,
                touching,
                out: None,
            };
            if *name == replay::TCACHE_BINS_NAME {
                run.visit(replay::TCACHE_BINS_NAME, &replay::HEAPKIT_TCACHE_BINS);
            } else if !allocators::with_name(name, &mut run) {
                return Err(format!("no allocator {name:?} (see `heapkit-replay list`)"));
            }
            Ok(run.out.take().expect("the visit ran"))
        }),
        _ => Err(
            "usage: heapkit-replay run ALLOCATOR TRACE [--threads original|1] [--lenient] \
                  [--no-touch] | heapkit-replay stats TRACE [--lenient] | heapkit-replay list"
                .to_string(),
        ),
    };
    match result {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("heapkit-replay: {message}");
            ExitCode::from(2)
        }
    }
}
