//! The codemap check: every source file of every crate is named in ARCHITECTURE.md.
//!
//! A map that leaves files out sends a reader to grep, and it rots silently: a file added
//! without a row is the first step of a layout nobody can see. So `cargo xtask docs` (and the
//! xtask tests) fail when a `.rs` file under `crates/*/src` is not named.
//!
//! A row names files in three ways, all in backticks: a full path (`crates/slab/src/huge.rs`),
//! a braced set (`crates/testkit/src/{laws,threads}.rs`), or a bare file name after a full path
//! in the same row (`crates/tcache/src/handover.rs`, `sync.rs`), which is read in the folder of
//! the row's last full path. A bare name may carry a subfolder (`retained/tests.rs`).

use std::path::Path;

/// Paths (relative to the workspace root, `/`-separated) of every `.rs` file under
/// `crates/*/src`, sorted.
fn source_files(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let Ok(crates) = std::fs::read_dir(root.join("crates")) else {
        return files;
    };
    for krate in crates.flatten() {
        let src = krate.path().join("src");
        collect_rs(root, &src, &mut files);
    }
    files.sort();
    files
}

fn collect_rs(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
}

/// `a/{b,c}.rs` → `a/b.rs`, `a/c.rs` (one brace group; none → the name itself).
fn expand_braces(name: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (name.find('{'), name.find('}')) else {
        return vec![name.to_string()];
    };
    if close < open {
        return vec![name.to_string()];
    }
    let (head, tail) = (&name[..open], &name[close + 1..]);
    name[open + 1..close]
        .split(',')
        .map(|part| format!("{head}{}{tail}", part.trim()))
        .collect()
}

/// Every file path the map names, bare names resolved against their row's folder.
fn named_paths(map: &str) -> Vec<String> {
    let mut named = Vec::new();
    for line in map.lines() {
        let mut folder = String::new();
        for (i, token) in line.split('`').enumerate() {
            // Odd pieces are inside backticks.
            if i % 2 == 0 {
                continue;
            }
            // `heap.rs` (`small_bin_of`) style notes and spaces are not paths.
            let token = token.split_whitespace().next().unwrap_or_default();
            for path in expand_braces(token) {
                if path.starts_with("crates/") {
                    if let Some(slash) = path.find("/src/") {
                        folder = path[..slash + "/src/".len()].to_string();
                    }
                    named.push(path);
                } else if path.ends_with(".rs") && !folder.is_empty() {
                    named.push(format!("{folder}{path}"));
                }
            }
        }
    }
    named
}

/// The source files ARCHITECTURE.md does not name, one problem line each.
pub fn check_codemap(root: &Path) -> Vec<String> {
    let Ok(map) = std::fs::read_to_string(root.join("ARCHITECTURE.md")) else {
        return vec!["ARCHITECTURE.md is missing".into()];
    };
    let named = named_paths(&map);
    source_files(root)
        .into_iter()
        .filter(|file| !named.iter().any(|n| n == file))
        .map(|file| format!("ARCHITECTURE.md's codemap does not name {file}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_file_is_on_the_map() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let problems = check_codemap(&root);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn rows_name_files_three_ways() {
        let map =
            "| `crates/a/src/{x,y}.rs` | . |\n| `crates/b/src/p.rs`, `q.rs` (`f`) | `r/s.rs` |\n";
        let named = named_paths(map);
        for want in [
            "crates/a/src/x.rs",
            "crates/a/src/y.rs",
            "crates/b/src/p.rs",
            "crates/b/src/q.rs",
            "crates/b/src/r/s.rs",
        ] {
            assert!(named.iter().any(|n| n == want), "{want} in {named:?}");
        }
        // A bare name with no full path before it in its row names nothing.
        assert!(named_paths("| `lonely.rs` |").is_empty());
    }
}
