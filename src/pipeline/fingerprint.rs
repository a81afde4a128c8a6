//! Code fingerprints: which source files compute each stage, hashed into that stage's key.
//!
//! A [`CodeGroup`] embeds (with `include_str!`) the source of every file a stage's result depends
//! on; its hash is taken over the file names and their code with comment-only lines and all
//! whitespace dropped, so re-wording a comment or re-formatting code (rustfmt) does not
//! invalidate a cached fit, while any change to the code itself does. Figure code lives in its own group, so editing a
//! plot re-runs only the emit stage. A test in each experiment checks that every source file is
//! claimed by some group or declared stage-neutral (pipeline plumbing, CLI).

use std::sync::OnceLock;

/// The sources one stage kind's results depend on.
pub struct CodeGroup {
    pub name: &'static str,
    pub sources: &'static [(&'static str, &'static str)],
    hash: OnceLock<String>,
}

impl CodeGroup {
    #[doc(hidden)]
    pub const fn new(name: &'static str, sources: &'static [(&'static str, &'static str)]) -> Self {
        Self {
            name,
            sources,
            hash: OnceLock::new(),
        }
    }

    /// blake3 over the group's file names and code lines.
    pub fn hash(&self) -> &str {
        self.hash.get_or_init(|| {
            let mut hasher = blake3::Hasher::new();
            hasher.update(self.name.as_bytes());
            for (path, text) in self.sources {
                hasher.update(b"\0file\0");
                hasher.update(path.as_bytes());
                for line in text.lines() {
                    let line = line.trim();
                    if line.starts_with("//") {
                        continue;
                    }
                    // Whitespace and line breaks are dropped, so re-formatting (rustfmt
                    // re-wrapping a call, say) leaves the fingerprint unchanged.
                    let code: String = line.chars().filter(|c| !c.is_whitespace()).collect();
                    hasher.update(code.as_bytes());
                }
            }
            hasher.finalize().to_hex().to_string()
        })
    }

    /// Whether the group embeds the file at `path` (relative to `src/`).
    pub fn contains(&self, path: &str) -> bool {
        self.sources.iter().any(|(p, _)| *p == path)
    }
}

/// Declares a [`CodeGroup`] from paths relative to `src/`.
#[macro_export]
macro_rules! code_group {
    ($name:literal, [$($path:literal),* $(,)?]) => {
        $crate::pipeline::fingerprint::CodeGroup::new(
            $name,
            &[$(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/", $path)))),*],
        )
    };
}

/// Files that compute no stage result (plumbing): changing them invalidates nothing.
pub const STAGE_NEUTRAL: &[&str] = &[
    "main.rs",
    "bench.rs",
    "lib.rs",
    "cli.rs",
    "error.rs",
    "fsutil.rs",
    "spec/mod.rs",
    "spec/rbm_scalar.rs",
    "spec/rbm_mnist.rs",
    "spec/dwe.rs",
    "pipeline/mod.rs",
    "pipeline/fingerprint.rs",
    "pipeline/cache.rs",
    "pipeline/execute.rs",
    "pipeline/run_folder.rs",
    "pipeline/progress.rs",
    "experiments/mod.rs",
    "experiments/rbm_scalar/mod.rs",
    "experiments/dwe/mod.rs",
    "experiments/googlebooks/mod.rs",
    "experiments/dwe_planted/mod.rs",
    "spec/dwe_planted.rs",
    "experiments/goldstone_synthetic/mod.rs",
    "experiments/rbm_mnist/mod.rs",
    "models/mod.rs",
    "analysis/mod.rs",
    "emit/mod.rs",
    "data/mod.rs",
    "data/fetch.rs",
    // File names, URLs and the lock: stage parameters carry the names, the lock is a check.
    "data/googlebooks.rs",
    "spec/googlebooks.rs",
    // Written after the stages, from their artefacts: the run's report and comparisons.
    "report/mod.rs",
    "report/html.rs",
    "compare/mod.rs",
    "compare/resolve.rs",
    "compare/tables.rs",
    "compare/figures.rs",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(text: &'static str) -> String {
        let sources: &'static [(&'static str, &'static str)] =
            Box::leak(vec![("a.rs", text)].into_boxed_slice());
        CodeGroup::new("g", sources).hash().to_string()
    }

    #[test]
    fn formatting_and_comments_do_not_change_the_fingerprint_but_code_does() {
        let base = hash_of("fn f(a: u8) -> u8 {\n    a + 1\n}\n");
        assert_eq!(
            base,
            hash_of("// why\nfn f(a: u8)\n    -> u8 {\n\n    a+1 }\n")
        );
        assert_ne!(base, hash_of("fn f(a: u8) -> u8 {\n    a + 2\n}\n"));
    }
}
