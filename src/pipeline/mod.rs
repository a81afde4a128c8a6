//! The pipeline core: stage instances, their content keys, the cache, run folders and the
//! executor. It knows nothing about physics.
//!
//! An experiment turns its validated spec into a [`Plan`] by adding [`Stage`] tasks to a
//! [`PlanBuilder`]: each becomes a stage instance with a kind (fetch → preprocess → fit →
//! evaluate → emit), a label (the sweep point), and — read off the task's serialisation — its
//! parameters, its upstream instances and its input files, plus the [`CodeGroup`] of the code
//! that computes it (see [`plan`]). The executor keys every
//! instance (see [`cache`]), runs what is not cached — in parallel where dependencies allow —
//! and assembles the artefacts into a versioned folder `results/<experiment>/<run-id>/`
//! (see [`run_folder`]).
//!
//! A stage writes into the folder it is handed: `arrays/`, `tables/` and `figures/` are
//! artefacts, copied into the run folder; anything else there is private to downstream stages.

pub mod cache;
pub mod execute;
pub mod fingerprint;
pub mod gc;
pub mod plan;
pub mod progress;
pub mod run_folder;
pub mod slurm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Result;
pub use fingerprint::CodeGroup;
pub use plan::{InputFile, PlanBuilder, Stage, StageHandle, StageInstance};
pub use progress::Progress;

/// The kinds of stage, in pipeline order.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    Fetch,
    Preprocess,
    Fit,
    Evaluate,
    Emit,
}

impl StageKind {
    pub const ALL: [StageKind; 5] = [
        StageKind::Fetch,
        StageKind::Preprocess,
        StageKind::Fit,
        StageKind::Evaluate,
        StageKind::Emit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StageKind::Fetch => "fetch",
            StageKind::Preprocess => "preprocess",
            StageKind::Fit => "fit",
            StageKind::Evaluate => "evaluate",
            StageKind::Emit => "emit",
        }
    }

    /// Parses a stage name as typed on the command line.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What a stage needs while it runs.
pub struct StageContext<'a> {
    /// Folder to write outputs into (becomes the cache entry once the stage succeeds).
    pub out_dir: &'a Path,
    /// Output folders of the upstream instances, by instance id.
    pub(crate) upstream: &'a BTreeMap<String, PathBuf>,
    /// Progress reporting (drawn only for stages that run longer than a second).
    pub progress: &'a Progress,
}

impl StageContext<'_> {
    /// The output folder of the upstream instance `handle` names.
    pub fn upstream(&self, handle: &StageHandle) -> Result<&Path> {
        self.upstream
            .get(handle.id())
            .map(PathBuf::as_path)
            .ok_or_else(|| {
                crate::error::Error::Other(format!("no upstream output for {}", handle.id()))
            })
    }
}

/// A validated experiment, ready to execute.
pub struct Plan {
    pub experiment: String,
    pub kind: String,
    pub seed: u64,
    pub spec_path: PathBuf,
    pub spec_hash: String,
    /// The claims file beside the spec (`experiments/claims/<name>.toml`), when it has one:
    /// evaluated on the run's tables once they are complete.
    pub claims_path: Option<PathBuf>,
    /// The fully resolved parameters, for the manifest.
    pub resolved: serde_json::Value,
    /// Instances in dependency order.
    pub instances: Vec<StageInstance>,
}

/// Flattens resolved parameters into sorted `dotted.key -> value` pairs, for showing what
/// changed (stale reasons, `symbreak diff`, the report): strings unquoted, lists of tables by
/// index, other lists as JSON.
pub fn flatten_params(value: &serde_json::Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
        let join = |key: &str| {
            if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            }
        };
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    walk(&join(key), v, out);
                }
            }
            serde_json::Value::Array(items) if items.iter().any(|v| v.is_object()) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&join(&i.to_string()), v, out);
                }
            }
            serde_json::Value::String(s) => {
                out.insert(prefix.to_string(), s.clone());
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_flatten_to_sorted_dotted_paths() {
        let value = serde_json::json!({
            "fit": {"rate": 0.01, "gauge": "exp-clip", "seeds": [1, 2]},
            "regimes": [{"bin_years": 1}, {"bin_years": 5}],
            "corpus": "sotu",
            "first_year": null
        });
        let flat = flatten_params(&value);
        let pairs: Vec<(&str, &str)> = flat.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("corpus", "sotu"),
                ("first_year", "null"),
                ("fit.gauge", "exp-clip"),
                ("fit.rate", "0.01"),
                ("fit.seeds", "[1,2]"),
                ("regimes.0.bin_years", "1"),
                ("regimes.1.bin_years", "5"),
            ]
        );
    }
}
