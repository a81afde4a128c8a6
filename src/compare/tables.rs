//! Row-by-row comparison of the result tables of two runs. Tables of the same name are read from
//! their parquet files (typed, full precision) and joined on their key columns — those the stage
//! declared when it wrote the table, else the columns that are not floating point; numbers are
//! equal within a relative or an absolute tolerance, everything else exactly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;

use crate::emit::table::{ColumnInfo, LoadedTable, read_parquet};
use crate::error::{Error, Result};

/// When two numbers count as equal.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Tolerance {
    pub rel: f64,
    pub abs: f64,
}

impl Tolerance {
    /// |new − old| ≤ abs, or ≤ rel · max(|old|, |new|); NaN equals NaN, ±∞ only itself.
    pub fn equal(&self, old: f64, new: f64) -> bool {
        if old == new || (old.is_nan() && new.is_nan()) {
            return true;
        }
        if !(old.is_finite() && new.is_finite()) {
            return false;
        }
        let delta = (new - old).abs();
        delta <= self.abs || delta <= self.rel * old.abs().max(new.abs())
    }
}

/// How two runs' tables are compared.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Options {
    pub tolerance: Tolerance,
    /// List equal values too.
    pub all: bool,
    /// Compare wall-clock columns too (left out by default: they differ between identical
    /// computations).
    pub wall_clock: bool,
    /// Statistical comparison: a value with a standard-error column (`x` with `x_error`, or
    /// `x_mean` with `x_error`) differs only beyond this many combined standard errors
    /// √(σ_old² + σ_new²); values without one are counted per table, not listed.
    pub sigma: Option<f64>,
}

/// Per table of a statistical comparison (`--sigma`): how many values were compared, how many
/// with their errors, how many of those disagree, and what changed among the rest.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TableSummary {
    pub experiment: String,
    pub table: String,
    pub rows: usize,
    pub with_errors: usize,
    pub beyond_sigma: usize,
    /// The largest |new − old| / √(σ_old² + σ_new²) among values with errors.
    pub max_pull: f64,
    pub other_values: usize,
    pub other_changed: usize,
    /// The largest |new − old| / max(|old|, |new|) among the values without errors.
    pub other_max_rel: f64,
    /// Rows only one side has, in a table without error columns (e.g. histogram bins whose
    /// edges follow the sample): counted, not listed.
    pub rows_unmatched: usize,
}

/// The standard-error column of `column` among `names`: the one the table declares
/// (`declared`, its column descriptions), or, for a table written before columns were
/// described, by name: `column_error`, or for `x_mean` the column `x_error` (as `late_mean` /
/// `late_error`).
pub fn error_column<'a>(
    column: &str,
    names: &[&'a String],
    declared: &[ColumnInfo],
) -> Option<&'a String> {
    if !declared.is_empty() {
        let error = declared
            .iter()
            .find(|c| c.error_of.as_deref() == Some(column))?;
        return names.iter().copied().find(|n| **n == error.name);
    }
    let candidates = [
        format!("{column}_error"),
        column
            .strip_suffix("_mean")
            .map(|base| format!("{base}_error"))
            .unwrap_or_default(),
    ];
    names
        .iter()
        .copied()
        .find(|n| candidates.iter().any(|c| !c.is_empty() && c == *n))
}

/// What happened to one cell, row, column or table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Changed,
    Added,
    Removed,
    Same,
}

#[cfg(test)]
impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Changed => "changed",
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Same => "same",
        }
    }
}

/// One line of the comparison: `table, key, column, old, new, delta, rel`. A whole row added or
/// removed has column `*`; a whole column, key `*`; a whole table, both.
#[derive(Clone, Debug, Serialize)]
pub struct Difference {
    pub experiment: String,
    pub table: String,
    pub key: String,
    pub column: String,
    pub old: String,
    pub new: String,
    pub delta: Option<f64>,
    pub rel: Option<f64>,
    pub status: Status,
}

/// The cells of one column, typed.
enum Cells {
    Float(Vec<Option<f64>>),
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
}

