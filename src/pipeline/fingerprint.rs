//! Code fingerprints: which source files compute each stage, hashed into that stage's key.
//!
//! A [`CodeGroup`] is named after a stage and rooted at the file that defines it; its sources
//! are that file and every file it reaches through `crate::`/`super::`/`use` paths (the graph
//! the build script records from `src/`), stopping at the [`PLUMBING`] files, which compute no
//! stage result. So a helper a stage starts to call joins its fingerprint without anyone listing
//! it. The hash is taken over the file names and their code with comment-only lines, all
//! whitespace and the test module dropped, so re-wording a comment or re-formatting code
//! (rustfmt) does not invalidate a cached fit, while any change to the code itself does.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

mod graph {
    include!(concat!(env!("OUT_DIR"), "/sources.rs"));
}

/// Files that compute no stage result — the pipeline core, the spec reader, the family
/// registry, reports and the command line: the closure stops at them, so changing them
/// invalidates nothing. Nothing here may shape an artefact.
pub const PLUMBING: &[&str] = &[
    "lib.rs",
    "main.rs",
    "cli.rs",
    "bench.rs",
    "error.rs",
    "experiments/mod.rs",
    "spec/mod.rs",
    "pipeline/mod.rs",
    "pipeline/cache.rs",
    "pipeline/execute.rs",
    "pipeline/fingerprint.rs",
    "pipeline/plan.rs",
    "pipeline/progress.rs",
    "pipeline/run_folder.rs",
    "pipeline/slurm/mod.rs",
    "pipeline/slurm/driver.rs",
    "pipeline/slurm/journal.rs",
    "pipeline/slurm/scheduler.rs",
    "pipeline/slurm/worker.rs",
    "report/mod.rs",
    "report/html.rs",
    "compare/mod.rs",
    "compare/resolve.rs",
    "compare/tables.rs",
    "compare/figures.rs",
];

/// The sources one stage's results depend on.
pub struct CodeGroup {
    pub name: &'static str,
    root: &'static str,
    sources: OnceLock<Vec<&'static str>>,
    hash: OnceLock<String>,
}

impl CodeGroup {
    /// The group `name` rooted at `root`, a path as `file!()` gives it (`src/…`).
    pub const fn new(name: &'static str, root: &'static str) -> Self {
        Self {
            name,
            root,
            sources: OnceLock::new(),
            hash: OnceLock::new(),
        }
    }

    /// The file the group is rooted at (relative to `src/`).
    pub fn root(&self) -> &'static str {
        self.root.strip_prefix("src/").unwrap_or(self.root)
    }

    /// The root and every file it reaches, stopping at plumbing, sorted.
    pub fn sources(&self) -> &[&'static str] {
        self.sources.get_or_init(|| {
            let root = self.root();
            let mut seen: BTreeSet<&'static str> = BTreeSet::new();
            let mut stack: Vec<&'static str> = graph::SOURCES
                .iter()
                .filter(|(path, _, _)| *path == root)
                .map(|(path, _, _)| *path)
                .collect();
            while let Some(path) = stack.pop() {
                if PLUMBING.contains(&path) || !seen.insert(path) {
                    continue;
                }
                if let Some((_, _, refs)) = graph::SOURCES.iter().find(|(p, _, _)| *p == path) {
                    stack.extend(refs.iter().copied());
                }
            }
            seen.into_iter().collect()
        })
    }

    /// Whether the group embeds the file at `path` (relative to `src/`).
    #[cfg(test)]
    pub fn contains(&self, path: &str) -> bool {
        self.sources().contains(&path)
    }

    /// blake3 over the group's name, file names and code lines.
    pub fn hash(&self) -> &str {
        self.hash.get_or_init(|| {
            let mut hasher = blake3::Hasher::new();
            hasher.update(self.name.as_bytes());
            for path in self.sources() {
                let text = graph::SOURCES
                    .iter()
                    .find(|(p, _, _)| p == path)
                    .map_or("", |(_, text, _)| *text);
                hasher.update(b"\0file\0");
                hasher.update(path.as_bytes());
                hash_code(&mut hasher, text);
            }
            hasher.finalize().to_hex().to_string()
        })
    }
}

