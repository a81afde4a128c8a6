//! `symbreak diff`: what changed between two sets of runs — the spec parameters first, then
//! every result table joined row by row ([`tables`]), as vertical rows
//! `table, key, column, old, new, delta, rel` in text, markdown, JSON or CSV; figures side by
//! side ([`figures`]) and an HTML page of the whole comparison. The arguments are resolved to
//! runs by [`resolve`].

pub mod arrays;
pub mod figures;
pub mod resolve;
pub mod tables;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Result;
use crate::pipeline::flatten_params;
use crate::report::html;
use resolve::{RunRef, Side};
use tables::{Difference, Options, Status, Tolerance};

/// One parameter of the spec that differs between the two runs of an experiment.
#[derive(Clone, Debug, Serialize)]
pub struct ParameterChange {
    pub experiment: String,
    pub parameter: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The comparison of one experiment's two runs.
#[derive(Clone, Debug, Serialize)]
pub struct ExperimentComparison {
    pub experiment: String,
    pub old_run: String,
    pub new_run: String,
    pub old_commit: String,
    pub new_commit: String,
    pub parameters: Vec<ParameterChange>,
    pub differences: Vec<Difference>,
    /// Per table, under `--sigma`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<tables::TableSummary>,
    #[serde(skip)]
    pub old_dir: PathBuf,
    #[serde(skip)]
    pub new_dir: PathBuf,
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub old_label: String,
    pub new_label: String,
    pub tolerance: Tolerance,
    /// `--sigma k`: values with standard errors compared within k combined errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    pub experiments: Vec<ExperimentComparison>,
    pub notes: Vec<String>,
}

impl Comparison {
    /// Whether anything differs beyond the tolerance (parameters included).
    pub fn differs(&self) -> bool {
        // Under --sigma the question is whether the results agree statistically: a changed seed
        // or other parameter is shown, not counted.
        self.experiments.iter().any(|e| {
            (self.sigma.is_none() && !e.parameters.is_empty())
                || e.differences.iter().any(|d| d.status != Status::Same)
        })
    }

    /// Under `--sigma`, one line per table: rows, values with errors and how many disagree,
    /// and what changed among the values without errors.
    pub fn table_lines(&self) -> Vec<String> {
        let Some(k) = self.sigma else {
            return Vec::new();
        };
        self.experiments
            .iter()
            .flat_map(|e| &e.tables)
            .map(|t| {
                let judged = if t.with_errors == 0 {
                    "no values with standard errors".to_string()
                } else if t.beyond_sigma == 0 {
                    format!(
                        "all {} values with errors within {k}σ (max pull {:.2})",
                        t.with_errors, t.max_pull
                    )
                } else {
                    format!(
                        "{} of {} values with errors beyond {k}σ (max pull {:.2})",
                        t.beyond_sigma, t.with_errors, t.max_pull
                    )
                };
                let others = if t.other_values == 0 {
                    String::new()
                } else {
                    format!(
                        "; {} of {} values without errors changed (max |rel| {:.2e})",
                        t.other_changed, t.other_values, t.other_max_rel
                    )
                };
                let unmatched = if t.rows_unmatched == 0 {
                    String::new()
                } else {
                    format!("; {} rows on one side only", t.rows_unmatched)
                };
                format!(
                    "{}/{}: {} rows; {judged}{others}{unmatched}",
                    t.experiment, t.table, t.rows
                )
            })
            .collect()
    }

    fn differences(&self) -> impl Iterator<Item = &Difference> {
        self.experiments.iter().flat_map(|e| &e.differences)
    }

    fn parameters(&self) -> impl Iterator<Item = &ParameterChange> {
        self.experiments.iter().flat_map(|e| &e.parameters)
    }

