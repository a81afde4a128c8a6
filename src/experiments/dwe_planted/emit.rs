//! Emit stage: tables `planted_runs` (every optimiser, sweep point and seed against the truth),
//! `planted_summary` (medians over seeds) and `planted_curves` (ψ and the objective during
//! training); figures `sweep` (cosine correlation with the truth, twist gap, mirror walls and
//! smooth walls vs N_t, one line per optimiser and T; the compared real corpora as dashed
//! verticals at the N_t with their counts per pair) and `psi` (ψ vs iteration at the largest
//! N_t, seed 0); with compared experiments, tables `corpus_scale` (per regime: median, range
//! and per-pair Σn⁺ per step, the planted equivalent) and `corpus_steps` (Σn⁺ of every step).

use super::evaluate::load_evaluation;
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::table::Table;
use crate::error::Result;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};

#[derive(serde::Serialize)]
pub struct EmitStage {
    pub evaluate: StageHandle,
    pub corpora: Vec<StageHandle>,
}

impl Stage for EmitStage {
    const KIND: StageKind = StageKind::Emit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("dwe-planted/emit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let e = load_evaluation(ctx.upstream(&self.evaluate)?)?;
        let tables = ctx.out_dir.join("tables");
        let (mut scales, mut step_totals) = (Vec::new(), Vec::new());
        for id in &self.corpora {
            let (scale, steps) = super::corpus::load(ctx.upstream(id)?)?;
            scales.extend(scale);
            step_totals.extend(steps);
        }
        if !scales.is_empty() {
            write_corpus_tables(&scales, &step_totals, &tables)?;
        }
        let r = &e.rows;
        Table::new("planted_runs", &["steps", "counts", "seed", "optimizer"])
            .wall_clock(&[
                "step_seconds",
                "gauge_seconds",
                "median_step_seconds",
                "median_phase_seconds",
            ])
            .i64("steps", r.iter().map(|x| x.steps as i64).collect())
            .f64("counts", r.iter().map(|x| x.counts).collect())
            .i64("seed", r.iter().map(|x| x.seed as i64).collect())
            .str("optimizer", r.iter().map(|x| x.optimizer.clone()).collect())
            .f64(
                "cosine_pearson",
                r.iter().map(|x| x.cosine_pearson).collect(),
            )
            .f64(
                "cosine_spearman",
                r.iter().map(|x| x.cosine_spearman).collect(),
            )
            .f64("cosine_mae", r.iter().map(|x| x.cosine_mae).collect())
            .f64(
                "mean_fitted_cosine",
                r.iter().map(|x| x.mean_fitted_cosine).collect(),
            )
            .f64("twist_gap", r.iter().map(|x| x.twist_gap).collect())
            .i64("walls", r.iter().map(|x| x.walls as i64).collect())
            .i64(
                "smooth_walls",
                r.iter().map(|x| x.smooth_walls as i64).collect(),
            )
            .f64("axis_dip", r.iter().map(|x| x.axis_dip).collect())
            .f64("twist_path", r.iter().map(|x| x.twist_path).collect())
            .f64(
                "planted_precision_at_10",
                r.iter().map(|x| x.planted_precision_at_10).collect(),
            )
            .f64("planted_auc", r.iter().map(|x| x.planted_auc).collect())
            .f64("loss", r.iter().map(|x| x.loss).collect())
            .f64("truth_loss", r.iter().map(|x| x.truth_loss).collect())
            .f64("psi", r.iter().map(|x| x.psi).collect())
            .f64("step_seconds", r.iter().map(|x| x.step_seconds).collect())
            .f64("gauge_seconds", r.iter().map(|x| x.gauge_seconds).collect())
            .i64("phases", r.iter().map(|x| x.phases as i64).collect())
            .f64(
                "median_step_seconds",
                r.iter().map(|x| x.median_step_seconds).collect(),
            )
            .f64(
                "median_phase_seconds",
                r.iter().map(|x| x.median_phase_seconds).collect(),
            )
            .write(&tables)?;
        let m = &e.summary;
        Table::new("planted_summary", &["steps", "counts", "optimizer"])
            .wall_clock(&["milliseconds_per_iteration", "gauge_overhead"])
            .i64("steps", m.iter().map(|x| x.steps as i64).collect())
            .f64("counts", m.iter().map(|x| x.counts).collect())
            .str("optimizer", m.iter().map(|x| x.optimizer.clone()).collect())
            .i64("seeds", m.iter().map(|x| x.seeds as i64).collect())
            .f64(
                "cosine_pearson",
                m.iter().map(|x| x.cosine_pearson).collect(),
            )
            .f64(
                "cosine_spearman",
                m.iter().map(|x| x.cosine_spearman).collect(),
            )
            .f64("cosine_mae", m.iter().map(|x| x.cosine_mae).collect())
            .f64("twist_gap", m.iter().map(|x| x.twist_gap).collect())
            .f64("walls", m.iter().map(|x| x.walls).collect())
            .f64("smooth_walls", m.iter().map(|x| x.smooth_walls).collect())
            .f64("axis_dip", m.iter().map(|x| x.axis_dip).collect())
            .f64("twist_path", m.iter().map(|x| x.twist_path).collect())
            .f64(
                "planted_precision_at_10",
                m.iter().map(|x| x.planted_precision_at_10).collect(),
            )
            .f64("planted_auc", m.iter().map(|x| x.planted_auc).collect())
            .f64("excess_loss", m.iter().map(|x| x.excess_loss).collect())
            .f64(
                "milliseconds_per_iteration",
                m.iter().map(|x| x.milliseconds_per_iteration).collect(),
            )
            .f64(
                "gauge_overhead",
                m.iter().map(|x| x.gauge_overhead).collect(),
            )
            .write(&tables)?;
        let c = &e.curves;
        Table::new(
            "planted_curves",
            &["steps", "counts", "seed", "optimizer", "iteration"],
        )
        .i64("steps", c.iter().map(|x| x.0 as i64).collect())
        .f64("counts", c.iter().map(|x| x.1).collect())
        .i64("seed", c.iter().map(|x| x.2 as i64).collect())
        .str(
            "optimizer",
            c.iter().map(|x| x.3.optimizer.clone()).collect(),
        )
        .i64(
            "iteration",
            c.iter().map(|x| x.3.iteration as i64).collect(),
        )
        .f64("loss", c.iter().map(|x| x.3.loss).collect())
        .f64("psi", c.iter().map(|x| x.3.psi).collect())
        .write(&tables)?;

        let mut lines: Vec<(String, usize)> =
            m.iter().map(|x| (x.optimizer.clone(), x.steps)).collect();
        lines.sort();
        lines.dedup();
        let panel = |title: &str, y: &str, value: &dyn Fn(&super::evaluate::SummaryRow) -> f64| {
            Panel::Line(LineChart {
                title: title.into(),
                x_label: "N_t (positive counts per step)".into(),
                y_label: y.into(),
                log_x: true,
                log_y: false,
                series: lines
                    .iter()
                    .enumerate()
                    .map(|(k, (optimizer, steps))| {
                        let points = m
                            .iter()
                            .filter(|x| &x.optimizer == optimizer && x.steps == *steps)
                            .map(|x| (x.counts, value(x)))
                            .collect();
                        Series::new(
                            Some(format!("{optimizer}, T = {steps}")),
                            points,
                            k,
                            Style::LineMarkers,
                        )
                    })
                    .chain(corpus_markers(&scales, m, value, lines.len()))
                    .collect(),
            })
        };
        let figures = ctx.out_dir.join("figures");
        Figure::grid(
            vec![
                panel(
                    "fitted vs true first↔last cosine",
                    "Pearson r (median over seeds)",
                    &|x| x.cosine_pearson,
                ),
                panel(
                    "twist gap (global − per-step misalignment)",
                    "gap (median)",
                    &|x| x.twist_gap,
                ),
                panel(
                    "mirror walls (det R_t sign changes)",
                    "walls (median)",
                    &|x| x.walls,
                ),
                panel(
                    "smooth walls (an axis through zero at the wall)",
                    "smooth walls (median)",
                    &|x| x.smooth_walls,
                ),
            ],
            2,
            (700, 520),
        )
        .write(&figures, "sweep")?;
        let largest = m.iter().map(|x| x.counts).fold(0.0, f64::max);
        let longest = m.iter().map(|x| x.steps).max().unwrap_or(0);
        let mut optimizers: Vec<&str> = c.iter().map(|x| x.3.optimizer.as_str()).collect();
        optimizers.sort_unstable();
        optimizers.dedup();
        let series = optimizers
            .iter()
            .enumerate()
            .map(|(k, optimizer)| {
                let points = c
                    .iter()
                    .filter(|x| {
                        x.0 == longest && x.1 == largest && x.2 == 0 && x.3.optimizer == *optimizer
                    })
                    .map(|x| (x.3.iteration as f64, x.3.psi))
                    .collect();
                Series::new(Some(optimizer.to_string()), points, k, Style::LineMarkers)
            })
            .collect();
        Figure::single(Panel::Line(LineChart {
            title: format!("ψ during training, T = {longest}, N_t = {largest:e}, seed 0"),
            x_label: "iteration".into(),
            y_label: "ψ".into(),
            log_x: false,
            log_y: true,
            series,
        }))
        .write(&figures, "psi")
    }
}

