//! Item 5: the propagator G(t) of the target, the prediction, the model's K⁻¹ and the
//! regenerated samples, against distance; and, for the flow fits, the whole matrices.

use ndarray::Array2;

use super::{Out, Run, families, family_title};
use crate::emit::figure::{BLACK_INK, Figure, Heatmap, LineChart, Panel, Series, Style};
use crate::emit::slug;
use crate::emit::table::{Table, Unit, col, std_error};
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
    Table::from_rows("propagator_distance", &["instance", "t"], &distance)?
        .describe(super::SHARED_COLUMNS)
        .describe(&[
            col("t", Unit::Index, "lattice distance |i − j| (periodic)"),
            col(
                "target",
                Unit::One,
                "G(t) of the target field, averaged over translations",
            ),
            col("predicted", Unit::One, "G(t) of the predicted fixed point"),
            col("model", Unit::One, "G(t) of the fitted model, (K⁻¹)"),
            col(
                "samples",
                Unit::One,
                "G(t) measured on the regenerated fields",
            ),
            std_error(
                "samples_error",
                "samples",
                "jackknife standard error of samples over chains",
            ),
        ])
        .write(&out.tables)?;
    Table::from_rows("propagator_matrices", &["instance", "i", "j"], &matrices)?
        .describe(super::SHARED_COLUMNS)
        .describe(&[
            col("i", Unit::Index, "lattice site"),
            col("j", Unit::Index, "lattice site"),
            col("target", Unit::One, "⟨φ_i φ_j⟩ of the target"),
            col("model", Unit::One, "(K⁻¹)_ij of the fitted model"),
            col("samples", Unit::One, "⟨φ_i φ_j⟩ of the regenerated fields"),
        ])
        .write(&out.tables)?;
    let panels: Vec<Panel> = families(runs)
        .into_iter()
        .map(|(group, members)| distance_panel(group, &members))
        .collect();
    Figure::grid(panels, 2, (760, 520)).write(&out.figures, "propagator_distance")
}

/// One family's propagators: the target once (black), and per member its model K⁻¹ (solid),
/// the prediction (dashed) and the regenerated samples (markers with errors), in one colour.
fn distance_panel(group: FitGroup, members: &[&Run]) -> Panel {
    // Regulated propagators change sign at large t; the log axis shows magnitudes (the signed
    // values are in the table).
    let line = |r: &Run, v: &[f64]| -> Vec<(f64, f64)> {
        r.eval
            .evaluation
            .distances
            .iter()
            .zip(v)
            .map(|(&d, &g)| (d as f64, g.abs()))
            .collect()
    };
    let mut series = Vec::new();
    if !members.is_empty() {
        // What the line styles mean, once per panel.
        for (name, style) in [
            ("model K⁻¹ (solid)", Style::Line),
            ("predicted (dashed)", Style::Dashed),
            ("regenerated ± error", Style::Markers),
        ] {
            series.push(Series::new(Some(name.into()), Vec::new(), 7, style));
        }
    }
    for (k, r) in members.iter().enumerate() {
        let ev = &r.eval.evaluation;
        series.push(Series::new(
            Some(r.caption()),
            line(r, &ev.correlator_model),
            k,
            Style::Line,
        ));
        series.push(Series::new(
            None,
            line(r, &ev.correlator_predicted),
            k,
            Style::Dashed,
        ));
        let mut samples = Series::new(None, line(r, &ev.correlator_samples), k, Style::Markers);
        samples.errors = Some(ev.correlator_samples_error.clone());
        series.push(samples);
    }
    // The target last, on top: where a member follows it exactly, the black line says so.
    if let Some(first) = members.first() {
        series.insert(
            0,
            Series::new(
                Some("target K_φ⁻¹".into()),
                Vec::new(),
                BLACK_INK,
                Style::Line,
            ),
        );
        series.push(Series::new(
            None,
            line(first, &first.eval.evaluation.correlator_target),
            BLACK_INK,
            Style::Line,
        ));
    }
    Panel::Line(LineChart {
        title: format!("propagator, {}", family_title(group)),
        x_label: "distance t".into(),
        y_label: "|G(t)|".into(),
        log_y: true,
        series,
        ..Default::default()
    })
}

fn heatmaps(r: &Run, target_cov: &Array2<f64>) -> Figure {
    let model = &r.eval.model_covariance;
    let samples = &r.eval.sample_covariance;
    let difference = target_cov - samples;
    // The three propagators share one colour scale; the difference has its own, small one,
    // printed on its colour bar.
    let limit = Some(Heatmap::common_limit([target_cov, model, samples]));
    let panel = |title: String, values: Array2<f64>, limit: Option<f64>| {
        Panel::Heatmap(Heatmap {
            title,
            x_label: "site j".into(),
            y_label: "site i".into(),
            values,
            limit,
        })
    };
    Figure::grid(
        vec![
            panel("target ⟨φ_i φ_j⟩ = K_φ⁻¹".into(), target_cov.clone(), limit),
            panel(format!("model K⁻¹ ({})", r.caption()), model.clone(), limit),
            panel(
                format!("regenerated ({} samples)", r.eval.evaluation.samples),
                samples.clone(),
                limit,
            ),
            panel("target − regenerated (own scale)".into(), difference, None),
        ],
        2,
        (560, 480),
    )
}
