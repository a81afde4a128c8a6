//! Reference results: `results/reference/<experiment>/`, kept in git — the tables (parquet and
//! CSV), `metrics.json`, `claims.json` and the manifest of the complete run they were copied from.
//! A run is judged against them ([`judge`]): `symbreak check` needs no second run, and a fresh
//! clone knows what its own run should give. `symbreak reference update` refreshes them from a
//! complete run made from a clean checkout and says what changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CLAIMS_FILE, ClaimsFile, ClaimsRecord, METRICS_FILE, Outcome, Verdict, number};
use crate::error::{Error, Result};
use crate::pipeline::run_folder::Manifest;

/// The folder under `results/` that holds the reference results (not an experiment name).
pub const REFERENCE_DIR: &str = "reference";

/// A value this much (relative) away from the reference counts as a change unless the claim
/// says otherwise: a rerun of the same spec and code gives the same numbers to rounding.
pub const DEFAULT_REL_TOL: f64 = 1e-6;

/// `results/reference/<experiment>`.
pub fn reference_dir(results: &Path, experiment: &str) -> PathBuf {
    results.join(REFERENCE_DIR).join(experiment)
}

/// The reference's claims record of `experiment`, if there is one.
pub fn load(results: &Path, experiment: &str) -> Result<Option<ClaimsRecord>> {
    let path = reference_dir(results, experiment).join(CLAIMS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    crate::fsutil::read_json(&path).map(Some)
}

/// How a run's outcome of a claim compares with the reference's.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "status", content = "why")]
pub enum Agreement {
    /// Same verdict, value within the claim's reference tolerance.
    AsReference,
    /// The verdict or the value moved.
    Differs(String),
    /// The reference has no such claim, or there is no reference.
    NoReference,
}

/// One claim of a run, beside the reference.
#[derive(Clone, Debug, Serialize)]
pub struct Judged {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub reference_value: Option<f64>,
    pub reference_verdict: Option<Verdict>,
    pub agreement: Agreement,
}

impl Judged {
    /// The one-word conclusion: reproduced, not reproduced, or differs from reference.
    pub fn conclusion(&self) -> &'static str {
        match (&self.agreement, self.outcome.verdict) {
            (Agreement::Differs(_), _) => "differs from reference",
            (_, v) => v.text(),
        }
    }

    /// Whether this claim makes `symbreak check` fail: it moved from the reference, cannot be
    /// evaluated, or (with no reference to say it is known) is not reproduced.
    pub fn fails(&self) -> bool {
        matches!(
            (&self.agreement, self.outcome.verdict),
            (_, Verdict::Invalid)
                | (Agreement::Differs(_), _)
                | (Agreement::NoReference, Verdict::NotReproduced)
        )
    }
}

/// Compares each claim of `run` with the same claim of `reference`; `file` gives the tolerances.
pub fn judge(
    file: &ClaimsFile,
    run: &ClaimsRecord,
    reference: Option<&ClaimsRecord>,
) -> Vec<Judged> {
    run.claims
        .iter()
        .map(|outcome| {
            let theirs = reference.and_then(|r| r.claims.iter().find(|c| c.id == outcome.id));
            let tolerance = file
                .claim
                .iter()
                .find(|c| c.id == outcome.id)
                .and_then(|c| c.reference_rel_tol)
                .unwrap_or(DEFAULT_REL_TOL);
            let agreement = match theirs {
                None => Agreement::NoReference,
                Some(r) if r.verdict != outcome.verdict => {
                    Agreement::Differs(format!("the reference says {}", r.verdict.text()))
                }
                Some(r) => match (r.value, outcome.value) {
                    (Some(a), Some(b)) if values_agree(a, b, tolerance) => Agreement::AsReference,
                    (None, None) => Agreement::AsReference,
                    (Some(a), Some(b)) => Agreement::Differs(format!(
                        "value {} against the reference's {} (tolerance {} relative)",
                        number(b),
                        number(a),
                        number(tolerance)
                    )),
                    (a, _) => Agreement::Differs(format!(
                        "value {} against the reference's {}",
                        outcome.value.map_or_else(|| "none".into(), number),
                        a.map_or_else(|| "none".into(), number)
                    )),
                },
            };
            Judged {
                outcome: outcome.clone(),
                reference_value: theirs.and_then(|r| r.value),
                reference_verdict: theirs.map(|r| r.verdict),
                agreement,
            }
        })
        .collect()
}

fn values_agree(a: f64, b: f64, rel_tol: f64) -> bool {
    a == b || (a - b).abs() <= rel_tol * a.abs().max(b.abs()) || (a - b).abs() <= 1e-300
}

/// A table's CSV is kept beside its parquet up to this size: the CSV is for reading and for
/// `git diff`; the long flows (a megabyte of CSV per table) are kept as parquet alone, which
/// is what `check` and `diff` read.
pub const MAX_KEPT_CSV_BYTES: u64 = 256 * 1024;

