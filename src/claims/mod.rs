//! Claims: what an experiment says it reproduces, as data, and the verdict of a run on each.
//!
//! A spec `experiments/<name>.toml` may have a claims file beside it,
//! `experiments/claims/<name>.toml`: the papers it cites and one `[[claim]]` per statement —
//! which paper item it is about, the statement in one sentence, the measured quantity (a table of
//! the run, a row selection, a column with an optional difference, ratio or error scale, and a
//! reduction over the rows), the paper's value where it gives one, and the test (a bound, an
//! interval, or a value within a tolerance). Evaluating a claim on a run's tables gives the
//! measured value and a verdict, *reproduced* or *not reproduced*; a claim may honestly be the
//! latter. [`reference`] compares the outcome with the one recorded in the reference results
//! kept in git, which is how a run is judged: a verdict or a value that moved is news, a claim
//! that was not reproduced before and still is not, is not.

pub mod reference;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use polars::prelude::{Column, DataType};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::spec::SpecDocument;

/// The claims file of a run, written beside its manifest.
pub const CLAIMS_FILE: &str = "claims.json";
/// The headline numbers of a run (each claim's measured value), beside its manifest.
pub const METRICS_FILE: &str = "metrics.json";

/// `experiments/claims/<stem>.toml` for the spec `experiments/<stem>.toml`.
pub fn claims_file_for(spec_path: &Path) -> PathBuf {
    let stem = spec_path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    spec_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("claims")
        .join(format!("{stem}.toml"))
}

/// A paper the claims cite.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Paper {
    /// Short citation, e.g. "Park, Aarts & Lucini 2024".
    pub cite: String,
    pub title: String,
    /// arXiv identifier, e.g. "2309.15002".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arxiv: Option<String>,
    /// Where the paper can be read when it has no arXiv identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Paper {
    /// The paper's address (arXiv abstract page or its URL).
    pub fn link(&self) -> Option<String> {
        self.arxiv
            .as_ref()
            .map(|id| format!("https://arxiv.org/abs/{id}"))
            .or_else(|| self.url.clone())
    }
}

/// How the selected rows' quantities become one number.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Reduce {
    /// Exactly one row must be selected; its value.
    Only,
    Max,
    Min,
    /// The largest absolute value.
    MaxAbs,
    /// The value farthest from `near`: with a tolerance, "every selected row is near".
    Farthest,
    Mean,
    Median,
    /// The number of selected rows (the column is not read).
    Count,
}

impl Reduce {
    fn name(self) -> &'static str {
        match self {
            Reduce::Only => "",
            Reduce::Max => "max ",
            Reduce::Min => "min ",
            Reduce::MaxAbs => "max |·| of ",
            Reduce::Farthest => "farthest from the target of ",
            Reduce::Mean => "mean ",
            Reduce::Median => "median ",
            Reduce::Count => "number of rows",
        }
    }
}

/// One condition of a row selection, as written in TOML: a value (equality), a list (any of)
/// or a table of bounds (`above`, `below`, `at_least`, `at_most`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Condition {
    Text(String),
    Number(f64),
    AnyOf(Vec<Scalar>),
    Range(Range),
}

/// A string or a number, for `AnyOf`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Number(f64),
}

/// Bounds on a numeric column.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<f64>,
}

impl Range {
    fn holds(&self, x: f64) -> bool {
        self.above.is_none_or(|b| x > b)
            && self.below.is_none_or(|b| x < b)
            && self.at_least.is_none_or(|b| x >= b)
            && self.at_most.is_none_or(|b| x <= b)
    }

    fn text(&self) -> String {
        let mut parts = Vec::new();
        for (bound, op) in [
            (self.above, ">"),
            (self.at_least, "≥"),
            (self.below, "<"),
            (self.at_most, "≤"),
        ] {
            if let Some(b) = bound {
                parts.push(format!("{op} {}", number(b)));
            }
        }
        parts.join(" and ")
    }
}

