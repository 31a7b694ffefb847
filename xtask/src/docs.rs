//! `cargo xtask docs` and `cargo xtask heapmap`: the book in `docs/`.
//!
//! - `docs` checks the book (every chapter linked from `docs/README.md` exists, every picture
//!   it embeds exists, every ```` ```text ```` capture names the program that printed it, and
//!   chapter 8's worked example is the code that compiles; ARCHITECTURE.md's codemap names every
//!   source file: `codemap.rs`), builds and tests `docs/programs`,
//!   re-draws the pictures and compares them with the committed ones (each drawn picture must
//!   be embedded by a chapter, each committed one drawn), then builds the HTML
//!   book with mdBook when it is installed. It installs nothing: without mdBook it says how to get it
//!   (the Markdown reads as is on a repository host).
//! - `heapmap [DIR]` re-draws the book's SVG pictures (default `docs/images`) by running
//!   `docs/programs`' `heapmap` program, which takes them from the allocators' introspection.
//!
//! `docs/programs` is a cargo project of its own (its own `[workspace]`), built here in
//! `<target>/docs-programs` so it never waits on, or disturbs, the main workspace's build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A capture block's marker: `<!-- capture: COMMAND -->` on one of the lines just above it.
const CAPTURE_MARKER: &str = "<!-- capture:";
/// How many lines above a ```` ```text ```` fence the marker may stand.
const MARKER_WINDOW_LINES: usize = 3;
/// Chapter 8 promises a composed allocator in under this many lines.
const WORKED_EXAMPLE_MAX_LINES: usize = 50;

/// `cargo xtask docs`.
pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(extra) = args.first() {
        return Err(format!("docs takes no arguments (got {extra:?})"));
    }
    let workspace = crate::Workspace::load()?;
    let docs = workspace.root.join("docs");
    let mut problems = check_book(&workspace.root);
    problems.extend(crate::codemap::check_codemap(&workspace.root));
    if !problems.is_empty() {
        return Err(format!(
            "the book has problems:\n  {}",
            problems.join("\n  ")
        ));
    }
    println!("docs: every chapter, picture and capture checks out");
    check_programs(&workspace.root, &workspace.target)?;
    println!("docs: docs/programs builds, its tests pass, and the pictures are current");
    let out = workspace.target.join("book");
    match Command::new("mdbook").arg("--version").output() {
        Ok(version) if version.status.success() => {
            let status = Command::new("mdbook")
                .arg("build")
                .arg(&docs)
                .arg("--dest-dir")
                .arg(&out)
                .status()
                .map_err(|e| format!("cannot run mdbook: {e}"))?;
            if !status.success() {
                return Err(format!("mdbook build failed ({status})"));
            }
            println!(
                "docs: the HTML book is in {}",
                out.join("index.html").display()
            );
        }
        _ => println!(
            "docs: mdbook is not installed, so no HTML was built (the Markdown in docs/ reads as \
             is on a repository host).\n  To build the book: `cargo install mdbook --locked`, \
             then run `cargo xtask docs` again."
        ),
    }
    Ok(())
}

/// `cargo xtask heapmap [DIR]`.
pub fn heapmap(args: &[String]) -> Result<(), String> {
    let workspace = crate::Workspace::load()?;
    let out = match args {
        [] => workspace.root.join("docs/images"),
        [dir] => std::env::current_dir()
            .map_err(|e| format!("no current folder: {e}"))?
            .join(dir),
        _ => return Err("usage: cargo xtask heapmap [DIR]".into()),
    };
    let captions = draw_pictures(&workspace.root, &workspace.target, &out)?;
    print!("{captions}");
    println!("heapmap: pictures written to {}", out.display());
    Ok(())
}

/// Runs `docs/programs`' `heapmap` into `out`; returns what it printed (the captions).
fn draw_pictures(root: &Path, target: &Path, out: &Path) -> Result<String, String> {
    let output = programs_cargo(root, target)
        .args(["run", "--quiet", "--bin", "heapmap", "--"])
        .arg(out)
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the heapmap program failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A cargo command run in `docs/programs`, building into `<target>/docs-programs`.
fn programs_cargo(root: &Path, target: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root.join("docs/programs"))
        .env("CARGO_TARGET_DIR", target.join("docs-programs"));
    command
}

