//! `cargo xtask miri`: the Miri-capable crates' tests under Miri.

use std::process::Command;

/// Crates whose logic runs under Miri (over `BufferPages`). Crates whose tests need the OS
/// (mmap, brk, LD_PRELOAD) keep those tests behind `cfg_attr(miri, ignore)`.
const MIRI_CRATES: &[&str] = &[
    "heapkit-core",
    "heapkit-pages",
    "heapkit-testkit",
    "heapkit-bump",
    "heapkit-fixed",
    "heapkit-bins",
    "heapkit-slab",
    "heapkit-tcache",
];

fn run_status(cmd: &mut Command) -> Result<bool, String> {
    cmd.status()
        .map(|s| s.success())
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))
}

/// Installs the nightly `miri` and `rust-src` components when `cargo +nightly miri` is missing.
fn ensure_miri() -> Result<(), String> {
    let have = Command::new("cargo")
        .args(["+nightly", "miri", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if have {
        return Ok(());
    }
    eprintln!("xtask: installing the nightly miri and rust-src components");
    let ok = run_status(Command::new("rustup").args([
        "component",
        "add",
        "--toolchain",
        "nightly",
        "miri",
        "rust-src",
    ]))?;
    if !ok {
        return Err(
            "could not install miri (rustup component add --toolchain nightly miri rust-src)"
                .into(),
        );
    }
    Ok(())
}

/// Runs `cargo +nightly miri test` for the chosen crates (all Miri-capable ones by default).
pub fn run(args: &[String]) -> Result<(), String> {
    let mut chosen: Vec<String> = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "-p" | "--package" => chosen.push(iter.next().ok_or("-p needs a crate name")?.clone()),
            other => return Err(format!("unknown miri option {other}")),
        }
    }
    let workspace = crate::Workspace::load()?;
    let members = std::fs::read_to_string(workspace.root.join("Cargo.toml")).unwrap_or_default();
    if chosen.is_empty() {
        chosen = MIRI_CRATES
            .iter()
            .filter(|name| {
                let folder = name.trim_start_matches("heapkit-");
                members.contains(&format!("\"crates/{folder}\""))
            })
            .map(|s| s.to_string())
            .collect();
    }
    ensure_miri()?;
    let flags = std::env::var("MIRIFLAGS").unwrap_or_else(|_| "-Zmiri-strict-provenance".into());
    let mut failed = Vec::new();
    for name in &chosen {
        eprintln!("xtask: miri test -p {name} (MIRIFLAGS={flags})");
        let ok = run_status(
            Command::new("cargo")
                .args(["+nightly", "miri", "test", "-p", name])
                .env("MIRIFLAGS", &flags),
        )?;
        if !ok {
            failed.push(name.clone());
        }
    }
    if failed.is_empty() {
        eprintln!("xtask: miri passed for {}", chosen.join(", "));
        Ok(())
    } else {
        Err(format!("miri failed for {}", failed.join(", ")))
    }
}
