//! `report.html`: one self-contained page per run — provenance, the resolved parameters, and
//! every table (rendered, linked to its CSV) and figure, grouped by the stage instance that made
//! them. It refers only to files of its own run folder and needs no JavaScript. The comparison
//! page of `symbreak diff --html` is built from the same parts ([`html`]).

pub mod html;

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
    let page = run_report(run_dir, manifest)?;
    crate::fsutil::write_atomic(&run_dir.join(REPORT_FILE), page.as_bytes())
}

/// The HTML of a run's report.
pub fn run_report(run_dir: &Path, manifest: &Manifest) -> Result<String> {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>{}</h1>\n<p class=\"sub\">run {} · {}</p>",
        html::escape(&manifest.experiment),
        html::escape(&manifest.run_id),
        html::escape(&format!(
            "commit {}{}",
            manifest.git.commit.chars().take(12).collect::<String>(),
            if manifest.git.dirty { "-dirty" } else { "" }
        ))
    );
    // Stages with figures or tables first, in run order; those with arrays only at the end.
    let (shown, arrays_only): (Vec<_>, Vec<_>) = group_by_stage(manifest)
        .into_iter()
        .partition(|(_, artefacts)| artefacts.iter().any(|a| !a.path.starts_with("arrays/")));
    body.push_str("<nav><a href=\"#provenance\">provenance</a><a href=\"#parameters\">parameters</a><a href=\"#stages\">stages</a>");
    for (stage, _) in &shown {
        let _ = write!(
            body,
            "<a href=\"#{}\">{}</a>",
            anchor(stage),
            html::escape(stage)
        );
    }
    if !arrays_only.is_empty() {
        body.push_str("<a href=\"#arrays\">arrays of the other stages</a>");
    }
    body.push_str("</nav>\n");

    body.push_str("<h2 id=\"provenance\">Provenance</h2>\n");
    body.push_str(&html::key_values(
        provenance(manifest)
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone())),
    ));

    body.push_str("<h2 id=\"parameters\">Resolved parameters</h2>\n");
    let parameters = crate::pipeline::flatten_params(&manifest.parameters);
    // Long lists fold away (a plain <details>, no script).
    let _ = writeln!(
        body,
        "<details{}><summary>{} parameters (the spec after defaults and sweeps)</summary>",
        if parameters.len() > 40 { "" } else { " open" },
        parameters.len()
    );
    body.push_str(&html::key_values(
        parameters.iter().map(|(k, v)| (k.as_str(), v.clone())),
    ));
    body.push_str("</details>\n");

    body.push_str("<h2 id=\"stages\">Stages</h2>\n");
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

    for (stage, artefacts) in &shown {
        let _ = writeln!(
            body,
            "<h2 id=\"{}\">{}</h2>",
            anchor(stage),
            html::escape(stage)
        );
        body.push_str(&artefact_sections(run_dir, artefacts)?);
    }
    if !arrays_only.is_empty() {
        body.push_str("<h2 id=\"arrays\">Arrays of the other stages</h2>\n");
        for (stage, artefacts) in &arrays_only {
            let _ = writeln!(body, "<h3>{}</h3>", html::escape(stage));
            body.push_str(&artefact_sections(run_dir, artefacts)?);
        }
    }
    Ok(html::page(
        &format!("{} — {}", manifest.experiment, manifest.run_id),
        &body,
    ))
}

/// The artefacts by stage instance, in the order of the manifest's stages; artefacts of no
/// recorded stage last under "artefacts".
fn group_by_stage(manifest: &Manifest) -> Vec<(String, Vec<&ArtefactRecord>)> {
    let mut groups: Vec<(String, Vec<&ArtefactRecord>)> = manifest
        .stages
        .iter()
        .map(|s| (s.id.clone(), Vec::new()))
        .collect();
    let mut other = Vec::new();
    for artefact in &manifest.artefacts {
        match artefact
            .stage
            .as_ref()
            .and_then(|s| groups.iter_mut().find(|(id, _)| id == s))
        {
            Some((_, list)) => list.push(artefact),
            None => other.push(artefact),
        }
    }
    if !other.is_empty() {
        groups.push(("artefacts".into(), other));
    }
    groups.retain(|(_, list)| !list.is_empty());
    groups
}

fn anchor(stage: &str) -> String {
    stage
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Figures (PNG shown, SVG linked), tables (rendered from the CSV, parquet linked) and arrays
/// (listed) of one stage.
fn artefact_sections(run_dir: &Path, artefacts: &[&ArtefactRecord]) -> Result<String> {
    let mut out = String::new();
    let paths: Vec<&str> = artefacts.iter().map(|a| a.path.as_str()).collect();
    let stem = |path: &str, dir: &str, ext: &str| {
        path.strip_prefix(dir)
            .and_then(|p| p.strip_suffix(ext))
            .map(str::to_string)
    };
    let figures: Vec<String> = paths
        .iter()
        .filter_map(|p| stem(p, "figures/", ".png"))
        .collect();
    if !figures.is_empty() {
        out.push_str("<h3>Figures</h3>\n");
    }
    for name in &figures {
        let png = format!("figures/{name}.png");
        let svg = format!("figures/{name}.svg");
        let svg_link = if paths.contains(&svg.as_str()) {
            format!(" · <a href=\"{}\">SVG</a>", html::href(&svg))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}{svg_link}</figcaption></figure>",
            html::href(&png),
            html::escape(name),
            html::escape(name)
        );
    }
    let tables: Vec<String> = paths
        .iter()
        .filter_map(|p| stem(p, "tables/", ".csv"))
        .collect();
    if !tables.is_empty() {
        out.push_str("<h3>Tables</h3>\n");
    }
    for name in &tables {
        let csv = format!("tables/{name}.csv");
        let (rendered, rows) = html::csv_table(&run_dir.join(&csv), MAX_TABLE_ROWS)?;
        let shown = if rows > MAX_TABLE_ROWS {
            format!("first {MAX_TABLE_ROWS} of {rows} rows")
        } else {
            format!("{rows} rows")
        };
        let _ = writeln!(
            out,
            "<h4 id=\"table-{}\">{}</h4>\n<p class=\"note\">{shown} · <a href=\"{}\">CSV</a> · \
             <a href=\"{}\">parquet</a></p>",
            anchor(name),
            html::escape(name),
            html::href(&csv),
            html::href(&format!("tables/{name}.parquet"))
        );
        out.push_str(&rendered);
    }
    let arrays: Vec<&&ArtefactRecord> = artefacts
        .iter()
        .filter(|a| a.path.starts_with("arrays/"))
        .collect();
    if !arrays.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>{} array{} (.npy)</summary>\n<ul>",
            arrays.len(),
            if arrays.len() == 1 { "" } else { "s" }
        );
        for a in arrays {
            let _ = writeln!(
                out,
                "<li><a href=\"{}\">{}</a> <span class=\"note\">{}</span></li>",
                html::href(&a.path),
                html::escape(&a.path),
                human_bytes(a.bytes)
            );
        }
        out.push_str("</ul>\n</details>\n");
    }
    Ok(out)
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
