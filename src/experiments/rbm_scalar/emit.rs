//! Emit stage: the experiment's tables and figures. Every figure has a table with its data.
//!
//! | item | table(s) | figure(s) |
//! |---|---|---|
//! | 1 spectrum flow | `spectrum_flow`, `fixed_points` | `spectrum_flow_<fit>` |
//! | 2 ξ² plateaus | `xi_squared_flow` | `xi_squared_flow_<fit>` |
//! | 3 cutoff by N_h | `cutoff_hidden` | `cutoff_hidden` |
//! | 4 cutoff by μ² | `cutoff_mass` | `cutoff_mass` |
//! | 5 propagator | `propagator_distance`, `propagator_matrices` | `propagator_distance`, `propagator_heatmaps_<fit>` |
//! | 6 action density | `action_density`, `action_density_histogram` | `action_density` |
//! | 7 2×1 toy | `toy_angle` | `toy_angle` |
//! | 8 μ trained | `mu_flow`, `mu_final` | `mu_flow` |
//! | 9 relaxation | `relaxation` | `relaxation` |

// Tables are filled column by column from several arrays indexed by the same mode.
#![allow(clippy::needless_range_loop)]

use std::path::Path;

use super::evaluate::{self, EvaluateOutput, is_exact};
use super::fit::{self, FitOutput};
use super::preprocess;
use crate::emit::figure::{Figure, Heatmap, Histogram, LineChart, Panel, Series, Style};
use crate::emit::npy;
use crate::emit::slug;
use crate::emit::table::Table;
use crate::error::Result;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::spec::rbm_scalar::{FitGroup, FitParams, InitKind};

#[derive(serde::Serialize)]
pub struct EmitStage {
    pub fits: Vec<FittedPoint>,
    pub histogram_bins: usize,
    pub target: StageHandle,
    pub toy: StageHandle,
}

/// One sweep point with its fit and evaluate instances.
#[derive(serde::Serialize)]
pub struct FittedPoint {
    pub params: FitParams,
    pub fit: StageHandle,
    pub evaluate: StageHandle,
}

struct Run<'a> {
    params: &'a FitParams,
    label: String,
    fit: FitOutput,
    eval: EvaluateOutput,
}

fn init_name(p: &FitParams) -> String {
    match p.init {
        InitKind::Random => "random".into(),
        InitKind::Aligned => "aligned".into(),
    }
}

fn mode_name(p: &FitParams) -> String {
    if is_exact(p) {
        "exact".into()
    } else {
        "pcd".into()
    }
}

impl Stage for EmitStage {
    const KIND: StageKind = StageKind::Emit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-scalar/emit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let (_, target_cov, kappa) = preprocess::load(ctx.upstream(&self.target)?)?;
        let kappa = kappa.to_vec();
        let mut runs = Vec::with_capacity(self.fits.len());
        for point in &self.fits {
            let label = point.params.label();
            runs.push(Run {
                params: &point.params,
                fit: fit::load(ctx.upstream(&point.fit)?, &label)?,
                eval: evaluate::load(ctx.upstream(&point.evaluate)?, &label)?,
                label,
            });
        }
        ctx.progress.set_length(9);
        let tables = ctx.out_dir.join("tables");
        let figures = ctx.out_dir.join("figures");
        let of = |g: FitGroup| runs.iter().filter(move |r| r.params.group == g);

