//! Item 6: the density of the action per site s = ½φᵀK_φφ/N of regenerated samples, with its
//! moments against the model's analytic ones.

use super::{Out, Run, families, family_title};
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::table::{Table, Unit, col, std_error};
use crate::error::Result;
use crate::spec::rbm_scalar::FitGroup;

#[derive(Default, serde::Serialize)]
struct MomentsRow {
    instance: String,
    samples: usize,
    mean: f64,
    mean_error: f64,
    std: f64,
    std_error: f64,
    model_mean: f64,
    model_std: f64,
    predicted_mean: f64,
    predicted_std: f64,
}

#[derive(Default, serde::Serialize)]
struct BinRow {
    instance: String,
    bin_low: f64,
    bin_high: f64,
    count: usize,
    density: f64,
}

/// Item 6: `action_density` (moments), `action_density_histogram` (`bins` equal bins over
/// each fit's sample range) and the grid of histograms.
pub(super) fn action_densities(runs: &[&Run], bins: usize, out: &Out) -> Result<()> {
    let mut moments = Vec::new();
    let mut histogram = Vec::new();
    for r in runs {
        let ev = &r.eval.evaluation;
        moments.push(MomentsRow {
            instance: r.label.clone(),
            samples: ev.samples,
            mean: ev.action_mean,
            mean_error: ev.action_mean_error,
            std: ev.action_std,
            std_error: ev.action_std_error,
            model_mean: ev.action_mean_model,
            model_std: ev.action_std_model,
            predicted_mean: ev.action_mean_predicted,
            predicted_std: ev.action_std_predicted,
        });
        for (low, high, count, density) in density_bins(r, bins) {
            histogram.push(BinRow {
                instance: r.label.clone(),
                bin_low: low,
                bin_high: high,
                count,
                density,
            });
        }
    }
    Table::from_rows("action_density", &["instance"], &moments)?
        .describe(super::SHARED_COLUMNS)
        .describe(&[
            col(
                "samples",
                Unit::Count,
                "regenerated fields (independent chains)",
            ),
            col(
                "mean",
                Unit::One,
                "⟨s⟩ over the regenerated fields, s = ½φᵀK_φφ/N the action per site",
            ),
            std_error(
                "mean_error",
                "mean",
                "jackknife standard error of mean over chains",
            ),
            col(
                "std",
                Unit::One,
                "σ_s, the standard deviation of s over the regenerated fields",
            ),
            std_error(
                "std_error",
                "std",
                "jackknife standard error of std over chains",
            ),
            col("model_mean", Unit::One, "⟨s⟩ of the fitted model, analytic"),
            col("model_std", Unit::One, "σ_s of the fitted model, analytic"),
            col(
                "predicted_mean",
                Unit::One,
                "⟨s⟩ of the predicted fixed point",
            ),
            col(
                "predicted_std",
                Unit::One,
                "σ_s of the predicted fixed point",
            ),
        ])
        .write(&out.tables)?;
    Table::from_rows(
        "action_density_histogram",
        &["instance", "bin_low"],
        &histogram,
    )?
    .describe(super::SHARED_COLUMNS)
    .describe(&[
        col(
            "bin_low",
            Unit::One,
            "lower edge of the bin of s, the action per site",
        ),
        col("bin_high", Unit::One, "upper edge of the bin"),
        col("count", Unit::Count, "regenerated fields with s in the bin"),
        col("density", Unit::One, "count / (samples × bin width)"),
    ])
    .write(&out.tables)?;
    let panels: Vec<Panel> = families(runs)
        .into_iter()
        .map(|(group, members)| panel(group, &members, bins))
        .collect();
    Figure::grid(panels, 2, (760, 520)).write(&out.figures, "action_density")
}

/// `(low, high, count, density)` of `bins` equal bins over the range of a fit's samples of s.
fn density_bins(r: &Run, bins: usize) -> Vec<(f64, f64, usize, f64)> {
    let s = &r.eval.action_density;
    let lo = s.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = ((hi - lo) / bins as f64).max(f64::MIN_POSITIVE);
    let mut counts = vec![0usize; bins];
    for &v in s.iter() {
        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let n = s.len() as f64;
    counts
        .into_iter()
        .enumerate()
        .map(|(b, count)| {
            let (low, high) = (lo + b as f64 * width, lo + (b + 1) as f64 * width);
            (low, high, count, count as f64 / (n * width))
        })
        .collect()
}

/// One family's densities as step outlines, one colour per member, each with its model's
/// analytic mean as a dashed line of the same colour.
fn panel(group: FitGroup, members: &[&Run], bins: usize) -> Panel {
    let bars: Vec<_> = members.iter().map(|r| density_bins(r, bins)).collect();
    let top = bars
        .iter()
        .flat_map(|b| b.iter().map(|b| b.3))
        .fold(0.0, f64::max);
    let mut series = Vec::new();
    for (k, (r, bars)) in members.iter().zip(&bars).enumerate() {
        let ev = &r.eval.evaluation;
        let mut outline = Vec::with_capacity(2 * bars.len() + 2);
        if let Some(first) = bars.first() {
            outline.push((first.0, 0.0));
        }
        for &(low, high, _, density) in bars {
            outline.push((low, density));
            outline.push((high, density));
        }
        if let Some(last) = bars.last() {
            outline.push((last.1, 0.0));
        }
        series.push(Series::new(
            Some(format!(
                "{}: ⟨s⟩ = {:.4}({:.0}), model {:.4}",
                r.caption(),
                ev.action_mean,
                ev.action_mean_error * 1e4,
                ev.action_mean_model
            )),
            outline,
            k,
            Style::Line,
        ));
        // s is a weighted sum of χ²₁ variables, not normal: mark the model's analytic mean
        // instead of drawing a curve it does not follow.
        series.push(Series::new(
            None,
            vec![(ev.action_mean_model, 0.0), (ev.action_mean_model, top)],
            k,
            Style::Dashed,
        ));
    }
    series.push(Series::new(
        Some("model's analytic ⟨s⟩ (dashed)".into()),
        Vec::new(),
        7,
        Style::Dashed,
    ));
    Panel::Line(LineChart {
        title: format!("action density, {}", family_title(group)),
        x_label: "s = ½ φᵀ K_φ φ / N".into(),
        y_label: "density".into(),
        series,
        ..Default::default()
    })
}
