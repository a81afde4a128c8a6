//! The HTML building blocks of the reports: escaping, the page frame with its inline style sheet,
//! key–value and data tables, and a reader that renders a result CSV for people (numbers to six
//! significant digits, the exact value in the cell's tooltip). No JavaScript anywhere.

use std::fmt::Write as _;
use std::path::Path;

use polars::prelude::*;

use crate::emit::table::ColumnInfo;
use crate::error::{Error, Result};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a relative path for an `href`/`src` attribute (segments kept).
pub fn href(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

const STYLE: &str = "
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0 auto;
       max-width: 1180px; padding: 1.5em 2em 4em; color: #1d2329; background: #fff; }
h1 { font-size: 1.6em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.25em; margin: 2em 0 0.5em; border-bottom: 2px solid #d8dee4; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 1.4em 0 0.4em; }
p.sub { color: #57606a; margin: 0 0 1em; }
nav { background: #f6f8fa; border: 1px solid #d8dee4; border-radius: 6px; padding: 0.6em 1em;
      display: flex; flex-wrap: wrap; gap: 0.3em 1.2em; }
details > summary { cursor: pointer; color: #0969da; margin: 0.3em 0; }
table { border-collapse: collapse; margin: 0.4em 0 0.8em; font-size: 0.9em; }
th, td { border: 1px solid #d8dee4; padding: 0.2em 0.55em; vertical-align: top; }
th { background: #f6f8fa; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace, monospace; white-space: nowrap; }
table.claims td { vertical-align: top; }
td.key { font-family: ui-monospace, monospace; white-space: nowrap; }
table.kv td:first-child { font-family: ui-monospace, monospace; white-space: nowrap; color: #57606a; }
.scroll { max-height: 28em; overflow: auto; display: inline-block; max-width: 100%; }
figure { margin: 0.6em 0 1.4em; }
figure img { max-width: 100%; border: 1px solid #d8dee4; }
figcaption { color: #57606a; font-size: 0.9em; }
.pair { display: flex; gap: 1em; align-items: flex-start; }
.pair figure { flex: 1 1 0; min-width: 0; }
.ok { color: #1a7f37; font-weight: 600; }
.bad { color: #cf222e; font-weight: 600; }
.warn { color: #9a6700; font-weight: 600; }
.note { color: #57606a; font-size: 0.9em; }
th .unit { display: block; font-weight: normal; color: #57606a; font-size: 0.85em; }
table.columns td:first-child { font-family: ui-monospace, monospace; white-space: nowrap; }
table.columns td:nth-child(2) { white-space: nowrap; color: #57606a; }
";

/// A whole page: `<head>` with the style sheet, then `body` (already HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        escape(title)
    )
}

/// A two-column table of names and values (both plain text).
pub fn key_values<'a>(rows: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let mut out = String::from("<table class=\"kv\">\n");
    for (key, value) in rows {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(key),
            escape(&value)
        );
    }
    out.push_str("</table>\n");
    out
}

/// The opening of a scrollable data table, up to its header row: each column's name, and
/// where the table describes it, its unit beneath and its description as tooltip.
fn table_head(header: &[String], columns: &[ColumnInfo]) -> String {
    let mut out = String::from("<div class=\"scroll\"><table>\n<tr>");
    for h in header {
        match columns.iter().find(|c| &c.name == h) {
            Some(c) => {
                let _ = write!(
                    out,
                    "<th title=\"{}\">{}<span class=\"unit\">{}</span></th>",
                    escape(&c.description),
                    escape(h),
                    escape(&column_unit(c))
                );
            }
            None => {
                let _ = write!(out, "<th>{}</th>", escape(h));
            }
        }
    }
    out.push_str("</tr>\n");
    out
}

/// A column's unit as a header shows it: `[s]`, `± of mean`, or nothing for labels.
fn column_unit(c: &ColumnInfo) -> String {
    match (&c.error_of, c.unit.as_str()) {
        (Some(of), _) => format!("± of {of}"),
        (None, "label") => String::new(),
        (None, unit) => format!("[{unit}]"),
    }
}

/// What each column of a table means: name, unit and description, one row each.
pub fn column_list(columns: &[ColumnInfo]) -> String {
    let mut out = String::from("<table class=\"columns\">\n");
    for c in columns {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.name),
            escape(&column_unit(c)),
            escape(&c.description)
        );
    }
    out.push_str("</table>\n");
    out
}

/// A data table from a header and rows of plain-text cells; cells that parse as numbers are
/// right-aligned.
pub fn data_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = table_head(header, &[]);
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let class = if cell.parse::<f64>().is_ok() {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
    out
}

/// A number as people read it: six significant digits, fixed notation between 1e-3 and 1e6.
pub fn readable_number(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        return format!("{x}");
    }
    let magnitude = x.abs();
    if (1e-3..1e6).contains(&magnitude) {
        let decimals = (5 - magnitude.log10().floor() as i32).clamp(0, 8) as usize;
        let text = format!("{x:.decimals$}");
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    } else {
        format!("{x:.5e}")
    }
}

/// A CSV result table as HTML: at most `max_rows` rows, floats made readable with the exact
/// CSV text as tooltip, headers with the `columns`' units and descriptions. Returns the HTML and
/// the total number of rows.
pub fn csv_table(
    path: &Path,
    max_rows: usize,
    described: &[ColumnInfo],
) -> Result<(String, usize)> {
    let frame = CsvReadOptions::default()
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish())
        .map_err(|e| Error::unreadable("csv table", path, e))?;
    let header: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let columns: Vec<&StringChunked> = frame
        .columns()
        .iter()
        .map(|c| c.str())
        .collect::<PolarsResult<_>>()
        .map_err(|e| Error::unreadable("csv table", path, e))?;
    let total = frame.height();
    let mut out = table_head(&header, described);
    for i in 0..total.min(max_rows) {
        out.push_str("<tr>");
        for column in &columns {
            let text = column.get(i).unwrap_or("");
            let is_float = text.contains(['.', 'e', 'E', 'n', 'N']);
            match text.parse::<f64>() {
                Ok(x) if is_float => {
                    let _ = write!(
                        out,
                        "<td class=\"num\" title=\"{}\">{}</td>",
                        escape(text),
                        escape(&readable_number(x))
                    );
                }
                Ok(_) => {
                    let _ = write!(out, "<td class=\"num\">{}</td>", escape(text));
                }
                Err(_) => {
                    let _ = write!(out, "<td>{}</td>", escape(text));
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
    Ok((out, total))
}

/// `to` relative to folder `from` (both absolute or both relative to one place), `/`-separated.
pub fn relative_path(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<String> = vec!["..".into(); from.len() - common];
    parts.extend(
        to_parts[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().to_string()),
    );
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(href("figures/a b#.png"), "figures/a%20b%23.png");
    }

    #[test]
    fn readable_numbers_keep_six_significant_digits() {
        assert_eq!(readable_number(1.240513615e-1), "0.124051");
        assert_eq!(readable_number(-6.883064645e-1), "-0.688306");
        assert_eq!(readable_number(7.126300026e6), "7.12630e6");
        assert_eq!(readable_number(2.062735751e4), "20627.4");
        assert_eq!(readable_number(3.0), "3");
        assert_eq!(readable_number(1.5e-7), "1.50000e-7");
        assert_eq!(readable_number(f64::NAN), "NaN");
    }

    #[test]
    fn relative_paths_climb_to_the_common_folder() {
        assert_eq!(
            relative_path(Path::new("/r/out"), Path::new("/r/results/a/fig.png")),
            "../results/a/fig.png"
        );
        assert_eq!(
            relative_path(Path::new("/r"), Path::new("/r/x.png")),
            "x.png"
        );
    }
}