/// Feeds the code of `text` to `hasher`: comment-only lines, whitespace and the test module
/// left out.
fn hash_code(hasher: &mut blake3::Hasher, text: &str) {
    let code = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at]);
    for line in code.lines() {
        let line = line.trim();
        if line.starts_with("//") {
            continue;
        }
        // Whitespace and line breaks are dropped, so re-formatting (rustfmt re-wrapping a
        // call, say) leaves the fingerprint unchanged.
        let code: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        hasher.update(code.as_bytes());
    }
}

/// Declares the [`CodeGroup`] of the stage defined in the calling file.
#[macro_export]
macro_rules! stage_code {
    ($name:literal) => {{
        static CODE: $crate::pipeline::fingerprint::CodeGroup =
            $crate::pipeline::fingerprint::CodeGroup::new($name, file!());
        &CODE
    }};
}

/// The source files (relative to `src/`) whose text in the checkout at `repo` differs from the
/// text this binary was built from, including files only one side has. Empty when they agree.
pub fn sources_differing_from(repo: &Path) -> Vec<String> {
    let mut differing = Vec::new();
    let mut built: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for (path, text, _) in graph::SOURCES {
        built.insert(path);
        if std::fs::read_to_string(repo.join("src").join(path))
            .ok()
            .as_deref()
            != Some(*text)
        {
            differing.push(path.to_string());
        }
    }
    let mut stack = vec![repo.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && let Ok(relative) = path.strip_prefix(repo.join("src"))
            {
                let relative = relative.to_string_lossy().replace('\\', "/");
                if !built.contains(relative.as_str()) {
                    differing.push(relative);
                }
            }
        }
    }
    differing.sort();
    differing
}

/// blake3 of every source file's path and text this binary was built from, with the crate
/// version: two binaries with the same fingerprint compute the same results.
pub fn build_fingerprint() -> String {
    static FINGERPRINT: OnceLock<String> = OnceLock::new();
    FINGERPRINT
        .get_or_init(|| {
            let mut hasher = blake3::Hasher::new();
            hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
            for (path, text, _) in graph::SOURCES {
                hasher.update(&(path.len() as u64).to_le_bytes());
                hasher.update(path.as_bytes());
                hasher.update(&(text.len() as u64).to_le_bytes());
                hasher.update(text.as_bytes());
            }
            hasher.finalize().to_hex()[..32].to_string()
        })
        .clone()
}

/// The files `path` refers to directly, as the build script read them.
#[cfg(test)]
pub fn references(path: &str) -> Option<&'static [&'static str]> {
    graph::SOURCES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, _, refs)| *refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(text: &str) -> String {
        let mut hasher = blake3::Hasher::new();
        hash_code(&mut hasher, text);
        hasher.finalize().to_hex().to_string()
    }

    #[test]
    fn formatting_and_comments_do_not_change_the_fingerprint_but_code_does() {
        let base = hash_of("fn f(a: u8) -> u8 {\n    a + 1\n}\n");
        assert_eq!(
            base,
            hash_of("// why\nfn f(a: u8)\n    -> u8 {\n\n    a+1 }\n")
        );
        assert_ne!(base, hash_of("fn f(a: u8) -> u8 {\n    a + 2\n}\n"));
        assert_eq!(
            base,
            hash_of("fn f(a: u8) -> u8 {\n    a + 1\n}\n#[cfg(test)]\nmod tests {}\n")
        );
    }

    /// The graph follows `use` trees, `super::`, aliases of modules and child modules.
    #[test]
    fn references_follow_use_trees_and_module_aliases() {
        let refs = references("models/rbm/train.rs").unwrap();
        assert!(refs.contains(&"models/rbm/mod.rs"), "{refs:?}");
        let lib = references("lib.rs").unwrap();
        assert!(lib.is_empty() || lib.iter().all(|r| !r.is_empty()));
    }

    #[test]
    fn plumbing_files_exist() {
        for path in PLUMBING {
            assert!(references(path).is_some(), "{path} is not a source file");
        }
    }
}
