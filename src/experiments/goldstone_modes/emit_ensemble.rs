//! The emit stage's §4 part: the tables `weight_correlations` (per ensemble: the χ² of every
//! distinct entry of ⟨W_ia W_jb⟩ against its Haar prediction, how well the runs converged) and
//! `weight_moments` (column norms, overlaps, nearest-neighbour sums, Tr O and the sign of det O
//! against their predictions, mean and variance each with its standard error); the figure
//! `weight_correlations` (measured and predicted ⟨W_ia W_jb⟩ as heat maps).

use serde::Serialize;

use super::ensemble;
use crate::emit::figure::{Figure, Heatmap, Panel};
use crate::emit::table::{Table, Unit, col, std_error};
use crate::error::Result;
use crate::pipeline::{StageContext, StageHandle};

#[derive(Default, Serialize)]
struct CorrelationRow {
    ensemble: String,
    n_hidden: usize,
    mu_squared: f64,
    epsilon: f64,
    runs: usize,
    tensor_entries: usize,
    tensor_chi_squared: f64,
    chi_squared_per_entry: f64,
    tensor_max_abs_z: f64,
    pinned_entries: usize,
    pinned_max_abs_deviation: f64,
    worst_gradient_norm: f64,
    worst_kernel_deviation: f64,
    median_updates: f64,
    median_newton_steps: f64,
    worst_negative_curvatures: usize,
}

#[derive(Default, Serialize)]
struct MomentRow {
    ensemble: String,
    n_hidden: usize,
    mu_squared: f64,
    observable: String,
    samples: usize,
    mean: f64,
    mean_error: f64,
    predicted_mean: Option<f64>,
    mean_deviation_in_errors: Option<f64>,
    variance: f64,
    variance_error: f64,
    predicted_variance: Option<f64>,
    variance_deviation_in_errors: Option<f64>,
}