        spectrum_flow(
            &of(FitGroup::Flow).collect::<Vec<_>>(),
            &kappa,
            &tables,
            &figures,
        )?;
        ctx.progress.set_position(2);
        cutoff(
            "cutoff_hidden",
            "n_hidden",
            &of(FitGroup::CutoffHidden).collect::<Vec<_>>(),
            |r| r.params.n_hidden as f64,
            &kappa,
            &tables,
            &figures,
        )?;
        cutoff(
            "cutoff_mass",
            "mu_squared",
            &of(FitGroup::CutoffMass).collect::<Vec<_>>(),
            |r| r.params.mu_squared,
            &kappa,
            &tables,
            &figures,
        )?;
        ctx.progress.set_position(4);
        let observed: Vec<&Run> = runs
            .iter()
            .filter(|r| r.params.group != FitGroup::Relaxation)
            .collect();
        propagators(&observed, &target_cov, &tables, &figures)?;
        action_densities(&observed, self.histogram_bins, &tables, &figures)?;
        ctx.progress.set_position(6);
        toy(ctx.upstream(&self.toy)?, &tables, &figures)?;
        mu_flow(
            &of(FitGroup::MuTrained).collect::<Vec<_>>(),
            &kappa,
            &tables,
            &figures,
        )?;
        relaxation(
            &of(FitGroup::Relaxation).collect::<Vec<_>>(),
            &tables,
            &figures,
        )?;
        ctx.progress.set_position(9);
        Ok(())
    }
}

/// Column `a` of a records × width trajectory as (update, value) points.
fn column_against_updates(
    fit: &FitOutput,
    values: &ndarray::Array2<f64>,
    a: usize,
) -> Vec<(f64, f64)> {
    fit.updates
        .iter()
        .zip(values.column(a))
        .map(|(&u, &v)| (u, v))
        .collect()
}

fn spectrum_flow(runs: &[&Run], kappa: &[f64], tables: &Path, figures: &Path) -> Result<()> {
    let (mut inst, mut upd, mut idx, mut val, mut sd, mut kap) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut xi_inst, mut xi_upd, mut xi_idx, mut xi_val, mut xi_fix) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut fp_inst, mut fp_mode, mut fp_idx, mut fp_kappa, mut fp_final, mut fp_late, mut fp_err) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for r in runs {
        let ev = &r.eval.evaluation;
        let n = kappa.len();
        let mu2 = ev.mu_squared_final;
        let s2 = r.params.sigma_h * r.params.sigma_h;
        for (rec, &u) in r.fit.updates.iter().enumerate() {
            for a in 0..n {
                inst.push(r.label.clone());
                upd.push(u as i64);
                idx.push(a as i64);
                val.push(r.fit.eigenvalues_mean[[rec, a]]);
                sd.push(r.fit.eigenvalues_std[[rec, a]]);
                kap.push(kappa[a]);
            }
            for a in 0..r.fit.xi_squared_mean.ncols() {
                xi_inst.push(r.label.clone());
                xi_upd.push(u as i64);
                xi_idx.push(a as i64);
                xi_val.push(r.fit.xi_squared_mean[[rec, a]]);
                xi_fix.push(((mu2 - kappa[a]) / s2).max(0.0));
            }
        }
        for a in 0..n {
            fp_inst.push(r.label.clone());
            fp_mode.push(mode_name(r.params));
            fp_idx.push(a as i64);
            fp_kappa.push(ev.predicted_eigenvalues[a]);
            fp_final.push(ev.final_eigenvalues[a]);
            fp_late.push(ev.late_eigenvalues[a]);
            fp_err.push(ev.late_errors[a]);
        }
        let last = r.fit.updates.last().copied().unwrap_or(1.0);
        // Log time axis: the IR-first ordering happens early, the slow UV modes late.
        let first = r
            .fit
            .updates
            .iter()
            .copied()
            .find(|&u| u > 0.0)
            .unwrap_or(1.0);
        let mut series: Vec<Series> = (0..n)
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
        series.push(Series::hline(Some("μ²".into()), mu2, first, last, 2));
        Figure::single(Panel::Line(LineChart {
            title: format!(
                "Spectrum flow, {} ({} updates, α = {})",
                r.label, last, r.params.learning_rate
            ),
            x_label: "update".into(),
            y_label: "eigenvalue of K".into(),
            log_x: true,
            series,
            ..Default::default()
        }))
        .write(figures, &format!("spectrum_flow_{}", slug(&r.label)))?;

        let mut xi_series: Vec<Series> = (0..r.fit.xi_squared_mean.ncols())
            .map(|a| {
                Series::new(
                    Some(format!("ξ²_{a}")),
                    column_against_updates(&r.fit, &r.fit.xi_squared_mean, a),
                    a,
                    Style::Line,
                )
            })
            .collect();
        for (a, &k) in kappa.iter().enumerate().take(r.fit.xi_squared_mean.ncols()) {
            xi_series.push(Series::hline(
                (a == 0).then(|| "(μ² − κ_a)/σ²".into()),
                ((mu2 - k) / s2).max(0.0),
                first,
                last,
                7,
            ));
        }
        Figure::single(Panel::Line(LineChart {
            title: format!("Squared singular values of W, {}", r.label),
            x_label: "update".into(),
            y_label: "ξ²".into(),
            log_x: true,
            series: xi_series,
            ..Default::default()
        }))
        .write(figures, &format!("xi_squared_flow_{}", slug(&r.label)))?;
    }
    Table::new("spectrum_flow", &["instance", "update", "index"])
        .str("instance", inst)
        .i64("update", upd)
        .i64("index", idx)
        .f64("eigenvalue", val)
        .f64("eigenvalue_ensemble_std", sd)
        .f64("kappa", kap)
        .write(tables)?;
    Table::new("xi_squared_flow", &["instance", "update", "index"])
        .str("instance", xi_inst)
        .i64("update", xi_upd)
        .i64("index", xi_idx)
        .f64("xi_squared", xi_val)
        .f64("fixed_point", xi_fix)
        .write(tables)?;
    let abs: Vec<f64> = fp_final
        .iter()
        .zip(&fp_kappa)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let pulls: Vec<f64> = fp_late
        .iter()
        .zip(&fp_kappa)
        .zip(&fp_err)
        .map(|((l, k), e)| if *e > 0.0 { (l - k) / e } else { f64::NAN })
        .collect();
    Table::new("fixed_points", &["instance", "index"])
        .str("instance", fp_inst)
        .str("mode", fp_mode)
        .i64("index", fp_idx)
        .f64("predicted", fp_kappa)
        .f64("final", fp_final)
        .f64("abs_error_final", abs)
        .f64("late_mean", fp_late)
        .f64("late_error", fp_err)
        .f64("late_pull", pulls)
        .write(tables)
}