    /// One line: what differs, or "no differences", and the tolerance used.
    pub fn summary(&self) -> String {
        let counts = tables::count_by_status(self.differences());
        let count = |s| counts.get(&s).copied().unwrap_or(0);
        let tables: BTreeSet<(&str, &str)> = self
            .differences()
            .filter(|d| d.status != Status::Same)
            .map(|d| (d.experiment.as_str(), d.table.as_str()))
            .collect();
        let parameters = self.parameters().count();
        let experiments = self.experiments.len();
        let scope = format!(
            "{} vs {} ({} experiment{}; rel-tol {:e}, abs-tol {:e})",
            self.old_label,
            self.new_label,
            experiments,
            if experiments == 1 { "" } else { "s" },
            self.tolerance.rel,
            self.tolerance.abs
        );
        if let Some(k) = self.sigma {
            let with: usize = self
                .experiments
                .iter()
                .flat_map(|e| &e.tables)
                .map(|t| t.with_errors)
                .sum();
            let beyond: usize = self
                .experiments
                .iter()
                .flat_map(|e| &e.tables)
                .map(|t| t.beyond_sigma)
                .sum();
            let structural = count(Status::Added) + count(Status::Removed);
            return if !self.differs() {
                format!("all {with} values with standard errors within {k}σ: {scope}")
            } else {
                format!(
                    "{beyond} of {with} values with standard errors beyond {k}σ, {structural} \
                     rows, columns or tables added or removed: {scope}"
                )
            };
        }
        if !self.differs() {
            return format!("no differences: {scope}");
        }
        format!(
            "{} parameter{} and {} value{} changed, {} added, {} removed, in {} table{}: {scope}",
            parameters,
            if parameters == 1 { "" } else { "s" },
            count(Status::Changed),
            if count(Status::Changed) == 1 { "" } else { "s" },
            count(Status::Added),
            count(Status::Removed),
            tables.len(),
            if tables.len() == 1 { "" } else { "s" },
        )
    }
}

/// Compares the runs of the experiments both sides have.
pub fn compare(old: &Side, new: &Side, options: Options) -> Result<Comparison> {
    let mut notes: Vec<String> = old.notes.iter().chain(&new.notes).cloned().collect();
    for (side, this, other) in [(&old.label, old, new), (&new.label, new, old)] {
        for experiment in this.runs.keys() {
            if !other.runs.contains_key(experiment) {
                notes.push(format!("{experiment}: only {side} has a run; not compared"));
            }
        }
    }
    let mut experiments = Vec::new();
    for (experiment, a) in &old.runs {
        let Some(b) = new.runs.get(experiment) else {
            continue;
        };
        experiments.push(compare_pair(experiment, a, b, options)?);
    }
    if experiments.is_empty() {
        return Err(crate::Error::Other(format!(
            "{} and {} have no experiment in common ({} has {}; {} has {})",
            old.label,
            new.label,
            old.label,
            list(old.runs.keys()),
            new.label,
            list(new.runs.keys()),
        )));
    }
    Ok(Comparison {
        old_label: old.label.clone(),
        new_label: new.label.clone(),
        tolerance: options.tolerance,
        sigma: options.sigma,
        experiments,
        notes,
    })
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn compare_pair(
    experiment: &str,
    a: &RunRef,
    b: &RunRef,
    options: Options,
) -> Result<ExperimentComparison> {
    let (pa, pb) = (
        flatten_params(&a.manifest.parameters),
        flatten_params(&b.manifest.parameters),
    );
    let mut parameters = Vec::new();
    for name in pa.keys().chain(pb.keys()).collect::<BTreeSet<_>>() {
        let (old, new) = (pa.get(name), pb.get(name));
        if old != new {
            parameters.push(ParameterChange {
                experiment: experiment.to_string(),
                parameter: name.clone(),
                old: old.cloned(),
                new: new.cloned(),
            });
        }
    }
    if a.manifest.seed != b.manifest.seed {
        parameters.push(ParameterChange {
            experiment: experiment.to_string(),
            parameter: "seed".into(),
            old: Some(a.manifest.seed.to_string()),
            new: Some(b.manifest.seed.to_string()),
        });
    }
    let (mut differences, table_summaries) =
        tables::compare_runs(experiment, &a.dir, &b.dir, options)?;
    // Arrays carry no standard errors: a statistical comparison is of tables.
    if !(a.tables_only || b.tables_only || options.sigma.is_some()) {
        differences.extend(arrays::compare_runs(experiment, &a.dir, &b.dir, options)?);
    }
    Ok(ExperimentComparison {
        experiment: experiment.to_string(),
        old_run: a.manifest.run_id.clone(),
        new_run: b.manifest.run_id.clone(),
        old_commit: a.manifest.git.short(),
        new_commit: b.manifest.git.short(),
        parameters,
        differences,
        tables: if options.sigma.is_some() {
            table_summaries
        } else {
            Vec::new()
        },
        old_dir: a.dir.clone(),
        new_dir: b.dir.clone(),
    })
}

/// Output formats of `symbreak diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
    Csv,
}

const HEADER: [&str; 7] = ["table", "key", "column", "old", "new", "delta", "rel"];

fn number(x: Option<f64>) -> String {
    x.map_or_else(String::new, |x| format!("{x:.6e}"))
}

/// The rows of the report: parameters first (table `params`), then the table differences.
fn rows(comparison: &Comparison) -> Vec<[String; 7]> {
    let mut out = Vec::new();
    for p in comparison.parameters() {
        out.push([
            format!("{}/params", p.experiment),
            p.parameter.clone(),
            "value".into(),
            p.old.clone().unwrap_or_else(|| "(absent)".into()),
            p.new.clone().unwrap_or_else(|| "(absent)".into()),
            String::new(),
            String::new(),
        ]);
    }
    for d in comparison.differences() {
        let (old, new) = match d.status {
            Status::Added if d.old.is_empty() => ("(absent)".to_string(), d.new.clone()),
            Status::Removed if d.new.is_empty() => (d.old.clone(), "(absent)".to_string()),
            _ => (d.old.clone(), d.new.clone()),
        };
        out.push([
            format!("{}/{}", d.experiment, d.table),
            d.key.clone(),
            d.column.clone(),
            old,
            new,
            number(d.delta),
            number(d.rel),
        ]);
    }
    out
}

/// The comparison in `format`.
pub fn render(comparison: &Comparison, format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Json => {
            return serde_json::to_string_pretty(comparison).expect("plain data serialises") + "\n";
        }
        Format::Csv => {
            out.push_str(&HEADER.join(","));
            out.push('\n');
            for row in rows(comparison) {
                let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
        }
        Format::Text => {
            for line in runs_lines(comparison) {
                let _ = writeln!(out, "# {line}");
            }
            let rows = rows(comparison);
            if !rows.is_empty() {
                let mut widths = HEADER.map(str::len);
                for row in &rows {
                    for (w, cell) in widths.iter_mut().zip(row) {
                        *w = (*w).max(cell.chars().count());
                    }
                }
                let line = |cells: &[String]| {
                    let padded: Vec<String> = cells
                        .iter()
                        .zip(widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect();
                    padded.join("  ").trim_end().to_string()
                };
                let header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
                let _ = writeln!(out, "{}", line(&header));
                for row in &rows {
                    let _ = writeln!(out, "{}", line(row));
                }
            }
            for line in comparison.table_lines() {
                let _ = writeln!(out, "{line}");
            }
            let _ = writeln!(out, "{}", comparison.summary());
        }
        Format::Markdown => {
            let _ = writeln!(
                out,
                "### symbreak diff `{}` → `{}`\n",
                comparison.old_label, comparison.new_label
            );
            for line in runs_lines(comparison) {
                let _ = writeln!(out, "- {}", md_cell(&line));
            }
            out.push('\n');
            let rows = rows(comparison);
            if !rows.is_empty() {
                let _ = writeln!(out, "| {} |", HEADER.join(" | "));
                let _ = writeln!(out, "|{}", "---|".repeat(HEADER.len()));
                for row in &rows {
                    let cells: Vec<String> = row
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            if c.is_empty() || i >= 3 {
                                md_cell(c)
                            } else {
                                format!("`{}`", c.replace('`', "'"))
                            }
                        })
                        .collect();
                    let _ = writeln!(out, "| {} |", cells.join(" | "));
                }
                out.push('\n');
            }
            for line in comparison.table_lines() {
                let _ = writeln!(out, "- {}", md_cell(&line));
            }
            let _ = writeln!(out, "**{}**", md_cell(&comparison.summary()));
        }
    }
    out
}

