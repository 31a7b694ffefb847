//! What the tests that run C programs share: building the preload library (any feature set,
//! once per test run), compiling the programs in `tests/c`, and running a program under glibc,
//! under a preloaded library, or under Valgrind.
//!
//! Vocabulary:
//! - **library**: the `malloc` a program runs with: glibc's own, a heapkit build (a feature set
//!   of this crate and its dependencies, built in release like the shipped `.so`), or any other
//!   `.so` on disk (jemalloc, mimalloc, …).
//! - **column**: a library's name in a results table.
//!
//! ```text
//!   Library::Glibc ─────────────────────────────► run(program, None)
//!   Library::Heapkit { features } ─ build once ─► run(program, Some(lib.so))   LD_PRELOAD
//!   Library::System { path } ──── if present ───► run(program, Some(path))
//! ```

#![allow(dead_code)] // Each test file uses its own part of this module.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The `malloc` a program runs with.
#[derive(Clone, Copy, Debug)]
pub enum Library {
    /// No preload: glibc's malloc.
    Glibc,
    /// heapkit-malloc built in release with `features` (passed to `cargo build --features`;
    /// `heapkit-slab/checked` works too: the slab is a workspace member).
    Heapkit {
        column: &'static str,
        features: &'static [&'static str],
    },
    /// A prebuilt library, used only when the file exists.
    System {
        column: &'static str,
        path: &'static str,
    },
}

impl Library {
    /// The library's name in a table.
    pub fn column(&self) -> &'static str {
        match self {
            Library::Glibc => "glibc",
            Library::Heapkit { column, .. } | Library::System { column, .. } => column,
        }
    }

    /// Whether the library can be used here (a system library may be absent).
    pub fn available(&self) -> bool {
        match self {
            Library::System { path, .. } => Path::new(path).exists(),
            _ => true,
        }
    }

    /// The `.so` to preload (None for glibc), built when it is a heapkit build.
    pub fn preload(&self) -> Option<PathBuf> {
        match self {
            Library::Glibc => None,
            Library::Heapkit { features, .. } => Some(heapkit_library(features)),
            Library::System { path, .. } => Some(PathBuf::from(path)),
        }
    }
}

/// The plain release build, the `.so` that ships.
pub const HEAPKIT: Library = Library::Heapkit {
    column: "heapkit",
    features: &[],
};

/// A folder of `CARGO_TARGET_TMPDIR` for one test file's builds and programs.
pub fn work_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("create the work folder");
    dir
}

/// Builds libheapkit_malloc.so in release with `features` (once per feature set and test run)
/// and returns a copy of it named after the features.
///
/// All feature sets share one target directory (dependencies built once); a lock makes each
/// build-and-copy atomic, since every build writes the same `release/libheapkit_malloc.so`.
pub fn heapkit_library(features: &[&str]) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = features.join(",");
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(&key) {
        return path.clone();
    }
    let dir = work_dir("libraries");
    let target = dir.join("target");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--release", "--quiet", "-p", "heapkit-malloc"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !features.is_empty() {
        // A feature of another workspace member (`heapkit-slab/checked`) needs that member
        // selected too; feature unification then gives the library's dependency the feature.
        for member in features.iter().filter_map(|f| f.split_once('/')) {
            cargo.args(["-p", member.0]);
        }
        cargo.args(["--features", &key]);
    }
    let status = cargo
        .status()
        .expect("run cargo build for the preload library");
    assert!(
        status.success(),
        "building libheapkit_malloc.so ({key}) failed"
    );
    let name = if key.is_empty() {
        "libheapkit_malloc.so".to_string()
    } else if key == "secure" {
        "libheapkit_malloc_secure.so".to_string()
    } else {
        format!("libheapkit_malloc-{}.so", key.replace(['/', ','], "-"))
    };
    let copy = dir.join(name);
    std::fs::copy(target.join("release/libheapkit_malloc.so"), &copy)
        .expect("copy the built library");
    built
        .get_or_insert_with(HashMap::new)
        .insert(key, copy.clone());
    copy
}

/// Compiles `tests/c/<source>` (C or C++, at -O0 so that faults happen as written) into the
/// work folder `dir` and returns the binary.
pub fn compile(dir: &Path, source: &str, extra: &[&str]) -> PathBuf {
    compile_with(dir, source, &["-O0", "-g", "-fno-builtin"], extra)
}

/// Compiles `tests/c/<source>` with the optimisation `flags` (and `-w -pthread`, then `extra`)
/// into the work folder `dir` and returns the binary.
pub fn compile_with(dir: &Path, source: &str, flags: &[&str], extra: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(source);
    let out = dir.join(source.replace(['.', '/'], "_"));
    let compiler = if source.ends_with(".cpp") {
        "g++"
    } else {
        "gcc"
    };
    let status = Command::new(compiler)
        .args(flags)
        .args(["-w", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .args(extra)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(status.success(), "compiling {source} failed");
    out
}

/// Runs `command` with `preload` (None: glibc) and returns its output.
pub fn run(mut command: Command, preload: Option<&Path>) -> Output {
    match preload {
        Some(library) => command.env("LD_PRELOAD", library),
        None => command.env_remove("LD_PRELOAD"),
    };
    command.output().expect("run the program")
}

/// Bytes as text, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether `program` is on the PATH.
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
