//! Versioned result folders `results/<experiment>/<run-id>/`.
//!
//! The run id is `<UTC yyyymmddThhmmssZ>-<git sha7>[-dirty]` (with `-2`, `-3`, … if taken). The
//! folder holds `manifest.json`, `log.txt`, and the artefacts `tables/`, `arrays/`, `figures/`
//! copied (never linked: editing a run folder must not edit the cache) from the stage outputs.
//! The manifest is written with `status = "running"` when the run starts and rewritten
//! atomically with `status = "complete"` only after every artefact each stage instance published
//! is in place with the hash it was published with, and nothing else is; then
//! `results/<experiment>/latest` (a symlink) is switched to the new folder. A killed run
//! therefore never looks complete, and never becomes `latest`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::cache::{EntryMeta, FileRecord, list_files};
use crate::error::{Error, Result};
use crate::fsutil::{hash_file, write_json};

/// Git state of the working tree the run was made from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GitInfo {
    pub commit: String,
    /// Uncommitted changes, or a binary built from other sources than the checkout.
    pub dirty: bool,
    /// Source files (under `src/`) of the checkout that differ from those the running binary was
    /// built from: the results are the binary's, not the commit's (a rebuild was forgotten).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binary_differs: Vec<String>,
}

/// The trimmed standard output of `git <args>` run in `dir`, if git ran and succeeded.
pub fn git_output(dir: &Path, args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        // A query must not take the index lock from a concurrent git command.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

impl GitInfo {
    /// Asks git in `dir`; outside a repository the commit is "none".
    pub fn probe(dir: &Path) -> Self {
        let run = |args: &[&str]| git_output(dir, args);
        match run(&["rev-parse", "HEAD"]) {
            Some(commit) => {
                let binary_differs = run(&["rev-parse", "--show-toplevel"])
                    .map(PathBuf::from)
                    .filter(|top| is_this_project(top))
                    .map(|top| super::fingerprint::sources_differing_from(&top))
                    .unwrap_or_default();
                GitInfo {
                    dirty: !binary_differs.is_empty()
                        || run(&["status", "--porcelain", "--untracked-files=no"])
                            .is_some_and(|s| !s.is_empty()),
                    commit,
                    binary_differs,
                }
            }
            None => GitInfo {
                commit: "none".into(),
                dirty: false,
                binary_differs: Vec::new(),
            },
        }
    }

    /// The commit's first seven digits, with `-dirty` for a tree with uncommitted changes.
    pub fn short(&self) -> String {
        let sha: String = self.commit.chars().take(7).collect();
        if self.dirty {
            format!("{sha}-dirty")
        } else {
            sha
        }
    }
}

/// Whether the git checkout at `top` holds this project's sources (a workspace may be another
/// repository that only holds specs and results; its commit says nothing about the code).
fn is_this_project(top: &Path) -> bool {
    std::fs::read_to_string(top.join("Cargo.toml"))
        .is_ok_and(|t| t.lines().any(|l| l.trim() == "name = \"symbreak\""))
}

/// One stage instance as recorded in the manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageRecord {
    pub id: String,
    pub kind: String,
    pub key: String,
    pub cached: bool,
    pub reason: String,
    pub started: String,
    pub finished: String,
    pub seconds: f64,
    pub code_group: String,
    /// The Slurm job that ran it (runs with `--executor slurm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<super::slurm::driver::JobRecord>,
}

/// The folders of a stage's output that are artefacts of the run.
pub const ARTEFACT_FOLDERS: [&str; 3] = ["arrays", "figures", "tables"];

/// One artefact file of the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArtefactRecord {
    pub path: String,
    pub bytes: u64,
    pub blake3: String,
    /// The stage instance that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// `manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub status: String,
    pub experiment: String,
    pub kind: String,
    pub run_id: String,
    pub spec: BTreeMap<String, String>,
    pub seed: u64,
    pub parameters: serde_json::Value,
    pub started: String,
    pub finished: Option<String>,
    pub git: GitInfo,
    pub versions: BTreeMap<String, String>,
    pub host: BTreeMap<String, String>,
    pub command: Vec<String>,
    pub inputs: BTreeMap<String, String>,
    pub stages: Vec<StageRecord>,
    pub artefacts: Vec<ArtefactRecord>,
    /// The process that wrote the run (with `host`, how `status` tells an interrupted run from
    /// a running one).
    #[serde(default)]
    pub pid: u32,
    /// Why a `failed` run failed, with its causes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `slurm` for a run whose instances ran as Slurm jobs; its state then lives in the cache's
    /// `slurm/<experiment>/<run-id>/` and outlives the driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
}