fn cutoff(
    name: &str,
    key: &str,
    runs: &[&Run],
    value: impl Fn(&Run) -> f64,
    kappa: &[f64],
    tables: &Path,
    figures: &Path,
) -> Result<()> {
    let (mut k_col, mut idx, mut kap, mut eigen, mut late, mut late_err, mut pred) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut series = Vec::new();
    for (c, r) in runs.iter().enumerate() {
        let ev = &r.eval.evaluation;
        for a in 0..kappa.len() {
            k_col.push(value(r));
            idx.push(a as i64);
            kap.push(kappa[a]);
            eigen.push(ev.final_eigenvalues[a]);
            late.push(ev.late_eigenvalues[a]);
            late_err.push(ev.late_errors[a]);
            pred.push(ev.predicted_eigenvalues[a]);
        }
        let pts = ev
            .final_eigenvalues
            .iter()
            .enumerate()
            .map(|(a, &l)| (a as f64, l))
            .collect();
        series.push(Series::new(
            Some(format!("{key} = {}", value(r))),
            pts,
            c,
            Style::LineMarkers,
        ));
        let pts = ev
            .predicted_eigenvalues
            .iter()
            .enumerate()
            .map(|(a, &l)| (a as f64, l))
            .collect();
        series.push(Series::new(None, pts, c, Style::Dashed));
    }
    let pts = kappa
        .iter()
        .enumerate()
        .map(|(a, &k)| (a as f64, k))
        .collect();
    series.push(Series::new(
        Some("κ_a (target)".into()),
        pts,
        7,
        Style::Markers,
    ));
    let abs: Vec<f64> = eigen
        .iter()
        .zip(&pred)
        .map(|(a, b)| (a - b).abs())
        .collect();
    Table::new(name, &[key, "index"])
        .f64(key, k_col)
        .i64("index", idx)
        .f64("kappa", kap)
        .f64("eigenvalue", eigen)
        .f64("predicted", pred)
        .f64("abs_error", abs)
        .f64("late_mean", late)
        .f64("late_error", late_err)
        .write(tables)?;
    let title = if key == "n_hidden" {
        "UV cutoff by N_h: final spectrum (dashed: N_h lowest κ, rest at μ²)"
    } else {
        "UV cutoff by μ²: final spectrum (dashed: min(κ, μ²))"
    };
    Figure::single(Panel::Line(LineChart {
        title: title.into(),
        x_label: "mode index a (κ ascending)".into(),
        y_label: "eigenvalue of K".into(),
        series,
        ..Default::default()
    }))
    .write(figures, name)
}