/// One `[[claim]]` of a claims file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Short name, unique in the file (lower-case, digits, `-`).
    pub id: String,
    /// Key of the cited paper in `[papers]`.
    pub paper: String,
    /// The paper's figure, table or section, e.g. "Fig. 3" or "§5.1".
    pub item: String,
    /// What the paper says, in one sentence.
    pub statement: String,
    /// The paper's own number, where it gives one, as printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_value: Option<String>,
    /// The result table (a file `tables/<table>.parquet` of the run).
    pub table: String,
    /// Row selection: column → value, list of values, or bounds.
    #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
    pub selection: BTreeMap<String, Condition>,
    /// The measured column (not read by `reduce = "count"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// A column subtracted from `column` row by row (e.g. the prediction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minus: Option<String>,
    /// A column `column` (after `minus`) is divided by (e.g. the prediction, for a ratio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over: Option<String>,
    /// A standard-error column the quantity is divided by, so that it reads as a pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_error: Option<String>,
    pub reduce: Reduce,
    /// Rows whose quantity is missing (NaN) are dropped instead of failing the claim.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_missing: bool,
    /// The test: a bound, an interval, or `near` with `abs_tol` and/or `rel_tol`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub near: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs_tol: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_tol: Option<f64>,
    /// Unit of the measured value, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// How far this run's value may move from the reference's before it counts as a change
    /// (relative; default [`reference::DEFAULT_REL_TOL`]): wider for wall-clock quantities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_rel_tol: Option<f64>,
}

/// One `[[figure]]` of a claims file: which figures of a run reproduce which item of a paper.
/// The report shows figures in the order of these entries, captioned; the first is the
/// experiment's headline figure on `results/index.html`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FigureNote {
    /// The figure's file name without extension, or a prefix of names ending in `*`.
    pub name: String,
    /// Key of the cited paper in `[papers]`; none for a figure of this project's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper: Option<String>,
    /// The paper's figure or section it reproduces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// What the figure shows, in one sentence.
    pub caption: String,
}

impl FigureNote {
    /// Whether the figure file stem `stem` is one this entry describes.
    pub fn matches(&self, stem: &str) -> bool {
        match self.name.strip_suffix('*') {
            Some(prefix) => stem.starts_with(prefix),
            None => stem == self.name,
        }
    }
}

/// A parsed, validated claims file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClaimsFile {
    #[serde(default)]
    pub papers: BTreeMap<String, Paper>,
    #[serde(default)]
    pub claim: Vec<Claim>,
    #[serde(default)]
    pub figure: Vec<FigureNote>,
}

impl ClaimsFile {
    /// Reads and validates the claims file at `path`; errors name the file, line and key.
    pub fn load(path: &Path) -> Result<Self> {
        let doc = SpecDocument::load(path)?;
        let file: ClaimsFile = doc.deserialize()?;
        file.validate(&doc)?;
        Ok(file)
    }

