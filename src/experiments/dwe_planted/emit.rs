//! Emit stage: tables `planted_runs` (every optimiser, sweep point and seed against the truth),
//! `planted_summary` (medians over seeds) and `planted_curves` (ψ and the objective during
//! training); figures `sweep` (cosine correlation with the truth, twist gap and mirror walls vs
//! N_t, one line per optimiser and T) and `psi` (ψ vs iteration at the largest N_t, seed 0).

use super::evaluate::load_evaluation;
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::table::Table;
use crate::error::Result;
use crate::pipeline::{StageContext, StageTask};

pub struct EmitStage {
    pub evaluate_id: String,
}

impl StageTask for EmitStage {
    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let e = load_evaluation(ctx.upstream_dir(&self.evaluate_id)?)?;
        let tables = ctx.out_dir.join("tables");
        let r = &e.rows;
        Table::new("planted_runs", &["steps", "counts", "seed", "optimizer"])
            .wall_clock(&["step_seconds", "gauge_seconds"])
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
            ],
            3,
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