/// Writes the §4 tables and figure.
pub fn emit(ctx: &StageContext<'_>, ensembles: &[(String, StageHandle)]) -> Result<()> {
    if ensembles.is_empty() {
        return Ok(());
    }
    let mut correlations = Vec::new();
    let mut moments = Vec::new();
    let mut panels = Vec::new();
    for (index, (label, handle)) in ensembles.iter().enumerate() {
        let (summary, measured, predicted) = ensemble::load(ctx.upstream(handle)?, label)?;
        correlations.push(CorrelationRow {
            ensemble: summary.ensemble.clone(),
            n_hidden: summary.n_hidden,
            mu_squared: summary.mu_squared,
            epsilon: summary.epsilon,
            runs: summary.runs,
            tensor_entries: summary.tensor_entries,
            tensor_chi_squared: summary.tensor_chi_squared,
            chi_squared_per_entry: summary.tensor_chi_squared / summary.tensor_entries as f64,
            tensor_max_abs_z: summary.tensor_max_abs_z,
            pinned_entries: summary.pinned_entries,
            pinned_max_abs_deviation: summary.pinned_max_abs_deviation,
            worst_gradient_norm: summary.worst_gradient_norm,
            worst_kernel_deviation: summary.worst_kernel_deviation,
            median_updates: summary.median_updates,
            median_newton_steps: summary.median_newton_steps,
            worst_negative_curvatures: summary.worst_negative_curvatures,
        });
        for m in &summary.moments {
            let deviation = |value: f64, predicted: Option<f64>, error: f64, compare: bool| {
                predicted.and_then(|p| (compare && error > 0.0).then(|| (value - p) / error))
            };
            moments.push(MomentRow {
                ensemble: summary.ensemble.clone(),
                n_hidden: summary.n_hidden,
                mu_squared: summary.mu_squared,
                observable: m.observable.clone(),
                samples: m.samples,
                mean: m.mean,
                mean_error: m.mean_error,
                predicted_mean: m.predicted_mean,
                mean_deviation_in_errors: deviation(
                    m.mean,
                    m.predicted_mean,
                    m.mean_error,
                    m.compare_mean,
                ),
                variance: m.variance,
                variance_error: m.variance_error,
                predicted_variance: m.predicted_variance,
                variance_deviation_in_errors: deviation(
                    m.variance,
                    m.predicted_variance,
                    m.variance_error,
                    m.compare_variance,
                ),
            });
        }
        // The first ensemble (the Haar one of the first configuration) and the contrast.
        if index == 0 || index + 1 == ensembles.len() {
            let ensemble = if summary.epsilon > 0.0 {
                format!("weighted L2, ε = {}", summary.epsilon)
            } else {
                "Haar".to_string()
            };
            let what = format!(
                "{ensemble}, N_h = {}, μ² = {}",
                summary.n_hidden, summary.mu_squared
            );
            // One colour scale for the pair: a measured tensor is read against its prediction.
            let limit = Some(Heatmap::common_limit([&measured, &predicted]));
            panels.push(Panel::Heatmap(Heatmap {
                title: format!("measured (⟨W W⟩, {} runs): {what}", summary.runs),
                x_label: "j·N_h + b".into(),
                y_label: "i·N_h + a (visible i, hidden a)".into(),
                values: measured,
                limit,
            }));
            panels.push(Panel::Heatmap(Heatmap {
                title: "predicted weight correlations".into(),
                x_label: "j·N_h + b".into(),
                y_label: "i·N_h + a".into(),
                values: predicted,
                limit,
            }));
        }
    }
    let tables = ctx.out_dir.join("tables");
    Table::from_rows(
        "weight_correlations",
        &["ensemble", "n_hidden", "mu_squared"],
        &correlations,
    )?
    .describe(super::emit::KEY_COLUMNS)
    .describe(&[
        col(
            "epsilon",
            Unit::One,
            "ε of the weighted penalty (0: the symmetric loss)",
        ),
        col(
            "runs",
            Unit::Count,
            "exact-gradient runs from independent starts",
        ),
        col(
            "tensor_entries",
            Unit::Count,
            "distinct entries of ⟨W_ia W_jb⟩ compared with the prediction",
        ),
        col(
            "tensor_chi_squared",
            Unit::One,
            "Σ over those entries of ((measured − predicted)/jackknife error)²",
        ),
        col(
            "chi_squared_per_entry",
            Unit::One,
            "tensor_chi_squared / tensor_entries (≈ 1 for a correct prediction)",
        ),
        col(
            "tensor_max_abs_z",
            Unit::One,
            "the largest |measured − predicted| / error over the entries",
        ),
        col(
            "pinned_entries",
            Unit::Count,
            "entries equal in every run (pinned by the penalty), left out of χ²",
        ),
        col(
            "pinned_max_abs_deviation",
            Unit::One,
            "max |measured − predicted| over the pinned entries",
        ),
        col(
            "worst_gradient_norm",
            Unit::One,
            "the largest ‖∇ℒ‖ at which a run stopped",
        ),
        col(
            "worst_kernel_deviation",
            Unit::One,
            "the largest |λ_a − λ_a*| of a run's kernel K against the fixed point's",
        ),
        col(
            "median_updates",
            Unit::Updates,
            "median over runs of the gradient updates",
        ),
        col(
            "median_newton_steps",
            Unit::Count,
            "median over runs of the Newton polish steps",
        ),
        col(
            "worst_negative_curvatures",
            Unit::Count,
            "the most Hessian eigenvalues below zero at a run's end",
        ),
    ])
    .write(&tables)?;
    Table::from_rows(
        "weight_moments",
        &["ensemble", "n_hidden", "mu_squared", "observable"],
        &moments,
    )?
    .describe(super::emit::KEY_COLUMNS)
    .describe(&[
        col(
            "observable",
            Unit::Label,
            "the function of W measured in each run",
        ),
        col(
            "samples",
            Unit::Count,
            "values of the observable (runs × its copies per run)",
        ),
        col("mean", Unit::One, "its mean over the ensemble"),
        std_error(
            "mean_error",
            "mean",
            "jackknife standard error of mean over runs",
        ),
        col(
            "predicted_mean",
            Unit::One,
            "the mean the Haar-distributed end points predict",
        ),
        col(
            "mean_deviation_in_errors",
            Unit::One,
            "(mean − predicted_mean) / mean_error",
        ),
        col("variance", Unit::One, "its variance over the ensemble"),
        std_error(
            "variance_error",
            "variance",
            "jackknife standard error of variance over runs",
        ),
        col("predicted_variance", Unit::One, "the predicted variance"),
        col(
            "variance_deviation_in_errors",
            Unit::One,
            "(variance − predicted_variance) / variance_error",
        ),
    ])
    .write(&tables)?;
    Figure::grid(panels, 2, (620, 560)).write(&ctx.out_dir.join("figures"), "weight_correlations")
}