fn propagators(
    runs: &[&Run],
    target_cov: &ndarray::Array2<f64>,
    tables: &Path,
    figures: &Path,
) -> Result<()> {
    let (mut inst, mut t, mut tg, mut pr, mut md, mut sm, mut se) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut m_inst, mut m_i, mut m_j, mut m_t, mut m_m, mut m_s) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut panels = Vec::new();
    for r in runs {
        let ev = &r.eval.evaluation;
        for (k, &d) in ev.distances.iter().enumerate() {
            inst.push(r.label.clone());
            t.push(d as i64);
            tg.push(ev.correlator_target[k]);
            pr.push(ev.correlator_predicted[k]);
            md.push(ev.correlator_model[k]);
            sm.push(ev.correlator_samples[k]);
            se.push(ev.correlator_samples_error[k]);
        }
        // Regulated propagators change sign at large t; the log axis shows magnitudes (the
        // signed values are in the table).
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
        panels.push(Panel::Line(LineChart {
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
        }));
        if r.params.group == FitGroup::Flow {
            let n = target_cov.nrows();
            for i in 0..n {
                for j in 0..n {
                    m_inst.push(r.label.clone());
                    m_i.push(i as i64);
                    m_j.push(j as i64);
                    m_t.push(target_cov[[i, j]]);
                    m_m.push(r.eval.model_covariance[[i, j]]);
                    m_s.push(r.eval.sample_covariance[[i, j]]);
                }
            }
            let diff = target_cov - &r.eval.sample_covariance;
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
                        title: format!("regenerated ({} samples)", ev.samples),
                        values: r.eval.sample_covariance.clone(),
                    }),
                    Panel::Heatmap(Heatmap {
                        title: "target − regenerated".into(),
                        values: diff,
                    }),
                ],
                2,
                (480, 440),
            )
            .write(figures, &format!("propagator_heatmaps_{}", slug(&r.label)))?;
        }
    }
    Table::new("propagator_distance", &["instance", "t"])
        .str("instance", inst)
        .i64("t", t)
        .f64("target", tg)
        .f64("predicted", pr)
        .f64("model", md)
        .f64("samples", sm)
        .f64("samples_error", se)
        .write(tables)?;
    Table::new("propagator_matrices", &["instance", "i", "j"])
        .str("instance", m_inst)
        .i64("i", m_i)
        .i64("j", m_j)
        .f64("target", m_t)
        .f64("model", m_m)
        .f64("samples", m_s)
        .write(tables)?;
    Figure::grid(panels, 4, (520, 400)).write(figures, "propagator_distance")
}