/// Files of a run folder the reference keeps: the tables (parquet, and CSV up to
/// [`MAX_KEPT_CSV_BYTES`]), the claims and metrics, and the manifest.
fn kept_files(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for name in [CLAIMS_FILE, METRICS_FILE, "manifest.json"] {
        if run_dir.join(name).is_file() {
            files.push(PathBuf::from(name));
        }
    }
    let tables = run_dir.join("tables");
    let mut names: Vec<String> = std::fs::read_dir(&tables)
        .map_err(|e| Error::io("listing", &tables, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| {
            n.ends_with(".parquet")
                || (n.ends_with(".csv")
                    && std::fs::metadata(tables.join(n))
                        .is_ok_and(|m| m.len() <= MAX_KEPT_CSV_BYTES))
        })
        .collect();
    names.sort();
    files.extend(names.into_iter().map(|n| Path::new("tables").join(n)));
    Ok(files)
}

/// What a reference update changed.
#[derive(Debug, Default, Serialize)]
pub struct UpdateReport {
    pub experiment: String,
    pub run_id: String,
    pub previous_run_id: Option<String>,
    /// Tables (by file) that are new, changed or gone.
    pub tables_added: Vec<String>,
    pub tables_changed: Vec<String>,
    pub tables_removed: Vec<String>,
    /// Claim id → (old value, new value) where the value or the verdict moved.
    pub claims_changed: BTreeMap<String, String>,
    pub bytes: u64,
}

/// Replaces `results/reference/<experiment>/` with the kept files of the complete run in
/// `run_dir` (copied to a temporary folder beside it, then swapped in by renames). `claims`,
/// the claims evaluated now on that run, replaces the run's own `claims.json` and
/// `metrics.json` (which hold the claims file as it was when the run ended).
pub fn update(
    results: &Path,
    run_dir: &Path,
    claims: Option<&ClaimsRecord>,
) -> Result<UpdateReport> {
    let manifest: Manifest = crate::fsutil::read_json(&run_dir.join("manifest.json"))?;
    if manifest.status != "complete" {
        return Err(Error::Other(format!(
            "{} did not complete (status {:?}); a reference is made from a complete run",
            run_dir.display(),
            manifest.status
        )));
    }
    let target = reference_dir(results, &manifest.experiment);
    let parent = target.parent().unwrap_or(results);
    std::fs::create_dir_all(parent).map_err(|e| Error::io("creating folder", parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".partial-{}-", manifest.experiment))
        .tempdir_in(parent)
        .map_err(|e| Error::io("creating temporary folder in", parent, e))?;
    let mut report = UpdateReport {
        experiment: manifest.experiment.clone(),
        run_id: manifest.run_id.clone(),
        ..UpdateReport::default()
    };
    let mut files = kept_files(run_dir)?;
    if let Some(record) = claims {
        files.retain(|f| f != Path::new(CLAIMS_FILE) && f != Path::new(METRICS_FILE));
        crate::fsutil::write_json(&staging.path().join(CLAIMS_FILE), record)?;
        crate::fsutil::write_json(&staging.path().join(METRICS_FILE), &record.metrics())?;
    }
    for file in &files {
        let from = run_dir.join(file);
        let to = staging.path().join(file);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating folder", dir, e))?;
        }
        // Run folders hold links into the cache; the reference holds the bytes.
        let bytes = std::fs::read(&from).map_err(|e| Error::io("reading", &from, e))?;
        report.bytes += bytes.len() as u64;
        std::fs::write(&to, &bytes).map_err(|e| Error::io("writing", &to, e))?;
        if file.starts_with("tables") {
            let name = file.display().to_string();
            match std::fs::read(target.join(file)) {
                Ok(old) if old == bytes => {}
                Ok(_) => report.tables_changed.push(name),
                Err(_) => report.tables_added.push(name),
            }
        }
    }
    let old_files = if target.is_dir() {
        kept_files(&target)?
    } else {
        Vec::new()
    };
    for file in old_files {
        if file.starts_with("tables") && !files.contains(&file) {
            report.tables_removed.push(file.display().to_string());
        }
    }
    report.previous_run_id = crate::fsutil::read_json::<Manifest>(&target.join("manifest.json"))
        .ok()
        .map(|m| m.run_id);
    if let Ok(old) = crate::fsutil::read_json::<ClaimsRecord>(&target.join(CLAIMS_FILE)) {
        let new: Option<ClaimsRecord> =
            crate::fsutil::read_json(&staging.path().join(CLAIMS_FILE)).ok();
        for claim in new.iter().flat_map(|n| n.claims.iter()) {
            let before = old.claims.iter().find(|c| c.id == claim.id);
            let show = |c: &Outcome| {
                format!(
                    "{} ({})",
                    c.value.map_or_else(|| "—".into(), number),
                    c.verdict.text()
                )
            };
            match before {
                None => {
                    report
                        .claims_changed
                        .insert(claim.id.clone(), format!("new: {}", show(claim)));
                }
                Some(b) if b.value != claim.value || b.verdict != claim.verdict => {
                    report
                        .claims_changed
                        .insert(claim.id.clone(), format!("{} → {}", show(b), show(claim)));
                }
                Some(_) => {}
            }
        }
    }
    let staged = staging.keep();
    let retired = parent.join(format!(".retired-{}", manifest.experiment));
    if retired.exists() {
        std::fs::remove_dir_all(&retired).map_err(|e| Error::io("removing", &retired, e))?;
    }
    if target.exists() {
        std::fs::rename(&target, &retired).map_err(|e| Error::io("moving aside", &target, e))?;
    }
    std::fs::rename(&staged, &target).map_err(|e| Error::io("renaming into place", &target, e))?;
    if retired.exists() {
        std::fs::remove_dir_all(&retired).map_err(|e| Error::io("removing", &retired, e))?;
    }
    Ok(report)
}
