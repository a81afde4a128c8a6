//! Emit stage: the corpus tables (vocabulary, steps) and, from the alignment evaluation, the
//! tables `cosine_quantiles`, `procrustes`, `word_aging`, `word_aging_lists`, `runs`,
//! `held_out`, `curves`, `sweep` and the figures `cosine_histogram` (first↔last cosines, raw and
//! Procrustes-aligned, both optimisers), `curves` (loss, ψ and median cosine vs iteration) and
//! `sweep` (median cosine vs iteration in every regime).

use super::evaluate::{self, Summary};
use super::preprocess::load_summary;
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::table::Table;
use crate::error::Result;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};

#[derive(serde::Serialize)]
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
        Table::new("vocabulary", &["rank"])
            .i64("rank", (0..summary.vocabulary.len() as i64).collect())
            .str(
                "word",
                summary.vocabulary.iter().map(|(w, _)| w.clone()).collect(),
            )
            .f64(
                "score",
                summary.vocabulary.iter().map(|(_, s)| *s).collect(),
            )
            .write(&tables)?;
        let steps = &summary.steps;
        let gaps: Vec<f64> = steps
            .iter()
            .enumerate()
            .map(|(k, st)| {
                steps
                    .get(k + 1)
                    .map_or(f64::NAN, |next| f64::from(next.year - st.year))
            })
            .collect();
        Table::new("steps", &["year"])
            .i64("year", steps.iter().map(|s| i64::from(s.year)).collect())
            .i64(
                "documents",
                steps.iter().map(|s| s.documents as i64).collect(),
            )
            .i64("tokens", steps.iter().map(|s| s.tokens as i64).collect())
            .i64(
                "vocabulary_tokens",
                steps.iter().map(|s| s.vocabulary_tokens as i64).collect(),
            )
            .f64(
                "positive_total",
                steps.iter().map(|s| s.positive_total).collect(),
            )
            .i64(
                "nonzero_pairs",
                steps.iter().map(|s| s.nonzero_pairs as i64).collect(),
            )
            .f64("delta_tau_to_next", gaps)
            .write(&tables)?;
        let summary = evaluate::load(ctx.upstream(&self.evaluate)?)?;
        write_tables(&summary, &tables)?;
        let figures = ctx.out_dir.join("figures");
        histogram_figure(&summary, self.histogram_bins).write(&figures, "cosine_histogram")?;
        curves_figure(&summary).write(&figures, "curves")?;
        sweep_figure(&summary).write(&figures, "sweep")
    }
}

fn strings<T>(rows: &[T], f: impl Fn(&T) -> String) -> Vec<String> {
    rows.iter().map(f).collect()
}
fn floats<T>(rows: &[T], f: impl Fn(&T) -> f64) -> Vec<f64> {
    rows.iter().map(f).collect()
}
fn ints<T>(rows: &[T], f: impl Fn(&T) -> i64) -> Vec<i64> {
    rows.iter().map(f).collect()
}

/// The optimisers of the run, in the spec's order.
fn optimizers(summary: &Summary) -> Vec<&str> {
    summary.cosines.iter().map(|c| c.0.as_str()).collect()
}

