//! The emit stage's §3 and §5 part: the tables `orbit_diffusion` (per estimator and setting:
//! the fitted rate of the mean squared Procrustes angle with its error and intercept, the
//! first-order prediction where one exists, the smallest singular value of W seen),
//! `orbit_diffusion_exponents` (the rate's power laws in α and |B| per estimator, fitted and
//! predicted), `orbit_msa` (the MSA curves), `kernel_temperature` (the stationary width of
//! each non-degenerate mode of K and the mean level spacing of each ± pair against the
//! linearised prediction), `kernel_temperature_pairs` (settings with equal α/|B| side by side)
//! and `level_spacing` (pooled spacing histogram against the Wigner surmise); the figures
//! `orbit_msa`, `orbit_diffusion_rates`, `kernel_temperature` and `level_spacing`.

use std::collections::BTreeMap;

use ndarray::Array2;
use serde::Serialize;

use super::diffuse::{self, DiffusionRun, LevelNoise};
use crate::analysis::jackknife::jackknife;
use crate::analysis::stats::weighted_line;
use crate::emit::figure::{Figure, Histogram, LineChart, Panel, Series, Style};
use crate::emit::table::{Table, Unit, col, std_error};
use crate::error::Result;
use crate::models::rbm::orbit::wigner_surmise;
use crate::pipeline::{StageContext, StageHandle};
use crate::spec::goldstone_modes::{Estimator, Setting};

/// One planned diffusion instance: the estimator, its nominal grid point and the handle.
pub type DiffusionInstance = (Estimator, Setting, StageHandle);

#[derive(Default, Serialize)]
struct RateRow {
    estimator: String,
    learning_rate: f64,
    batch: usize,
    alpha_over_batch: f64,
    replicas: usize,
    burn_in_updates: usize,
    updates: usize,
    rate: f64,
    rate_error: f64,
    intercept: f64,
    intercept_error: f64,
    fit_first_lag: usize,
    fit_last_lag: usize,
    fit_lags: usize,
    predicted_rate: Option<f64>,
    rate_over_predicted: Option<f64>,
    smallest_singular_value: f64,
}

#[derive(Default, Serialize)]
struct ExponentRow {
    estimator: String,
    scan: &'static str,
    points: usize,
    exponent: f64,
    exponent_error: f64,
    chi_squared: f64,
    predicted: f64,
    deviation_in_errors: f64,
}

#[derive(Default, Serialize)]
struct MsaRow {
    estimator: String,
    learning_rate: f64,
    batch: usize,
    lag: usize,
    msa: Option<f64>,
    msa_error: Option<f64>,
}

#[derive(Default, Serialize)]
struct TemperatureRow {
    estimator: String,
    learning_rate: f64,
    batch: usize,
    alpha_over_batch: f64,
    kappa: f64,
    quantity: &'static str,
    measured: f64,
    measured_error: f64,
    predicted: f64,
    measured_over_predicted: f64,
    /// The authors' notebook width (μ² − κ)√(α/(κ|B|)), non-degenerate modes only.
    notebook_width: Option<f64>,
}

#[derive(Default, Serialize)]
struct EqualTemperatureRow {
    estimator: String,
    alpha_over_batch: f64,
    kappa: f64,
    quantity: &'static str,
    first: String,
    second: String,
    measured_first: f64,
    measured_second: f64,
    difference_in_errors: f64,
}

#[derive(Default, Serialize)]
struct SpacingRow {
    estimator: String,
    bin_low: f64,
    bin_high: f64,
    density: f64,
    wigner: f64,
    samples: usize,
}

/// One level's width or spacing against √(α/|B|): measured with errors, and predicted.
#[derive(Default)]
struct TemperatureCurve {
    measured: Vec<(f64, f64)>,
    errors: Vec<f64>,
    predicted: Vec<(f64, f64)>,
}

/// A level's measured width (one mode) or mean spacing (a pair), with its jackknife error over
/// replicas, and the prediction.
fn level_statistic(level: &LevelNoise) -> (&'static str, f64, f64, f64) {
    let replicas = level.mean.len();
    if level.dimension == 1 {
        // Pooled around the grand mean: E[x²] − E[x]², each replica one jackknife bin.
        let features = Array2::from_shape_fn((replicas, 2), |(r, k)| {
            if k == 0 {
                level.mean[r]
            } else {
                level.mean_square[r]
            }
        });
        let jk = jackknife(features.view(), replicas, |m| {
            vec![(m[1] - m[0] * m[0]).max(0.0).sqrt()]
        });
        (
            "width",
            jk.estimate[0],
            jk.error[0],
            level.predicted_variance.sqrt(),
        )
    } else {
        let features = Array2::from_shape_fn((replicas, 1), |(r, _)| level.mean[r]);
        let jk = jackknife(features.view(), replicas, |m| vec![m[0]]);
        (
            "mean_spacing",
            jk.estimate[0],
            jk.error[0],
            (std::f64::consts::PI * level.predicted_variance).sqrt(),
        )
    }
}

