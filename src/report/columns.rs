//! The column reference of `docs/results-format.md`: every table of every experiment's
//! reference results with its columns' units and descriptions, read from the parquet metadata
//! the tables carry, so the document says what the code writes. A test keeps the document in
//! step (`SYMBREAK_BLESS=1` rewrites it); `symbreak reference columns` prints the same.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::emit::table::{ColumnInfo, Unit, read_column_infos};
use crate::error::{Error, Result};

/// Every table under `reference` (one folder per experiment, tables in
/// `<experiment>/tables/*.parquet`): experiment → table → its columns' descriptions.
pub type ColumnsByTable = BTreeMap<String, BTreeMap<String, Vec<ColumnInfo>>>;

/// The column descriptions of every reference table; an error names a table without them.
pub fn reference_columns(reference: &Path) -> Result<ColumnsByTable> {
    let mut out = ColumnsByTable::new();
    for experiment in sorted_entries(reference)? {
        let tables = experiment.join("tables");
        let Some(name) = experiment.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !tables.is_dir() {
            continue;
        }
        for path in sorted_entries(&tables)? {
            if path.extension().is_none_or(|e| e != "parquet") {
                continue;
            }
            let columns = read_column_infos(&path)?;
            if columns.is_empty() {
                return Err(Error::Other(format!(
                    "{}: the table records no column descriptions (written before they were?)",
                    path.display()
                )));
            }
            let table = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().to_string());
            out.entry(name.to_string())
                .or_default()
                .insert(table, columns);
        }
    }
    Ok(out)
}

/// Markdown for the units and for every reference table's columns, experiments and tables in
/// name order.
pub fn column_reference(reference: &Path) -> Result<String> {
    let mut out = String::from("## Units\n\n| unit | meaning |\n|---|---|\n");
    for unit in Unit::ALL {
        let _ = writeln!(out, "| `{}` | {} |", unit.symbol(), unit.meaning());
    }
    // Experiments of one family write the same tables: each is listed once, the others point
    // to it.
    let mut listed: Vec<(&[ColumnInfo], String)> = Vec::new();
    let all = reference_columns(reference)?;
    for (experiment, tables) in &all {
        let _ = write!(out, "\n## {experiment}\n");
        for (table, columns) in tables {
            let heading = format!("{experiment} / {table}");
            if let Some((_, first)) = listed.iter().find(|(c, _)| *c == columns.as_slice()) {
                let _ = write!(
                    out,
                    "\n### {heading}\n\nThe columns of [{first}](#{}).\n",
                    anchor(first)
                );
                continue;
            }
            listed.push((columns, heading.clone()));
            let _ = write!(
                out,
                "\n### {heading}\n\n| column | unit | meaning |\n|---|---|---|\n"
            );
            for c in columns {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    c.name,
                    unit_cell(c),
                    c.description.replace('|', "\\|")
                );
            }
        }
    }
    Ok(out)
}

/// The anchor a Markdown renderer gives the heading `text` (GitHub's rule: lower case,
/// punctuation other than `-` and `_` dropped, spaces as `-`).
fn anchor(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The unit column of a row: the symbol, "± of x" for the standard error of x, blank for labels.
fn unit_cell(c: &ColumnInfo) -> String {
    match (&c.error_of, c.unit.as_str()) {
        (Some(of), unit) => format!("`{unit}`, ± of `{of}`"),
        (None, "label") => String::new(),
        (None, unit) => format!("`{unit}`"),
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("listing", dir, e))?
        .flatten()
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line after which `docs/results-format.md` is generated.
    const GENERATED_MARKER: &str = "<!-- Generated from results/reference/ by the test results_format_lists_every_reference_column; do not edit below. -->";

    /// `docs/results-format.md` lists every column of every reference table as the parquet
    /// files describe it. After changing a table: `SYMBREAK_BLESS=1 cargo test --release
    /// results_format` rewrites the generated part.
    #[test]
    fn results_format_lists_every_reference_column() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let doc_path = root.join("docs/results-format.md");
        let doc = std::fs::read_to_string(&doc_path).unwrap();
        let at = doc
            .find(GENERATED_MARKER)
            .expect("docs/results-format.md has the generated marker");
        let head = &doc[..at + GENERATED_MARKER.len()];
        let generated = column_reference(&root.join("results/reference")).unwrap();
        let want = format!("{head}\n\n{generated}");
        if std::env::var_os("SYMBREAK_BLESS").is_some() {
            std::fs::write(&doc_path, &want).unwrap();
            return;
        }
        assert_eq!(anchor("dwe-sotu / curves"), "dwe-sotu--curves");
        assert!(
            doc == want,
            "docs/results-format.md is out of date with results/reference/: run \
             SYMBREAK_BLESS=1 cargo test --release results_format"
        );
    }
}
