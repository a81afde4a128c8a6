//! `report.html`: one self-contained page per run — its claims with their verdicts, its figures
//! in the order of the paper's items with captions (both from the claims file beside the spec),
//! every table (rendered, linked to its CSV), and provenance, parameters and stages folded at
//! the end. It refers only to files of its own run folder and needs no JavaScript. The
//! comparison page of `symbreak diff --html` and the overview `results/index.html` ([`index`])
//! are built from the same parts ([`html`]).

pub mod columns;
pub mod html;
pub mod index;

use std::fmt::Write as _;
use std::path::Path;

use crate::error::Result;
use crate::pipeline::run_folder::{ArtefactRecord, Manifest};

/// Rows of a table shown in full; longer tables show this many and link to the CSV.
pub const MAX_TABLE_ROWS: usize = 200;

/// The report's file name inside a run folder.
pub const REPORT_FILE: &str = "report.html";

/// The provenance block of a run as name–value rows.
pub fn provenance(manifest: &Manifest) -> Vec<(String, String)> {
    let rows = [
        ("experiment", manifest.experiment.clone()),
        ("run", manifest.run_id.clone()),
        ("status", manifest.status.clone()),
        (
            "commit",
            format!(
                "{}{}",
                manifest.git.commit,
                if manifest.git.dirty {
                    " (uncommitted changes)"
                } else {
                    ""
                }
            ),
        ),
        (
            "spec",
            format!(
                "{} (blake3 {})",
                manifest.spec.get("path").cloned().unwrap_or_default(),
                manifest.spec.get("blake3").cloned().unwrap_or_default()
            ),
        ),
        ("seed", manifest.seed.to_string()),
        ("started", manifest.started.clone()),
        ("finished", manifest.finished.clone().unwrap_or_default()),
        ("command", manifest.command.join(" ")),
    ];
    let mut rows: Vec<(String, String)> =
        rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    for (key, value) in &manifest.versions {
        rows.push((format!("version.{key}"), value.clone()));
    }
    for (key, value) in &manifest.host {
        rows.push((format!("host.{key}"), value.clone()));
    }
    for (path, hash) in &manifest.inputs {
        rows.push(("input".into(), format!("{path} ({hash})")));
    }
    rows
}

/// Writes `<run_dir>/report.html` for `manifest` (whose artefacts are already in place).
pub fn write_run_report(run_dir: &Path, manifest: &Manifest) -> Result<()> {
    if let Some(claims) = manifest.spec.get("claims") {
        crate::claims::write_run_claims(
            run_dir,
            Path::new(claims),
            &manifest.experiment,
            &manifest.run_id,
        )?;
    }
    let page = run_report(run_dir, manifest)?;
    crate::fsutil::write_atomic(&run_dir.join(REPORT_FILE), page.as_bytes())
}