impl Cells {
    fn of(column: &Column) -> PolarsResult<Self> {
        let dtype = column.dtype();
        Ok(if dtype.is_float() {
            Cells::Float(column.cast(&DataType::Float64)?.f64()?.iter().collect())
        } else if dtype.is_integer() {
            Cells::Int(column.cast(&DataType::Int64)?.i64()?.iter().collect())
        } else {
            Cells::Text(
                column
                    .cast(&DataType::String)?
                    .str()?
                    .iter()
                    .map(|s| s.map(str::to_string))
                    .collect(),
            )
        })
    }

    fn is_float(&self) -> bool {
        matches!(self, Cells::Float(_))
    }

    fn number(&self, row: usize) -> Option<f64> {
        match self {
            Cells::Float(v) => v[row],
            Cells::Int(v) => v[row].map(|x| x as f64),
            Cells::Text(_) => None,
        }
    }

    fn text(&self, row: usize) -> String {
        match self {
            Cells::Float(v) => v[row].map_or_else(|| "null".into(), exact_text),
            Cells::Int(v) => v[row].map_or_else(|| "null".into(), |x| x.to_string()),
            Cells::Text(v) => v[row].clone().unwrap_or_else(|| "null".into()),
        }
    }
}

/// The shortest text that reads back as exactly `x`; scientific outside [1e-4, 1e15).
fn exact_text(x: f64) -> String {
    if x == 0.0 || !x.is_finite() || (1e-4..1e15).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// A table ready to join: its cells by column name and one key string per row.
struct Keyed {
    columns: Vec<(String, Cells)>,
    keys: Vec<String>,
    index: HashMap<String, usize>,
}

impl Keyed {
    fn new(table: &LoadedTable, key_columns: &[String], path: &Path) -> Result<Self> {
        let columns: Vec<(String, Cells)> = table
            .frame
            .columns()
            .iter()
            .map(|c| Ok((c.name().to_string(), Cells::of(c)?)))
            .collect::<PolarsResult<_>>()
            .map_err(|e| Error::unreadable("parquet table", path, e))?;
        let height = table.frame.height();
        let key_cells: Vec<&Cells> = key_columns
            .iter()
            .filter_map(|k| columns.iter().find(|(n, _)| n == k).map(|(_, c)| c))
            .collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut keys = Vec::with_capacity(height);
        for row in 0..height {
            let base = if key_cells.is_empty() {
                format!("#{row}")
            } else {
                key_columns
                    .iter()
                    .zip(&key_cells)
                    .map(|(name, cells)| format!("{name}={}", cells.text(row)))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            // Rows that share a key are told apart by their order.
            let count = seen.entry(base.clone()).or_insert(0);
            *count += 1;
            keys.push(if *count == 1 {
                base
            } else {
                format!("{base}#{count}")
            });
        }
        let index = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        Ok(Self {
            columns,
            keys,
            index,
        })
    }

    fn column(&self, name: &str) -> Option<&Cells> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }
}

/// Names of the tables of a run folder (`tables/*.parquet`), sorted.
pub fn table_names(run_dir: &Path) -> BTreeSet<String> {
    crate::fsutil::file_stems(&run_dir.join("tables"), "parquet")
}

/// Every difference between the tables of runs `old_dir` and `new_dir` (with `options.all`,
/// also the equal cells).
pub fn compare_runs(
    experiment: &str,
    old_dir: &Path,
    new_dir: &Path,
    options: Options,
) -> Result<(Vec<Difference>, Vec<TableSummary>)> {
    let (old_names, new_names) = (table_names(old_dir), table_names(new_dir));
    let mut out = Vec::new();
    let mut summaries = Vec::new();
    let whole = |table: &str, status: Status| Difference {
        experiment: experiment.to_string(),
        table: table.to_string(),
        key: "*".into(),
        column: "*".into(),
        old: if status == Status::Added { "" } else { "table" }.into(),
        new: if status == Status::Added { "table" } else { "" }.into(),
        delta: None,
        rel: None,
        status,
    };
    for name in old_names.union(&new_names) {
        match (old_names.contains(name), new_names.contains(name)) {
            (true, false) => out.push(whole(name, Status::Removed)),
            (false, true) => out.push(whole(name, Status::Added)),
            _ => {
                let path = |dir: &Path| dir.join("tables").join(format!("{name}.parquet"));
                let (old_path, new_path) = (path(old_dir), path(new_dir));
                let old = read_parquet(&old_path)?;
                let new = read_parquet(&new_path)?;
                let (differences, summary) =
                    compare_tables(experiment, name, &old, &new, &old_path, &new_path, options)?;
                out.extend(differences);
                summaries.push(summary);
            }
        }
    }
    Ok((out, summaries))
}

/// The key columns two versions of a table are joined on.
fn join_keys(old: &LoadedTable, new: &LoadedTable) -> Vec<String> {
    let present = |name: &String| old.frame.column(name).is_ok() && new.frame.column(name).is_ok();
    if let Some(keys) = old.keys.as_ref().or(new.keys.as_ref())
        && keys.iter().all(present)
    {
        return keys.clone();
    }
    old.frame
        .columns()
        .iter()
        .filter(|c| !c.dtype().is_float())
        .map(|c| c.name().to_string())
        .filter(present)
        .collect()
}

fn compare_tables(
    experiment: &str,
    table: &str,
    old: &LoadedTable,
    new: &LoadedTable,
    old_path: &Path,
    new_path: &Path,
    options: Options,
) -> Result<(Vec<Difference>, TableSummary)> {
    let Options {
        tolerance,
        all,
        wall_clock,
        sigma,
    } = options;
    let mut summary = TableSummary {
        experiment: experiment.to_string(),
        table: table.to_string(),
        rows: old.frame.height(),
        ..TableSummary::default()
    };
    let keys = join_keys(old, new);
    let timed: BTreeSet<&String> = old.wall_clock.iter().chain(&new.wall_clock).collect();
    // The newer side's declarations (a table may have gained them since the older was written).
    let declared = if new.columns.is_empty() {
        &old.columns
    } else {
        &new.columns
    };
    let old = Keyed::new(old, &keys, old_path)?;
    let new = Keyed::new(new, &keys, new_path)?;
    let difference = |key: &str, column: &str, old: String, new: String, status| Difference {
        experiment: experiment.to_string(),
        table: table.to_string(),
        key: key.to_string(),
        column: column.to_string(),
        old,
        new,
        delta: None,
        rel: None,
        status,
    };
    let mut out = Vec::new();
    let old_names: Vec<&String> = old.columns.iter().map(|(n, _)| n).collect();
    let new_names: Vec<&String> = new.columns.iter().map(|(n, _)| n).collect();
    for name in &old_names {
        if !new_names.contains(name) {
            out.push(difference(
                "*",
                name,
                "column".into(),
                String::new(),
                Status::Removed,
            ));
        }
    }
    for name in &new_names {
        if !old_names.contains(name) {
            out.push(difference(
                "*",
                name,
                String::new(),
                "column".into(),
                Status::Added,
            ));
        }
    }
    let values: Vec<&String> = old_names
        .iter()
        .copied()
        .filter(|n| new_names.contains(n) && !keys.contains(n))
        .filter(|n| wall_clock || !timed.contains(n))
        .collect();
    // Under --sigma: value column → its error column, where it has one.
    let errors: BTreeMap<&String, &String> = match sigma {
        Some(_) => values
            .iter()
            .filter_map(|n| error_column(n, &values, declared).map(|e| (*n, e)))
            .collect(),
        None => BTreeMap::new(),
    };
    let unkeyed_rows_summarised = sigma.is_some() && errors.is_empty();
    for (row, key) in old.keys.iter().enumerate() {
        let Some(&other) = new.index.get(key) else {
            if unkeyed_rows_summarised {
                summary.rows_unmatched += 1;
                continue;
            }
            out.push(difference(
                key,
                "*",
                "row".into(),
                String::new(),
                Status::Removed,
            ));
            continue;
        };
        for name in &values {
            let (a, b) = (
                old.column(name).expect("listed above"),
                new.column(name).expect("listed above"),
            );
            let (old_text, new_text) = (a.text(row), b.text(other));
            let mut d = difference(key, name, old_text, new_text, Status::Same);
            match (a.number(row), b.number(other)) {
                (Some(x), Some(y)) => {
                    let delta = y - x;
                    d.delta = Some(delta);
                    d.rel = (x != 0.0).then(|| delta / x.abs());
                    let equal = if a.is_float() || b.is_float() {
                        tolerance.equal(x, y)
                    } else {
                        x == y
                    };
                    match (sigma, errors.get(name)) {
                        (Some(k), Some(error)) => {
                            let (ex, ey) = (
                                old.column(error).and_then(|c| c.number(row)),
                                new.column(error).and_then(|c| c.number(other)),
                            );
                            let combined = ex.zip(ey).map(|(p, q)| p.hypot(q));
                            summary.with_errors += 1;
                            // Values equal within the tolerance agree whatever their errors
                            // (exact runs carry errors at rounding level).
                            let beyond = !equal
                                && match combined {
                                    Some(s) if s > 0.0 && s.is_finite() => {
                                        let pull = delta.abs() / s;
                                        summary.max_pull = summary.max_pull.max(pull);
                                        // A NaN pull (∞/∞) is no agreement either.
                                        pull.is_nan() || pull > k
                                    }
                                    // No usable error: compared within the tolerance alone.
                                    _ => true,
                                };
                            if beyond {
                                summary.beyond_sigma += 1;
                                d.status = Status::Changed;
                            }
                        }
                        (Some(_), None) => {
                            summary.other_values += 1;
                            if !equal {
                                summary.other_changed += 1;
                                let scale = x.abs().max(y.abs());
                                if scale > 0.0 && delta.is_finite() {
                                    summary.other_max_rel =
                                        summary.other_max_rel.max(delta.abs() / scale);
                                }
                            }
                            // Counted in the table's summary, not listed.
                            if !all {
                                continue;
                            }
                        }
                        (None, _) => {
                            if !equal {
                                d.status = Status::Changed;
                            }
                        }
                    }
                }
                _ => {
                    if d.old != d.new {
                        d.status = Status::Changed;
                    }
                }
            }
            if all || d.status != Status::Same {
                out.push(d);
            }
        }
    }
    let old_keys: BTreeSet<&String> = old.keys.iter().collect();
    for key in &new.keys {
        if !old_keys.contains(key) {
            if unkeyed_rows_summarised {
                summary.rows_unmatched += 1;
                continue;
            }
            out.push(difference(
                key,
                "*",
                String::new(),
                "row".into(),
                Status::Added,
            ));
        }
    }
    Ok((out, summary))
}

/// How many differences of each status, for the summary line.
pub fn count_by_status<'a>(
    differences: impl IntoIterator<Item = &'a Difference>,
) -> BTreeMap<Status, usize> {
    let mut counts = BTreeMap::new();
    for d in differences {
        *counts.entry(d.status).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_finds_its_standard_error_column_by_name() {
        let names: Vec<String> = ["mean", "mean_error", "late_mean", "late_error", "tau_fit"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let refs: Vec<&String> = names.iter().collect();
        assert_eq!(
            error_column("mean", &refs, &[]).map(String::as_str),
            Some("mean_error")
        );
        assert_eq!(
            error_column("late_mean", &refs, &[]).map(String::as_str),
            Some("late_error")
        );
        assert_eq!(error_column("tau_fit", &refs, &[]), None);
    }

    /// A table that declares its columns pairs errors as declared, whatever the names say.
    #[test]
    fn a_declared_error_column_wins_over_the_naming_convention() {
        let names: Vec<String> = ["rate", "rate_error", "spread", "mean", "mean_error"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let refs: Vec<&String> = names.iter().collect();
        let info = |name: &str, error_of: Option<&str>| ColumnInfo {
            name: name.into(),
            unit: "1".into(),
            description: String::new(),
            error_of: error_of.map(str::to_string),
        };
        let declared = [
            info("rate", None),
            info("rate_error", None),
            info("spread", Some("rate")),
            info("mean", None),
            info("mean_error", None),
        ];
        assert_eq!(
            error_column("rate", &refs, &declared).map(String::as_str),
            Some("spread")
        );
        // Declared as no one's error: a name alone does not make it one.
        assert_eq!(error_column("mean", &refs, &declared), None);
    }

    #[test]
    fn tolerance_is_relative_or_absolute() {
        let t = Tolerance {
            rel: 1e-6,
            abs: 1e-12,
        };
        assert!(t.equal(1.0, 1.0 + 0.9e-6));
        assert!(!t.equal(1.0, 1.0 + 1.1e-6));
        assert!(t.equal(0.0, 0.9e-12));
        assert!(!t.equal(0.0, 1.1e-12));
        assert!(t.equal(f64::NAN, f64::NAN));
        assert!(!t.equal(1.0, f64::NAN));
        assert!(!t.equal(f64::INFINITY, f64::NEG_INFINITY));
    }

    fn exact(all: bool) -> Options {
        Options {
            tolerance: Tolerance { rel: 0.0, abs: 0.0 },
            all,
            wall_clock: false,
            sigma: None,
        }
    }

    /// Wall-clock columns are left out unless asked for.
    #[test]
    fn wall_clock_columns_are_compared_only_on_request() {
        let old = df!("seed" => [1i64], "loss" => [1.0f64], "seconds" => [2.0f64]).unwrap();
        let new = df!("seed" => [1i64], "loss" => [1.0f64], "seconds" => [3.0f64]).unwrap();
        let mut a = loaded(old, Some(&["seed"]));
        a.wall_clock = vec!["seconds".into()];
        let b = loaded(new, Some(&["seed"]));
        let p = Path::new("t.parquet");
        assert!(
            compare_tables("e", "t", &a, &b, p, p, exact(false))
                .unwrap()
                .0
                .is_empty()
        );
        let mut with = exact(false);
        with.wall_clock = true;
        let diff = compare_tables("e", "t", &a, &b, p, p, with).unwrap().0;
        assert_eq!(diff.len(), 1);
        assert_eq!(diff[0].column, "seconds");
    }

    fn loaded(frame: DataFrame, keys: Option<&[&str]>) -> LoadedTable {
        LoadedTable {
            frame,
            keys: keys.map(|k| k.iter().map(|s| s.to_string()).collect()),
            wall_clock: vec![],
            columns: vec![],
        }
    }

    #[test]
    fn tables_join_on_declared_keys_and_report_rows_and_columns() {
        let old = df!(
            "rate" => [0.1f64, 0.2, 0.3],
            "mode" => ["a", "b", "c"],
            "loss" => [1.0f64, 2.0, 3.0],
            "gone" => [0i64, 0, 0]
        )
        .unwrap();
        let new = df!(
            "rate" => [0.2f64, 0.3, 0.4],
            "mode" => ["b", "c", "d"],
            "loss" => [2.0f64, 3.5, 4.0],
            "fresh" => ["x", "y", "z"]
        )
        .unwrap();
        let keys: &[&str] = &["rate", "mode"];
        let p = Path::new("t.parquet");
        let diff = compare_tables(
            "e",
            "t",
            &loaded(old, Some(keys)),
            &loaded(new, Some(keys)),
            p,
            p,
            exact(false),
        )
        .unwrap()
        .0;
        let lines: Vec<String> = diff
            .iter()
            .map(|d| format!("{} {} {} {}", d.status.name(), d.key, d.column, d.new))
            .collect();
        assert_eq!(
            lines,
            vec![
                "removed * gone ",
                "added * fresh column",
                "removed rate=0.1,mode=a * ",
                "changed rate=0.3,mode=c loss 3.5",
                "added rate=0.4,mode=d * row",
            ]
        );
        assert_eq!(diff[3].delta, Some(0.5));
        assert!((diff[3].rel.unwrap() - 0.5 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn without_declared_keys_the_non_float_columns_join_and_duplicates_are_numbered() {
        let old = df!("seed" => [1i64, 1], "x" => [1.0f64, 2.0]).unwrap();
        let new = df!("seed" => [1i64, 1], "x" => [1.0f64, 2.5]).unwrap();
        let p = Path::new("t.parquet");
        let diff = compare_tables(
            "e",
            "t",
            &loaded(old, None),
            &loaded(new, None),
            p,
            p,
            exact(true),
        )
        .unwrap()
        .0;
        let lines: Vec<String> = diff
            .iter()
            .map(|d| format!("{} {} {}", d.status.name(), d.key, d.column))
            .collect();
        assert_eq!(lines, vec!["same seed=1 x", "changed seed=1#2 x"]);
    }
}