/// The runs compared, one line per experiment, then the notes.
fn runs_lines(comparison: &Comparison) -> Vec<String> {
    let mut lines: Vec<String> = comparison
        .experiments
        .iter()
        .map(|e| {
            format!(
                "{}: {} ({}) → {} ({})",
                e.experiment, e.old_run, e.old_commit, e.new_run, e.new_commit
            )
        })
        .collect();
    lines.extend(comparison.notes.iter().cloned());
    lines
}

fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

fn md_cell(cell: &str) -> String {
    cell.replace('|', "\\|").replace('\n', " ")
}

/// The comparison as an HTML page at `out`: runs, parameter changes, differences, and the
/// figures of both runs side by side (`side_by_side`: pictures made by [`figures`], if any).
pub fn write_html(comparison: &Comparison, out: &Path, side_by_side: &[PathBuf]) -> Result<()> {
    let folder = absolute(out.parent().unwrap_or(Path::new(".")));
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>{} → {}</h1>\n<p class=\"sub\">{}</p>",
        html::escape(&comparison.old_label),
        html::escape(&comparison.new_label),
        html::escape(&comparison.summary())
    );
    body.push_str("<h2>Runs</h2>\n<ul>\n");
    for line in runs_lines(comparison) {
        let _ = writeln!(body, "<li>{}</li>", html::escape(&line));
    }
    body.push_str("</ul>\n");
    let header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
    let all_rows = rows(comparison);
    body.push_str("<h2>Differences</h2>\n");
    if all_rows.is_empty() {
        body.push_str("<p class=\"ok\">No differences beyond the tolerance.</p>\n");
    } else {
        let rows: Vec<Vec<String>> = all_rows.into_iter().map(|r| r.to_vec()).collect();
        body.push_str(&html::data_table(&header, &rows));
    }
    body.push_str("<h2>Figures</h2>\n");
    if side_by_side.is_empty() {
        for e in &comparison.experiments {
            for name in figures::common_figures(&e.old_dir, &e.new_dir) {
                let _ = writeln!(
                    body,
                    "<h3>{}/{}</h3>\n<div class=\"pair\">",
                    e.experiment,
                    html::escape(&name)
                );
                for (label, dir) in [(&e.old_run, &e.old_dir), (&e.new_run, &e.new_dir)] {
                    let png = absolute(&dir.join("figures").join(format!("{name}.png")));
                    let _ = writeln!(
                        body,
                        "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
                        html::href(&html::relative_path(&folder, &png)),
                        html::escape(&name),
                        html::escape(label)
                    );
                }
                body.push_str("</div>\n");
            }
        }
    } else {
        for path in side_by_side {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let _ = writeln!(
                body,
                "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
                html::href(&html::relative_path(&folder, &absolute(path))),
                html::escape(&name),
                html::escape(&name)
            );
        }
    }
    let page = html::page(
        &format!("diff {} → {}", comparison.old_label, comparison.new_label),
        &body,
    );
    crate::fsutil::write_atomic(out, page.as_bytes())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