/// Builds `docs/programs` (chapter 8's example included), runs its tests (the composed
/// allocator against the conformance suite), re-draws the pictures into a scratch folder and
/// compares them with the committed ones, so they cannot rot.
pub fn check_programs(root: &Path, target: &Path) -> Result<(), String> {
    let output = programs_cargo(root, target)
        // --locked: a lock file that no longer matches the crates' dependencies fails here,
        // rather than being rewritten on every reader's first build.
        .args(["test", "--quiet", "--locked"])
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo test --locked` in docs/programs failed (a stale lock file: refresh it with \
             `cargo update --manifest-path docs/programs/Cargo.toml --workspace`):\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let scratch = target.join("docs-programs/pictures-check");
    let _ = std::fs::remove_dir_all(&scratch);
    draw_pictures(root, target, &scratch)?;
    let drawn_names = svg_names(&scratch)?;
    for name in &drawn_names {
        let drawn = std::fs::read_to_string(scratch.join(name)).map_err(|e| e.to_string())?;
        let committed =
            std::fs::read_to_string(root.join("docs/images").join(name)).unwrap_or_default();
        if drawn != committed {
            return Err(format!(
                "docs/images/{name} is out of date: run `cargo xtask heapmap`"
            ));
        }
    }
    // Every drawn picture is in some chapter (a picture nobody shows is not checked by a
    // reader), and every committed one is drawn (else nothing keeps it current).
    let book = chapters_text(root);
    for name in &drawn_names {
        if !book.contains(&format!("images/{name})")) {
            return Err(format!(
                "docs/images/{name} is drawn but no chapter embeds it"
            ));
        }
    }
    for name in svg_names(&root.join("docs/images"))? {
        if !drawn_names.contains(&name) {
            return Err(format!(
                "docs/images/{name} is not drawn by the heapmap program, so nothing keeps it current"
            ));
        }
    }
    Ok(())
}

/// The `.svg` file names in `dir`, sorted.
fn svg_names(dir: &Path) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let name = entry.map_err(|e| e.to_string())?.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".svg") {
            names.push(name.into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Every chapter linked from `docs/README.md`, concatenated (empty when it cannot be read).
fn chapters_text(root: &Path) -> String {
    let docs = root.join("docs");
    let contents = std::fs::read_to_string(docs.join("README.md")).unwrap_or_default();
    local_links(&contents, ".md")
        .iter()
        .filter_map(|chapter| std::fs::read_to_string(docs.join(chapter)).ok())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything wrong with the book, one line each (empty when it is fine).
pub fn check_book(root: &Path) -> Vec<String> {
    let docs = root.join("docs");
    let mut problems = Vec::new();
    let Ok(contents) = std::fs::read_to_string(docs.join("README.md")) else {
        return vec!["docs/README.md (the table of contents) is missing".into()];
    };
    let chapters = local_links(&contents, ".md");
    if chapters.is_empty() {
        problems.push("docs/README.md links no chapter".into());
    }
    for chapter in &chapters {
        let path = docs.join(chapter);
        match std::fs::read_to_string(&path) {
            Ok(text) => check_chapter(root, chapter, &text, &mut problems),
            Err(_) => problems.push(format!(
                "docs/README.md links {chapter}, which does not exist"
            )),
        }
    }
    if let Ok(summary) = std::fs::read_to_string(docs.join("SUMMARY.md")) {
        for chapter in local_links(&summary, ".md") {
            if !chapters.contains(&chapter) && chapter != "README.md" {
                problems.push(format!("SUMMARY.md lists {chapter}, README.md does not"));
            }
        }
    }
    problems
}

/// Relative links (`](target)`) in Markdown that end with `suffix`, fragments removed.
fn local_links(markdown: &str, suffix: &str) -> Vec<String> {
    let mut links = Vec::new();
    for piece in markdown.split("](").skip(1) {
        let Some(end) = piece.find(')') else { continue };
        let target = piece[..end].split('#').next().unwrap_or_default();
        if target.ends_with(suffix) && !target.contains("://") && !links.iter().any(|l| l == target)
        {
            links.push(target.to_string());
        }
    }
    links
}

fn check_chapter(root: &Path, chapter: &str, text: &str, problems: &mut Vec<String>) {
    let docs = root.join("docs");
    let folder = Path::new(chapter).parent().unwrap_or(Path::new(""));
    for image in local_links(text, ".svg") {
        if !docs.join(folder).join(&image).is_file() {
            problems.push(format!("{chapter}: picture {image} does not exist"));
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        if line.trim() != "```text" {
            continue;
        }
        let marker = lines[index.saturating_sub(MARKER_WINDOW_LINES)..index]
            .iter()
            .rev()
            .find_map(|l| l.trim().strip_prefix(CAPTURE_MARKER));
        match marker.and_then(|m| m.trim().strip_suffix("-->")) {
            None => problems.push(format!(
                "{chapter}:{}: a ```text block without `{CAPTURE_MARKER} COMMAND -->` above it \
                 (text blocks are captured output; draw diagrams in plain ``` blocks)",
                index + 1
            )),
            Some(command) => {
                if let Err(why) = check_capture_command(root, command.trim()) {
                    problems.push(format!("{chapter}:{}: {why}", index + 1));
                }
            }
        }
    }
    if text.contains("<!-- worked-example:") {
        if let Err(why) = check_worked_example(root, text) {
            problems.push(format!("{chapter}: {why}"));
        }
    }
}

/// The value after `flag` in a command line.
fn flag_value<'a>(words: &[&'a str], flag: &str) -> Option<&'a str> {
    words
        .iter()
        .position(|w| *w == flag)
        .and_then(|i| words.get(i + 1).copied())
}

