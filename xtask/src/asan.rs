//! `cargo xtask asan`: the allocator crates' tests under AddressSanitizer.
//!
//! AddressSanitizer needs every crate, the standard library included, built with
//! `-Zsanitizer=address`, so this runs `cargo +nightly test -Zbuild-std` for the host target
//! with the flag in `RUSTFLAGS` and `RUSTDOCFLAGS` (doctests too). The build goes to its own
//! target directory (`<target>/asan`): sanitized and plain artifacts must never mix.
//!
//! What it can see: Rust code reading or writing outside what the system allocator, the stack
//! or a static handed out (std's collections in the tests, `BufferPages` buffers), leaks
//! (LeakSanitizer, on by default), use of freed `Box`/`Vec` memory. What it cannot see: misuse
//! *inside* an `mmap`ed chunk, which ASan treats as one big valid region — heapkit's own blocks
//! are not poisoned (that would need `__asan_poison_memory_region` calls in the allocators).

use std::process::Command;

/// The allocator crates whose tests run under ASan by default.
const ASAN_CRATES: &[&str] = &[
    "heapkit-bins",
    "heapkit-slab",
    "heapkit-tcache",
    "heapkit-bump",
    "heapkit-fixed",
    "heapkit",
];

/// The host target `-Zbuild-std` builds for (it needs an explicit `--target`).
const HOST_TARGET: &str = "x86_64-unknown-linux-gnu";

const SANITIZER_FLAGS: &str = "-Zsanitizer=address";

fn run_status(cmd: &mut Command) -> Result<bool, String> {
    cmd.status()
        .map(|s| s.success())
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))
}

/// Installs nightly's `rust-src` (what `-Zbuild-std` compiles) when it is missing.
fn ensure_rust_src() -> Result<(), String> {
    let output = Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if String::from_utf8_lossy(&output.stdout)
        .lines()
        .any(|line| line.trim() == "rust-src")
    {
        return Ok(());
    }
    eprintln!("xtask: installing the nightly rust-src component");
    let ok = run_status(Command::new("rustup").args([
        "component",
        "add",
        "--toolchain",
        "nightly",
        "rust-src",
    ]))?;
    if !ok {
        return Err(
            "could not install rust-src (rustup component add --toolchain nightly rust-src)".into(),
        );
    }
    Ok(())
}

/// The options: `-p CRATE` (repeatable) and anything after `--`, passed to the test binaries.
fn parse(args: &[String]) -> Result<(Vec<String>, Vec<String>), String> {
    let mut chosen = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "-p" | "--package" => chosen.push(iter.next().ok_or("-p needs a crate name")?.clone()),
            "--" => return Ok((chosen, iter.cloned().collect())),
            other => return Err(format!("unknown asan option {other}")),
        }
    }
    Ok((chosen, Vec::new()))
}

/// Runs the chosen crates' tests (all allocator crates by default) under AddressSanitizer.
pub fn run(args: &[String]) -> Result<(), String> {
    let (mut chosen, test_args) = parse(args)?;
    if chosen.is_empty() {
        chosen = ASAN_CRATES.iter().map(|s| s.to_string()).collect();
    }
    ensure_rust_src()?;
    let workspace = crate::Workspace::load()?;
    let target_dir = workspace.target.join("asan");
    // Symbolized stacks in reports; leaks are findings too. A caller's own ASAN_OPTIONS wins.
    let asan_options = std::env::var("ASAN_OPTIONS")
        .unwrap_or_else(|_| "detect_leaks=1:symbolize=1:abort_on_error=0".into());
    let mut failed = Vec::new();
    for name in &chosen {
        eprintln!(
            "xtask: asan test -p {name} (target dir {})",
            target_dir.display()
        );
        let ok = run_status(
            Command::new("cargo")
                .args(["+nightly", "test", "-Zbuild-std", "--target", HOST_TARGET])
                // One finding must not hide the next test binary's.
                .arg("--no-fail-fast")
                .args(["-p", name])
                .arg("--")
                .args(&test_args)
                .current_dir(&workspace.root)
                .env("CARGO_TARGET_DIR", &target_dir)
                .env("RUSTFLAGS", SANITIZER_FLAGS)
                .env("RUSTDOCFLAGS", SANITIZER_FLAGS)
                .env("ASAN_OPTIONS", &asan_options),
        )?;
        if !ok {
            failed.push(name.clone());
        }
    }
    if failed.is_empty() {
        eprintln!("xtask: asan passed for {}", chosen.join(", "));
        Ok(())
    } else {
        Err(format!("asan found problems in {}", failed.join(", ")))
    }
}
