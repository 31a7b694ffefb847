//! What the tests that run C programs share: building the preload library or the static
//! library (any feature set, once per test run), compiling the programs in `tests/c`, running a
//! program under glibc, under a preloaded library, or under Valgrind, and comparing a run with
//! glibc's.
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
//!   heapkit_static_library(features) ─ same build ─► libheapkit_malloc.a ─► gcc prog.c lib.a
//! ```

#![allow(dead_code)] // Each test file uses its own part of this module.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// The system libraries the Rust standard library inside the archive needs, in the order
/// `rustc --print native-static-libs` gives for this crate (duplicates dropped): they go after
/// the archive. On glibc >= 2.34 pthread, dl, rt and util live in libc itself and `gcc` adds
/// `libgcc_s` on its own (as needed), so `gcc prog.c libheapkit_malloc.a` links too; this list
/// is what links everywhere.
pub const NATIVE_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// The same for `-static`, where there is no `libgcc_s.a` (`gcc -static` links `libgcc_eh`
/// itself). The linker warns that the standard library's `getaddrinfo` and `getpwuid_r` calls
/// need glibc's shared libraries at run time; heapkit never makes them.
pub const NATIVE_LIBS_STATIC: &[&str] = &["-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"];

/// What a heapkit build leaves in `target/release` for the tests to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Artifact {
    /// `libheapkit_malloc.so`, to preload.
    Shared,
    /// `libheapkit_malloc.a`, to link into a program.
    Static,
}

impl Artifact {
    /// The file name's extension.
    fn extension(self) -> &'static str {
        match self {
            Artifact::Shared => "so",
            Artifact::Static => "a",
        }
    }
}

/// Builds libheapkit_malloc.so in release with `features` (once per feature set and test run)
/// and returns a copy of it named after the features.
pub fn heapkit_library(features: &[&str]) -> PathBuf {
    heapkit_artifact(features, Artifact::Shared)
}

/// Builds libheapkit_malloc.a in release with `features` (the same cargo build as the `.so`:
/// the crate's types include `staticlib`) and returns a copy of it named after the features.
pub fn heapkit_static_library(features: &[&str]) -> PathBuf {
    heapkit_artifact(features, Artifact::Static)
}

/// Builds heapkit-malloc in release with `features` and returns a copy of its `artifact`, named
/// after the features (once per feature set, artifact and test run).
///
/// All feature sets share one target directory (dependencies built once); a lock makes each
/// build-and-copy atomic, since every build writes the same `release/libheapkit_malloc.*`. A
/// second artifact of a feature set runs cargo again, which finds the build fresh, so the copy
/// always comes from the feature set it is named after.
pub fn heapkit_artifact(features: &[&str], artifact: Artifact) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<(String, Artifact), PathBuf>>> = Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = features.join(",");
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(&(key.clone(), artifact)) {
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
    let status = cargo.status().expect("run cargo build for heapkit-malloc");
    assert!(status.success(), "building heapkit-malloc ({key}) failed");
    let extension = artifact.extension();
    let name = if key.is_empty() {
        format!("libheapkit_malloc.{extension}")
    } else if key == "secure" || key == "hardened" {
        format!("libheapkit_malloc_{key}.{extension}")
    } else {
        format!(
            "libheapkit_malloc-{}.{extension}",
            key.replace(['/', ','], "-")
        )
    };
    let copy = dir.join(name);
    std::fs::copy(
        target.join(format!("release/libheapkit_malloc.{extension}")),
        &copy,
    )
    .expect("copy the built library");
    built.insert((key, artifact), copy.clone());
    copy
}

/// Compiles `tests/c/<source>` (C or C++, at -O0 so that faults happen as written) into the
/// work folder `dir` and returns the binary.
pub fn compile(dir: &Path, source: &str, extra: &[&str]) -> PathBuf {
    compile_with(dir, source, &["-O0", "-g", "-fno-builtin"], extra)
}

/// Builds `tests/c/plugin.c` into `dir/libplugin.so`, the library `dlopen.c` opens after start-up,
/// and returns its path.
pub fn compile_plugin(dir: &Path) -> PathBuf {
    let plugin = dir.join("libplugin.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/plugin.c");
    let status = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&plugin)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run gcc: {e}"));
    assert!(status.success(), "compiling plugin.c failed");
    plugin
}

/// Compiles `tests/c/<source>` with the optimisation `flags` (and `-w -pthread`, then `extra`)
/// into the work folder `dir` and returns the binary.
pub fn compile_with(dir: &Path, source: &str, flags: &[&str], extra: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(source);
    // A binary of its own per call: tests running side by side compile the same source (four
    // build threads.c), and one test's gcc rewriting the file another is executing made that
    // spawn fail now and then ("Text file busy", or a half-written binary).
    static BUILDS: AtomicUsize = AtomicUsize::new(0);
    let build = BUILDS.fetch_add(1, Ordering::Relaxed);
    let out = dir.join(format!("{}.{build}", source.replace(['.', '/'], "_")));
    let compiler = if source.ends_with(".cpp") {
        "g++"
    } else {
        "gcc"
    };
    // The output is kept, not shown: a link against the static library with `-static` warns
    // that the Rust standard library inside it references `getaddrinfo` (never called), and
    // that noise belongs in a failure's message only.
    let output = Command::new(compiler)
        .args(flags)
        .args(["-w", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "compiling {source} failed: {}",
        text(&output.stderr)
    );
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

/// Requires `tested` (a run of the program under `what`) to end exactly as the `reference` run
/// under glibc did: the same standard error, standard output and exit status, and glibc's run
/// a success. Returns the standard output.
pub fn assert_same_as_glibc(what: &str, reference: &Output, tested: &Output) -> String {
    assert!(
        reference.status.success(),
        "{what} fails even under glibc: {}",
        text(&reference.stderr)
    );
    assert_eq!(
        text(&tested.stderr),
        text(&reference.stderr),
        "{what}: stderr differs under heapkit"
    );
    assert_eq!(
        text(&tested.stdout),
        text(&reference.stdout),
        "{what}: stdout differs under heapkit"
    );
    assert_eq!(
        tested.status.code(),
        reference.status.code(),
        "{what}: exit status differs under heapkit"
    );
    text(&tested.stdout)
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

/// The symbol table of `binary` (`dynamic`: its dynamic symbol table) as `nm` prints it.
pub fn symbols(binary: &Path, dynamic: bool) -> String {
    let mut nm = Command::new("nm");
    if dynamic {
        nm.arg("-D");
    }
    let output = nm.arg(binary).output().expect("run nm");
    assert!(
        output.status.success(),
        "nm failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Requires every one of `wanted` to be defined in the text of `binary` (`nm` type `T`) and,
/// for a dynamically linked binary, exported in its dynamic symbol table: a symbol the program
/// defines but does not export would serve the program's own calls while libc's and
/// libstdc++'s internal ones went to their own allocator, and a block would cross between them.
pub fn assert_defined_in_text(binary: &Path, wanted: &[&str], dynamic: bool) {
    let tables: &[bool] = if dynamic { &[false, true] } else { &[false] };
    for &table in tables {
        let listing = symbols(binary, table);
        for symbol in wanted {
            let defined = listing
                .lines()
                .any(|line| line.ends_with(&format!(" T {symbol}")));
            assert!(
                defined,
                "{symbol} is not defined in the text of {} (dynamic table: {table})",
                binary.display()
            );
        }
    }
}
