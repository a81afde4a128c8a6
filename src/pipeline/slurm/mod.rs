//! Running a plan's uncached stage instances on a Slurm cluster: the files a driver and its jobs
//! share, under `.symbreak/slurm/<experiment>/<run-id>/`.
//!
//! The driver (`symbreak run <exp> --executor slurm`, on the login node) keys the plan as a local
//! run does, writes the instances it submits to a plan file (`plan-<round>.json`: each task's
//! own serialisation, its key, code hash and upstream entries), copies its binary to a
//! content-named path (`.symbreak/slurm/bin/symbreak-<blake3>`), and submits job arrays whose
//! tasks run `symbreak slurm-worker` on a few instances each ([`worker`]). Every `sbatch` is
//! journalled before and after ([`journal`]); a job writes an outcome record per instance
//! (`outcomes/<kind>-<key>.json`: done, cached, failed with its error chain, or skipped because
//! an upstream failed). So the whole state of a run — done, running, queued, failed, skipped,
//! lost — is rebuilt from cache entries, outcome records, the journal and one `squeue` call
//! ([`driver::survey`]), by any later driver: a killed driver loses nothing.
//!
//! Only the driver writes the run folder and the experiment's state; jobs write cache entries
//! (published by rename, first writer wins), outcome records and their logs.

pub mod driver;
pub mod journal;
pub mod scheduler;
pub mod worker;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StageKind;
use crate::error::{Error, Result};
use crate::fsutil::{read_json, write_json};

/// Version of the plan-file layout: a worker refuses another.
pub const PLAN_FORMAT: u32 = 1;

/// The folder of one Slurm run and the names of what it holds.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub dir: PathBuf,
}

impl RunDir {
    /// `<cache root>/slurm/<experiment>/<run-id>/`.
    pub fn new(cache_root: &Path, experiment: &str, run_id: &str) -> Self {
        Self {
            dir: cache_root.join("slurm").join(experiment).join(run_id),
        }
    }

    pub fn plan(&self, round: usize) -> PathBuf {
        self.dir.join(format!("plan-{round}.json"))
    }
    pub fn journal(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }
    pub fn scripts(&self) -> PathBuf {
        self.dir.join("scripts")
    }
    pub fn outcomes(&self) -> PathBuf {
        self.dir.join("outcomes")
    }
    pub fn outcome(&self, kind: StageKind, key: &str) -> PathBuf {
        self.outcomes().join(format!("{}-{key}.json", kind.name()))
    }
    pub fn run_id(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    }

    /// The outcome a job recorded for an instance, if it is there (a half-visible file on a
    /// shared filesystem reads as absent; the driver looks again).
    pub fn read_outcome(&self, kind: StageKind, key: &str) -> Option<Outcome> {
        read_json(&self.outcome(kind, key)).ok()
    }

    pub fn write_outcome(&self, outcome: &Outcome) -> Result<()> {
        write_json(&self.outcome(outcome.kind, &outcome.key), outcome)
    }

    /// Every Slurm run of `experiment` under `cache_root`, oldest first.
    pub fn all_of(cache_root: &Path, experiment: &str) -> Vec<RunDir> {
        let base = cache_root.join("slurm").join(experiment);
        let mut out: Vec<RunDir> = std::fs::read_dir(&base)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| RunDir { dir: e.path() })
            .collect();
        out.sort_by(|a, b| a.dir.cmp(&b.dir));
        out
    }
}

/// One instance as a job runs it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PlannedInstance {
    pub id: String,
    pub kind: StageKind,
    pub key: String,
    /// The task's Rust type, which names its decoder.
    pub task_type: String,
    pub code_group: String,
    /// Hash of the code group, as the driver's build computed it.
    pub code: String,
    /// The task's serialisation, markers kept.
    pub task: serde_json::Value,
    /// Upstream instance id → (kind, key) of its entry.
    pub upstream: BTreeMap<String, (StageKind, String)>,
    /// Rerun on request although cached: the job replaces the entry.
    pub forced: bool,
}

/// One job array: task `t` runs the instances `tasks[t]` (indices into the plan's instances).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ArrayPlan {
    pub kind: StageKind,
    pub tasks: Vec<Vec<usize>>,
}

/// `plan-<round>.json`: what one round of submissions runs. Written once, before any job that
/// reads it is submitted, and never changed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PlanFile {
    pub format: u32,
    pub experiment: String,
    pub run_id: String,
    pub round: usize,
    /// Fingerprint of every source file of the build that wrote the plan; a job of another
    /// build refuses to run it.
    pub build: String,
    /// The cache's root folder (absolute).
    pub cache_root: PathBuf,
    pub instances: Vec<PlannedInstance>,
    pub arrays: Vec<ArrayPlan>,
}

impl PlanFile {
    pub fn load(path: &Path) -> Result<Self> {
        let plan: PlanFile = read_json(path)?;
        if plan.format != PLAN_FORMAT {
            return Err(Error::Other(format!(
                "{}: plan format {} (this build reads {PLAN_FORMAT})",
                path.display(),
                plan.format
            )));
        }
        Ok(plan)
    }
}

/// What a job did with one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeState {
    /// Computed and published.
    Done,
    /// Its entry was already there (another run or job published it).
    Cached,
    /// The stage failed; the record holds the error chain.
    Failed,
    /// Not run: an upstream instance failed or left no entry.
    Skipped,
}

/// `outcomes/<kind>-<key>.json`, written by the job that ran (or skipped) the instance.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Outcome {
    pub id: String,
    pub kind: StageKind,
    pub key: String,
    pub state: OutcomeState,
    /// The error with its causes (failed), or why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `<array job id>_<task id>`, as Slurm names the task.
    pub job: String,
    pub node: String,
    /// The job's log file.
    pub log: String,
    pub seconds: f64,
    pub finished: String,
}

/// Fingerprint of the whole build: every source file's path and text.
pub fn build_fingerprint() -> String {
    super::fingerprint::build_fingerprint()
}
