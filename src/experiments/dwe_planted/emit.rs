//! Emit stage: tables `planted_runs` (every optimiser, sweep point and seed against the truth),
//! `planted_summary` (medians over seeds) and `planted_curves` (ψ and the objective during
//! training); figures `sweep` (cosine correlation with the truth, twist gap, mirror walls and
//! smooth walls vs N_t, one line per optimiser and T; the compared real corpora as dashed
//! verticals at the N_t with their counts per pair) and `psi` (ψ vs iteration at the largest
//! N_t, seed 0); with compared experiments, tables `corpus_scale` (per regime: median, range
//! and per-pair Σn⁺ per step, the planted equivalent) and `corpus_steps` (Σn⁺ of every step).

use super::evaluate::load_evaluation;
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::table::{ColumnDoc, Table, Unit, col};
use crate::error::Result;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};

#[derive(serde::Serialize, serde::Deserialize)]
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
        Table::from_rows(
            "planted_runs",
            &["steps", "counts", "seed", "optimizer"],
            &e.rows,
        )?
        .without(&["iterations", "gauge_overhead"])
        .describe(COLUMNS)
        .wall_clock(&[
            "step_seconds",
            "gauge_seconds",
            "median_step_seconds",
            "median_phase_seconds",
        ])
        .write(&tables)?;
        let m = &e.summary;
        Table::from_rows("planted_summary", &["steps", "counts", "optimizer"], m)?
            .describe(COLUMNS)
            .describe(SUMMARY_COLUMNS)
            .wall_clock(&["seconds_per_iteration", "gauge_overhead"])
            .write(&tables)?;
        let c = &e.curves;
        let curves: Vec<CurveRow> = c
            .iter()
            .map(|(steps, counts, seed, point)| CurveRow {
                steps: *steps,
                counts: *counts,
                seed: *seed,
                optimizer: point.optimizer.clone(),
                iteration: point.iteration,
                loss: point.loss,
                psi: point.psi,
            })
            .collect();
        Table::from_rows(
            "planted_curves",
            &["steps", "counts", "seed", "optimizer", "iteration"],
            &curves,
        )?
        .describe(COLUMNS)
        .describe(&[
            col("iteration", Unit::Updates, "training iterations done"),
            col(
                "loss",
                Unit::Nats,
                "the training objective at the iteration",
            ),
            col(
                "psi",
                Unit::Nats,
                "ψ, the coupling energy between neighbouring steps, at the iteration",
            ),
        ])
        .write(&tables)?;

        // Colour by optimiser, line style by T; one legend beside the panels.
        let mut optimizers: Vec<&str> = m.iter().map(|x| x.optimizer.as_str()).collect();
        optimizers.sort_unstable();
        optimizers.dedup();
        let mut lengths: Vec<usize> = m.iter().map(|x| x.steps).collect();
        lengths.sort_unstable();
        lengths.dedup();
        const BY_LENGTH: [Style; 3] = [Style::LineMarkers, Style::DashedMarkers, Style::Markers];
        let style_of = |k: usize| BY_LENGTH[k.min(BY_LENGTH.len() - 1)];
        let panel = |title: &str, y: &str, value: &dyn Fn(&super::evaluate::SummaryRow) -> f64| {
            let mut series = Vec::new();
            for (colour, optimizer) in optimizers.iter().enumerate() {
                for (k, steps) in lengths.iter().enumerate() {
                    let points = m
                        .iter()
                        .filter(|x| x.optimizer == *optimizer && x.steps == *steps)
                        .map(|x| (x.counts, value(x)))
                        .collect();
                    series.push(Series::new(None, points, colour, style_of(k)));
                }
            }
            series.extend(corpus_markers(&scales, m, value, optimizers.len()));
            Panel::Line(LineChart {
                title: title.into(),
                x_label: "N_t (positive counts per step)".into(),
                y_label: y.into(),
                log_x: true,
                log_y: false,
                series,
                hide_legend: true,
            })
        };
        let mut legend: Vec<Series> = optimizers
            .iter()
            .enumerate()
            .map(|(colour, o)| Series::new(Some(o.to_string()), Vec::new(), colour, Style::Line))
            .collect();
        legend.extend(lengths.iter().enumerate().map(|(k, steps)| {
            Series::new(
                Some(format!("T = {steps} steps")),
                Vec::new(),
                7,
                style_of(k),
            )
        }));
        legend.extend(corpus_markers(
            &scales,
            m,
            &|x| x.twist_gap,
            optimizers.len(),
        ));
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
        .with_legend(legend)
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
            hide_legend: false,
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
                    "N_t of the {} corpus ({:.1e} per pair)",
                    s.experiment, s.median_per_pair
                )),
                vec![(s.planted_equivalent, low), (s.planted_equivalent, high)],
                first_color + k,
                Style::Dashed,
            )
        })
        .collect()
}

/// One recording point of one fit.
#[derive(Default, serde::Serialize)]
struct CurveRow {
    steps: usize,
    counts: f64,
    seed: usize,
    optimizer: String,
    iteration: usize,
    loss: f64,
    psi: f64,
}

