//! Items 1 and 2: the flow of K's spectrum towards the target's κ_a (with the fixed points each
//! fit reached) and the plateaus of W's squared singular values at (μ² − κ_a)/σ².

use super::{Out, Run, column_against_updates};
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::slug;
use crate::emit::table::{Table, Unit, col, std_error};
use crate::error::Result;
use crate::spec::rbm_scalar::GradientMode;

#[derive(Default, serde::Serialize)]
struct SpectrumRow {
    instance: String,
    update: i64,
    index: usize,
    eigenvalue: f64,
    eigenvalue_ensemble_std: f64,
    kappa: f64,
}

#[derive(Default, serde::Serialize)]
struct FixedPointRow {
    instance: String,
    mode: GradientMode,
    index: usize,
    predicted: f64,
    #[serde(rename = "final")]
    final_value: f64,
    abs_error_final: f64,
    late_mean: f64,
    late_error: f64,
    late_pull: f64,
}

#[derive(Default, serde::Serialize)]
struct XiSquaredRow {
    instance: String,
    update: i64,
    index: usize,
    xi_squared: f64,
    fixed_point: f64,
}

/// The first positive and the last update of a fit: a log time axis shows the IR-first
/// ordering early and the slow UV modes late.
fn update_range(r: &Run) -> (f64, f64) {
    let last = r.fit.updates.last().copied().unwrap_or(1.0);
    let first = r
        .fit
        .updates
        .iter()
        .copied()
        .find(|&u| u > 0.0)
        .unwrap_or(1.0);
    (first, last)
}

/// The plateau of ξ²_a: (μ² − κ_a)/σ² for a learnable mode, zero otherwise.
fn xi_squared_fixed_point(r: &Run, kappa: f64) -> f64 {
    let s2 = r.params.sigma_h * r.params.sigma_h;
    ((r.eval.evaluation.mu_squared_final - kappa) / s2).max(0.0)
}

/// Item 1: `spectrum_flow` (every record of every mode), `fixed_points` (where each fit ended
/// against the predicted spectrum) and one `spectrum_flow_<fit>` figure per fit.
pub(super) fn spectrum_flow(runs: &[&Run], kappa: &[f64], out: &Out) -> Result<()> {
    let mut flow = Vec::new();
    let mut fixed = Vec::new();
    for r in runs {
        let ev = &r.eval.evaluation;
        for (rec, &u) in r.fit.updates.iter().enumerate() {
            for (a, &k) in kappa.iter().enumerate() {
                flow.push(SpectrumRow {
                    instance: r.label.clone(),
                    update: u as i64,
                    index: a,
                    eigenvalue: r.fit.eigenvalues_mean[[rec, a]],
                    eigenvalue_ensemble_std: r.fit.eigenvalues_std[[rec, a]],
                    kappa: k,
                });
            }
        }
        for a in 0..kappa.len() {
            let (predicted, late, error) = (
                ev.predicted_eigenvalues[a],
                ev.late_eigenvalues[a],
                ev.late_errors[a],
            );
            fixed.push(FixedPointRow {
                instance: r.label.clone(),
                mode: r.mode(),
                index: a,
                predicted,
                final_value: ev.final_eigenvalues[a],
                abs_error_final: (ev.final_eigenvalues[a] - predicted).abs(),
                late_mean: late,
                late_error: error,
                late_pull: if error > 0.0 {
                    (late - predicted) / error
                } else {
                    f64::NAN
                },
            });
        }
        let (first, last) = update_range(r);
        let mut series: Vec<Series> = (0..kappa.len())
            .map(|a| {
                Series::new(
                    (a == 0).then(|| "λ_a (eigenvalues of K)".into()),
                    column_against_updates(&r.fit, &r.fit.eigenvalues_mean, a),
                    0,
                    Style::Line,
                )
            })
            .collect();
        for (a, &k) in kappa.iter().enumerate() {
            series.push(Series::hline(
                (a == 0).then(|| "κ_a (target)".into()),
                k,
                first,
                last,
                3,
            ));
        }
        series.push(Series::hline(
            Some("μ²".into()),
            ev.mu_squared_final,
            first,
            last,
            2,
        ));
        Figure::single(Panel::Line(LineChart {
            title: format!(
                "Spectrum flow, {} ({} updates, α = {})",
                r.caption(),
                last,
                r.params.learning_rate
            ),
            x_label: "update".into(),
            y_label: "eigenvalue of K".into(),
            log_x: true,
            series,
            ..Default::default()
        }))
        .write(&out.figures, &format!("spectrum_flow_{}", slug(&r.label)))?;
    }
    Table::from_rows("spectrum_flow", &["instance", "update", "index"], &flow)?
        .describe(super::SHARED_COLUMNS)
        .describe(&[
            col(
                "eigenvalue",
                Unit::One,
                "λ_a, the eigenvalue of the model's K (sorted ascending), ensemble mean",
            ),
            col(
                "eigenvalue_ensemble_std",
                Unit::One,
                "its standard deviation over the ensemble",
            ),
        ])
        .write(&out.tables)?;
    Table::from_rows("fixed_points", &["instance", "index"], &fixed)?
        .describe(super::SHARED_COLUMNS)
        .describe(&[
            col("mode", Unit::Label, "the negative phase: exact gradient or PCD"),
            col("predicted", Unit::One, "the predicted fixed point of λ_a"),
            col("final", Unit::One, "λ_a at the end of the run (ensemble mean)"),
            col("abs_error_final", Unit::One, "|final − predicted|"),
            col("late_mean", Unit::One, "mean of the ensemble-mean λ_a over the tail window (last records)"),
            std_error(
                "late_error",
                "late_mean",
                "standard error of late_mean from 10 blocks of the window (autocorrelation counted)",
            ),
            col("late_pull", Unit::One, "(late_mean − predicted) / late_error"),
        ])
        .write(&out.tables)
}