/// A run folder being written.
pub struct RunFolder {
    pub dir: PathBuf,
    pub run_id: String,
    experiment_dir: PathBuf,
    /// Artefact path (`tables/x.csv`) → the stage instance it came from and what it published.
    origins: BTreeMap<String, (String, FileRecord)>,
    /// Artefacts collected but not yet copied: (from, to, name, stage).
    pending: Vec<(PathBuf, PathBuf, String, String)>,
}

impl RunFolder {
    /// The existing run folder `results/<experiment>/<run_id>/` (a Slurm run resumed by a later
    /// driver), emptied of artefacts collected before.
    pub fn reopen(results_root: &Path, experiment: &str, run_id: &str) -> Result<Self> {
        let experiment_dir = results_root.join(experiment);
        let dir = experiment_dir.join(run_id);
        if !dir.is_dir() {
            return Err(Error::Other(format!(
                "run folder {} is gone; cannot resume it",
                dir.display()
            )));
        }
        for sub in ARTEFACT_FOLDERS {
            let path = dir.join(sub);
            if path.exists() {
                std::fs::remove_dir_all(&path).map_err(|e| Error::io("clearing", &path, e))?;
            }
        }
        Ok(Self {
            dir,
            run_id: run_id.to_string(),
            experiment_dir,
            origins: BTreeMap::new(),
            pending: Vec::new(),
        })
    }

    /// Creates `results/<experiment>/<run-id>/` under `results_root`.
    pub fn create(results_root: &Path, experiment: &str, git: &GitInfo) -> Result<Self> {
        let experiment_dir = results_root.join(experiment);
        std::fs::create_dir_all(&experiment_dir)
            .map_err(|e| Error::io("creating folder", &experiment_dir, e))?;
        let base = format!(
            "{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            git.short()
        );
        for n in 1.. {
            let run_id = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let dir = experiment_dir.join(&run_id);
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    return Ok(Self {
                        dir,
                        run_id,
                        experiment_dir,
                        origins: BTreeMap::new(),
                        pending: Vec::new(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("creating run folder", &dir, e)),
            }
        }
        unreachable!("an unbounded range always yields")
    }

    pub fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        write_json(&self.dir.join("manifest.json"), manifest)
    }