fn write_corpus_tables(
    scales: &[super::corpus::CorpusScale],
    steps: &[super::corpus::StepTotal],
    tables: &std::path::Path,
) -> Result<()> {
    Table::from_rows("corpus_scale", &["experiment", "regime"], scales)?
        .describe(CORPUS_COLUMNS)
        .write(tables)?;
    Table::from_rows(
        "corpus_steps",
        &["experiment", "regime", "first_year"],
        steps,
    )?
    .describe(CORPUS_COLUMNS)
    .write(tables)
}

/// The columns of `planted_runs` (one fit against the truth), and the keys every planted table
/// shares.
const COLUMNS: &[ColumnDoc] = &[
    col("steps", Unit::Count, "T, time steps of the planted chain"),
    col(
        "counts",
        Unit::Count,
        "N_t, expected positive counts per step",
    ),
    col(
        "seed",
        Unit::Index,
        "the seed index (truth, counts and initialisation)",
    ),
    col(
        "optimizer",
        Unit::Label,
        "baseline (Adam), baseline+posthoc (then a chain Procrustes alignment), goldstone (Goldstone-GD) or procrustes (exact gauge fixer)",
    ),
    col(
        "cosine_pearson",
        Unit::One,
        "Pearson correlation over words of fitted vs true cos(u_first, u_last)",
    ),
    col(
        "cosine_spearman",
        Unit::One,
        "Spearman rank correlation of the same",
    ),
    col(
        "cosine_mae",
        Unit::One,
        "mean absolute difference of fitted and true cos(u_first, u_last)",
    ),
    col(
        "mean_fitted_cosine",
        Unit::One,
        "mean over words of the fitted cos(u_first, u_last)",
    ),
    col(
        "twist_gap",
        Unit::One,
        "mean ‖R Ẑ_t − Ẑ*_t‖² with one rotation for the chain minus the same with one per step (unit-norm steps): 0 no twist, ≈ 2 scrambled",
    ),
    col(
        "walls",
        Unit::Count,
        "mirror walls: sign changes of det R_t along the chain",
    ),
    col(
        "smooth_walls",
        Unit::Count,
        "walls where an axis of the fit shrinks through zero (not a jump by a reflection)",
    ),
    col(
        "axis_dip",
        Unit::One,
        "min over steps / median of the fit's smallest singular value (unit-norm steps)",
    ),
    col(
        "twist_path",
        Unit::One,
        "Σ‖R_{t+1} − R_t‖ along the chain between walls",
    ),
    col(
        "planted_precision_at_10",
        Unit::One,
        "fraction of planted (drifting) words among the 10 lowest fitted cosines",
    ),
    col(
        "planted_auc",
        Unit::One,
        "area under the ROC curve of the fitted cosine as a detector of planted words",
    ),
    col("loss", Unit::Nats, "final training objective of the fit"),
    col(
        "truth_loss",
        Unit::Nats,
        "the same objective at the truth, on the same counts",
    ),
    col(
        "psi",
        Unit::Nats,
        "final ψ, the coupling energy between neighbouring steps",
    ),
    col(
        "step_seconds",
        Unit::Seconds,
        "wall-clock time of all iterations",
    ),
    col(
        "gauge_seconds",
        Unit::Seconds,
        "wall-clock time of all gauge phases",
    ),
    col("phases", Unit::Count, "gauge phases run"),
    col(
        "median_step_seconds",
        Unit::Seconds,
        "wall-clock time of the median iteration",
    ),
    col(
        "median_phase_seconds",
        Unit::Seconds,
        "wall-clock time of the median gauge phase",
    ),
];

/// The columns of `planted_summary`: medians over seeds.
const SUMMARY_COLUMNS: &[ColumnDoc] = &[
    col("seeds", Unit::Count, "seeds the medians are over"),
    col(
        "walls",
        Unit::Count,
        "median over seeds of the mirror walls",
    ),
    col(
        "smooth_walls",
        Unit::Count,
        "median over seeds of the smooth walls",
    ),
    col(
        "excess_loss",
        Unit::One,
        "median over seeds of (loss − truth loss) / |truth loss|",
    ),
    col(
        "seconds_per_iteration",
        Unit::Seconds,
        "median over seeds of the median iteration plus its share of gauge phases",
    ),
    col(
        "gauge_overhead",
        Unit::One,
        "median over seeds of gauge time / iteration time, from each run's median iteration and phase",
    ),
];

/// The columns of `corpus_scale` and `corpus_steps` (the compared real corpora).
const CORPUS_COLUMNS: &[ColumnDoc] = &[
    col("experiment", Unit::Label, "the compared corpus experiment"),
    col("regime", Unit::Label, "its binning of years into steps"),
    col("vocabulary", Unit::Count, "V, its vocabulary size"),
    col("steps", Unit::Count, "time steps in the regime"),
    col(
        "median_total",
        Unit::Count,
        "median over steps of Σn⁺, the positive counts of a step",
    ),
    col("min_total", Unit::Count, "smallest Σn⁺ of a step"),
    col("max_total", Unit::Count, "largest Σn⁺ of a step"),
    col(
        "median_per_pair",
        Unit::One,
        "median Σn⁺ / V², counts per word–context pair",
    ),
    col(
        "planted_equivalent",
        Unit::Count,
        "the planted N_t with as many counts per pair: Σn⁺ · (V_planted / V)²",
    ),
    col("first_year", Unit::Year, "first year of the step"),
    col("last_year", Unit::Year, "last year of the step"),
    col(
        "total",
        Unit::Count,
        "Σn⁺, the step's positive co-occurrence counts",
    ),
];