fn action_densities(runs: &[&Run], bins: usize, tables: &Path, figures: &Path) -> Result<()> {
    let mut table = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    let (mut h_inst, mut h_lo, mut h_hi, mut h_count, mut h_density) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut panels = Vec::new();
    for r in runs {
        let ev = &r.eval.evaluation;
        table.0.push(r.label.clone());
        table.1.push(ev.samples as i64);
        table.2.push(ev.action_mean);
        table.3.push(ev.action_mean_error);
        table.4.push(ev.action_std);
        table.5.push(ev.action_std_error);
        table.6.push(ev.action_mean_model);
        table.7.push(ev.action_std_model);
        table.8.push(ev.action_mean_predicted);
        table.9.push(ev.action_std_predicted);
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
        for (b, &c) in counts.iter().enumerate() {
            let (l, h) = (lo + b as f64 * width, lo + (b + 1) as f64 * width);
            h_inst.push(r.label.clone());
            h_lo.push(l);
            h_hi.push(h);
            h_count.push(c as i64);
            h_density.push(c as f64 / (n * width));
            bars.push((l, h, c as f64 / (n * width)));
        }
        // s is a weighted sum of χ²₁ variables, not normal: mark the model's analytic mean
        // and ±σ instead of drawing a curve it does not follow.
        let top = bars.iter().map(|b| b.2).fold(0.0, f64::max);
        let vline = |x: f64, name: Option<String>, color: usize, style: Style| {
            Series::new(name, vec![(x, 0.0), (x, top)], color, style)
        };
        panels.push(Panel::Histogram(Histogram {
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
                    3,
                    Style::Line,
                ),
                vline(
                    ev.action_mean_model - ev.action_std_model,
                    Some(format!("± σ = {:.4}", ev.action_std_model)),
                    3,
                    Style::Dashed,
                ),
                vline(
                    ev.action_mean_model + ev.action_std_model,
                    None,
                    3,
                    Style::Dashed,
                ),
            ],
        }));
    }
    Table::new("action_density", &["instance"])
        .str("instance", table.0)
        .i64("samples", table.1)
        .f64("mean", table.2)
        .f64("mean_error", table.3)
        .f64("std", table.4)
        .f64("std_error", table.5)
        .f64("model_mean", table.6)
        .f64("model_std", table.7)
        .f64("predicted_mean", table.8)
        .f64("predicted_std", table.9)
        .write(tables)?;
    Table::new("action_density_histogram", &["instance", "bin_low"])
        .str("instance", h_inst)
        .f64("bin_low", h_lo)
        .f64("bin_high", h_hi)
        .i64("count", h_count)
        .f64("density", h_density)
        .write(tables)?;
    Figure::grid(panels, 4, (560, 400)).write(figures, "action_density")
}

fn toy(dir: &Path, tables: &Path, figures: &Path) -> Result<()> {
    let rows: ndarray::Array2<f64> = npy::read(&dir.join("arrays").join("toy.angle.npy"))?;
    let col = |j: usize| rows.column(j).to_vec();
    let diff: Vec<f64> = rows
        .rows()
        .into_iter()
        .map(|r| (r[2] - r[3]).abs())
        .collect();
    Table::new("toy_angle", &["update"])
        .i64("update", col(0).iter().map(|&u| u as i64).collect())
        .f64("t", col(1))
        .f64("theta", col(2))
        .f64("theta_closed_form", col(3))
        .f64("abs_difference", diff.clone())
        .f64("xi", col(4))
        .write(tables)?;
    let pts = |j: usize| {
        rows.rows()
            .into_iter()
            .map(|r| (r[1], r[j]))
            .collect::<Vec<_>>()
    };
    let worst = diff.iter().copied().fold(0.0, f64::max);
    Figure::grid(
        vec![
            Panel::Line(LineChart {
                title: "N_v = 2, N_h = 1: angle of the hidden unit".into(),
                x_label: "t = α · update".into(),
                y_label: "Δθ (rad)".into(),
                series: vec![
                    Series::new(Some("gradient ascent".into()), pts(2), 0, Style::Line),
                    Series::new(Some("closed form".into()), pts(3), 3, Style::Dashed),
                ],
                ..Default::default()
            }),
            Panel::Line(LineChart {
                title: format!("|θ − θ_closed| (max {worst:.2e})"),
                x_label: "t = α · update".into(),
                y_label: "rad".into(),
                log_y: true,
                series: vec![Series::new(
                    None,
                    rows.rows()
                        .into_iter()
                        .zip(&diff)
                        .skip(1)
                        .map(|(r, &d)| (r[1], d))
                        .collect(),
                    0,
                    Style::Line,
                )],
                ..Default::default()
            }),
        ],
        2,
        (700, 500),
    )
    .write(figures, "toy_angle")
}