/// The folder of a workspace package (`heapkit-bins` → `crates/bins`, `heapkit` →
/// `crates/heapkit`, `heapkit-benches` → `benches`).
fn package_dir(root: &Path, package: &str) -> Option<PathBuf> {
    let short = package.strip_prefix("heapkit-").unwrap_or(package);
    [root.join("crates").join(short), root.join(short)]
        .into_iter()
        .find(|dir| dir.join("Cargo.toml").is_file())
}

/// Whether `command` runs a program that is in the repository: an example, a bench, a binary
/// of `docs/programs` or of a package, or a script; anything else is refused.
fn check_capture_command(root: &Path, command: &str) -> Result<(), String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let exists =
        |path: PathBuf| path.is_file() || path.with_extension("").join("main.rs").is_file();
    let named = |flag: &str| flag_value(&words, flag);
    let found = if let Some(manifest) = named("--manifest-path") {
        let project = root.join(manifest);
        let dir = project.parent().map(Path::to_path_buf).unwrap_or_default();
        project.is_file()
            && match (named("--bin"), named("--example"), named("--test")) {
                (Some(bin), _, _) => exists(dir.join("src/bin").join(format!("{bin}.rs"))),
                (_, Some(example), _) => exists(dir.join("examples").join(format!("{example}.rs"))),
                (_, _, Some(test)) => exists(dir.join("tests").join(format!("{test}.rs"))),
                _ => words.get(1) == Some(&"test"),
            }
    } else if let Some(dir) = named("-p").and_then(|p| package_dir(root, p)) {
        match (
            named("--example"),
            named("--bench"),
            named("--bin"),
            named("--test"),
        ) {
            (Some(example), ..) => exists(dir.join("examples").join(format!("{example}.rs"))),
            (_, Some(bench), ..) => exists(dir.join("benches").join(format!("{bench}.rs"))),
            (_, _, Some(bin), _) => {
                exists(dir.join("src/bin").join(format!("{bin}.rs")))
                    || exists(dir.join(format!("src/bin/{bin}.rs")))
            }
            (.., Some(test)) => exists(dir.join("tests").join(format!("{test}.rs"))),
            _ => false,
        }
    } else if words.first() == Some(&"cargo") && words.get(1) == Some(&"xtask") {
        true
    } else {
        words
            .first()
            .is_some_and(|script| root.join(script).is_file())
    };
    if found {
        Ok(())
    } else {
        Err(format!(
            "capture command `{command}` names no program in the repository"
        ))
    }
}

/// Chapter 8 quotes `docs/programs/src/compose.rs` between its BEGIN and END lines: the
/// quote must be the compiled code, and shorter than the promise.
fn check_worked_example(root: &Path, chapter: &str) -> Result<(), String> {
    let source = std::fs::read_to_string(root.join("docs/programs/src/compose.rs"))
        .map_err(|e| format!("docs/programs/src/compose.rs: {e}"))?;
    let quoted: Vec<&str> = source
        .lines()
        .skip_while(|l| !l.contains("BEGIN chapter-8"))
        .skip(1)
        .take_while(|l| !l.contains("END chapter-8"))
        .collect();
    if quoted.is_empty() {
        return Err("compose.rs has no BEGIN/END chapter-8 lines".into());
    }
    let code_lines = quoted.iter().filter(|l| !l.trim().is_empty()).count();
    if code_lines >= WORKED_EXAMPLE_MAX_LINES {
        return Err(format!(
            "the worked example has {code_lines} non-blank lines; the chapter promises fewer than {WORKED_EXAMPLE_MAX_LINES}"
        ));
    }
    if !chapter.contains(&quoted.join("\n")) {
        return Err(
            "the worked example in the chapter differs from docs/programs/src/compose.rs".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn the_book_checks_out() {
        let problems = check_book(&root());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn a_text_block_without_a_marker_is_refused() {
        let mut problems = Vec::new();
        check_chapter(
            &root(),
            "x.md",
            "intro\n\n```text\nmade up\n```\n",
            &mut problems,
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        let mut problems = Vec::new();
        let fake = "<!-- capture: cargo run -p heapkit-bins --example no_such_example -->\n```text\nx\n```\n";
        check_chapter(&root(), "x.md", fake, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let mut problems = Vec::new();
        let real =
            "<!-- capture: cargo run -p heapkit-bins --example bins_walkthrough -->\n```text\nx\n```\n";
        check_chapter(&root(), "x.md", real, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    /// The heavy check `cargo xtask docs` runs: builds `docs/programs` (a few minutes from
    /// cold), so it is not part of a plain `cargo test`; run it with `-- --ignored`.
    #[test]
    #[ignore = "builds docs/programs from cold; `cargo xtask docs` runs it"]
    fn programs_build_and_pictures_are_current() {
        let root = root();
        check_programs(&root, &root.join("target")).unwrap();
    }
}