/// The HTML of a run's report: what the experiment shows first — its claims with their
/// verdicts, then its figures in the order of the paper's items with captions, then its
/// tables — and how it was made (provenance, parameters, stages) folded at the end.
pub fn run_report(run_dir: &Path, manifest: &Manifest) -> Result<String> {
    let claims_path = manifest.spec.get("claims").map(Path::new);
    let notes = claims_path
        .and_then(|p| crate::claims::ClaimsFile::load(p).ok())
        .unwrap_or_else(|| crate::claims::ClaimsFile {
            papers: Default::default(),
            claim: Vec::new(),
            figure: Vec::new(),
        });
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>{}</h1>\n<p class=\"sub\">run {} · {} · seed {}</p>",
        html::escape(&manifest.experiment),
        html::escape(&manifest.run_id),
        html::escape(&format!(
            "commit {}{}",
            manifest.git.commit.chars().take(12).collect::<String>(),
            if manifest.git.dirty { "-dirty" } else { "" }
        )),
        manifest.seed
    );
    let results = run_dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let checked = match claims_path {
        Some(path) => crate::claims::recorded(results, run_dir, path)?,
        None => None,
    };
    let figures = ordered_figures(manifest, &notes);
    let tables: Vec<&ArtefactRecord> = manifest
        .artefacts
        .iter()
        .filter(|a| a.path.starts_with("tables/") && a.path.ends_with(".csv"))
        .collect();
    let arrays: Vec<&ArtefactRecord> = manifest
        .artefacts
        .iter()
        .filter(|a| a.path.starts_with("arrays/"))
        .collect();

    body.push_str("<nav>");
    for (present, id, label) in [
        (checked.is_some(), "claims", "claims"),
        (!figures.is_empty(), "figures", "figures"),
        (!tables.is_empty(), "tables", "tables"),
        (!arrays.is_empty(), "arrays", "arrays"),
        (true, "provenance", "how it was made"),
    ] {
        if present {
            let _ = write!(body, "<a href=\"#{id}\">{label}</a>");
        }
    }
    body.push_str("</nav>\n");

    if let Some(checked) = &checked {
        body.push_str("<h2 id=\"claims\">Claims</h2>\n");
        body.push_str(&claims_html(checked));
    }
    if !figures.is_empty() {
        body.push_str("<h2 id=\"figures\">Figures</h2>\n");
        let paths: Vec<&str> = manifest.artefacts.iter().map(|a| a.path.as_str()).collect();
        for (artefact, name, note) in &figures {
            let svg = format!("figures/{name}.svg");
            let svg_link = if paths.contains(&svg.as_str()) {
                format!(" · <a href=\"{}\">SVG</a>", html::href(&svg))
            } else {
                String::new()
            };
            let caption = match note {
                Some(note) => {
                    let source = match (&note.paper, &note.item) {
                        (Some(paper), Some(item)) => format!(
                            "<b>{} {}.</b> ",
                            html::escape(
                                &notes
                                    .papers
                                    .get(paper)
                                    .map_or_else(|| paper.clone(), |p| p.cite.clone())
                            ),
                            html::escape(item)
                        ),
                        (None, Some(item)) => format!("<b>{}.</b> ", html::escape(item)),
                        _ => String::new(),
                    };
                    format!("{source}{}", html::escape(&note.caption))
                }
                None => String::new(),
            };
            let _ = writeln!(
                body,
                "<figure id=\"figure-{}\"><img src=\"{}\" alt=\"{}\"><figcaption>{caption} \
                 <span class=\"note\">{}{} · from {}</span></figcaption></figure>",
                anchor(name),
                html::href(&artefact.path),
                html::escape(name),
                html::escape(name),
                svg_link,
                html::escape(artefact.stage.as_deref().unwrap_or("the run")),
            );
        }
    }
    if !tables.is_empty() {
        body.push_str("<h2 id=\"tables\">Tables</h2>\n");
        for artefact in &tables {
            body.push_str(&table_section(run_dir, artefact)?);
        }
    }
    if !arrays.is_empty() {
        let _ = writeln!(
            body,
            "<h2 id=\"arrays\">Arrays</h2>\n<details><summary>{} array{} (.npy)</summary>\n<ul>",
            arrays.len(),
            if arrays.len() == 1 { "" } else { "s" }
        );
        for a in arrays {
            let _ = writeln!(
                body,
                "<li><a href=\"{}\">{}</a> <span class=\"note\">{} · from {}</span></li>",
                html::href(&a.path),
                html::escape(&a.path),
                human_bytes(a.bytes),
                html::escape(a.stage.as_deref().unwrap_or("the run"))
            );
        }
        body.push_str("</ul>\n</details>\n");
    }

    body.push_str("<h2 id=\"provenance\">How it was made</h2>\n");
    body.push_str("<details><summary>provenance: commit, spec, inputs, versions, host</summary>\n");
    body.push_str(&html::key_values(
        provenance(manifest)
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone())),
    ));
    body.push_str("</details>\n");
    let parameters = crate::pipeline::flatten_params(&manifest.parameters);
    let _ = writeln!(
        body,
        "<details id=\"parameters\"><summary>{} parameters (the spec after defaults and \
         sweeps)</summary>",
        parameters.len()
    );
    body.push_str(&html::key_values(
        parameters.iter().map(|(k, v)| (k.as_str(), v.clone())),
    ));
    body.push_str("</details>\n");
    let _ = writeln!(
        body,
        "<details id=\"stages\"><summary>{} stage instances (cached or computed, and why)\
         </summary>",
        manifest.stages.len()
    );
    let header: Vec<String> = [
        "stage",
        "cached",
        "seconds (when computed)",
        "why it ran",
        "key",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = manifest
        .stages
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                if s.cached { "yes" } else { "no" }.into(),
                format!("{:.2}", s.seconds),
                if s.cached && s.reason.is_empty() {
                    "up to date in the cache".into()
                } else {
                    s.reason.clone()
                },
                s.key.chars().take(12).collect(),
            ]
        })
        .collect();
    body.push_str(&html::data_table(&header, &rows));
    body.push_str("</details>\n");
    Ok(html::page(
        &format!("{} — {}", manifest.experiment, manifest.run_id),
        &body,
    ))
}

/// The run's PNG figures with the claims file's note for each: first those the notes name, in
/// the notes' order (a prefix entry in name order), then the rest in the order of the stages.
fn ordered_figures<'a>(
    manifest: &'a Manifest,
    notes: &'a crate::claims::ClaimsFile,
) -> Vec<(
    &'a ArtefactRecord,
    String,
    Option<&'a crate::claims::FigureNote>,
)> {
    let stage_order: Vec<&str> = manifest.stages.iter().map(|s| s.id.as_str()).collect();
    let mut pngs: Vec<(&ArtefactRecord, String)> = manifest
        .artefacts
        .iter()
        .filter_map(|a| png_stem(&a.path).map(|stem| (a, stem.to_string())))
        .collect();
    pngs.sort_by_key(|(a, stem)| {
        let stage = a
            .stage
            .as_deref()
            .and_then(|s| stage_order.iter().position(|x| *x == s))
            .unwrap_or(usize::MAX);
        (stage, stem.clone())
    });
    let mut out = Vec::new();
    for note in &notes.figure {
        let mut matched: Vec<(&ArtefactRecord, String)> = pngs
            .iter()
            .filter(|(_, stem)| note.matches(stem))
            .cloned()
            .collect();
        matched.sort_by(|a, b| a.1.cmp(&b.1));
        pngs.retain(|(_, stem)| !note.matches(stem));
        out.extend(matched.into_iter().map(|(a, stem)| (a, stem, Some(note))));
    }
    out.extend(pngs.into_iter().map(|(a, stem)| (a, stem, None)));
    out
}