fn mu_flow(runs: &[&Run], kappa: &[f64], tables: &Path, figures: &Path) -> Result<()> {
    let (mut inst, mut upd, mut mu, mut mu2) = (vec![], vec![], vec![], vec![]);
    let (mut f_inst, mut f_nh, mut f_mu, mut f_mu2, mut f_pred) =
        (vec![], vec![], vec![], vec![], vec![]);
    let kappa_max = kappa.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut series = Vec::new();
    let last = runs
        .iter()
        .filter_map(|r| r.fit.updates.last().copied())
        .fold(1.0_f64, f64::max);
    for (c, r) in runs.iter().enumerate() {
        for (rec, &u) in r.fit.updates.iter().enumerate() {
            inst.push(r.label.clone());
            upd.push(u as i64);
            mu.push(r.fit.mu_mean[rec]);
            mu2.push(r.fit.mu_mean[rec].powi(2));
        }
        let ev = &r.eval.evaluation;
        f_inst.push(r.label.clone());
        f_nh.push(r.params.n_hidden as i64);
        f_mu.push(ev.mu_squared_final.sqrt());
        f_mu2.push(ev.mu_squared_final);
        f_pred.push(ev.mu_squared_predicted.unwrap_or(f64::NAN));
        let pts = r
            .fit
            .updates
            .iter()
            .zip(r.fit.mu_mean.iter())
            .map(|(&u, &m)| (u, m * m))
            .collect();
        series.push(Series::new(
            Some(format!("μ², {}", r.label)),
            pts,
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
                    "N_u / Σ_unlearned 1/κ (N_h = {})",
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
    Table::new("mu_flow", &["instance", "update"])
        .str("instance", inst)
        .i64("update", upd)
        .f64("mu", mu)
        .f64("mu_squared", mu2)
        .write(tables)?;
    let n = f_inst.len();
    Table::new("mu_final", &["instance"])
        .str("instance", f_inst)
        .i64("n_hidden", f_nh)
        .f64("mu_final", f_mu)
        .f64("mu_squared_final", f_mu2)
        .f64("mu_squared_predicted", f_pred)
        .f64("kappa_max", vec![kappa_max; n])
        .write(tables)?;
    Figure::single(Panel::Line(LineChart {
        title: "Trained μ²".into(),
        x_label: "update".into(),
        y_label: "μ²".into(),
        series,
        ..Default::default()
    }))
    .write(figures, "mu_flow")
}

fn relaxation(runs: &[&Run], tables: &Path, figures: &Path) -> Result<()> {
    let mut t = RelaxationColumns::default();
    let mut panels = Vec::new();
    for mode in ["exact", "pcd"] {
        for init in ["aligned", "random"] {
            let group: Vec<&&Run> = runs
                .iter()
                .filter(|r| mode_name(r.params) == mode && init_name(r.params) == init)
                .collect();
            if group.is_empty() {
                continue;
            }
            let (mut k_lo, mut k_hi, mut mu2, mut s2) =
                (f64::INFINITY, f64::NEG_INFINITY, 0.0, 1.0);
            let mut series = Vec::new();
            for (color, r) in group.iter().enumerate() {
                let ev = &r.eval.evaluation;
                let alpha = r.params.learning_rate;
                mu2 = ev.mu_squared_final;
                s2 = r.params.sigma_h * r.params.sigma_h;
                let mut pts = Vec::new();
                let mut errs = Vec::new();
                for m in ev.relaxation.iter().filter(|m| m.learnable) {
                    t.push(r, m);
                    k_lo = k_lo.min(m.kappa);
                    k_hi = k_hi.max(m.kappa);
                    if let Some(tau) = m.tau_fit {
                        pts.push((m.kappa, tau * alpha));
                        errs.push(m.tau_fit_error.unwrap_or(0.0) * alpha);
                    }
                }
                let runs_note = if r.params.ensemble > 1 {
                    format!(", mean of {} runs", r.params.ensemble)
                } else {
                    String::new()
                };
                let mut s = Series::new(
                    Some(format!("α = {alpha}{runs_note}")),
                    pts,
                    color,
                    Style::LineMarkers,
                );
                s.errors = Some(errs);
                series.push(s);
            }
            if k_lo.is_finite() {
                let curve = (0..=100)
                    .map(|i| {
                        let k = k_lo + (k_hi - k_lo) * i as f64 / 100.0;
                        (k, k * k / (2.0 * s2 * (mu2 - k)))
                    })
                    .collect();
                series.push(Series::new(
                    Some("1/γ = κ²/(2σ²(μ² − κ))".into()),
                    curve,
                    7,
                    Style::Dashed,
                ));
            }
            panels.push(Panel::Line(LineChart {
                title: format!("{mode} gradient, {init} start"),
                x_label: "κ_a".into(),
                y_label: "τ_a · α".into(),
                log_y: true,
                series,
                ..Default::default()
            }));
        }
    }
    t.table().write(tables)?;
    Figure::grid(panels, 2, (640, 460)).write(figures, "relaxation")
}

/// Columns of the `relaxation` table.
#[derive(Default)]
struct RelaxationColumns {
    instance: Vec<String>,
    learning_rate: Vec<f64>,
    mode: Vec<String>,
    init: Vec<String>,
    ensemble: Vec<i64>,
    index: Vec<i64>,
    kappa: Vec<f64>,
    gamma: Vec<f64>,
    tau_predicted: Vec<f64>,
    tau_predicted_discrete: Vec<f64>,
    tau_fit: Vec<f64>,
    tau_fit_error: Vec<f64>,
    ratio: Vec<f64>,
    tau_fit_projected: Vec<f64>,
    tau_fit_projected_error: Vec<f64>,
    ratio_projected: Vec<f64>,
    tau_fit_late: Vec<f64>,
    tau_fit_late_error: Vec<f64>,
    ratio_late: Vec<f64>,
}

impl RelaxationColumns {
    fn push(&mut self, r: &Run, m: &evaluate::ModeRelaxation) {
        let nan = f64::NAN;
        self.instance.push(r.label.clone());
        self.learning_rate.push(r.params.learning_rate);
        self.mode.push(mode_name(r.params));
        self.init.push(init_name(r.params));
        self.ensemble.push(r.params.ensemble as i64);
        self.index.push(m.index as i64);
        self.kappa.push(m.kappa);
        self.gamma.push(m.gamma);
        self.tau_predicted.push(m.tau_predicted);
        self.tau_predicted_discrete.push(m.tau_predicted_discrete);
        self.tau_fit.push(m.tau_fit.unwrap_or(nan));
        self.tau_fit_error.push(m.tau_fit_error.unwrap_or(nan));
        self.ratio.push(m.tau_fit.unwrap_or(nan) / m.tau_predicted);
        self.tau_fit_projected
            .push(m.tau_fit_projected.unwrap_or(nan));
        self.tau_fit_projected_error
            .push(m.tau_fit_projected_error.unwrap_or(nan));
        self.ratio_projected
            .push(m.tau_fit_projected.unwrap_or(nan) / m.tau_predicted);
        self.tau_fit_late.push(m.tau_fit_late.unwrap_or(nan));
        self.tau_fit_late_error
            .push(m.tau_fit_late_error.unwrap_or(nan));
        self.ratio_late
            .push(m.tau_fit_late.unwrap_or(nan) / m.tau_predicted);
    }

    fn table(self) -> Table {
        Table::new("relaxation", &["instance", "index"])
            .str("instance", self.instance)
            .f64("learning_rate", self.learning_rate)
            .str("mode", self.mode)
            .str("init", self.init)
            .i64("ensemble", self.ensemble)
            .i64("index", self.index)
            .f64("kappa", self.kappa)
            .f64("gamma", self.gamma)
            .f64("tau_predicted", self.tau_predicted)
            .f64("tau_predicted_discrete", self.tau_predicted_discrete)
            .f64("tau_fit", self.tau_fit)
            .f64("tau_fit_error", self.tau_fit_error)
            .f64("ratio", self.ratio)
            .f64("tau_fit_projected", self.tau_fit_projected)
            .f64("tau_fit_projected_error", self.tau_fit_projected_error)
            .f64("ratio_projected", self.ratio_projected)
            .f64("tau_fit_late", self.tau_fit_late)
            .f64("tau_fit_late_error", self.tau_fit_late_error)
            .f64("ratio_late", self.ratio_late)
    }
}