/// Item 2: `xi_squared_flow` and one `xi_squared_flow_<fit>` figure per fit.
pub(super) fn xi_squared_flow(runs: &[&Run], kappa: &[f64], out: &Out) -> Result<()> {
    let mut rows = Vec::new();
    for r in runs {
        let width = r.fit.xi_squared_mean.ncols();
        for (rec, &u) in r.fit.updates.iter().enumerate() {
            for (a, &k) in kappa.iter().enumerate().take(width) {
                rows.push(XiSquaredRow {
                    instance: r.label.clone(),
                    update: u as i64,
                    index: a,
                    xi_squared: r.fit.xi_squared_mean[[rec, a]],
                    fixed_point: xi_squared_fixed_point(r, k),
                });
            }
        }
        let (first, last) = update_range(r);
        let mut series: Vec<Series> = (0..width)
            .map(|a| {
                Series::new(
                    Some(format!("ξ²_{a}")),
                    column_against_updates(&r.fit, &r.fit.xi_squared_mean, a),
                    a,
                    Style::Line,
                )
            })
            .collect();
        for (a, &k) in kappa.iter().enumerate().take(width) {
            series.push(Series::hline(
                (a == 0).then(|| "(μ² − κ_a)/σ²".into()),
                xi_squared_fixed_point(r, k),
                first,
                last,
                7,
            ));
        }
        Figure::single(Panel::Line(LineChart {
            title: format!("Squared singular values of W, {}", r.caption()),
            x_label: "update".into(),
            y_label: "ξ²".into(),
            log_x: true,
            series,
            ..Default::default()
        }))
        .write(&out.figures, &format!("xi_squared_flow_{}", slug(&r.label)))?;
    }
    Table::from_rows("xi_squared_flow", &["instance", "update", "index"], &rows)?
        .describe(super::SHARED_COLUMNS)
        .describe(&[
            col(
                "xi_squared",
                Unit::One,
                "ξ²_a, the squared singular value of W along the mode, ensemble mean",
            ),
            col(
                "fixed_point",
                Unit::One,
                "its plateau (μ² − κ_a)/σ_h² for a learnable mode, else 0",
            ),
        ])
        .write(&out.tables)
}
