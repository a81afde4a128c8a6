//! `results/index.html` and `symbreak status` without an argument: every experiment of the
//! project at a glance — its latest complete run, the commit it was made from, its claims with
//! their verdicts against the reference, its headline figure, and a link to its report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::html;
use crate::claims::{Checked, ClaimsFile, claims_file_for};
use crate::error::{Error, Result};
use crate::pipeline::run_folder::{Manifest, latest_run};
use crate::spec::SpecDocument;

/// The index page's file name inside `results/`.
pub const INDEX_FILE: &str = "index.html";

/// One experiment of the project as the overview shows it.
#[derive(Debug, Default, Serialize)]
pub struct ExperimentSummary {
    /// The spec's file stem (what `symbreak run` takes).
    pub spec: String,
    /// The experiment's name (its results folder).
    pub name: String,
    pub description: String,
    /// The latest complete run's id, commit (with `-dirty`) and end time.
    pub run_id: Option<String>,
    pub commit: Option<String>,
    pub finished: Option<String>,
    /// The run's claims judged against the reference.
    pub claims: Option<Checked>,
    /// The run's first figure named in the claims file, relative to `results/`.
    pub headline_figure: Option<String>,
    /// The run's report, relative to `results/`.
    pub report: Option<String>,
    /// Why the spec could not be read, when it could not.
    pub error: Option<String>,
}

