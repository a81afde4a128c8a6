//! Versioned result folders `results/<experiment>/<run-id>/`.
//!
//! The run id is `<UTC yyyymmddThhmmssZ>-<git sha7>[-dirty]` (with `-2`, `-3`, … if taken). The
//! folder holds `manifest.json`, `log.txt`, and the artefacts `tables/`, `arrays/`, `figures/`
//! linked or copied from the stage outputs. The manifest is written with `status = "running"`
//! when the run starts and rewritten atomically with `status = "complete"` only after every
//! artefact is in place; then `results/<experiment>/latest` (a symlink) is switched to the new
//! folder. A killed run therefore never looks complete, and never becomes `latest`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::{copy_atomic, hash_file, write_json};

/// Git state of the working tree the run was made from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GitInfo {
    pub commit: String,
    pub dirty: bool,
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
            Some(commit) => GitInfo {
                dirty: run(&["status", "--porcelain", "--untracked-files=no"])
                    .is_some_and(|s| !s.is_empty()),
                commit,
            },
            None => GitInfo {
                commit: "none".into(),
                dirty: false,
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
}

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
}

/// A run folder being written.
pub struct RunFolder {
    pub dir: PathBuf,
    pub run_id: String,
    experiment_dir: PathBuf,
    /// Artefact path (`tables/x.csv`) → the stage instance it came from.
    origins: BTreeMap<String, String>,
}

impl RunFolder {
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

    /// Brings the artefact folders (`arrays`, `tables`, `figures`) of stage instance `stage`'s
    /// output into the run folder. Cache entries are never modified in place (only replaced
    /// whole), so files are hard-linked where the file system allows it and copied otherwise.
    pub fn collect_artefacts(&mut self, stage: &str, stage_dir: &Path) -> Result<()> {
        for sub in ["arrays", "tables", "figures"] {
            let from = stage_dir.join(sub);
            let Ok(entries) = std::fs::read_dir(&from) else {
                continue;
            };
            let to = self.dir.join(sub);
            std::fs::create_dir_all(&to).map_err(|e| Error::io("creating folder", &to, e))?;
            for entry in entries.flatten() {
                let dest = to.join(entry.file_name());
                if std::fs::hard_link(entry.path(), &dest).is_err() {
                    copy_atomic(&entry.path(), &dest)?;
                }
                self.origins.insert(
                    format!("{sub}/{}", entry.file_name().to_string_lossy()),
                    stage.to_string(),
                );
            }
        }
        Ok(())
    }

    /// Lists every artefact file with its size and hash, sorted by path.
    pub fn artefact_records(&self) -> Result<Vec<ArtefactRecord>> {
        let mut out = Vec::new();
        for sub in ["arrays", "figures", "tables"] {
            let dir = self.dir.join(sub);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
                let name = format!("{sub}/{}", entry.file_name().to_string_lossy());
                out.push(ArtefactRecord {
                    stage: self.origins.get(&name).cloned(),
                    path: name,
                    bytes,
                    blake3: hash_file(&path)?,
                });
            }
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
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    host.insert("hostname".into(), name);
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