/// Dashed verticals at the planted N_t of each compared regime, spanning the panel's values.
fn corpus_markers(
    scales: &[super::corpus::CorpusScale],
    summary: &[super::evaluate::SummaryRow],
    value: &dyn Fn(&super::evaluate::SummaryRow) -> f64,
    first_color: usize,
) -> Vec<Series> {
    let values = summary.iter().map(value).filter(|y| y.is_finite());
    let low = values.clone().fold(f64::INFINITY, f64::min);
    let high = values.fold(f64::NEG_INFINITY, f64::max);
    if !(low.is_finite() && high.is_finite()) {
        return Vec::new();
    }
    scales
        .iter()
        .filter(|s| s.planted_equivalent > 0.0)
        .enumerate()
        .map(|(k, s)| {
            Series::new(
                Some(format!(
                    "{} ({}): {:.2e} per pair",
                    s.experiment, s.regime, s.median_per_pair
                )),
                vec![(s.planted_equivalent, low), (s.planted_equivalent, high)],
                first_color + k,
                Style::Dashed,
            )
        })
        .collect()
}

fn write_corpus_tables(
    scales: &[super::corpus::CorpusScale],
    steps: &[super::corpus::StepTotal],
    tables: &std::path::Path,
) -> Result<()> {
    Table::new("corpus_scale", &["experiment", "regime"])
        .str(
            "experiment",
            scales.iter().map(|x| x.experiment.clone()).collect(),
        )
        .str("regime", scales.iter().map(|x| x.regime.clone()).collect())
        .i64(
            "vocabulary",
            scales.iter().map(|x| x.vocabulary as i64).collect(),
        )
        .i64("steps", scales.iter().map(|x| x.steps as i64).collect())
        .f64(
            "median_total",
            scales.iter().map(|x| x.median_total).collect(),
        )
        .f64("min_total", scales.iter().map(|x| x.min_total).collect())
        .f64("max_total", scales.iter().map(|x| x.max_total).collect())
        .f64(
            "median_per_pair",
            scales.iter().map(|x| x.median_per_pair).collect(),
        )
        .f64(
            "planted_equivalent",
            scales.iter().map(|x| x.planted_equivalent).collect(),
        )
        .write(tables)?;
    Table::new("corpus_steps", &["experiment", "regime", "first_year"])
        .str(
            "experiment",
            steps.iter().map(|x| x.experiment.clone()).collect(),
        )
        .str("regime", steps.iter().map(|x| x.regime.clone()).collect())
        .i64("first_year", steps.iter().map(|x| x.first_year).collect())
        .i64("last_year", steps.iter().map(|x| x.last_year).collect())
        .f64("total", steps.iter().map(|x| x.total).collect())
        .write(tables)
}
