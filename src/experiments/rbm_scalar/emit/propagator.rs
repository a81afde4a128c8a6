//! Item 5: the propagator G(t) of the target, the prediction, the model's K⁻¹ and the
//! regenerated samples, against distance; and, for the flow fits, the whole matrices.

use ndarray::Array2;

use super::{Out, Run};
use crate::emit::figure::{Figure, Heatmap, LineChart, Panel, Series, Style};
use crate::emit::slug;
use crate::emit::table::Table;
use crate::error::Result;
use crate::spec::rbm_scalar::FitGroup;

#[derive(Default, serde::Serialize)]
struct DistanceRow {
    instance: String,
    t: usize,
    target: f64,
    predicted: f64,
    model: f64,
    samples: f64,
    samples_error: f64,
}

#[derive(Default, serde::Serialize)]
struct MatrixRow {
    instance: String,
    i: usize,
    j: usize,
    target: f64,
    model: f64,
    samples: f64,
}

/// Item 5: `propagator_distance` with its grid of panels, one per fit, and for the flow fits
/// `propagator_matrices` and a `propagator_heatmaps_<fit>` figure.
pub(super) fn propagators(runs: &[&Run], target_cov: &Array2<f64>, out: &Out) -> Result<()> {
    let mut distance = Vec::new();
    let mut matrices = Vec::new();
    let mut panels = Vec::new();
    for r in runs {
        let ev = &r.eval.evaluation;
        for (k, &t) in ev.distances.iter().enumerate() {
            distance.push(DistanceRow {
                instance: r.label.clone(),
                t,
                target: ev.correlator_target[k],
                predicted: ev.correlator_predicted[k],
                model: ev.correlator_model[k],
                samples: ev.correlator_samples[k],
                samples_error: ev.correlator_samples_error[k],
            });
        }
        panels.push(distance_panel(r));
        if r.params.group == FitGroup::Flow {
            for ((i, j), &target) in target_cov.indexed_iter() {
                matrices.push(MatrixRow {
                    instance: r.label.clone(),
                    i,
                    j,
                    target,
                    model: r.eval.model_covariance[[i, j]],
                    samples: r.eval.sample_covariance[[i, j]],
                });
            }
            heatmaps(r, target_cov).write(
                &out.figures,
                &format!("propagator_heatmaps_{}", slug(&r.label)),
            )?;
        }
    }
    Table::from_rows("propagator_distance", &["instance", "t"], &distance)?.write(&out.tables)?;
    Table::from_rows("propagator_matrices", &["instance", "i", "j"], &matrices)?
        .write(&out.tables)?;
    Figure::grid(panels, 4, (520, 400)).write(&out.figures, "propagator_distance")
}

fn distance_panel(r: &Run) -> Panel {
    let ev = &r.eval.evaluation;
    // Regulated propagators change sign at large t; the log axis shows magnitudes (the signed
    // values are in the table).
    let line = |v: &[f64]| -> Vec<(f64, f64)> {
        ev.distances
            .iter()
            .zip(v)
            .map(|(&d, &g)| (d as f64, g.abs()))
            .collect()
    };
    let mut samples = Series::new(
        Some("regenerated".into()),
        line(&ev.correlator_samples),
        0,
        Style::Markers,
    );
    samples.errors = Some(ev.correlator_samples_error.clone());
    Panel::Line(LineChart {
        title: r.label.clone(),
        x_label: "t".into(),
        y_label: "|G(t)|".into(),
        log_y: true,
        series: vec![
            Series::new(
                Some("target".into()),
                line(&ev.correlator_target),
                7,
                Style::Line,
            ),
            Series::new(
                Some("predicted".into()),
                line(&ev.correlator_predicted),
                3,
                Style::Dashed,
            ),
            Series::new(
                Some("model K⁻¹".into()),
                line(&ev.correlator_model),
                2,
                Style::Line,
            ),
            samples,
        ],
        ..Default::default()
    })
}

fn heatmaps(r: &Run, target_cov: &Array2<f64>) -> Figure {
    Figure::grid(
        vec![
            Panel::Heatmap(Heatmap {
                title: "target K_φ⁻¹".into(),
                values: target_cov.clone(),
            }),
            Panel::Heatmap(Heatmap {
                title: "model K⁻¹".into(),
                values: r.eval.model_covariance.clone(),
            }),
            Panel::Heatmap(Heatmap {
                title: format!("regenerated ({} samples)", r.eval.evaluation.samples),
                values: r.eval.sample_covariance.clone(),
            }),
            Panel::Heatmap(Heatmap {
                title: "target − regenerated".into(),
                values: target_cov - &r.eval.sample_covariance,
            }),
        ],
        2,
        (480, 440),
    )
}
