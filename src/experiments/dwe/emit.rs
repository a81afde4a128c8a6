//! Emit stage: the corpus tables (vocabulary, steps) and, from the alignment evaluation, the
//! tables `cosine_quantiles`, `procrustes`, `word_aging`, `word_aging_lists`, `runs`,
//! `held_out`, `curves`, `sweep` and the figures `cosine_histogram` (first↔last cosines, raw and
//! Procrustes-aligned, both optimisers), `curves` (loss, ψ and median cosine vs iteration) and
//! `sweep` (median cosine vs iteration in every regime).

use super::evaluate::{self, Summary};
use super::preprocess::load_summary;
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::table::{ColumnDoc, Table, Unit, col};
use crate::error::Result;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::spec::dwe::Init;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct EmitStage {
    pub counts: StageHandle,
    pub evaluate: StageHandle,
    pub histogram_bins: usize,
}

impl Stage for EmitStage {
    const KIND: StageKind = StageKind::Emit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("dwe/emit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let summary = load_summary(ctx.upstream(&self.counts)?)?;
        let tables = ctx.out_dir.join("tables");
        let vocabulary: Vec<VocabularyRow> = summary
            .vocabulary
            .iter()
            .enumerate()
            .map(|(rank, (word, score))| VocabularyRow {
                rank,
                word: word.clone(),
                score: *score,
            })
            .collect();
        Table::from_rows("vocabulary", &["rank"], &vocabulary)?
            .describe(COLUMNS)
            .write(&tables)?;
        let steps = &summary.steps;
        let rows: Vec<StepRow> = steps
            .iter()
            .enumerate()
            .map(|(k, st)| StepRow {
                year: st.year,
                documents: st.documents,
                tokens: st.tokens,
                vocabulary_tokens: st.vocabulary_tokens,
                positive_total: st.positive_total,
                nonzero_pairs: st.nonzero_pairs,
                delta_tau_to_next: steps
                    .get(k + 1)
                    .map_or(f64::NAN, |next| f64::from(next.year - st.year)),
            })
            .collect();
        Table::from_rows("steps", &["year"], &rows)?
            .describe(COLUMNS)
            .write(&tables)?;
        let summary = evaluate::load(ctx.upstream(&self.evaluate)?)?;
        write_tables(&summary, &tables)?;
        let figures = ctx.out_dir.join("figures");
        histogram_figure(&summary, self.histogram_bins).write(&figures, "cosine_histogram")?;
        curves_figure(&summary).write(&figures, "curves")?;
        sweep_figure(&summary).write(&figures, "sweep")
    }
}

#[derive(Default, serde::Serialize)]
struct VocabularyRow {
    rank: usize,
    word: String,
    score: f64,
}

/// A corpus step and the gap to the next one.
#[derive(Default, serde::Serialize)]
struct StepRow {
    year: i32,
    documents: usize,
    tokens: usize,
    vocabulary_tokens: usize,
    positive_total: f64,
    nonzero_pairs: usize,
    delta_tau_to_next: f64,
}

/// The optimisers of the run, in the spec's order.
fn optimizers(summary: &Summary) -> Vec<&str> {
    summary.cosines.iter().map(|c| c.0.as_str()).collect()
}

/// A run's alignment: the raw and Procrustes-aligned median cosines and their gain.
#[derive(Default, serde::Serialize)]
struct ProcrustesRow {
    optimizer: String,
    seed: usize,
    median_cosine: f64,
    median_aligned_cosine: f64,
    gain: f64,
    mirror_walls: usize,
}

/// A run's cost and end point.
#[derive(Default, serde::Serialize)]
struct RunCostRow {
    optimizer: String,
    seed: usize,
    seconds_per_iteration: f64,
    gauge_seconds: f64,
    phases: usize,
    gauge_overhead: f64,
    held_out_log_likelihood: f64,
    final_total_loss: f64,
    final_coupling: f64,
}

#[derive(Default, serde::Serialize)]
struct HeldOutRow {
    optimizer: String,
    seed: usize,
    time: f64,
    log_likelihood_per_point: f64,
}

#[derive(Default, serde::Serialize)]
struct CurveRow {
    optimizer: String,
    seed: usize,
    iteration: usize,
    seconds: f64,
    likelihood: f64,
    prior: f64,
    coupling: f64,
    total: f64,
    median_cosine: f64,
    median_aligned_cosine: f64,
    mirror_walls: usize,
}