/// The figure name of an artefact path `figures/<name>.png`.
pub fn png_stem(path: &str) -> Option<&str> {
    path.strip_prefix("figures/")
        .and_then(|p| p.strip_suffix(".png"))
}

/// One table of the run: its name, size and links, and its first rows.
fn table_section(run_dir: &Path, artefact: &ArtefactRecord) -> Result<String> {
    let csv = &artefact.path;
    let name = csv
        .strip_prefix("tables/")
        .and_then(|p| p.strip_suffix(".csv"))
        .unwrap_or(csv);
    // Column descriptions live in the parquet file; a table without one renders plain.
    let parquet = run_dir.join(format!("tables/{name}.parquet"));
    let columns = if parquet.is_file() {
        crate::emit::table::read_column_infos(&parquet)?
    } else {
        Vec::new()
    };
    let (rendered, rows) = html::csv_table(&run_dir.join(csv), MAX_TABLE_ROWS, &columns)?;
    let shown = if rows > MAX_TABLE_ROWS {
        format!("first {MAX_TABLE_ROWS} of {rows} rows")
    } else {
        format!("{rows} rows")
    };
    let described = if columns.is_empty() {
        String::new()
    } else {
        format!(
            "<details><summary>what the columns mean</summary>\n{}</details>\n",
            html::column_list(&columns)
        )
    };
    Ok(format!(
        "<h3 id=\"table-{}\">{}</h3>\n<p class=\"note\">{shown} · from {} · <a href=\"{}\">\
         CSV</a> · <a href=\"{}\">parquet</a></p>\n{described}{rendered}",
        anchor(name),
        html::escape(name),
        html::escape(artefact.stage.as_deref().unwrap_or("the run")),
        html::href(csv),
        html::href(&format!("tables/{name}.parquet"))
    ))
}

/// The claims of a run with their verdicts, as an HTML table: verdict, the paper's item and
/// statement, the paper's value, the reference's, this run's, and the test.
pub fn claims_html(checked: &crate::claims::Checked) -> String {
    use crate::claims::number;
    let mut out = format!(
        "<p><b>{}</b>{}</p>\n",
        html::escape(&checked.headline()),
        checked
            .reference_run
            .as_ref()
            .map(|r| format!(
                " <span class=\"note\">(reference: run {})</span>",
                html::escape(r)
            ))
            .unwrap_or_default()
    );
    out.push_str(
        "<div><table class=\"claims\">\n<tr><th>verdict</th><th>paper</th>\
         <th>claim</th><th>paper's value</th><th>reference</th><th>this run</th><th>test</th>\
         </tr>\n",
    );
    for c in &checked.claims {
        let o = &c.outcome;
        let class = if c.fails() {
            "bad"
        } else if o.verdict == crate::claims::Verdict::Reproduced {
            "ok"
        } else {
            "warn"
        };
        let paper = checked
            .papers
            .values()
            .find(|p| p.cite == o.paper)
            .and_then(|p| p.link());
        let cite = match paper {
            Some(link) => format!(
                "<a href=\"{}\">{}</a>",
                html::escape(&link),
                html::escape(&o.paper)
            ),
            None => html::escape(&o.paper),
        };
        let value = |v: Option<f64>| {
            v.map_or_else(
                || "—".to_string(),
                |x| {
                    format!(
                        "{}{}",
                        number(x),
                        o.unit
                            .as_deref()
                            .map(|u| format!(" {u}"))
                            .unwrap_or_default()
                    )
                },
            )
        };
        let mut why = String::new();
        if let crate::claims::reference::Agreement::Differs(text) = &c.agreement {
            why = format!("<br><span class=\"bad\">{}</span>", html::escape(text));
        }
        if let Some(note) = &o.note {
            let _ = write!(
                why,
                "<br><span class=\"note\">{}</span>",
                html::escape(note)
            );
        }
        let _ = writeln!(
            out,
            "<tr id=\"claim-{}\"><td class=\"{class}\">{}</td><td>{cite}, {}</td><td>{}<br>\
             <span class=\"note\">{}: {}</span></td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}{why}</td></tr>",
            html::escape(&o.id),
            html::escape(c.conclusion()),
            html::escape(&o.item),
            html::escape(&o.statement),
            html::escape(&o.id),
            html::escape(&o.measure),
            html::escape(o.paper_value.as_deref().unwrap_or("—")),
            html::escape(&value(c.reference_value)),
            html::escape(&value(o.value)),
            html::escape(&o.test),
        );
    }
    out.push_str("</table></div>\n");
    out
}

fn anchor(stage: &str) -> String {
    stage
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

pub(crate) fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_decimal_units() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(46_000_000), "46.0 MB");
        assert_eq!(anchor("fit[bin=1,init=x]"), "fit-bin-1-init-x-");
    }
}