fn write_tables(summary: &Summary, dir: &std::path::Path) -> Result<()> {
    let q = &summary.quantiles;
    Table::new("cosine_quantiles", &["optimizer", "seed", "alignment"])
        .str("optimizer", strings(q, |r| r.optimizer.clone()))
        .str("seed", strings(q, |r| r.seed.clone()))
        .str("alignment", strings(q, |r| r.alignment.clone()))
        .f64("q05", floats(q, |r| r.q05))
        .f64("q25", floats(q, |r| r.q25))
        .f64("median", floats(q, |r| r.median))
        .f64("q75", floats(q, |r| r.q75))
        .f64("q95", floats(q, |r| r.q95))
        .f64("above_0_6", floats(q, |r| r.above_0_6))
        .write(dir)?;
    let r = &summary.runs;
    Table::new("procrustes", &["optimizer", "seed"])
        .str("optimizer", strings(r, |x| x.optimizer.clone()))
        .i64("seed", ints(r, |x| x.seed as i64))
        .f64("median_cosine", floats(r, |x| x.median_cosine))
        .f64(
            "median_aligned_cosine",
            floats(r, |x| x.median_aligned_cosine),
        )
        .f64(
            "gain",
            floats(r, |x| x.median_aligned_cosine - x.median_cosine),
        )
        .i64("mirror_walls", ints(r, |x| x.mirror_walls as i64))
        .write(dir)?;
    Table::new("runs", &["optimizer", "seed"])
        .wall_clock(&["seconds_per_iteration", "gauge_seconds", "overhead_percent"])
        .str("optimizer", strings(r, |x| x.optimizer.clone()))
        .i64("seed", ints(r, |x| x.seed as i64))
        .f64(
            "seconds_per_iteration",
            floats(r, |x| x.seconds_per_iteration),
        )
        .f64("gauge_seconds", floats(r, |x| x.gauge_seconds))
        .i64("phases", ints(r, |x| x.phases as i64))
        .f64("overhead_percent", floats(r, |x| x.overhead_percent))
        .f64(
            "held_out_log_likelihood",
            floats(r, |x| x.held_out_log_likelihood),
        )
        .f64("final_total_loss", floats(r, |x| x.final_total_loss))
        .f64("final_coupling", floats(r, |x| x.final_coupling))
        .write(dir)?;
    let h = &summary.held_out_steps;
    Table::new("held_out", &["optimizer", "seed", "time"])
        .str("optimizer", strings(h, |x| x.0.clone()))
        .i64("seed", ints(h, |x| x.1 as i64))
        .f64("time", floats(h, |x| x.2))
        .f64("log_likelihood_per_point", floats(h, |x| x.3))
        .write(dir)?;
    let a = &summary.aging;
    Table::new("word_aging", &["query", "optimizer", "rank"])
        .str("query", strings(a, |x| x.query.clone()))
        .str("optimizer", strings(a, |x| x.optimizer.clone()))
        .i64("rank", ints(a, |x| x.rank as i64))
        .str("word", strings(a, |x| x.word.clone()))
        .f64("cosine", floats(a, |x| x.cosine))
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
    let mut table = Table::new("word_aging_lists", &["query"])
        .str("query", queries.iter().map(|q| q.to_string()).collect());
    for optimizer in optimizers(summary) {
        table = table.str(optimizer, lists(optimizer));
    }
    table.write(dir)?;
    let c = &summary.curves;
    Table::new("curves", &["optimizer", "seed", "iteration"])
        .wall_clock(&["seconds"])
        .str("optimizer", strings(c, |x| x.optimizer.clone()))
        .i64("seed", ints(c, |x| x.seed as i64))
        .i64("iteration", ints(c, |x| x.iteration as i64))
        .f64("seconds", floats(c, |x| x.seconds))
        .f64("likelihood", floats(c, |x| x.likelihood))
        .f64("prior", floats(c, |x| x.prior))
        .f64("coupling", floats(c, |x| x.coupling))
        .f64("total", floats(c, |x| x.total()))
        .f64("median_cosine", floats(c, |x| x.median_cosine))
        .f64(
            "median_aligned_cosine",
            floats(c, |x| x.median_aligned_cosine),
        )
        .i64("mirror_walls", ints(c, |x| x.mirror_walls as i64))
        .write(dir)?;
    let w = &summary.sweep;
    Table::new(
        "sweep",
        &[
            "bin_years",
            "count_scale",
            "init",
            "init_scale",
            "optimizer",
            "iteration",
        ],
    )
    .i64("bin_years", ints(w, |x| x.bin_years as i64))
    .f64("count_scale", floats(w, |x| x.count_scale))
    .str("init", strings(w, |x| x.init.clone()))
    .f64("init_scale", floats(w, |x| x.init_scale))
    .str("optimizer", strings(w, |x| x.optimizer.clone()))
    .i64("iteration", ints(w, |x| x.iteration as i64))
    .i64("steps", ints(w, |x| x.steps as i64))
    .f64("mean_positive_total", floats(w, |x| x.mean_positive_total))
    .f64("median_cosine", floats(w, |x| x.median_cosine))
    .f64(
        "median_aligned_cosine",
        floats(w, |x| x.median_aligned_cosine),
    )
    .f64("coupling", floats(w, |x| x.coupling))
    .f64("total_loss", floats(w, |x| x.total_loss))
    .f64(
        "held_out_log_likelihood",
        floats(w, |x| x.held_out_log_likelihood.unwrap_or(f64::NAN)),
    )
    .write(dir)
}

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
                "After orthogonal Procrustes alignment of the first step onto the last".into()
            } else {
                format!(
                    "cos(u_first, u_last) over the vocabulary — {}",
                    summary.headline
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
    let mut regimes: Vec<(usize, String, String, String)> = summary
        .sweep
        .iter()
        .map(|r| {
            (
                r.bin_years,
                r.count_scale.to_string(),
                r.init.clone(),
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
                title: format!("bin {bin} y, counts ×{counts}, init {init} {scale}"),
                x_label: "iteration".into(),
                y_label: "median cosine".into(),
                series,
                ..Default::default()
            })
        })
        .collect();
    Figure::grid(panels, 2, (640, 440))
}