/// Every spec in `<root>/experiments/`, sorted, with its latest complete run.
pub fn overview(root: &Path) -> Result<Vec<ExperimentSummary>> {
    let dir = root.join("experiments");
    let results = root.join("results");
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io("listing", &dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    specs.sort();
    let mut out = Vec::new();
    for path in specs {
        let spec = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let header = match SpecDocument::load(&path).and_then(|d| d.header()) {
            Ok(h) => h,
            Err(e) => {
                out.push(ExperimentSummary {
                    name: spec.clone(),
                    spec,
                    error: Some(e.to_string()),
                    ..ExperimentSummary::default()
                });
                continue;
            }
        };
        let mut summary = ExperimentSummary {
            spec,
            name: header.name.clone(),
            description: header.description.clone(),
            ..ExperimentSummary::default()
        };
        let run = latest_run(&results, &header.name).and_then(|id| {
            let dir = results.join(&header.name).join(&id);
            let manifest: Manifest = crate::fsutil::read_json(&dir.join("manifest.json")).ok()?;
            (manifest.status == "complete").then_some((id, dir, manifest))
        });
        if let Some((id, run_dir, manifest)) = run {
            let claims_path = claims_file_for(&path);
            // Evaluated afresh, as `check` does: a run made before its claims were written (or
            // changed) is judged by the claims file of today.
            summary.claims = claims_path
                .is_file()
                .then(|| {
                    crate::claims::check_run(&results, &run_dir, &claims_path, &header.name, &id)
                        .ok()
                })
                .flatten();
            let notes = ClaimsFile::load(&claims_path).ok();
            summary.headline_figure = notes.and_then(|notes| {
                notes.figure.iter().find_map(|note| {
                    let mut stems: Vec<&str> = manifest
                        .artefacts
                        .iter()
                        .filter_map(|a| super::png_stem(&a.path))
                        .filter(|stem| note.matches(stem))
                        .collect();
                    stems.sort();
                    stems
                        .first()
                        .map(|stem| format!("{}/{id}/figures/{stem}.png", header.name))
                })
            });
            summary.report = Some(format!("{}/{id}/{}", header.name, super::REPORT_FILE));
            summary.commit = Some(format!(
                "{}{}",
                manifest.git.commit.chars().take(12).collect::<String>(),
                if manifest.git.dirty { "-dirty" } else { "" }
            ));
            summary.finished = manifest.finished.clone();
            summary.run_id = Some(id);
        }
        out.push(summary);
    }
    Ok(out)
}

/// The overview as lines for a terminal.
pub fn overview_text(summaries: &[ExperimentSummary]) -> String {
    let mut out = String::new();
    for s in summaries {
        if let Some(e) = &s.error {
            let _ = writeln!(out, "{:<26} invalid spec: {e}", s.spec);
            continue;
        }
        let Some(run) = &s.run_id else {
            let _ = writeln!(
                out,
                "{:<26} no complete run (`symbreak run {}`)",
                s.spec, s.spec
            );
            continue;
        };
        let claims = s
            .claims
            .as_ref()
            .map(Checked::headline)
            .map(|h| {
                h.strip_prefix(&format!("{}: ", s.name))
                    .unwrap_or(&h)
                    .to_string()
            })
            .unwrap_or_else(|| "no claims".into());
        let _ = writeln!(out, "{:<26} run {run}: {claims}", s.spec,);
    }
    out
}

/// Writes `<results>/index.html` from `summaries`.
pub fn write_index(results: &Path, summaries: &[ExperimentSummary]) -> Result<PathBuf> {
    let mut body = String::from(
        "<h1>symbreak results</h1>\n<p class=\"sub\">every experiment's latest complete run, \
         its claims judged against the reference results in <code>results/reference/</code>, \
         and its report</p>\n",
    );
    body.push_str(
        "<div class=\"scroll\"><table>\n<tr><th>experiment</th><th>claims</th><th>latest run</th>\
         <th>commit</th></tr>\n",
    );
    let (run, not_run): (Vec<&ExperimentSummary>, Vec<&ExperimentSummary>) = summaries
        .iter()
        .partition(|s| s.run_id.is_some() || s.error.is_some());
    for s in run {
        let claims = match (&s.claims, &s.run_id) {
            (Some(c), _) => {
                let (_, _, failing) = c.counts();
                format!(
                    "<span class=\"{}\">{}</span>",
                    if failing > 0 { "bad" } else { "ok" },
                    html::escape(&c.headline())
                )
            }
            (None, Some(_)) => "no claims declared".into(),
            (None, None) => String::new(),
        };
        let run = match (&s.run_id, &s.report) {
            (Some(id), Some(report)) => format!(
                "<a href=\"{}\">{}</a>",
                html::href(report),
                html::escape(id)
            ),
            _ => match &s.error {
                Some(e) => format!(
                    "<span class=\"bad\">invalid spec: {}</span>",
                    html::escape(e)
                ),
                None => format!("none (<code>symbreak run {}</code>)", html::escape(&s.spec)),
            },
        };
        let _ = writeln!(
            body,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{claims}</td><td>{run}</td><td>{}</td></tr>",
            html::escape(&s.spec),
            html::escape(&s.spec),
            html::escape(s.commit.as_deref().unwrap_or(""))
        );
    }
    body.push_str("</table></div>\n");
    if !not_run.is_empty() {
        let names: Vec<String> = not_run.iter().map(|s| html::escape(&s.spec)).collect();
        let _ = writeln!(
            body,
            "<p class=\"note\">No complete run yet (<code>symbreak run &lt;spec&gt;</code>): {}</p>",
            names.join(", ")
        );
    }
    for s in summaries.iter().filter(|s| s.run_id.is_some()) {
        let _ = writeln!(
            body,
            "<h2 id=\"{}\">{}</h2>\n<p>{}</p>",
            html::escape(&s.spec),
            html::escape(&s.spec),
            html::escape(&s.description)
        );
        if let Some(figure) = &s.headline_figure {
            let _ = writeln!(
                body,
                "<figure><img src=\"{}\" alt=\"headline figure of {}\" style=\"max-width: 46em\">\
                 </figure>",
                html::href(figure),
                html::escape(&s.spec)
            );
        }
        if let Some(claims) = &s.claims {
            body.push_str(&super::claims_html(claims));
        }
        if let Some(report) = &s.report {
            let _ = writeln!(
                body,
                "<p><a href=\"{}\">full report of run {}</a></p>",
                html::href(report),
                html::escape(s.run_id.as_deref().unwrap_or(""))
            );
        }
    }
    let path = results.join(INDEX_FILE);
    crate::fsutil::write_atomic(&path, html::page("symbreak results", &body).as_bytes())?;
    Ok(path)
}
