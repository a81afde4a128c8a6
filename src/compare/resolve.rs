//! What the arguments of `symbreak diff` name: a run folder, an experiment folder (its latest
//! run), a run id, `reference` (the reference results in `results/reference/`), or a git
//! revision — the newest complete run of each experiment whose manifest records that commit,
//! or, when there is none here, the reference results committed at that revision, read from
//! git itself. Each side resolves to one run per experiment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::claims::reference::REFERENCE_DIR;
use crate::error::{Error, Result};
use crate::fsutil::read_json;
use crate::pipeline::run_folder::{Manifest, git_output};

/// One complete run.
#[derive(Clone, Debug)]
pub struct RunRef {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Reference results keep the tables of a run, not its arrays or figures: a comparison
    /// with them is of tables only.
    pub tables_only: bool,
}

impl RunRef {
    fn load(dir: &Path) -> Result<Self> {
        let manifest: Manifest = read_json(&dir.join("manifest.json"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            tables_only: false,
        })
    }
}

/// One side of a comparison: a label for file names and headings, and its runs by experiment.
#[derive(Clone, Debug)]
pub struct Side {
    pub label: String,
    pub runs: BTreeMap<String, RunRef>,
    /// Things the user should know about how the side was resolved.
    pub notes: Vec<String>,
    /// A folder the side's runs were extracted to (from git), removed when the side is dropped.
    pub _scratch: Option<std::sync::Arc<tempfile::TempDir>>,
}

/// Every complete run under `results` (`<results>/<experiment>/<run-id>/manifest.json`).
pub fn complete_runs(results: &Path) -> Vec<RunRef> {
    let mut runs = Vec::new();
    let Ok(experiments) = std::fs::read_dir(results) else {
        return runs;
    };
    for experiment in experiments.flatten() {
        if experiment.file_name() == crate::claims::reference::REFERENCE_DIR {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(experiment.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // `latest` is a link to one of the others.
            if entry.file_name() == "latest" || !path.join("manifest.json").is_file() {
                continue;
            }
            if let Ok(run) = RunRef::load(&path)
                && run.manifest.status == "complete"
            {
                runs.push(run);
            }
        }
    }
    runs.sort_by(|a, b| {
        (
            &a.manifest.experiment,
            &a.manifest.started,
            &a.manifest.run_id,
        )
            .cmp(&(
                &b.manifest.experiment,
                &b.manifest.started,
                &b.manifest.run_id,
            ))
    });
    runs
}

/// The newest of `runs` per experiment (they are sorted oldest first).
fn newest_per_experiment(runs: Vec<RunRef>) -> BTreeMap<String, RunRef> {
    let mut out = BTreeMap::new();
    for run in runs {
        out.insert(run.manifest.experiment.clone(), run);
    }
    out
}

fn keep_experiment(runs: &mut BTreeMap<String, RunRef>, experiment: Option<&str>) {
    if let Some(name) = experiment {
        runs.retain(|e, _| e == name);
    }
}

/// The newest complete run of every experiment (of `experiment` only, if given).
pub fn newest(results: &Path, experiment: Option<&str>) -> Result<Side> {
    let mut runs = newest_per_experiment(complete_runs(results));
    keep_experiment(&mut runs, experiment);
    if runs.is_empty() {
        return Err(Error::Other(format!(
            "no complete run{} in {}; make one with `symbreak run {}`",
            experiment.map(|e| format!(" of {e}")).unwrap_or_default(),
            results.display(),
            experiment.unwrap_or("<experiment>")
        )));
    }
    Ok(Side {
        label: "newest".into(),
        runs,
        notes: Vec::new(),
        _scratch: None,
    })
}

/// The previous and the latest complete run of `experiment` (`symbreak diff <exp>`).
pub fn previous_and_latest(results: &Path, experiment: &str) -> Result<(Side, Side)> {
    let runs: Vec<RunRef> = complete_runs(results)
        .into_iter()
        .filter(|r| r.manifest.experiment == experiment)
        .collect();
    let [.., previous, latest] = runs.as_slice() else {
        return Err(Error::Other(format!(
            "{experiment} has {} complete run{}: `symbreak diff {experiment}` compares the \
             latest with the one before",
            runs.len(),
            if runs.len() == 1 { "" } else { "s" }
        )));
    };
    let side = |run: &RunRef| Side {
        label: run.manifest.run_id.clone(),
        runs: BTreeMap::from([(experiment.to_string(), run.clone())]),
        notes: Vec::new(),
        _scratch: None,
    };
    Ok((side(previous), side(latest)))
}

/// Resolves one argument of `symbreak diff` (see the module documentation).
pub fn resolve(
    root: &Path,
    results: &Path,
    argument: &str,
    experiment: Option<&str>,
) -> Result<Side> {
    let as_path = PathBuf::from(argument);
    if as_path.join("manifest.json").is_file() {
        return single(RunRef::load(&as_path)?, experiment, argument);
    }
    if as_path.join("latest").join("manifest.json").is_file() {
        return single(RunRef::load(&as_path.join("latest"))?, experiment, argument);
    }
    if argument == REFERENCE_DIR {
        return references(&results.join(REFERENCE_DIR), experiment, "reference", None);
    }
    let by_id: Vec<RunRef> = complete_runs(results)
        .into_iter()
        .filter(|r| r.manifest.run_id == argument)
        .collect();
    if !by_id.is_empty() {
        let mut runs = newest_per_experiment(by_id);
        keep_experiment(&mut runs, experiment);
        if runs.is_empty() {
            return Err(Error::Other(format!(
                "run {argument} is not a run of {}",
                experiment.unwrap_or_default()
            )));
        }
        return Ok(Side {
            label: argument.to_string(),
            runs,
            notes: Vec::new(),
            _scratch: None,
        });
    }
    let Some(commit) = git_commit(root, argument) else {
        return Err(Error::Other(format!(
            "{argument:?} is neither a run folder, a run id under {}, nor a git revision",
            results.display()
        )));
    };
    let short: String = commit.chars().take(7).collect();
    let at_commit: Vec<RunRef> = complete_runs(results)
        .into_iter()
        .filter(|r| r.manifest.git.commit == commit)
        .filter(|r| experiment.is_none_or(|e| r.manifest.experiment == e))
        .collect();
    let (clean, dirty): (Vec<RunRef>, Vec<RunRef>) =
        at_commit.into_iter().partition(|r| !r.manifest.git.dirty);
    let mut notes = Vec::new();
    let runs = if !clean.is_empty() {
        newest_per_experiment(clean)
    } else if !dirty.is_empty() {
        notes.push(format!(
            "only runs with uncommitted changes record commit {short}; comparing those"
        ));
        newest_per_experiment(dirty)
    } else if let Some(side) = committed_references(root, &commit, experiment)? {
        return Ok(side);
    } else {
        let what = experiment.map(|e| format!(" of {e}")).unwrap_or_default();
        let make = match experiment {
            Some(e) => format!("symbreak run {e}"),
            None => "make reproduce".into(),
        };
        return Err(Error::Other(format!(
            "no complete run{what} records commit {short} (revision {argument}); create one \
             with:\n  git checkout {short} && {make} && git checkout -"
        )));
    };
    Ok(Side {
        label: short,
        runs,
        notes,
        _scratch: None,
    })
}

/// The reference results under `dir` (`<dir>/<experiment>/manifest.json`) as one side.
fn references(
    dir: &Path,
    experiment: Option<&str>,
    label: &str,
    scratch: Option<std::sync::Arc<tempfile::TempDir>>,
) -> Result<Side> {
    let mut runs = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.join("manifest.json").is_file() {
            let run = RunRef {
                tables_only: true,
                ..RunRef::load(&path)?
            };
            runs.insert(run.manifest.experiment.clone(), run);
        }
    }
    keep_experiment(&mut runs, experiment);
    if runs.is_empty() {
        return Err(Error::Other(format!(
            "no reference results{} in {}; make them with `symbreak reference update <exp>`",
            experiment.map(|e| format!(" of {e}")).unwrap_or_default(),
            dir.display()
        )));
    }
    Ok(Side {
        label: label.to_string(),
        runs,
        notes: vec![format!(
            "{label}: the reference results in {}",
            dir.display()
        )],
        _scratch: scratch,
    })
}