fn write_tables(summary: &Summary, dir: &std::path::Path) -> Result<()> {
    Table::from_rows(
        "cosine_quantiles",
        &["optimizer", "seed", "alignment"],
        &summary.quantiles,
    )?
    .describe(COLUMNS)
    .describe(&[col(
        "seed",
        Unit::Label,
        "the seed, or `all` for the words of every seed pooled",
    )])
    .write(dir)?;
    let procrustes: Vec<ProcrustesRow> = summary
        .runs
        .iter()
        .map(|x| ProcrustesRow {
            optimizer: x.optimizer.clone(),
            seed: x.seed,
            median_cosine: x.median_cosine,
            median_aligned_cosine: x.median_aligned_cosine,
            gain: x.median_aligned_cosine - x.median_cosine,
            mirror_walls: x.mirror_walls,
        })
        .collect();
    Table::from_rows("procrustes", &["optimizer", "seed"], &procrustes)?
        .describe(COLUMNS)
        .write(dir)?;
    let runs: Vec<RunCostRow> = summary
        .runs
        .iter()
        .map(|x| RunCostRow {
            optimizer: x.optimizer.clone(),
            seed: x.seed,
            seconds_per_iteration: x.seconds_per_iteration,
            gauge_seconds: x.gauge_seconds,
            phases: x.phases,
            gauge_overhead: x.gauge_overhead,
            held_out_log_likelihood: x.held_out_log_likelihood,
            final_total_loss: x.final_total_loss,
            final_coupling: x.final_coupling,
        })
        .collect();
    Table::from_rows("runs", &["optimizer", "seed"], &runs)?
        .describe(COLUMNS)
        .wall_clock(&["seconds_per_iteration", "gauge_seconds", "gauge_overhead"])
        .write(dir)?;
    let held_out: Vec<HeldOutRow> = summary
        .held_out_steps
        .iter()
        .map(|(optimizer, seed, time, value)| HeldOutRow {
            optimizer: optimizer.clone(),
            seed: *seed,
            time: *time,
            log_likelihood_per_point: *value,
        })
        .collect();
    Table::from_rows("held_out", &["optimizer", "seed", "time"], &held_out)?
        .describe(COLUMNS)
        .write(dir)?;
    let a = &summary.aging;
    Table::from_rows("word_aging", &["query", "optimizer", "rank"], a)?
        .describe(COLUMNS)
        .write(dir)?;
    let mut queries: Vec<&str> = a.iter().map(|x| x.query.as_str()).collect();
    queries.dedup();
    let lists = |optimizer: &str| -> Vec<String> {
        queries
            .iter()
            .map(|query| {
                a.iter()
                    .filter(|x| x.query == *query && x.optimizer == optimizer)
                    .map(|x| x.word.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect()
    };
    // One column per optimiser of the run: the columns are data, not a row type.
    let mut table = Table::new("word_aging_lists", &["query"])
        .str("query", queries.iter().map(|q| q.to_string()).collect());
    for optimizer in optimizers(summary) {
        table = table.str(optimizer, lists(optimizer)).describe_column(
            optimizer,
            Unit::Label,
            format!("the word_aging words of {optimizer} for the query, nearest first"),
            None,
        );
    }
    table.describe(COLUMNS).write(dir)?;
    let curves: Vec<CurveRow> = summary
        .curves
        .iter()
        .map(|x| CurveRow {
            optimizer: x.optimizer.clone(),
            seed: x.seed,
            iteration: x.iteration,
            seconds: x.seconds,
            likelihood: x.likelihood,
            prior: x.prior,
            coupling: x.coupling,
            total: x.total(),
            median_cosine: x.median_cosine,
            median_aligned_cosine: x.median_aligned_cosine,
            mirror_walls: x.mirror_walls,
        })
        .collect();
    Table::from_rows("curves", &["optimizer", "seed", "iteration"], &curves)?
        .describe(COLUMNS)
        .wall_clock(&["seconds"])
        .write(dir)?;
    Table::from_rows(
        "sweep",
        &[
            "bin_years",
            "count_scale",
            "init",
            "init_scale",
            "optimizer",
            "iteration",
        ],
        &summary.sweep,
    )?
    .describe(COLUMNS)
    .describe(SWEEP_COLUMNS)
    .write(dir)
}

/// What the columns of the DWE tables mean (tables that share a name share its meaning;
/// [`SWEEP_COLUMNS`] adds the medians over seeds).
const COLUMNS: &[ColumnDoc] = &[
    col(
        "rank",
        Unit::Index,
        "position in the list, best first (vocabulary: from 0; word_aging: from 1)",
    ),
    col("word", Unit::Label, "a vocabulary word"),
    col(
        "score",
        Unit::One,
        "sum over time steps of the word's relative frequency in that step (the vocabulary is the words of highest score)",
    ),
    col("year", Unit::Year, "the time step (first year of its bin)"),
    col("documents", Unit::Count, "documents in the step"),
    col("tokens", Unit::Count, "tokens in the step after cleaning"),
    col(
        "vocabulary_tokens",
        Unit::Count,
        "tokens in the step that are vocabulary words",
    ),
    col(
        "positive_total",
        Unit::Count,
        "sum of the step's positive co-occurrence counts (after count_scale)",
    ),
    col(
        "nonzero_pairs",
        Unit::Count,
        "word-context pairs with a positive count in the step",
    ),
    col(
        "delta_tau_to_next",
        Unit::Years,
        "years to the next step (the prior's diffusion time); missing for the last step",
    ),
    col(
        "optimizer",
        Unit::Label,
        "baseline (plain gradient steps) or goldstone (Goldstone-GD)",
    ),
    col("seed", Unit::Index, "the run's seed index"),
    col(
        "alignment",
        Unit::Label,
        "raw cosines, or after an orthogonal Procrustes map of the first step onto the last",
    ),
    col(
        "q05",
        Unit::One,
        "5 % quantile over words of cos(first-step, last-step embedding)",
    ),
    col(
        "q25",
        Unit::One,
        "25 % quantile over words of cos(first-step, last-step embedding)",
    ),
    col(
        "median",
        Unit::One,
        "median over words of cos(first-step, last-step embedding)",
    ),
    col(
        "q75",
        Unit::One,
        "75 % quantile over words of cos(first-step, last-step embedding)",
    ),
    col(
        "q95",
        Unit::One,
        "95 % quantile over words of cos(first-step, last-step embedding)",
    ),
    col(
        "above_0_6",
        Unit::One,
        "fraction of words whose first↔last cosine exceeds 0.6",
    ),
    col(
        "median_cosine",
        Unit::One,
        "median over words of cos(first-step, last-step embedding), at the end of the run (curves: at the iteration)",
    ),
    col(
        "median_aligned_cosine",
        Unit::One,
        "median_cosine after an orthogonal Procrustes map of the first step onto the last",
    ),
    col(
        "gain",
        Unit::One,
        "median_aligned_cosine − median_cosine: what a global rotation recovers",
    ),
    col(
        "mirror_walls",
        Unit::Count,
        "reflections along the chain of steps (mirror walls), which no rotation removes",
    ),
    col(
        "seconds_per_iteration",
        Unit::Seconds,
        "wall-clock time of the median iteration (gradient and update)",
    ),
    col(
        "gauge_seconds",
        Unit::Seconds,
        "wall-clock time of the median gauge phase",
    ),
    col("phases", Unit::Count, "gauge phases run"),
    col(
        "gauge_overhead",
        Unit::One,
        "gauge time over iteration time, from the medians: phases × median phase / (iterations × median iteration)",
    ),
    col(
        "held_out_log_likelihood",
        Unit::Nats,
        "log-likelihood per test point of the held-out steps (each predicted from its neighbours), mean over held-out steps",
    ),
    col(
        "final_total_loss",
        Unit::Nats,
        "the total loss (likelihood + prior + coupling) at the last recording point",
    ),
    col(
        "final_coupling",
        Unit::Nats,
        "ψ, the coupling energy between neighbouring steps, at the last recording point",
    ),
    col("time", Unit::Year, "the held-out step"),
    col(
        "log_likelihood_per_point",
        Unit::Nats,
        "log-likelihood per test point of the held-out step",
    ),
    col("query", Unit::Label, "the query word"),
    col(
        "cosine",
        Unit::One,
        "cosine of the word's first-step vector with the query's last-step vector (seed 0)",
    ),
    col("iteration", Unit::Updates, "training iterations done"),
    col(
        "seconds",
        Unit::Seconds,
        "training wall-clock time so far (recording excluded)",
    ),
    col(
        "likelihood",
        Unit::Nats,
        "−log-likelihood of the training counts",
    ),
    col(
        "prior",
        Unit::Nats,
        "½‖Z‖²/σ₀², the prior on the first step's embeddings",
    ),
    col(
        "coupling",
        Unit::Nats,
        "ψ, the Ornstein–Uhlenbeck coupling energy between neighbouring steps",
    ),
    col("total", Unit::Nats, "likelihood + prior + coupling"),
];

/// The sweep's columns: one row per regime, optimiser and recording point, medians over seeds.
const SWEEP_COLUMNS: &[ColumnDoc] = &[
    col("bin_years", Unit::Years, "years per time step"),
    col(
        "count_scale",
        Unit::One,
        "factor on every co-occurrence count",
    ),
    col(
        "init",
        Unit::Label,
        "how the initial embeddings are drawn: independent per step, or from the prior",
    ),
    col("init_scale", Unit::One, "scale of the initial embeddings"),
    col("iteration", Unit::Updates, "training iterations done"),
    col("steps", Unit::Count, "time steps of the regime"),
    col(
        "mean_positive_total",
        Unit::Count,
        "mean over steps of the positive co-occurrence total",
    ),
    col(
        "median_cosine",
        Unit::One,
        "median over seeds of the median over words of cos(first, last)",
    ),
    col(
        "median_aligned_cosine",
        Unit::One,
        "as median_cosine after an orthogonal Procrustes map",
    ),
    col(
        "coupling",
        Unit::Nats,
        "median over seeds of ψ, the coupling energy",
    ),
    col(
        "total_loss",
        Unit::Nats,
        "median over seeds of the total loss",
    ),
    col(
        "held_out_log_likelihood",
        Unit::Nats,
        "median over seeds of the held-out log-likelihood per test point (last recording point only)",
    ),
];

/// A histogram of `values` on [−1, 1] as a step line (fraction of words per bin).
fn histogram_series(name: &str, values: &[f64], bins: usize, color: usize) -> Series {
    let mut counts = vec![0usize; bins];
    for &v in values.iter().filter(|v| v.is_finite()) {
        let k = (((v + 1.0) / 2.0 * bins as f64) as usize).min(bins - 1);
        counts[k] += 1;
    }
    let n = values.len().max(1) as f64;
    let width = 2.0 / bins as f64;
    let mut points = Vec::with_capacity(2 * bins);
    for (k, &c) in counts.iter().enumerate() {
        let low = -1.0 + k as f64 * width;
        points.push((low, c as f64 / n));
        points.push((low + width, c as f64 / n));
    }
    Series::new(Some(name.into()), points, color, Style::Line)
}

fn histogram_figure(summary: &Summary, bins: usize) -> Figure {
    let panel = |aligned: bool| {
        Panel::Line(LineChart {
            title: if aligned {
                "after Procrustes alignment of the first step onto the last".into()
            } else {
                format!(
                    "cos(u_first, u_last) over the words, {}",
                    regime_caption(&summary.headline)
                )
            },
            x_label: "cosine".into(),
            y_label: "fraction of words (all seeds)".into(),
            series: summary
                .cosines
                .iter()
                .enumerate()
                .map(|(k, (name, raw, rotated))| {
                    histogram_series(name, if aligned { rotated } else { raw }, bins, k)
                })
                .collect(),
            ..Default::default()
        })
    };
    Figure::grid(vec![panel(false), panel(true)], 2, (800, 560))
}

/// Median over seeds of `f` at every recording point of `optimizer`.
fn median_curve(
    summary: &Summary,
    optimizer: &str,
    f: &dyn Fn(&super::fit::Checkpoint) -> f64,
) -> Vec<(f64, f64)> {
    let mut iterations: Vec<usize> = summary.curves.iter().map(|c| c.iteration).collect();
    iterations.sort_unstable();
    iterations.dedup();
    iterations
        .into_iter()
        .map(|i| {
            let values: Vec<f64> = summary
                .curves
                .iter()
                .filter(|c| c.optimizer == optimizer && c.iteration == i)
                .map(f)
                .collect();
            (i as f64, crate::analysis::stats::finite_median(&values))
        })
        .collect()
}

fn curves_figure(summary: &Summary) -> Figure {
    let panel = |title: &str, y: &str, log_y: bool, f: &dyn Fn(&super::fit::Checkpoint) -> f64| {
        Panel::Line(LineChart {
            title: title.into(),
            x_label: "iteration".into(),
            y_label: y.into(),
            log_y,
            series: optimizers(summary)
                .into_iter()
                .enumerate()
                .map(|(k, o)| {
                    Series::new(
                        Some(o.to_string()),
                        median_curve(summary, o, f),
                        k,
                        Style::LineMarkers,
                    )
                })
                .collect(),
            ..Default::default()
        })
    };
    Figure::grid(
        vec![
            panel("Loss L (median over seeds)", "L", false, &|c| c.total()),
            panel("Coupling ψ (median over seeds)", "ψ", true, &|c| {
                c.coupling
            }),
            panel("Median first↔last cosine (raw)", "cosine", false, &|c| {
                c.median_cosine
            }),
        ],
        3,
        (700, 520),
    )
}

fn sweep_figure(summary: &Summary) -> Figure {
    let mut regimes: Vec<(usize, String, Init, String)> = summary
        .sweep
        .iter()
        .map(|r| {
            (
                r.bin_years,
                r.count_scale.to_string(),
                r.init,
                r.init_scale.to_string(),
            )
        })
        .collect();
    regimes.dedup();
    let panels = regimes
        .iter()
        .map(|(bin, counts, init, scale)| {
            let rows: Vec<_> = summary
                .sweep
                .iter()
                .filter(|r| {
                    r.bin_years == *bin
                        && r.count_scale.to_string() == *counts
                        && r.init == *init
                        && r.init_scale.to_string() == *scale
                })
                .collect();
            let mut series = Vec::new();
            for (k, optimizer) in optimizers(summary).into_iter().enumerate() {
                let of = |aligned: bool| -> Vec<(f64, f64)> {
                    rows.iter()
                        .filter(|r| r.optimizer == *optimizer)
                        .map(|r| {
                            let c = if aligned {
                                r.median_aligned_cosine
                            } else {
                                r.median_cosine
                            };
                            (r.iteration as f64, c)
                        })
                        .collect()
                };
                series.push(Series::new(
                    Some(format!("{optimizer} raw")),
                    of(false),
                    k,
                    Style::LineMarkers,
                ));
                series.push(Series::new(
                    Some(format!("{optimizer} aligned")),
                    of(true),
                    k,
                    Style::Dashed,
                ));
            }
            Panel::Line(LineChart {
                title: regime_caption(&format!(
                    "bin={bin},counts={counts},init={init},scale={scale}"
                )),
                x_label: "iteration".into(),
                y_label: "median cosine".into(),
                series,
                ..Default::default()
            })
        })
        .collect();
    Figure::grid(panels, 2, (640, 440))
}

/// A regime label (`bin=1,counts=1,init=independent,scale=0.01`) as a figure reads it:
/// `1-year bins, counts ×1, independent init (scale 0.01)`; unknown keys stay `key = value`.
pub(crate) fn regime_caption(label: &str) -> String {
    let mut parts = Vec::new();
    let mut scale = None;
    let mut init = None;
    for pair in label.split(',') {
        match pair.split_once('=') {
            Some(("bin", v)) => parts.push(format!("{v}-year bins")),
            Some(("counts", v)) => parts.push(format!("counts ×{v}")),
            Some(("init", v)) => init = Some(v),
            Some(("scale", v)) => scale = Some(v),
            Some((k, v)) => parts.push(format!("{k} = {v}")),
            None => parts.push(pair.to_string()),
        }
    }
    match (init, scale) {
        (Some(init), Some(scale)) => parts.push(format!("{init} init (scale {scale})")),
        (Some(init), None) => parts.push(format!("{init} init")),
        (None, Some(scale)) => parts.push(format!("init scale {scale}")),
        (None, None) => {}
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::regime_caption;

    #[test]
    fn regime_labels_read_as_words() {
        assert_eq!(
            regime_caption("bin=1,counts=1,init=independent,scale=0.01"),
            "1-year bins, counts ×1, independent init (scale 0.01)"
        );
        assert_eq!(regime_caption("bin=5,extra=2"), "5-year bins, extra = 2");
    }
}