    fn validate(&self, doc: &SpecDocument) -> Result<()> {
        for (i, figure) in self.figure.iter().enumerate() {
            if let Some(paper) = &figure.paper
                && !self.papers.contains_key(paper)
            {
                return Err(doc.error(
                    &format!("figure[{i}].paper"),
                    format!("{paper:?} is not a key of [papers]"),
                ));
            }
            if figure.caption.trim().is_empty() || figure.name.trim_end_matches('*').is_empty() {
                return Err(doc.error(
                    &format!("figure[{i}].caption"),
                    "a figure entry needs a name (or prefix*) and a caption",
                ));
            }
        }
        let mut seen = BTreeMap::new();
        for (i, claim) in self.claim.iter().enumerate() {
            let key = |k: &str| format!("claim[{i}].{k}");
            let slug = !claim.id.is_empty()
                && claim
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !slug {
                return Err(doc.error(
                    &key("id"),
                    format!(
                        "must be lower-case letters, digits or '-', got {:?}",
                        claim.id
                    ),
                ));
            }
            if let Some(first) = seen.insert(claim.id.clone(), i) {
                return Err(doc.error(
                    &key("id"),
                    format!("{:?} is also the id of claim[{first}]", claim.id),
                ));
            }
            if !self.papers.contains_key(&claim.paper) {
                return Err(doc.error(
                    &key("paper"),
                    format!(
                        "{:?} is not a key of [papers] (known: {})",
                        claim.paper,
                        self.papers.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            for (name, text) in [("statement", &claim.statement), ("item", &claim.item)] {
                if text.trim().is_empty() {
                    return Err(doc.error(&key(name), "must not be empty"));
                }
            }
            match (claim.reduce, &claim.column) {
                (Reduce::Count, Some(_)) => {
                    return Err(doc.error(
                        &key("column"),
                        "reduce = \"count\" counts the selected rows and reads no column",
                    ));
                }
                (Reduce::Count, None)
                    if claim.minus.is_some()
                        || claim.over.is_some()
                        || claim.per_error.is_some() =>
                {
                    return Err(doc.error(
                        &key("reduce"),
                        "reduce = \"count\" takes no minus, over or per_error",
                    ));
                }
                (Reduce::Count, None) => {}
                (_, None) => {
                    return Err(doc.error(&key("column"), "the measured column is required"));
                }
                _ => {}
            }
            for (name, value) in [
                ("at_least", claim.at_least),
                ("at_most", claim.at_most),
                ("near", claim.near),
                ("abs_tol", claim.abs_tol),
                ("rel_tol", claim.rel_tol),
                ("reference_rel_tol", claim.reference_rel_tol),
            ] {
                if value.is_some_and(|v| !v.is_finite()) {
                    return Err(doc.error(&key(name), "must be a finite number"));
                }
            }
            for (name, value) in [
                ("abs_tol", claim.abs_tol),
                ("rel_tol", claim.rel_tol),
                ("reference_rel_tol", claim.reference_rel_tol),
            ] {
                if value.is_some_and(|v| v < 0.0) {
                    return Err(doc.error(&key(name), "must be ≥ 0"));
                }
            }
            if claim.reduce == Reduce::Farthest && claim.near.is_none() {
                return Err(doc.error(
                    &key("reduce"),
                    "reduce = \"farthest\" picks the row farthest from `near`; give near",
                ));
            }
            let bounded = claim.at_least.is_some() || claim.at_most.is_some();
            let tolerance = claim.abs_tol.is_some() || claim.rel_tol.is_some();
            match (bounded, claim.near.is_some(), tolerance) {
                (true, false, false) => {
                    if let (Some(lo), Some(hi)) = (claim.at_least, claim.at_most)
                        && lo > hi
                    {
                        return Err(doc.error(
                            &key("at_least"),
                            format!("at_least = {lo} is above at_most = {hi}"),
                        ));
                    }
                }
                (false, true, true) => {}
                (false, true, false) => {
                    return Err(doc.error(&key("near"), "needs abs_tol and/or rel_tol"));
                }
                (false, false, true) => {
                    return Err(doc.error(
                        &key("abs_tol"),
                        "a tolerance needs `near`, the value it is a tolerance of",
                    ));
                }
                (false, false, false) => {
                    return Err(doc.error(
                        &key("reduce"),
                        "the claim has no test: give at_least and/or at_most, or near with \
                         abs_tol/rel_tol",
                    ));
                }
                (true, _, _) => {
                    return Err(doc.error(
                        &key("near"),
                        "give either bounds (at_least/at_most) or near with a tolerance, not both",
                    ));
                }
            }
            for (column, condition) in &claim.selection {
                if let Condition::Range(range) = condition
                    && *range == Range::default()
                {
                    return Err(doc.error(
                        &key(&format!("where.{column}")),
                        "an empty table of bounds selects nothing; give above, below, at_least \
                         or at_most",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether a claim's test passed.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Reproduced,
    NotReproduced,
    /// The claim could not be evaluated on the tables (a missing table, column or row).
    Invalid,
}

impl Verdict {
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::NotReproduced => "not reproduced",
            Verdict::Invalid => "cannot be evaluated",
        }
    }
}

/// The outcome of one claim on one run.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Outcome {
    pub id: String,
    /// The cited paper's short citation.
    pub paper: String,
    pub item: String,
    pub statement: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_value: Option<String>,
    /// What was measured, e.g. `max |(lambda − kappa)| over 10 rows of fixed_points`.
    pub measure: String,
    /// The test, e.g. `≤ 1e-9`.
    pub test: String,
    /// The measured value (none when the claim cannot be evaluated).
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub verdict: Verdict,
    /// Why the claim cannot be evaluated, or rows it dropped or found missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `claims.json` of a run.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ClaimsRecord {
    pub experiment: String,
    pub run_id: String,
    /// The claims file evaluated and its blake3.
    pub claims_file: String,
    pub claims_blake3: String,
    pub papers: BTreeMap<String, Paper>,
    pub claims: Vec<Outcome>,
}

impl ClaimsRecord {
    /// The headline numbers, claim id → measured value, for `metrics.json`.
    pub fn metrics(&self) -> BTreeMap<String, Option<f64>> {
        self.claims
            .iter()
            .map(|c| (c.id.clone(), c.value))
            .collect()
    }
}

/// Evaluates every claim of `file` (read from `claims_path`) on the tables in `tables_dir`.
pub fn evaluate_all(
    file: &ClaimsFile,
    claims_path: &Path,
    tables_dir: &Path,
    experiment: &str,
    run_id: &str,
) -> Result<ClaimsRecord> {
    let mut cache: BTreeMap<String, std::result::Result<polars::prelude::DataFrame, String>> =
        BTreeMap::new();
    let claims = file
        .claim
        .iter()
        .map(|claim| {
            let frame = cache.entry(claim.table.clone()).or_insert_with(|| {
                let path = tables_dir.join(format!("{}.parquet", claim.table));
                if !path.is_file() {
                    return Err(format!("the run has no table {:?}", claim.table));
                }
                crate::emit::table::read_parquet(&path)
                    .map(|t| t.frame)
                    .map_err(|e| e.to_string())
            });
            let cite = file
                .papers
                .get(&claim.paper)
                .map_or_else(|| claim.paper.clone(), |p| p.cite.clone());
            evaluate(claim, cite, frame.as_ref())
        })
        .collect();
    Ok(ClaimsRecord {
        experiment: experiment.to_string(),
        run_id: run_id.to_string(),
        claims_file: project_relative(claims_path),
        claims_blake3: crate::fsutil::hash_file(claims_path)?,
        papers: file.papers.clone(),
        claims,
    })
}

/// `experiments/claims/<name>.toml` for a claims file in a project's `experiments/claims/`
/// (records kept in git name no machine's folders), else the path as given.
fn project_relative(path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .rev()
        .take(3)
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    match parts.as_slice() {
        [name, claims, experiments] if claims == "claims" && experiments == "experiments" => {
            format!("experiments/claims/{name}")
        }
        _ => path.display().to_string(),
    }
}

/// A number as claims print it: short, exact enough to read, stable.
pub fn number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if (1e-3..1e5).contains(&a) {
        // Six significant digits: enough to tell 0.999996 from 1.
        let decimals = (5 - a.log10().floor() as i32).clamp(0, 8) as usize;
        let text = format!("{x:.decimals$}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        text.to_string()
    } else {
        let text = format!("{x:.3e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if mantissa.contains('.') => {
                let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
                format!("{mantissa}e{exponent}")
            }
            _ => text,
        }
    }
}

impl Claim {
    fn measure(&self) -> String {
        let mut quantity = self.column.clone().unwrap_or_default();
        if let Some(m) = &self.minus {
            quantity = format!("({quantity} − {m})");
        }
        if let Some(o) = &self.over {
            quantity = format!("{quantity} / {o}");
        }
        if let Some(e) = &self.per_error {
            quantity = format!("({quantity}) / {e}");
        }
        let selection = if self.selection.is_empty() {
            String::new()
        } else {
            let parts: Vec<String> = self
                .selection
                .iter()
                .map(|(column, condition)| match condition {
                    Condition::Text(t) => format!("{column} = {t}"),
                    Condition::Number(x) => format!("{column} = {}", number(*x)),
                    Condition::AnyOf(values) => format!(
                        "{column} ∈ {{{}}}",
                        values
                            .iter()
                            .map(|v| match v {
                                Scalar::Text(t) => t.clone(),
                                Scalar::Number(x) => number(*x),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Condition::Range(r) => format!("{column} {}", r.text()),
                })
                .collect();
            format!(" where {}", parts.join(", "))
        };
        format!(
            "{}{quantity} in {}{selection}",
            self.reduce.name(),
            self.table
        )
    }

    fn test(&self) -> String {
        match (self.near, self.at_least, self.at_most) {
            (Some(v), _, _) => {
                let mut tolerances = Vec::new();
                if let Some(a) = self.abs_tol {
                    tolerances.push(number(a));
                }
                if let Some(r) = self.rel_tol {
                    tolerances.push(format!("{} %", number(100.0 * r)));
                }
                format!("{} ± {}", number(v), tolerances.join(" or "))
            }
            (None, Some(lo), Some(hi)) => format!("in [{}, {}]", number(lo), number(hi)),
            (None, Some(lo), None) => format!("≥ {}", number(lo)),
            (None, None, Some(hi)) => format!("≤ {}", number(hi)),
            (None, None, None) => String::new(),
        }
    }

    fn passes(&self, value: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        if let Some(target) = self.near {
            let deviation = (value - target).abs();
            return self.abs_tol.is_some_and(|a| deviation <= a)
                || self
                    .rel_tol
                    .is_some_and(|r| deviation <= r * target.abs().max(value.abs()));
        }
        self.at_least.is_none_or(|lo| value >= lo) && self.at_most.is_none_or(|hi| value <= hi)
    }
}

/// Evaluates `claim` on `frame` (or the reason the table could not be read).
pub fn evaluate(
    claim: &Claim,
    paper_cite: String,
    frame: std::result::Result<&polars::prelude::DataFrame, &String>,
) -> Outcome {
    let mut outcome = Outcome {
        id: claim.id.clone(),
        paper: paper_cite,
        item: claim.item.clone(),
        statement: claim.statement.clone(),
        paper_value: claim.paper_value.clone(),
        measure: claim.measure(),
        test: claim.test(),
        value: None,
        unit: claim.unit.clone(),
        verdict: Verdict::Invalid,
        note: None,
    };
    let measured = frame
        .map_err(Clone::clone)
        .and_then(|frame| measure(claim, frame));
    match measured {
        Ok((value, mut note)) => {
            outcome.value = value.filter(|v| v.is_finite());
            // A value near its target reads as the target once rounded; say how near.
            if let (Some(v), Some(target)) = (outcome.value, claim.near) {
                let deviation = format!(
                    "|value − {}| = {}",
                    number(target),
                    number((v - target).abs())
                );
                note = Some(match note {
                    Some(n) => format!("{n}; {deviation}"),
                    None => deviation,
                });
            }
            outcome.verdict = if value.is_some_and(|v| claim.passes(v)) {
                Verdict::Reproduced
            } else {
                Verdict::NotReproduced
            };
            outcome.note = note;
        }
        Err(why) => outcome.note = Some(why),
    }
    outcome
}

fn numbers(
    frame: &polars::prelude::DataFrame,
    name: &str,
) -> std::result::Result<Vec<f64>, String> {
    let column: &Column = frame.column(name).map_err(|_| {
        let names: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        format!("no column {name:?} (columns: {})", names.join(", "))
    })?;
    if !(column.dtype().is_float() || column.dtype().is_integer()) {
        return Err(format!("column {name:?} is not numeric"));
    }
    let cast = column
        .cast(&DataType::Float64)
        .map_err(|e| format!("column {name:?}: {e}"))?;
    let values = cast.f64().map_err(|e| format!("column {name:?}: {e}"))?;
    Ok(values.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

fn texts(
    frame: &polars::prelude::DataFrame,
    name: &str,
) -> std::result::Result<Option<Vec<String>>, String> {
    let column = frame
        .column(name)
        .map_err(|_| format!("no column {name:?} to select rows by"))?;
    if column.dtype().is_float() || column.dtype().is_integer() {
        return Ok(None);
    }
    let cast = column
        .cast(&DataType::String)
        .map_err(|e| format!("column {name:?}: {e}"))?;
    let values = cast.str().map_err(|e| format!("column {name:?}: {e}"))?;
    Ok(Some(
        values
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect(),
    ))
}

/// The selected rows' reduced quantity, and a note on missing rows.
fn measure(
    claim: &Claim,
    frame: &polars::prelude::DataFrame,
) -> std::result::Result<(Option<f64>, Option<String>), String> {
    let height = frame.height();
    let mut selected = vec![true; height];
    for (name, condition) in &claim.selection {
        let text = texts(frame, name)?;
        let keep: Vec<bool> = match (condition, &text) {
            (Condition::Text(want), Some(values)) => values.iter().map(|v| v == want).collect(),
            (Condition::AnyOf(wants), Some(values)) => values
                .iter()
                .map(|v| wants.iter().any(|w| matches!(w, Scalar::Text(t) if t == v)))
                .collect(),
            (Condition::Number(want), None) => {
                numbers(frame, name)?.iter().map(|v| v == want).collect()
            }
            (Condition::AnyOf(wants), None) => numbers(frame, name)?
                .iter()
                .map(|v| {
                    wants
                        .iter()
                        .any(|w| matches!(w, Scalar::Number(x) if x == v))
                })
                .collect(),
            (Condition::Range(range), None) => numbers(frame, name)?
                .iter()
                .map(|&v| range.holds(v))
                .collect(),
            (_, Some(_)) => {
                return Err(format!(
                    "column {name:?} holds text; select it by a string or a list of strings"
                ));
            }
            (Condition::Text(_), None) => {
                return Err(format!(
                    "column {name:?} holds numbers; select it by a number, a list or bounds"
                ));
            }
        };
        for (s, k) in selected.iter_mut().zip(keep) {
            *s &= k;
        }
    }
    let rows: Vec<usize> = (0..height).filter(|&r| selected[r]).collect();
    if claim.reduce == Reduce::Count {
        return Ok((Some(rows.len() as f64), None));
    }
    if rows.is_empty() {
        return Err(format!(
            "no row of {} (of {height}) matches the selection",
            claim.table
        ));
    }
    let column = claim.column.as_deref().unwrap_or_default();
    let mut quantity = numbers(frame, column)?;
    if let Some(m) = &claim.minus {
        for (q, m) in quantity.iter_mut().zip(numbers(frame, m)?) {
            *q -= m;
        }
    }
    for divisor in [&claim.over, &claim.per_error].into_iter().flatten() {
        for (q, d) in quantity.iter_mut().zip(numbers(frame, divisor)?) {
            *q /= d;
        }
    }
    let values: Vec<f64> = rows.iter().map(|&r| quantity[r]).collect();
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let missing = values.len() - finite.len();
    let mut note = None;
    if missing > 0 {
        let text = format!(
            "{missing} of {} selected rows have no value{}",
            values.len(),
            if claim.skip_missing {
                " and were left out"
            } else {
                ""
            }
        );
        if !claim.skip_missing {
            return Ok((None, Some(text)));
        }
        note = Some(text);
    }
    if finite.is_empty() {
        return Ok((None, note));
    }
    let value = match claim.reduce {
        Reduce::Only => {
            if values.len() != 1 {
                return Err(format!(
                    "reduce = \"only\" needs exactly one row; {} match",
                    values.len()
                ));
            }
            finite[0]
        }
        Reduce::Max => finite.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Reduce::Min => finite.iter().copied().fold(f64::INFINITY, f64::min),
        Reduce::MaxAbs => finite.iter().map(|v| v.abs()).fold(0.0, f64::max),
        Reduce::Farthest => {
            let target = claim.near.unwrap_or_default();
            finite
                .iter()
                .copied()
                .max_by(|a, b| (a - target).abs().total_cmp(&(b - target).abs()))
                .unwrap_or(f64::NAN)
        }
        Reduce::Mean => finite.iter().sum::<f64>() / finite.len() as f64,
        Reduce::Median => {
            let mut sorted = finite.clone();
            sorted.sort_by(f64::total_cmp);
            let n = sorted.len();
            if n % 2 == 1 {
                sorted[n / 2]
            } else {
                0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
            }
        }
        Reduce::Count => unreachable!("counted above"),
    };
    let rows_note = format!("{} rows", finite.len());
    let note = match note {
        Some(n) => Some(format!("{rows_note}; {n}")),
        None if claim.reduce != Reduce::Only => Some(rows_note),
        None => None,
    };
    Ok((Some(value), note))
}

/// Evaluates the claims file at `claims_path` on the run in `run_dir` and writes `claims.json`
/// and `metrics.json` there.
pub fn write_run_claims(
    run_dir: &Path,
    claims_path: &Path,
    experiment: &str,
    run_id: &str,
) -> Result<ClaimsRecord> {
    let (_, record) = evaluate_run(run_dir, claims_path, experiment, run_id)?;
    crate::fsutil::write_json(&run_dir.join(CLAIMS_FILE), &record)?;
    crate::fsutil::write_json(&run_dir.join(METRICS_FILE), &record.metrics())?;
    Ok(record)
}

/// A run's claims judged against the reference.
#[derive(Clone, Debug, Serialize)]
pub struct Checked {
    pub experiment: String,
    pub run_id: String,
    pub papers: BTreeMap<String, Paper>,
    /// The run the reference was copied from, if there is a reference.
    pub reference_run: Option<String>,
    pub claims: Vec<reference::Judged>,
}

impl Checked {
    /// Claims reproduced, not reproduced, and differing from the reference (or unevaluable).
    pub fn counts(&self) -> (usize, usize, usize) {
        let differs = self.claims.iter().filter(|c| c.fails()).count();
        let ok = |v| {
            self.claims
                .iter()
                .filter(|c| !c.fails() && c.outcome.verdict == v)
                .count()
        };
        (ok(Verdict::Reproduced), ok(Verdict::NotReproduced), differs)
    }

    /// One line: `rbm-scalar: 9/9 reproduced`, with the claims not reproduced (as in the
    /// reference) and those that differ from it or fail.
    pub fn headline(&self) -> String {
        let (reproduced, not_reproduced, failing) = self.counts();
        let invalid = self
            .claims
            .iter()
            .filter(|c| c.outcome.verdict == Verdict::Invalid)
            .count();
        let mut text = format!(
            "{}: {reproduced}/{} reproduced",
            self.experiment,
            self.claims.len()
        );
        if not_reproduced > 0 {
            let _ = write!(
                text,
                ", {not_reproduced} not reproduced as in the reference"
            );
        }
        let moved = failing - invalid;
        if moved > 0 {
            let _ = write!(
                text,
                ", {moved} {}",
                if self.reference_run.is_some() {
                    "DIFFER from the reference"
                } else {
                    "not reproduced (no reference to compare with)"
                }
            );
        }
        if invalid > 0 {
            let _ = write!(text, ", {invalid} cannot be evaluated");
        }
        text
    }
}

/// Judges `record` (the claims of a run under `results/`) against the reference; tolerances
/// come from `file`.
pub fn check(results: &Path, file: &ClaimsFile, record: ClaimsRecord) -> Result<Checked> {
    let reference = reference::load(results, &record.experiment)?;
    let claims = reference::judge(file, &record, reference.as_ref());
    Ok(Checked {
        experiment: record.experiment,
        run_id: record.run_id,
        papers: record.papers,
        reference_run: reference.map(|r| r.run_id),
        claims,
    })
}

/// Evaluates the claims file at `claims_path` afresh on the run in `run_dir` and judges it.
pub fn check_run(
    results: &Path,
    run_dir: &Path,
    claims_path: &Path,
    experiment: &str,
    run_id: &str,
) -> Result<Checked> {
    let (file, record) = evaluate_run(run_dir, claims_path, experiment, run_id)?;
    check(results, &file, record)
}

/// Loads the claims file at `claims_path` and evaluates it on the tables of the run in
/// `run_dir`.
fn evaluate_run(
    run_dir: &Path,
    claims_path: &Path,
    experiment: &str,
    run_id: &str,
) -> Result<(ClaimsFile, ClaimsRecord)> {
    let file = ClaimsFile::load(claims_path)?;
    let record = evaluate_all(
        &file,
        claims_path,
        &run_dir.join("tables"),
        experiment,
        run_id,
    )?;
    Ok((file, record))
}

/// The judged claims of the run in `run_dir` as recorded in its `claims.json` (none if it has
/// none); tolerances from the claims file at `claims_path` when it is still readable.
pub fn recorded(results: &Path, run_dir: &Path, claims_path: &Path) -> Result<Option<Checked>> {
    let path = run_dir.join(CLAIMS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let record: ClaimsRecord = crate::fsutil::read_json(&path)?;
    let file = ClaimsFile::load(claims_path).unwrap_or(ClaimsFile {
        papers: record.papers.clone(),
        claim: Vec::new(),
        figure: Vec::new(),
    });
    check(results, &file, record).map(Some)
}

/// The claims of a check for a terminal: per claim its conclusion, id and measured value, then
/// the test, the reference's value and the paper's.
pub fn summary_lines(checked: &Checked) -> String {
    let mut out = String::new();
    let value = |v: Option<f64>| v.map_or_else(|| "—".into(), number);
    for c in &checked.claims {
        let o = &c.outcome;
        let _ = writeln!(
            out,
            "  {:<23} {:<30} {:>10}  test {}; reference {}; paper {} ({})",
            c.conclusion(),
            o.id,
            value(o.value),
            o.test,
            value(c.reference_value),
            o.paper_value.as_deref().unwrap_or("—"),
            o.item,
        );
        if let reference::Agreement::Differs(why) = &c.agreement {
            let _ = writeln!(out, "      {why}");
        }
        if o.verdict == Verdict::Invalid
            && let Some(note) = &o.note
        {
            let _ = writeln!(out, "      {note}");
        }
    }
    out
}

#[cfg(test)]
mod tests;