    /// Takes the artefacts (`arrays/`, `tables/`, `figures/`) of stage instance `stage`, whose
    /// verified cache entry is `entry_dir` with record `meta`, for the run folder; they are copied
    /// by [`RunFolder::copy_collected`]. Copies, not links: the run folder's files are its own
    /// (copy-on-write where the file system has it).
    pub fn collect_artefacts(
        &mut self,
        stage: &str,
        entry_dir: &Path,
        meta: &EntryMeta,
    ) -> Result<()> {
        let files = meta.files.as_ref().ok_or_else(|| {
            Error::Other(format!(
                "{stage}: cache entry {} has no file record",
                entry_dir.display()
            ))
        })?;
        for (name, record) in files {
            if !ARTEFACT_FOLDERS
                .iter()
                .any(|sub| name.starts_with(&format!("{sub}/")))
            {
                continue;
            }
            if let Some((other, _)) = self.origins.get(name) {
                return Err(Error::Other(format!(
                    "artefact {name} is written by both {other} and {stage}"
                )));
            }
            let (from, to) = (entry_dir.join(name), self.dir.join(name));
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io("creating folder", parent, e))?;
            }
            self.pending
                .push((from, to, name.clone(), stage.to_string()));
            self.origins
                .insert(name.clone(), (stage.to_string(), record.clone()));
        }
        Ok(())
    }

    /// Copies the artefacts collected so far, several files at once (a run folder holds up to a
    /// few hundred MB, and a no-change rerun is mostly this copy).
    pub fn copy_collected(&mut self) -> Result<()> {
        use rayon::prelude::*;
        std::mem::take(&mut self.pending)
            .into_par_iter()
            .try_for_each(|(from, to, name, stage)| {
                std::fs::copy(&from, &to).map(|_| ()).map_err(|e| {
                    Error::Other(format!(
                        "copying artefact {name} of {stage} from {}: {e}",
                        from.display()
                    ))
                })
            })
    }

    /// Lists every artefact file with its size and hash, sorted by path, after checking that the
    /// run folder holds exactly what the stages published: each collected artefact present and
    /// unaltered, nothing else.
    pub fn artefact_records(&self) -> Result<Vec<ArtefactRecord>> {
        use rayon::prelude::*;
        let mut found = Vec::new();
        for sub in ARTEFACT_FOLDERS {
            let dir = self.dir.join(sub);
            if !dir.exists() {
                continue;
            }
            let names = list_files(&dir)
                .map_err(|reason| Error::Other(format!("run folder {sub}/: {reason}")))?;
            found.extend(names.into_iter().map(|name| format!("{sub}/{name}")));
        }
        let hashed: Vec<(String, u64, String)> = found
            .into_par_iter()
            .map(|name| {
                let path = self.dir.join(&name);
                let bytes = std::fs::metadata(&path)
                    .map_err(|e| Error::io("reading", &path, e))?
                    .len();
                Ok((name, bytes, hash_file(&path)?))
            })
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(hashed.len());
        for (name, bytes, blake3) in hashed {
            let Some((stage, published)) = self.origins.get(&name) else {
                return Err(Error::Other(format!(
                    "run folder holds {name}, which no stage instance published"
                )));
            };
            if published.blake3 != blake3 || published.bytes != bytes {
                return Err(Error::Other(format!(
                    "run folder artefact {name} differs from what {stage} published"
                )));
            }
            out.push(ArtefactRecord {
                stage: Some(stage.clone()),
                path: name,
                bytes,
                blake3,
            });
        }
        if let Some(missing) = self
            .origins
            .keys()
            .find(|name| !out.iter().any(|r| &r.path == *name))
        {
            return Err(Error::Other(format!(
                "run folder lacks artefact {missing} of {}",
                self.origins[missing].0
            )));
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Points `results/<experiment>/latest` at this run.
    pub fn mark_latest(&self) -> Result<()> {
        let link = self.experiment_dir.join("latest");
        let tmp = self
            .experiment_dir
            .join(format!(".latest-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        #[cfg(unix)]
        std::os::unix::fs::symlink(&self.run_id, &tmp)
            .map_err(|e| Error::io("linking latest", &tmp, e))?;
        #[cfg(not(unix))]
        std::fs::write(&tmp, &self.run_id).map_err(|e| Error::io("writing latest", &tmp, e))?;
        std::fs::rename(&tmp, &link).map_err(|e| Error::io("switching latest", &link, e))
    }
}

/// What a run folder's manifest says, with `running` split by whether its process lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Complete,
    Failed,
    /// Its process runs (or runs on another host, where this one cannot tell).
    Running,
    /// It says `running`, but its process on this host is gone (killed, machine stopped).
    Interrupted,
}

/// The status of the run a manifest describes.
pub fn run_status(manifest: &Manifest) -> RunStatus {
    match manifest.status.as_str() {
        "complete" => RunStatus::Complete,
        "failed" => RunStatus::Failed,
        // Its jobs live on without the driver until the cache's record of the run says over.
        _ if manifest.executor.as_deref() == Some("slurm") => RunStatus::Running,
        _ => {
            let here = manifest.host.get("hostname") == Some(&super::cache::local_host());
            let alive = manifest.pid != 0 && Path::new(&format!("/proc/{}", manifest.pid)).exists();
            if here && !alive {
                RunStatus::Interrupted
            } else {
                RunStatus::Running
            }
        }
    }
}

/// Every run of `experiment` with its status, oldest first.
pub fn runs_of(results_root: &Path, experiment: &str) -> Vec<(String, RunStatus, Manifest)> {
    let mut out = Vec::new();
    // The reference results are copies of runs, kept in git; they are no runs of their own.
    if experiment == crate::claims::reference::REFERENCE_DIR {
        return out;
    }
    let dir = results_root.join(experiment);
    for run in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if !run.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Ok(manifest) =
            crate::fsutil::read_json::<Manifest>(&run.path().join("manifest.json"))
        {
            let name = run.file_name().to_string_lossy().to_string();
            out.push((name, run_status(&manifest), manifest));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The run id `latest` points to, if any.
pub fn latest_run(results_root: &Path, experiment: &str) -> Option<String> {
    let link = results_root.join(experiment).join("latest");
    std::fs::read_link(&link)
        .ok()
        .map(|p| p.to_string_lossy().to_string())
        .or_else(|| std::fs::read_to_string(&link).ok())
}

/// Host facts for the manifest.
pub fn host_info() -> BTreeMap<String, String> {
    let mut host = BTreeMap::new();
    host.insert("hostname".into(), super::cache::local_host());
    host.insert("os".into(), std::env::consts::OS.into());
    host.insert("arch".into(), std::env::consts::ARCH.into());
    host.insert(
        "cpus".into(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .to_string(),
    );
    host
}