/// The reference results as committed at `commit`, extracted from git into a scratch folder;
/// `None` when that commit has none.
fn committed_references(
    root: &Path,
    commit: &str,
    experiment: Option<&str>,
) -> Result<Option<Side>> {
    let prefix = format!("results/{REFERENCE_DIR}");
    let Some(listing) = git_output(
        root,
        &["ls-tree", "-r", "--name-only", commit, "--", &prefix],
    ) else {
        return Ok(None);
    };
    let files: Vec<&str> = listing.lines().filter(|l| !l.is_empty()).collect();
    if files.is_empty() {
        return Ok(None);
    }
    let scratch = tempfile::Builder::new()
        .prefix("symbreak-reference-")
        .tempdir()
        .map_err(|e| Error::io("creating a temporary folder", std::env::temp_dir(), e))?;
    for file in files {
        let output = std::process::Command::new("git")
            .args(["show", &format!("{commit}:{file}")])
            .current_dir(root)
            .env("GIT_OPTIONAL_LOCKS", "0")
            .output()
            .map_err(|e| Error::io("running git show in", root, e))?;
        if !output.status.success() {
            return Err(Error::Other(format!(
                "git show {commit}:{file}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let relative = file
            .strip_prefix(&prefix)
            .unwrap_or(file)
            .trim_start_matches('/');
        crate::fsutil::write_atomic(&scratch.path().join(relative), &output.stdout)?;
    }
    let short: String = commit.chars().take(7).collect();
    let dir = scratch.path().to_path_buf();
    let mut side = references(
        &dir,
        experiment,
        &format!("{short}-reference"),
        Some(std::sync::Arc::new(scratch)),
    )?;
    side.notes = vec![format!(
        "no run here records commit {short}; comparing the reference results committed there"
    )];
    Ok(Some(side))
}

fn single(run: RunRef, experiment: Option<&str>, argument: &str) -> Result<Side> {
    if run.manifest.status != "complete" {
        return Err(Error::Other(format!(
            "{argument} is a run that did not complete (status {:?})",
            run.manifest.status
        )));
    }
    if let Some(e) = experiment
        && run.manifest.experiment != e
    {
        return Err(Error::Other(format!(
            "{argument} is a run of {}, not of {e}",
            run.manifest.experiment
        )));
    }
    Ok(Side {
        label: run.manifest.run_id.clone(),
        runs: BTreeMap::from([(run.manifest.experiment.clone(), run)]),
        notes: Vec::new(),
        _scratch: None,
    })
}

/// The full commit id a revision names, if git knows it.
fn git_commit(root: &Path, revision: &str) -> Option<String> {
    if revision.starts_with('-') {
        return None;
    }
    git_output(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{revision}^{{commit}}"),
        ],
    )
    .filter(|s| !s.is_empty())
}
