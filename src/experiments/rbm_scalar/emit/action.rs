//! Item 6: the density of the action per site s = ½φᵀK_φφ/N of regenerated samples, with its
//! moments against the model's analytic ones.

use super::{Out, Run};
use crate::emit::figure::{Figure, Histogram, Panel, Series, Style};
use crate::emit::table::Table;
use crate::error::Result;

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
    let mut panels = Vec::new();
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
        let s = &r.eval.action_density;
        let lo = s.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let width = ((hi - lo) / bins as f64).max(f64::MIN_POSITIVE);
        let mut counts = vec![0usize; bins];
        for &v in s.iter() {
            counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
        }
        let n = s.len() as f64;
        let mut bars = Vec::with_capacity(bins);
        for (b, &count) in counts.iter().enumerate() {
            let (low, high) = (lo + b as f64 * width, lo + (b + 1) as f64 * width);
            let density = count as f64 / (n * width);
            histogram.push(BinRow {
                instance: r.label.clone(),
                bin_low: low,
                bin_high: high,
                count,
                density,
            });
            bars.push((low, high, density));
        }
        panels.push(panel(r, bars));
    }
    Table::from_rows("action_density", &["instance"], &moments)?.write(&out.tables)?;
    Table::from_rows(
        "action_density_histogram",
        &["instance", "bin_low"],
        &histogram,
    )?
    .write(&out.tables)?;
    Figure::grid(panels, 4, (560, 400)).write(&out.figures, "action_density")
}

fn panel(r: &Run, bars: Vec<(f64, f64, f64)>) -> Panel {
    let ev = &r.eval.evaluation;
    // s is a weighted sum of χ²₁ variables, not normal: mark the model's analytic mean and ±σ
    // instead of drawing a curve it does not follow.
    let top = bars.iter().map(|b| b.2).fold(0.0, f64::max);
    let vline = |x: f64, name: Option<String>, style: Style| {
        Series::new(name, vec![(x, 0.0), (x, top)], 3, style)
    };
    Panel::Histogram(Histogram {
        title: format!(
            "{}: ⟨s⟩ = {:.4}({:.0}), σ = {:.4}({:.0})",
            r.label,
            ev.action_mean,
            ev.action_mean_error * 1e4,
            ev.action_std,
            ev.action_std_error * 1e4
        ),
        x_label: "s = ½φᵀK_φφ/N".into(),
        y_label: "density".into(),
        bars,
        overlays: vec![
            vline(
                ev.action_mean_model,
                Some(format!("model ⟨s⟩ = {:.4}", ev.action_mean_model)),
                Style::Line,
            ),
            vline(
                ev.action_mean_model - ev.action_std_model,
                Some(format!("± σ = {:.4}", ev.action_std_model)),
                Style::Dashed,
            ),
            vline(
                ev.action_mean_model + ev.action_std_model,
                None,
                Style::Dashed,
            ),
        ],
    })
}
