//! Writing artefacts: `.npy` arrays, tables (polars: CSV and parquet, stable column order,
//! sorted rows, fixed float formatting) and figures (plotters: PNG and SVG).

pub mod figure;
pub mod npy;
pub mod table;

/// `flow,mode=exact` → `flow_mode-exact`: a stage label as a file-name fragment of the
/// artefacts it writes.
pub fn slug(label: &str) -> String {
    label
        .chars()
        .map(|c| match c {
            ',' => '_',
            '=' => '-',
            c if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' => c,
            _ => '_',
        })
        .collect()
}
