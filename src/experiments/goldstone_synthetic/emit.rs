//! Emit stage: the speed-up and ablation tables, the per-run table, the wall-time overhead, the
//! loss/ψ figure per initialisation scale (median over seeds, log scale), the chain snapshots
//! (2-D projections onto the first two embedding coordinates, one panel per iteration, one colour
//! per column i) and the dispersion figure.

use ndarray::s;

use super::evaluate::{Dispersion, RunRow, SpeedupRow, load_dispersion, load_speedup};
use super::fit;
use crate::analysis::stats::median;
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::table::{ColumnDoc, Table, Unit, col};
use crate::error::Result;
use crate::models::goldstone::gauge::GaugeOptions;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::spec::gauge::GaugeVariant;
use crate::spec::goldstone_synthetic::GoldstoneSyntheticSpec;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct EmitStage {
    pub spec: GoldstoneSyntheticSpec,
    pub fits: Vec<((GaugeVariant, f64), StageHandle)>,
    pub speedup: StageHandle,
    pub dispersion: StageHandle,
}

fn opt(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

fn opt_usize(v: Option<usize>) -> f64 {
    v.map_or(f64::NAN, |x| x as f64)
}

impl Stage for EmitStage {
    const KIND: StageKind = StageKind::Emit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("goldstone-synthetic/emit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let tables = ctx.out_dir.join("tables");
        let figures = ctx.out_dir.join("figures");
        let (runs, summary) = load_speedup(ctx.upstream(&self.speedup)?)?;
        speedup_table(&summary)?.write(&tables)?;
        ablation_table(&self.spec, &summary).write(&tables)?;
        self.runs_table(&runs).write(&tables)?;
        overhead_table(&self.spec, &runs)?.write(&tables)?;
        let dispersion = load_dispersion(ctx.upstream(&self.dispersion)?)?;
        dispersion_tables(&dispersion, &tables)?;
        dispersion_figure(&dispersion).write(&figures, "dispersion")?;
        for (index, &scale) in self.spec.init_scales.iter().enumerate() {
            let mut outputs = Vec::new();
            for &((variant, s), ref id) in &self.fits {
                if s == scale {
                    outputs.push((variant, fit::load(ctx.upstream(id)?, variant, scale)?));
                }
            }
            self.loss_figure(&outputs, scale)
                .write(&figures, &format!("loss_psi_scale-{index}"))?;
            self.snapshot_figure(&outputs)
                .write(&figures, &format!("snapshots_scale-{index}"))?;
        }
        Ok(())
    }
}

fn speedup_table(rows: &[SpeedupRow]) -> Result<Table> {
    Ok(Table::from_rows(
        "speedup",
        &["variant", "init_scale", "reference", "threshold"],
        rows,
    )?
    .describe(COLUMNS))
}

/// One row per variant and scale: its gauge options and, against the per-seed best final loss,
/// divergences, walls, final excess, and per threshold the seeds that reached it and the median
/// speed-up.
fn ablation_table(spec: &GoldstoneSyntheticSpec, rows: &[SpeedupRow]) -> Table {
    let mut keys: Vec<(GaugeVariant, f64)> = Vec::new();
    for &variant in &spec.variants {
        for &scale in &spec.init_scales {
            keys.push((variant, scale));
        }
    }
    let options: Vec<_> = keys
        .iter()
        .map(|(v, _)| GaugeOptions::for_variant(*v, spec.k2))
        .collect();
    let flag = |f: &dyn Fn(&GaugeOptions) -> bool| {
        options
            .iter()
            .map(|o| o.as_ref().map_or(0, |o| i64::from(f(o))))
            .collect::<Vec<i64>>()
    };
    let value = |f: &dyn Fn(&GaugeOptions) -> f64| {
        options
            .iter()
            .map(|o| o.as_ref().map_or(f64::NAN, f))
            .collect::<Vec<f64>>()
    };
    let row = |(v, scale): &(GaugeVariant, f64), threshold: f64| {
        rows.iter().find(|r| {
            r.variant == *v
                && r.init_scale == *scale
                && r.reference == "best_final"
                && r.threshold == threshold
        })
    };
    let first = spec.thresholds.first().copied().unwrap_or(0.1);
    let mut table = Table::new("ablation", &["variant", "init_scale"])
        .str("variant", keys.iter().map(|k| k.0.name().into()).collect())
        .f64("init_scale", keys.iter().map(|k| k.1).collect())
        .f64("rate_factor", value(&|o| o.rate_factor))
        .i64("exact_exponential", flag(&|o| o.exact_exponential))
        .i64("clip_gauge", flag(&|o| o.clip_gauge))
        .f64("apply_scale", value(&|o| o.apply_scale))
        .i64("clip_apply", flag(&|o| o.clip_apply))
        .i64("capped_inverse", flag(&|o| o.capped_inverse))
        .i64("reset", flag(&|o| o.reset))
        .i64(
            "diverged",
            keys.iter()
                .map(|k| row(k, first).map_or(0, |r| r.diverged as i64))
                .collect(),
        )
        .i64(
            "walled",
            keys.iter()
                .map(|k| row(k, first).map_or(0, |r| r.walled as i64))
                .collect(),
        )
        .f64(
            "median_final_excess",
            keys.iter()
                .map(|k| opt(row(k, first).and_then(|r| r.median_final_excess)))
                .collect(),
        );
    for &threshold in &spec.thresholds {
        table = table
            .i64(
                &format!("reached_{threshold}"),
                keys.iter()
                    .map(|k| row(k, threshold).map_or(0, |r| r.reached as i64))
                    .collect(),
            )
            .f64(
                &format!("median_speedup_{threshold}"),
                keys.iter()
                    .map(|k| opt(row(k, threshold).and_then(|r| r.median_speedup)))
                    .collect(),
            )
            .describe_column(
                &format!("reached_{threshold}"),
                Unit::Count,
                format!("seeds whose loss came within a relative {threshold} of the per-seed best final loss"),
                None,
            )
            .describe_column(
                &format!("median_speedup_{threshold}"),
                Unit::One,
                format!(
                    "median over seeds of baseline iterations / variant iterations to come within a relative {threshold} of the per-seed best"
                ),
                None,
            );
    }
    table.describe(COLUMNS).describe(&[
        col("diverged", Unit::Count, "seeds that diverged"),
        col(
            "walled",
            Unit::Count,
            "seeds ending with at least one mirror wall",
        ),
        col(
            "median_final_excess",
            Unit::One,
            "median over seeds that did not diverge of final loss / per-seed best − 1",
        ),
    ])
}

impl EmitStage {
    fn runs_table(&self, rows: &[RunRow]) -> Table {
        let col = |f: &dyn Fn(&RunRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
        let mut table = Table::new("runs", &["variant", "init_scale", "seed"])
            .str(
                "variant",
                rows.iter().map(|r| r.variant.name().into()).collect(),
            )
            .f64("init_scale", col(&|r| r.init_scale))
            .i64("seed", rows.iter().map(|r| r.seed as i64).collect())
            .f64("final_loss", col(&|r| opt(r.final_loss)))
            .f64("final_coupling", col(&|r| opt(r.final_coupling)))
            .f64("best_final_loss", col(&|r| r.best_final_loss))
            .f64("global_minimum", col(&|r| r.global_minimum))
            .f64("diverged_at", col(&|r| opt_usize(r.diverged_at)))
            .i64(
                "mirror_walls",
                rows.iter().map(|r| r.mirror_walls as i64).collect(),
            );
        for (k, threshold) in self.spec.thresholds.iter().enumerate() {
            table = table
                .f64(
                    &format!("reached_{threshold}_best"),
                    col(&|r| opt_usize(r.reached[k])),
                )
                .f64(
                    &format!("reached_{threshold}_global"),
                    col(&|r| opt_usize(r.reached_global[k])),
                )
                .describe_column(
                    &format!("reached_{threshold}_best"),
                    Unit::Updates,
                    format!("first iteration within a relative {threshold} of the seed's best final loss over variants (missing: never)"),
                    None,
                )
                .describe_column(
                    &format!("reached_{threshold}_global"),
                    Unit::Updates,
                    format!("first iteration within a relative {threshold} of the global minimum (missing: never)"),
                    None,
                );
        }
        table.describe(COLUMNS)
    }

    fn loss_figure(&self, outputs: &[(GaugeVariant, fit::FitOutput)], scale: f64) -> Figure {
        let stride = (self.spec.iterations / 500).max(1);
        let curve = |array: &ndarray::Array2<f64>| -> Vec<(f64, f64)> {
            (0..array.ncols())
                .step_by(stride)
                .filter_map(|i| {
                    let mut column: Vec<f64> = array
                        .column(i)
                        .iter()
                        .copied()
                        .filter(|v| v.is_finite())
                        .collect();
                    // The median is shown only while at least half the seeds are running.
                    if column.len() * 2 < array.nrows() {
                        return None;
                    }
                    median(&mut column)
                        .filter(|v| *v > 0.0)
                        .map(|m| (i as f64, m))
                })
                .collect()
        };
        let style = |variant: GaugeVariant| {
            if variant == GaugeVariant::Baseline || variant == self.spec.default_variant {
                Style::Line
            } else {
                Style::Dashed
            }
        };
        let series = |pick: &dyn Fn(&fit::FitOutput) -> &ndarray::Array2<f64>| {
            outputs
                .iter()
                .enumerate()
                .map(|(c, (variant, out))| {
                    Series::new(
                        Some(variant.name().into()),
                        curve(pick(out)),
                        c,
                        style(*variant),
                    )
                })
                .collect::<Vec<_>>()
        };
        Figure::grid(
            vec![
                Panel::Line(LineChart {
                    title: format!(
                        "Loss L, median over {} seeds, init scale {scale}",
                        self.spec.seeds
                    ),
                    x_label: "iteration".into(),
                    y_label: "L".into(),
                    log_y: true,
                    series: series(&|o| &o.loss),
                    ..Default::default()
                }),
                Panel::Line(LineChart {
                    title: "Coupling ψ (the twist energy), median over seeds".into(),
                    x_label: "iteration".into(),
                    y_label: "ψ".into(),
                    log_y: true,
                    series: series(&|o| &o.coupling),
                    ..Default::default()
                }),
                self.single_seed_panel(outputs, stride),
            ],
            3,
            (800, 600),
        )
    }

    /// The paper's Fig. 2 view: one seed, baseline against the default variant, L and ψ.
    fn single_seed_panel(
        &self,
        outputs: &[(GaugeVariant, fit::FitOutput)],
        stride: usize,
    ) -> Panel {
        let seed = self.spec.snapshot_seed;
        let mut series = Vec::new();
        for (colour, variant) in [GaugeVariant::Baseline, self.spec.default_variant]
            .into_iter()
            .enumerate()
        {
            let Some((_, out)) = outputs.iter().find(|(v, _)| *v == variant) else {
                continue;
            };
            for (what, array, style) in [
                ("L", &out.loss, Style::Line),
                ("ψ", &out.coupling, Style::Dashed),
            ] {
                let points: Vec<(f64, f64)> = (0..array.ncols())
                    .step_by(stride)
                    .map(|i| (i as f64, array[[seed, i]]))
                    .filter(|(_, y)| y.is_finite() && *y > 0.0)
                    .collect();
                series.push(Series::new(
                    Some(format!("{variant}: {what}")),
                    points,
                    colour,
                    style,
                ));
            }
        }
        Panel::Line(LineChart {
            title: format!("Seed {seed}: loss L (solid) and ψ (dashed)"),
            x_label: "iteration".into(),
            y_label: "L, ψ".into(),
            log_y: true,
            series,
            ..Default::default()
        })
    }

    fn snapshot_figure(&self, outputs: &[(GaugeVariant, fit::FitOutput)]) -> Figure {
        let seed = self.spec.snapshot_seed;
        let mut panels = Vec::new();
        for variant in [GaugeVariant::Baseline, self.spec.default_variant] {
            let Some((_, out)) = outputs.iter().find(|(v, _)| *v == variant) else {
                continue;
            };
            for (j, &iteration) in self.spec.snapshots.iter().enumerate() {
                let z = out.snapshots.slice(s![seed, j, .., .., ..]);
                let columns = z.shape()[2];
                let series = (0..columns)
                    .map(|i| {
                        let points: Vec<(f64, f64)> = (0..z.shape()[0])
                            .map(|t| (z[[t, 0, i]], z[[t, 1, i]]))
                            .filter(|(a, b)| a.is_finite() && b.is_finite())
                            .collect();
                        Series::new(None, points, i, Style::LineMarkers)
                    })
                    .collect();
                panels.push(Panel::Line(LineChart {
                    title: format!("{variant}, iteration {iteration}"),
                    x_label: "z₁".into(),
                    y_label: "z₂".into(),
                    series,
                    ..Default::default()
                }));
            }
        }
        Figure::grid(panels, self.spec.snapshots.len().max(1), (360, 330))
    }
}

/// Wall time of one variant's steps and gauge phases, summed over its runs.
#[derive(Default, serde::Serialize)]
struct OverheadRow {
    variant: GaugeVariant,
    step_seconds: f64,
    gauge_seconds: f64,
    gauge_over_step: f64,
}

fn overhead_table(spec: &GoldstoneSyntheticSpec, runs: &[RunRow]) -> Result<Table> {
    let rows: Vec<OverheadRow> = spec
        .variants
        .iter()
        .map(|&variant| {
            let mine: Vec<&RunRow> = runs.iter().filter(|r| r.variant == variant).collect();
            let step_seconds = mine.iter().map(|r| r.step_seconds).sum::<f64>();
            let gauge_seconds = mine.iter().map(|r| r.gauge_seconds).sum::<f64>();
            OverheadRow {
                variant,
                step_seconds,
                gauge_seconds,
                gauge_over_step: gauge_seconds / step_seconds,
            }
        })
        .collect();
    Ok(Table::from_rows("overhead", &["variant"], &rows)?
        .describe(COLUMNS)
        .describe(&[
            col(
                "step_seconds",
                Unit::Seconds,
                "wall-clock time of every iteration of every run of the variant",
            ),
            col(
                "gauge_seconds",
                Unit::Seconds,
                "wall-clock time of its gauge phases",
            ),
            col("gauge_over_step", Unit::One, "gauge_seconds / step_seconds"),
        ])
        .wall_clock(&["step_seconds", "gauge_seconds", "gauge_over_step"]))
}

/// One Laplacian mode ν: the closed form, the computed eigenvalue and the Hessian's cluster.
#[derive(Default, serde::Serialize)]
struct DispersionRow {
    nu: usize,
    h_formula: f64,
    h_laplacian: f64,
    hessian_multiplicity: usize,
    hessian_cluster_mean: Option<f64>,
    predicted_multiplicity_gl: usize,
    predicted_multiplicity_rotations: usize,
}

#[derive(Default, serde::Serialize)]
struct ConditionRow {
    steps: usize,
    ratio: f64,
    four_t2_over_pi2: f64,
}

#[derive(Default, serde::Serialize)]
struct HessianSummaryRow {
    zero_modes: usize,
    predicted_gl: usize,
    predicted_rotations: usize,
    tolerance: f64,
    gradient_norm_at_minimum: f64,
}

fn dispersion_tables(d: &Dispersion, tables: &std::path::Path) -> Result<()> {
    let modes: Vec<DispersionRow> = (0..d.laplacian.len())
        .map(|nu| DispersionRow {
            nu,
            h_formula: d.formula[nu],
            h_laplacian: d.laplacian[nu],
            hessian_multiplicity: d.hessian_multiplicity[nu],
            hessian_cluster_mean: d.hessian_cluster_mean[nu],
            predicted_multiplicity_gl: d.predicted_multiplicity_gl,
            predicted_multiplicity_rotations: d.predicted_multiplicity_rotations,
        })
        .collect();
    Table::from_rows("dispersion", &["nu"], &modes)?
        .describe(&[
            col("nu", Unit::Index, "ν, the chain Laplacian's mode"),
            col(
                "h_formula",
                Unit::One,
                "the closed form h_ν = (2 − 2cos(πν/T))λ",
            ),
            col(
                "h_laplacian",
                Unit::One,
                "the computed eigenvalue of the coupling's Laplacian",
            ),
            col(
                "hessian_multiplicity",
                Unit::Count,
                "eigenvalues of the full Hessian at the minimum equal to h_ν",
            ),
            col("hessian_cluster_mean", Unit::One, "their mean"),
            col(
                "predicted_multiplicity_gl",
                Unit::Count,
                "d², the dimension of GL(d)",
            ),
            col(
                "predicted_multiplicity_rotations",
                Unit::Count,
                "d(d−1)/2, the dimension of the rotations",
            ),
        ])
        .write(tables)?;
    let condition: Vec<ConditionRow> = d
        .condition
        .iter()
        .map(|&(steps, ratio, four_t2_over_pi2)| ConditionRow {
            steps,
            ratio,
            four_t2_over_pi2,
        })
        .collect();
    Table::from_rows("condition_number", &["steps"], &condition)?
        .describe(&[
            col("steps", Unit::Count, "T, time steps of the chain"),
            col(
                "ratio",
                Unit::One,
                "h_{T−1}/h_1, the coupling's condition number",
            ),
            col("four_t2_over_pi2", Unit::One, "4T²/π², its large-T form"),
        ])
        .write(tables)?;
    let summary = HessianSummaryRow {
        zero_modes: d.hessian_zero_modes,
        predicted_gl: d.predicted_multiplicity_gl,
        predicted_rotations: d.predicted_multiplicity_rotations,
        tolerance: d.tolerance,
        gradient_norm_at_minimum: d.gradient_norm_at_minimum,
    };
    Table::from_rows("hessian_summary", &[], &[summary])?
        .describe(&[
            col(
                "zero_modes",
                Unit::Count,
                "eigenvalues of the full Hessian at the analytic minimum below the tolerance",
            ),
            col(
                "predicted_gl",
                Unit::Count,
                "d², the GL(d) orbit's dimension",
            ),
            col(
                "predicted_rotations",
                Unit::Count,
                "d(d−1)/2, the rotations' dimension",
            ),
            col(
                "tolerance",
                Unit::One,
                "|h| below which an eigenvalue counts as zero",
            ),
            col(
                "gradient_norm_at_minimum",
                Unit::One,
                "‖∇L‖ at the analytic minimum",
            ),
        ])
        .write(tables)
}

/// The columns the variant tables share (`speedup`, `ablation`, `runs`, `overhead`).
const COLUMNS: &[ColumnDoc] = &[
    col(
        "variant",
        Unit::Label,
        "the optimiser: baseline (no gauge phases) or a Goldstone-GD variant",
    ),
    col(
        "init_scale",
        Unit::One,
        "standard deviation of the i.i.d. normal initial Z",
    ),
    col(
        "reference",
        Unit::Label,
        "best_final (the seed's best final loss over variants) or global_minimum (closed form)",
    ),
    col(
        "threshold",
        Unit::One,
        "relative distance to the reference loss a run must come within",
    ),
    col("seeds", Unit::Count, "seeds run"),
    col(
        "reached",
        Unit::Count,
        "seeds that came within the threshold of the reference",
    ),
    col(
        "diverged",
        Unit::Count,
        "seeds that diverged (loss above 100× its start)",
    ),
    col(
        "median_iterations",
        Unit::Updates,
        "median over the seeds that reached of the first iteration within the threshold",
    ),
    col(
        "median_speedup",
        Unit::One,
        "median over seeds where both reached of baseline iterations / variant iterations",
    ),
    col("min_speedup", Unit::One, "the smallest per-seed speed-up"),
    col("max_speedup", Unit::One, "the largest per-seed speed-up"),
    col(
        "median_final_excess",
        Unit::One,
        "median over seeds that did not diverge of final / reference − 1",
    ),
    col(
        "walled",
        Unit::Count,
        "seeds ending with at least one mirror wall",
    ),
    col(
        "rate_factor",
        Unit::One,
        "factor on the gauge learning rate ρ′ (the paper: 1)",
    ),
    col(
        "exact_exponential",
        Unit::Flag,
        "1: rotate by e^G; 0: the first-order 1 + G",
    ),
    col(
        "clip_gauge",
        Unit::Flag,
        "1: Γ̃ clipped to ±½/d (a trust region)",
    ),
    col(
        "apply_scale",
        Unit::One,
        "s in the applied s·G (the reference code: 0.1)",
    ),
    col(
        "clip_apply",
        Unit::Flag,
        "1: the applied generator clipped to ±1/d",
    ),
    col(
        "capped_inverse",
        Unit::Flag,
        "1: the T-capped inverse of L instead of its pseudo-inverse",
    ),
    col("reset", Unit::Flag, "1: Γ̃ reset to zero after each phase"),
    col(
        "seed",
        Unit::Index,
        "the seed (every variant starts from the same Z on a seed)",
    ),
    col(
        "final_loss",
        Unit::One,
        "the loss L after the last iteration (missing: diverged)",
    ),
    col(
        "final_coupling",
        Unit::One,
        "ψ, the coupling term of L, after the last iteration",
    ),
    col(
        "best_final_loss",
        Unit::One,
        "the smallest final loss of any variant on this seed",
    ),
    col(
        "global_minimum",
        Unit::One,
        "the closed-form global minimum T·½‖X − X₃‖²",
    ),
    col(
        "diverged_at",
        Unit::Updates,
        "iteration at which the run diverged (missing: it did not)",
    ),
    col(
        "mirror_walls",
        Unit::Count,
        "neighbouring steps with det(Z_{t+1}Z_tᵀ) < 0 at the end",
    ),
];

fn dispersion_figure(d: &Dispersion) -> Figure {
    let n = d.laplacian.len();
    let hessian: Vec<(f64, f64)> = d
        .hessian_cluster_mean
        .iter()
        .enumerate()
        .filter_map(|(nu, m)| m.filter(|v| *v > 0.0).map(|v| (nu as f64, v)))
        .collect();
    Figure::grid(
        vec![
            Panel::Line(LineChart {
                title: format!("Dispersion relation, T = {n}"),
                x_label: "ν".into(),
                y_label: "eigenvalue".into(),
                log_y: true,
                series: vec![
                    Series::new(
                        Some("(2 − 2cos(πν/T))λ".into()),
                        (1..n).map(|nu| (nu as f64, d.formula[nu])).collect(),
                        0,
                        Style::Line,
                    ),
                    Series::new(
                        Some("chain Laplacian".into()),
                        (1..n).map(|nu| (nu as f64, d.laplacian[nu])).collect(),
                        1,
                        Style::Markers,
                    ),
                    Series::new(
                        Some(format!(
                            "Hessian at the minimum (×{} each)",
                            d.predicted_multiplicity_gl
                        )),
                        hessian,
                        2,
                        Style::Markers,
                    ),
                ],
                ..Default::default()
            }),
            Panel::Line(LineChart {
                title: "Condition number h_{T−1}/h_1 of the chain".into(),
                x_label: "T".into(),
                y_label: "h_{T−1}/h_1".into(),
                log_x: true,
                log_y: true,
                series: vec![
                    Series::new(
                        Some("4T²/π²".into()),
                        d.condition.iter().map(|c| (c.0 as f64, c.2)).collect(),
                        0,
                        Style::Line,
                    ),
                    Series::new(
                        Some("measured".into()),
                        d.condition.iter().map(|c| (c.0 as f64, c.1)).collect(),
                        1,
                        Style::Markers,
                    ),
                ],
                hide_legend: false,
            }),
        ],
        2,
        (800, 550),
    )
}
