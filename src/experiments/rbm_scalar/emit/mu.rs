//! Item 8: the hidden mass μ trained with the weights, against its prediction: N_u over the
//! sum of 1/κ of the unlearned modes, or κ_max when every mode is learnable.

use super::{Out, Run};
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::table::{Table, Unit, col};
use crate::error::Result;

#[derive(Default, serde::Serialize)]
struct FlowRow {
    instance: String,
    update: i64,
    mu: f64,
    mu_squared: f64,
}

#[derive(Default, serde::Serialize)]
struct FinalRow {
    instance: String,
    n_hidden: usize,
    mu_final: f64,
    mu_squared_final: f64,
    mu_squared_predicted: Option<f64>,
    kappa_max: f64,
}

/// Item 8: `mu_flow` (every record), `mu_final` (against the prediction) and the figure.
pub(super) fn mu_flow(runs: &[&Run], kappa: &[f64], out: &Out) -> Result<()> {
    let kappa_max = kappa.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let last = runs
        .iter()
        .filter_map(|r| r.fit.updates.last().copied())
        .fold(1.0_f64, f64::max);
    let mut flow = Vec::new();
    let mut finals = Vec::new();
    let mut series = Vec::new();
    for (c, r) in runs.iter().enumerate() {
        let ev = &r.eval.evaluation;
        for (&u, &mu) in r.fit.updates.iter().zip(&r.fit.mu_mean) {
            flow.push(FlowRow {
                instance: r.label.clone(),
                update: u as i64,
                mu,
                mu_squared: mu.powi(2),
            });
        }
        finals.push(FinalRow {
            instance: r.label.clone(),
            n_hidden: r.params.n_hidden,
            mu_final: ev.mu_squared_final.sqrt(),
            mu_squared_final: ev.mu_squared_final,
            mu_squared_predicted: ev.mu_squared_predicted,
            kappa_max,
        });
        series.push(Series::new(
            Some(format!("μ², {}", r.caption())),
            r.fit
                .updates
                .iter()
                .zip(&r.fit.mu_mean)
                .map(|(&u, &m)| (u, m * m))
                .collect(),
            c,
            Style::Line,
        ));
        // With every mode learnable the prediction is κ_max itself, drawn once below.
        if let Some(p) = ev
            .mu_squared_predicted
            .filter(|_| r.params.n_hidden < kappa.len())
        {
            series.push(Series::hline(
                Some(format!(
                    "N_u / Σ 1/κ over unlearned modes (N_h = {})",
                    r.params.n_hidden
                )),
                p,
                0.0,
                last,
                c,
            ));
        }
    }
    series.push(Series::hline(
        Some("κ_max (prediction for N_h = N_v)".into()),
        kappa_max,
        0.0,
        last,
        7,
    ));
    Table::from_rows("mu_flow", &["instance", "update"], &flow)?
        .describe(super::SHARED_COLUMNS)
        .describe(&[
            col(
                "mu",
                Unit::One,
                "μ, the trained hidden mass (ensemble mean)",
            ),
            col("mu_squared", Unit::One, "μ²"),
        ])
        .write(&out.tables)?;
    Table::from_rows("mu_final", &["instance"], &finals)?
        .describe(super::SHARED_COLUMNS)
        .describe(&[
            col("mu_final", Unit::One, "μ at the end of the run"),
            col("mu_squared_final", Unit::One, "μ² at the end of the run"),
            col(
                "mu_squared_predicted",
                Unit::One,
                "N_u / Σ over unlearned modes of 1/κ_a for N_h < N_v; κ_max for N_h = N_v (approached from below)",
            ),
            col("kappa_max", Unit::One, "the largest target eigenvalue κ_max"),
        ])
        .write(&out.tables)?;
    Figure::single(Panel::Line(LineChart {
        title: "Trained μ²".into(),
        x_label: "update".into(),
        y_label: "μ²".into(),
        series,
        ..Default::default()
    }))
    .write(&out.figures, "mu_flow")
}