fn setting_name(run: &DiffusionRun) -> String {
    format!("α={},|B|={}", run.learning_rate, run.batch)
}

/// Writes the §3 and §5 tables and figures.
pub fn emit(
    ctx: &StageContext<'_>,
    instances: &[DiffusionInstance],
    scan_batch: usize,
    scan_learning_rate: f64,
    mu_squared: f64,
) -> Result<()> {
    if instances.is_empty() {
        return Ok(());
    }
    let mut runs: BTreeMap<Estimator, Vec<(Setting, DiffusionRun)>> = BTreeMap::new();
    for (estimator, setting, handle) in instances {
        runs.entry(*estimator)
            .or_default()
            .push((*setting, diffuse::load(ctx.upstream(handle)?)?));
    }
    let mut rates = Vec::new();
    let mut msa_rows = Vec::new();
    let mut temperature = Vec::new();
    let mut exponents = Vec::new();
    let mut equal = Vec::new();
    let mut spacing_rows = Vec::new();
    let mut msa_panels = Vec::new();
    let mut alpha_series = Vec::new();
    let mut batch_series = Vec::new();
    let mut temperature_panels = Vec::new();
    let mut spacing_panels = Vec::new();
    for (color, (estimator, list)) in runs.iter().enumerate() {
        let name = estimator.to_string();
        let mut curves = Vec::new();
        let mut temperature_series: BTreeMap<String, TemperatureCurve> = BTreeMap::new();
        for (index, (_, run)) in list.iter().enumerate() {
            let fit = &run.fit;
            rates.push(RateRow {
                estimator: name.clone(),
                learning_rate: run.learning_rate,
                batch: run.batch,
                alpha_over_batch: run.learning_rate / run.batch as f64,
                replicas: run.replicas,
                burn_in_updates: run.burn_in_updates,
                updates: run.updates,
                rate: fit.rate,
                rate_error: fit.rate_error,
                intercept: fit.intercept,
                intercept_error: fit.intercept_error,
                fit_first_lag: fit.first_lag,
                fit_last_lag: fit.last_lag,
                fit_lags: fit.lags,
                predicted_rate: run.predicted_rate,
                rate_over_predicted: run.predicted_rate.map(|p| fit.rate / p),
                smallest_singular_value: run
                    .smallest_singular_value
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min),
            });
            let curve = diffuse::mean_curve(run);
            let mut points = Vec::new();
            let mut errors = Vec::new();
            for (lag, (mean, error)) in run.lags.iter().zip(&curve) {
                let finite = mean.is_finite();
                msa_rows.push(MsaRow {
                    estimator: name.clone(),
                    learning_rate: run.learning_rate,
                    batch: run.batch,
                    lag: *lag,
                    msa: finite.then_some(*mean),
                    msa_error: finite.then_some(*error),
                });
                if finite && *mean > 0.0 {
                    points.push((*lag as f64, *mean));
                    errors.push(*error);
                }
            }
            let mut series =
                Series::new(Some(setting_name(run)), points, index, Style::LineMarkers);
            series.errors = Some(errors);
            curves.push(series);

            let temperature_x = (run.learning_rate / run.batch as f64).sqrt();
            for level in &run.levels {
                let (quantity, measured, error, predicted) = level_statistic(level);
                let notebook_width = (level.dimension == 1).then(|| {
                    (mu_squared - level.kappa)
                        * (run.learning_rate / (level.kappa * run.batch as f64)).sqrt()
                });
                temperature.push(TemperatureRow {
                    estimator: name.clone(),
                    learning_rate: run.learning_rate,
                    batch: run.batch,
                    alpha_over_batch: run.learning_rate / run.batch as f64,
                    kappa: level.kappa,
                    quantity,
                    measured,
                    measured_error: error,
                    predicted,
                    measured_over_predicted: measured / predicted,
                    notebook_width,
                });
                let entry = temperature_series
                    .entry(format!(
                        "{}, κ = {:.3}",
                        quantity.replace('_', " "),
                        level.kappa
                    ))
                    .or_default();
                entry.measured.push((temperature_x, measured));
                entry.errors.push(error);
                entry.predicted.push((temperature_x, predicted));
            }
        }
        msa_panels.push(Panel::Line(LineChart {
            title: format!("Orbit MSA, {name}"),
            x_label: "lag (updates)".into(),
            y_label: "⟨½‖log R‖²⟩".into(),
            log_x: true,
            log_y: true,
            series: curves,
            hide_legend: false,
        }));

        // Power laws of the rate along each scan.
        for scan in ["learning_rate", "batch"] {
            let along_alpha = scan == "learning_rate";
            let x_of = |r: &DiffusionRun| {
                if along_alpha {
                    r.learning_rate
                } else {
                    r.batch as f64
                }
            };
            let mut sorted: Vec<&DiffusionRun> = list
                .iter()
                .filter(|(s, r)| {
                    let on_scan = if along_alpha {
                        s.batch == scan_batch
                    } else {
                        s.learning_rate == scan_learning_rate
                    };
                    on_scan && r.fit.rate > 0.0
                })
                .map(|(_, r)| r)
                .collect();
            sorted.sort_by(|a, b| x_of(a).total_cmp(&x_of(b)));
            let measured: Vec<(f64, f64)> = sorted.iter().map(|r| (x_of(r), r.fit.rate)).collect();
            let mut series = Series::new(Some(name.clone()), measured, color, Style::Markers);
            series.errors = Some(sorted.iter().map(|r| r.fit.rate_error).collect());
            let target = if along_alpha {
                &mut alpha_series
            } else {
                &mut batch_series
            };
            target.push(series);
            if sorted.len() < 2 {
                continue;
            }
            let x: Vec<f64> = sorted.iter().map(|r| x_of(r).ln()).collect();
            let y: Vec<f64> = sorted.iter().map(|r| r.fit.rate.ln()).collect();
            let sigma: Vec<f64> = sorted
                .iter()
                .map(|r| r.fit.rate_error / r.fit.rate)
                .collect();
            let line = weighted_line(&x, &y, &sigma);
            let predicted = if along_alpha {
                sorted[0].predicted_exponents.0
            } else {
                sorted[0].predicted_exponents.1
            };
            exponents.push(ExponentRow {
                estimator: name.clone(),
                scan,
                points: sorted.len(),
                exponent: line.slope,
                exponent_error: line.slope_error,
                chi_squared: line.chi_squared,
                predicted,
                deviation_in_errors: (line.slope - predicted) / line.slope_error,
            });
            let fitted = x
                .iter()
                .map(|lx| (lx.exp(), (line.intercept + line.slope * lx).exp()))
                .collect();
            target.push(Series::new(None, fitted, color, Style::Dashed));
            let first_order: Vec<(f64, f64)> = sorted
                .iter()
                .filter_map(|r| r.predicted_rate.map(|p| (x_of(r), p)))
                .collect();
            if !first_order.is_empty() {
                target.push(Series::new(None, first_order, color, Style::Line));
            }
        }

        // Equal α/|B|, different α and |B|.
        for (i, (_, a)) in list.iter().enumerate() {
            for (_, b) in &list[i + 1..] {
                let (ta, tb) = (
                    a.learning_rate / a.batch as f64,
                    b.learning_rate / b.batch as f64,
                );
                if (ta - tb).abs() > 1e-12 * ta {
                    continue;
                }
                for (la, lb) in a.levels.iter().zip(&b.levels) {
                    let (quantity, ma, ea, _) = level_statistic(la);
                    let (_, mb, eb, _) = level_statistic(lb);
                    equal.push(EqualTemperatureRow {
                        estimator: name.clone(),
                        alpha_over_batch: ta,
                        kappa: la.kappa,
                        quantity,
                        first: setting_name(a),
                        second: setting_name(b),
                        measured_first: ma,
                        measured_second: mb,
                        difference_in_errors: (ma - mb) / (ea * ea + eb * eb).sqrt(),
                    });
                }
            }
        }

        let mut series = Vec::new();
        for (k, (label, curve)) in temperature_series.into_iter().enumerate() {
            let mut m = Series::new(Some(label), curve.measured, k, Style::Markers);
            m.errors = Some(curve.errors);
            series.push(m);
            let mut p = curve.predicted;
            p.sort_by(|a, b| a.0.total_cmp(&b.0));
            series.push(Series::new(None, p, k, Style::Dashed));
        }
        temperature_panels.push(Panel::Line(LineChart {
            title: format!("Noise of K, {name} (dashed: linearised)"),
            x_label: "√(α/|B|)".into(),
            y_label: "width or mean level spacing".into(),
            log_x: false,
            log_y: false,
            series,
            hide_legend: false,
        }));

        // Spacings of every pair and setting, each normalised to its own mean.
        let mut normalised = Vec::new();
        for (_, run) in list {
            for level in run.levels.iter().filter(|l| l.dimension == 2) {
                let mean = level.spacings.iter().sum::<f64>() / level.spacings.len() as f64;
                normalised.extend(level.spacings.iter().map(|s| s / mean));
            }
        }
        if !normalised.is_empty() {
            let bins = 24;
            let width = 3.0 / bins as f64;
            let mut counts = vec![0usize; bins];
            for s in &normalised {
                let b = (s / width) as usize;
                if b < bins {
                    counts[b] += 1;
                }
            }
            let total = normalised.len() as f64;
            let mut bars = Vec::new();
            for (b, &count) in counts.iter().enumerate() {
                let (low, high) = (b as f64 * width, (b + 1) as f64 * width);
                let density = count as f64 / (total * width);
                // The surmise averaged over the bin (Simpson), as the histogram is.
                let wigner = (wigner_surmise(low)
                    + 4.0 * wigner_surmise(0.5 * (low + high))
                    + wigner_surmise(high))
                    / 6.0;
                spacing_rows.push(SpacingRow {
                    estimator: name.clone(),
                    bin_low: low,
                    bin_high: high,
                    density,
                    wigner,
                    samples: normalised.len(),
                });
                bars.push((low, high, density));
            }
            let curve = (0..=120)
                .map(|k| {
                    let s = 3.0 * k as f64 / 120.0;
                    (s, wigner_surmise(s))
                })
                .collect();
            spacing_panels.push(Panel::Histogram(Histogram {
                title: format!("± pair spacings, {name} ({} samples)", normalised.len()),
                x_label: "s / ⟨s⟩".into(),
                y_label: "density".into(),
                bars,
                overlays: vec![Series::new(
                    Some("Wigner surmise (β = 1)".into()),
                    curve,
                    1,
                    Style::Line,
                )],
            }));
        }
    }

    let tables = ctx.out_dir.join("tables");
    Table::from_rows(
        "orbit_diffusion",
        &["estimator", "learning_rate", "batch"],
        &rates,
    )?
    .describe(super::emit::KEY_COLUMNS)
    .describe(&[
        col("replicas", Unit::Count, "independent replicas per setting"),
        col(
            "burn_in_updates",
            Unit::Updates,
            "updates before recording (3 slowest relaxation times)",
        ),
        col("updates", Unit::Updates, "recorded updates per replica"),
        col(
            "rate",
            Unit::PerUpdate,
            "slope of MSA(ℓ) = ⟨½‖log R(t, t+ℓ)‖²⟩ per update, mean over replicas",
        ),
        std_error(
            "rate_error",
            "rate",
            "standard error of rate from the spread over replicas",
        ),
        col("intercept", Unit::One, "intercept of the linear MSA fit"),
        std_error(
            "intercept_error",
            "intercept",
            "standard error of intercept from the spread over replicas",
        ),
        col(
            "fit_first_lag",
            Unit::Updates,
            "first lag of the fit window",
        ),
        col("fit_last_lag", Unit::Updates, "last lag of the fit window"),
        col("fit_lags", Unit::Count, "lags in the fit window"),
        col(
            "predicted_rate",
            Unit::PerUpdate,
            "the first-order closed form (tangent estimators only)",
        ),
        col("rate_over_predicted", Unit::One, "rate / predicted_rate"),
        col(
            "smallest_singular_value",
            Unit::One,
            "the smallest singular value of W over every run (1 at the minimum)",
        ),
    ])
    .write(&tables)?;
    Table::from_rows(
        "orbit_diffusion_exponents",
        &["estimator", "scan"],
        &exponents,
    )?
    .describe(super::emit::KEY_COLUMNS)
    .describe(&[
        col(
            "scan",
            Unit::Label,
            "which parameter the scan varies: learning rate α or batch |B|",
        ),
        col("points", Unit::Count, "settings in the scan"),
        col(
            "exponent",
            Unit::One,
            "slope of log rate against log α (or log |B|), weighted fit",
        ),
        std_error(
            "exponent_error",
            "exponent",
            "standard error of exponent from the weighted fit",
        ),
        col("chi_squared", Unit::One, "χ² of the weighted fit"),
        col("predicted", Unit::One, "the predicted exponent"),
        col(
            "deviation_in_errors",
            Unit::One,
            "(exponent − predicted) / exponent_error",
        ),
    ])
    .write(&tables)?;
    Table::from_rows(
        "orbit_msa",
        &["estimator", "learning_rate", "batch", "lag"],
        &msa_rows,
    )?
    .describe(super::emit::KEY_COLUMNS)
    .describe(&[
        col(
            "lag",
            Unit::Updates,
            "ℓ, the lag between the two weight matrices compared",
        ),
        col(
            "msa",
            Unit::One,
            "MSA(ℓ) = ⟨½‖log R(t, t+ℓ)‖²_F⟩ over time origins and replicas (rad²)",
        ),
        std_error(
            "msa_error",
            "msa",
            "standard error of msa from the spread over replicas",
        ),
    ])
    .write(&tables)?;
    Table::from_rows(
        "kernel_temperature",
        &["estimator", "learning_rate", "batch", "kappa"],
        &temperature,
    )?
    .describe(super::emit::KEY_COLUMNS)
    .describe(&[
        col(
            "quantity",
            Unit::Label,
            "width (std of v_aᵀKv_a, single modes) or mean_spacing (of a ± pair's 2 × 2 block)",
        ),
        col("measured", Unit::One, "the measured width or mean spacing"),
        std_error(
            "measured_error",
            "measured",
            "jackknife standard error over replicas",
        ),
        col("predicted", Unit::One, "the AR(1) prediction"),
        col("measured_over_predicted", Unit::One, "measured / predicted"),
        col(
            "notebook_width",
            Unit::One,
            "the authors' notebook width (μ² − κ)√(α/(κ|B|)), single modes only",
        ),
    ])
    .write(&tables)?;
    Table::from_rows(
        "kernel_temperature_pairs",
        &["estimator", "alpha_over_batch", "kappa", "first"],
        &equal,
    )?
    .describe(super::emit::KEY_COLUMNS)
    .describe(&[
        col("quantity", Unit::Label, "width or mean_spacing"),
        col(
            "first",
            Unit::Label,
            "one setting (α, |B|) of the pair with equal α/|B|",
        ),
        col("second", Unit::Label, "the other setting"),
        col(
            "measured_first",
            Unit::One,
            "the quantity at the first setting",
        ),
        col(
            "measured_second",
            Unit::One,
            "the quantity at the second setting",
        ),
        col(
            "difference_in_errors",
            Unit::One,
            "their difference over the combined standard error",
        ),
    ])
    .write(&tables)?;
    Table::from_rows("level_spacing", &["estimator", "bin_low"], &spacing_rows)?
        .describe(super::emit::KEY_COLUMNS)
        .describe(&[
            col(
                "bin_low",
                Unit::One,
                "lower edge of the bin of spacing / mean spacing",
            ),
            col("bin_high", Unit::One, "upper edge of the bin"),
            col(
                "density",
                Unit::One,
                "probability density of the normalised spacings in the bin",
            ),
            col(
                "wigner",
                Unit::One,
                "the β = 1 Wigner surmise (π s/2) exp(−π s²/4) averaged over the bin",
            ),
            col(
                "samples",
                Unit::Count,
                "spacings pooled over replicas and pairs",
            ),
        ])
        .write(&tables)?;

    let figures = ctx.out_dir.join("figures");
    let columns = msa_panels.len().clamp(1, 3);
    Figure::grid(msa_panels, columns, (520, 400)).write(&figures, "orbit_msa")?;
    Figure::grid(
        vec![
            Panel::Line(LineChart {
                title: format!(
                    "Orbit diffusion rate vs α at |B| = {scan_batch} (dashed: fit; solid: first order)"
                ),
                x_label: "α".into(),
                y_label: "d⟨½‖log R‖²⟩/d update".into(),
                log_x: true,
                log_y: true,
                series: alpha_series,
                hide_legend: false,
            }),
            Panel::Line(LineChart {
                title: format!("… vs |B| at α = {scan_learning_rate} (× the estimator's factor)"),
                x_label: "|B|".into(),
                y_label: "d⟨½‖log R‖²⟩/d update".into(),
                log_x: true,
                log_y: true,
                series: batch_series,
                hide_legend: false,
            }),
        ],
        2,
        (620, 460),
    )
    .write(&figures, "orbit_diffusion_rates")?;
    let columns = temperature_panels.len().clamp(1, 3);
    Figure::grid(temperature_panels, columns, (520, 400)).write(&figures, "kernel_temperature")?;
    let columns = spacing_panels.len().clamp(1, 3);
    Figure::grid(spacing_panels, columns, (480, 360)).write(&figures, "level_spacing")
}
