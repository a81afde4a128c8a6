//! Items 3 and 4: the UV cutoff, set by the number of hidden units (the N_h lowest κ learnt,
//! the rest stuck at μ²) or by the hidden mass (min(κ, μ²)): final spectra against the
//! prediction.

use super::{Out, Run, against_index};
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::table::{ColumnDoc, Table, Unit, col, std_error};
use crate::error::Result;

/// One mode of one fit's final spectrum; each table keeps the one of `n_hidden` and
/// `mu_squared` its sweep varies.
#[derive(Default, serde::Serialize)]
struct CutoffRow {
    n_hidden: usize,
    mu_squared: f64,
    index: usize,
    kappa: f64,
    eigenvalue: f64,
    predicted: f64,
    abs_error: f64,
    late_mean: f64,
    late_error: f64,
}

/// The columns of `cutoff_hidden` and `cutoff_mass` beyond the shared ones.
const COLUMNS: &[ColumnDoc] = &[
    col(
        "eigenvalue",
        Unit::One,
        "λ_a, the final eigenvalue of the model's K (ensemble mean)",
    ),
    col(
        "predicted",
        Unit::One,
        "the fixed point: κ_a for the N_h lowest modes below μ², else μ²",
    ),
    col("abs_error", Unit::One, "|eigenvalue − predicted|"),
    col(
        "late_mean",
        Unit::One,
        "mean of the ensemble-mean λ_a over the tail window (last records)",
    ),
    std_error(
        "late_error",
        "late_mean",
        "standard error of late_mean from 10 blocks of the window (autocorrelation counted)",
    ),
];

/// Item 3: `cutoff_hidden`, one line per N_h.
pub(super) fn cutoff_hidden(runs: &[&Run], kappa: &[f64], out: &Out) -> Result<()> {
    Table::from_rows("cutoff_hidden", &["n_hidden", "index"], &rows(runs, kappa))?
        .without(&["mu_squared"])
        .describe(super::SHARED_COLUMNS)
        .describe(COLUMNS)
        .write(&out.tables)?;
    figure(
        "UV cutoff by N_h: final spectrum (dashed: N_h lowest κ, rest at μ²)",
        runs,
        kappa,
    )
    .write(&out.figures, "cutoff_hidden")
}

/// Item 4: `cutoff_mass`, one line per μ².
pub(super) fn cutoff_mass(runs: &[&Run], kappa: &[f64], out: &Out) -> Result<()> {
    Table::from_rows("cutoff_mass", &["mu_squared", "index"], &rows(runs, kappa))?
        .without(&["n_hidden"])
        .describe(super::SHARED_COLUMNS)
        .describe(COLUMNS)
        .write(&out.tables)?;
    figure(
        "UV cutoff by μ²: final spectrum (dashed: min(κ, μ²))",
        runs,
        kappa,
    )
    .write(&out.figures, "cutoff_mass")
}

fn rows(runs: &[&Run], kappa: &[f64]) -> Vec<CutoffRow> {
    let mut rows = Vec::new();
    for r in runs {
        let ev = &r.eval.evaluation;
        for (a, &k) in kappa.iter().enumerate() {
            rows.push(CutoffRow {
                n_hidden: r.params.n_hidden,
                mu_squared: r.params.mu_squared,
                index: a,
                kappa: k,
                eigenvalue: ev.final_eigenvalues[a],
                predicted: ev.predicted_eigenvalues[a],
                abs_error: (ev.final_eigenvalues[a] - ev.predicted_eigenvalues[a]).abs(),
                late_mean: ev.late_eigenvalues[a],
                late_error: ev.late_errors[a],
            });
        }
    }
    rows
}

/// Final (solid) and predicted (dashed) spectra of every fit, with the target κ_a.
fn figure(title: &str, runs: &[&Run], kappa: &[f64]) -> Figure {
    let mut series = Vec::new();
    for (c, r) in runs.iter().enumerate() {
        let ev = &r.eval.evaluation;
        series.push(Series::new(
            Some(r.caption()),
            against_index(&ev.final_eigenvalues),
            c,
            Style::LineMarkers,
        ));
        series.push(Series::new(
            None,
            against_index(&ev.predicted_eigenvalues),
            c,
            Style::Dashed,
        ));
    }
    series.push(Series::new(
        Some("κ_a (target)".into()),
        against_index(kappa),
        7,
        Style::Markers,
    ));
    Figure::single(Panel::Line(LineChart {
        title: title.into(),
        x_label: "mode index a (κ ascending)".into(),
        y_label: "eigenvalue of K".into(),
        series,
        ..Default::default()
    }))
}
