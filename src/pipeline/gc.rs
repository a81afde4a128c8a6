//! Cache upkeep: checking every entry against its published record (`symbreak verify --cache`)
//! and removing what nothing refers to (`symbreak gc`): entries that no experiment's state and no
//! complete run folder names (nor an unfinished Slurm run plans), scratch folders of dead
//! processes, run folders of interrupted runs, and the folders of Slurm runs that are over.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::cache::{EntryCheck, HashMemo, list_files};
use super::execute::Workspace;
use super::run_folder::{Manifest, RunStatus, runs_of};
use crate::error::{Error, Result};

/// One entry that failed `verify --cache`.
#[derive(Clone, Debug, Serialize)]
pub struct BadEntry {
    pub entry: PathBuf,
    pub reason: String,
}

/// What `verify --cache` read.
#[derive(Clone, Debug, Serialize)]
pub struct CacheReport {
    pub entries: usize,
    pub bytes: u64,
    pub bad: Vec<BadEntry>,
}

/// Re-reads every file of every entry (no memo) and checks it against the entry's record.
pub fn verify_cache(workspace: &Workspace) -> Result<CacheReport> {
    let cache = workspace.cache();
    cache.check_layout()?;
    let mut memo = HashMemo::fresh();
    let mut report = CacheReport {
        entries: 0,
        bytes: 0,
        bad: Vec::new(),
    };
    for (kind, key, dir) in cache.entries() {
        report.entries += 1;
        report.bytes += folder_bytes(&dir);
        let reason = match cache.check_entry(&kind, &key, &mut memo) {
            EntryCheck::Valid => continue,
            EntryCheck::Corrupt(reason) => reason,
            EntryCheck::Missing => "vanished while being checked".into(),
        };
        report.bad.push(BadEntry { entry: dir, reason });
    }
    Ok(report)
}

/// What `gc` removed (or, with `dry_run`, would remove).
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub entries_kept: usize,
    pub entries_removed: Vec<PathBuf>,
    pub interrupted_runs_removed: Vec<PathBuf>,
    /// Folders of Slurm runs that are over, and staged binaries no unfinished run uses.
    pub slurm_files_removed: Vec<PathBuf>,
    pub bytes_freed: u64,
}

/// Removes cache entries no state file and no complete run refers to, and the folders of
/// interrupted runs (manifest `running`, process gone). Refuses while any run holds a lock.
pub fn collect_garbage(workspace: &Workspace, dry_run: bool) -> Result<GcReport> {
    let cache = workspace.cache();
    let _locks = cache.lock_all_idle()?;
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for state in cache.all_states().values() {
        wanted.extend(state.values().map(|record| record.key.clone()));
    }
    let slurm = super::slurm::driver::slurm_folders(cache.root());
    wanted.extend(slurm.keys_in_flight);
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    for path in slurm.finished_runs.into_iter().chain(slurm.idle_binaries) {
        report.bytes_freed += match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => meta.len(),
            _ => folder_bytes(&path),
        };
        report.slurm_files_removed.push(path);
    }
    for (run_dir, status, manifest) in run_folders(&workspace.results()) {
        match status {
            RunStatus::Complete => {
                wanted.extend(manifest.stages.iter().map(|s| s.key.clone()));
            }
            RunStatus::Interrupted => {
                report.bytes_freed += folder_bytes(&run_dir);
                report.interrupted_runs_removed.push(run_dir);
            }
            RunStatus::Running | RunStatus::Failed => {}
        }
    }
    for (_, key, dir) in cache.entries() {
        if wanted.contains(&key) {
            report.entries_kept += 1;
        } else {
            report.bytes_freed += folder_bytes(&dir);
            report.entries_removed.push(dir);
        }
    }
    if !dry_run {
        cache.sweep_stale_scratch()?;
        for dir in report
            .entries_removed
            .iter()
            .chain(&report.interrupted_runs_removed)
        {
            remove_tree(dir)?;
        }
        for path in &report.slurm_files_removed {
            if path.is_dir() {
                remove_tree(path)?;
            } else {
                std::fs::remove_file(path).map_err(|e| Error::io("removing", path, e))?;
            }
        }
    }
    Ok(report)
}

/// Every run folder under `results/<experiment>/` with a readable manifest, and its status.
fn run_folders(results: &Path) -> Vec<(PathBuf, RunStatus, Manifest)> {
    let mut out = Vec::new();
    for experiment in std::fs::read_dir(results).into_iter().flatten().flatten() {
        if !experiment.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = experiment.file_name().to_string_lossy().to_string();
        for (run, status, manifest) in runs_of(results, &name) {
            out.push((experiment.path().join(run), status, manifest));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn folder_bytes(dir: &Path) -> u64 {
    list_files(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| std::fs::symlink_metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Removes a folder that is not a symbolic link (nothing below it is followed either).
fn remove_tree(dir: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| Error::io("reading", dir, e))?;
    if meta.file_type().is_symlink() {
        return Err(Error::Other(format!(
            "{} is a symbolic link; not following it",
            dir.display()
        )));
    }
    std::fs::remove_dir_all(dir).map_err(|e| Error::io("removing", dir, e))
}
