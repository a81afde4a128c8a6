//! Evaluate stage `evaluate[alignment]`: what the fits say about the Goldstone modes. For the
//! headline regime: quantiles of the first↔last cosine over the vocabulary per optimiser and
//! seed, raw and after the orthogonal Procrustes map (if the baseline's low overlap is a global
//! rotation, alignment recovers it); word-aging lists (the five words whose first-step vector is
//! closest to a query's last-step vector); held-out log-likelihoods and the Goldstone overhead.
//! For every regime: the medians over seeds at every recording point (the sweep).
//!
//! Output: `summary.json` ([`Summary`]).

use serde::{Deserialize, Serialize};

use super::fit::{self, Checkpoint, FitOutput};
use super::preprocess::load_summary;
use crate::analysis::stats::finite_median as median;
use crate::error::Result;
use crate::fsutil::write_json;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::spec::dwe::{Init, Optimizer, Regime};

/// Quantiles of one cosine distribution.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QuantileRow {
    pub optimizer: String,
    /// A seed, or `all` for every seed pooled.
    pub seed: String,
    /// `raw` or `procrustes`.
    pub alignment: String,
    pub q05: f64,
    pub q25: f64,
    pub median: f64,
    pub q75: f64,
    pub q95: f64,
    /// Share of words with cosine above 0.6 (the paper: none for the baseline).
    pub above_0_6: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AgingRow {
    pub query: String,
    pub optimizer: String,
    pub rank: usize,
    pub word: String,
    pub cosine: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRow {
    pub optimizer: String,
    pub seed: usize,
    /// The median iteration (gradient + update).
    pub seconds_per_iteration: f64,
    pub gauge_seconds: f64,
    pub phases: usize,
    /// Gauge time over step time (a fraction), from the median iteration and phase.
    pub gauge_overhead: f64,
    /// Mean over held-out steps of the log-likelihood per test point.
    pub held_out_log_likelihood: f64,
    pub final_total_loss: f64,
    pub final_coupling: f64,
    pub median_cosine: f64,
    pub median_aligned_cosine: f64,
    pub mirror_walls: usize,
}

/// One regime × optimiser × recording point, medians over seeds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SweepRow {
    pub bin_years: usize,
    pub count_scale: f64,
    pub init: Init,
    pub init_scale: f64,
    pub optimizer: String,
    pub iteration: usize,
    pub steps: usize,
    pub mean_positive_total: f64,
    pub median_cosine: f64,
    pub median_aligned_cosine: f64,
    pub coupling: f64,
    pub total_loss: f64,
    /// At the last recording point only.
    pub held_out_log_likelihood: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub headline: String,
    pub quantiles: Vec<QuantileRow>,
    pub aging: Vec<AgingRow>,
    /// Queries not in the vocabulary.
    pub missing_queries: Vec<String>,
    pub runs: Vec<RunRow>,
    /// The headline regime's recording points, every run.
    pub curves: Vec<Checkpoint>,
    pub sweep: Vec<SweepRow>,
    /// Held-out log-likelihood per test point by step: (optimizer, seed, year, value).
    pub held_out_steps: Vec<(String, usize, f64, f64)>,
    /// The headline cosines pooled over seeds, per optimiser: (raw, aligned).
    pub cosines: Vec<(String, Vec<f64>, Vec<f64>)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct EvaluateStage {
    /// The regimes in spec order (the first is the headline) and each one's fit instance.
    pub regimes: Vec<(Regime, StageHandle)>,
    pub optimizers: Vec<Optimizer>,
    pub queries: Vec<String>,
    pub counts: StageHandle,
}

/// The q-quantile (linear interpolation) of sorted finite values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = q * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    let weight = position - low as f64;
    sorted[low] * (1.0 - weight) + sorted[high] * weight
}

fn quantile_row(optimizer: &str, seed: String, alignment: &str, values: &[f64]) -> QuantileRow {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let above = sorted.iter().filter(|&&c| c > 0.6).count() as f64 / sorted.len().max(1) as f64;
    QuantileRow {
        optimizer: optimizer.into(),
        seed,
        alignment: alignment.into(),
        q05: quantile(&sorted, 0.05),
        q25: quantile(&sorted, 0.25),
        median: quantile(&sorted, 0.5),
        q75: quantile(&sorted, 0.75),
        q95: quantile(&sorted, 0.95),
        above_0_6: above,
    }
}

/// The five words j ≠ query whose first-step vector has the largest cosine with the query's
/// last-step vector (seed 0 of optimiser `o`).
fn aging(out: &FitOutput, o: usize, query: usize, vocabulary: &[String]) -> Vec<(String, f64)> {
    let last: ndarray::ArrayView1<f64> = out.last.slice(ndarray::s![o, 0, .., query]);
    let first: ndarray::ArrayView2<f64> = out.first.slice(ndarray::s![o, 0, .., ..]);
    let norm_last = last.dot(&last).sqrt();
    let mut scored: Vec<(usize, f64)> = (0..vocabulary.len())
        .filter(|&j| j != query)
        .map(|j| {
            let u = first.column(j);
            let norm = (u.dot(&u)).sqrt() * norm_last;
            (j, if norm > 0.0 { u.dot(&last) / norm } else { 0.0 })
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
        .into_iter()
        .take(5)
        .map(|(j, c)| (vocabulary[j].clone(), c))
        .collect()
}

fn last_checkpoint<'a>(out: &'a FitOutput, optimizer: &str, seed: usize) -> Option<&'a Checkpoint> {
    out.checkpoints
        .iter()
        .filter(|c| c.optimizer == optimizer && c.seed == seed)
        .max_by_key(|c| c.iteration)
}

fn sweep_rows(regime: &Regime, out: &FitOutput, optimizers: &[Optimizer]) -> Vec<SweepRow> {
    let mut iterations: Vec<usize> = out.checkpoints.iter().map(|c| c.iteration).collect();
    iterations.sort_unstable();
    iterations.dedup();
    let training = out.layout.training();
    let mean_total =
        training.iter().map(|&k| out.layout.totals[k]).sum::<f64>() / training.len().max(1) as f64;
    let mut rows = Vec::new();
    for optimizer in optimizers.iter().map(|o| o.name()) {
        let held_out: Vec<f64> = out
            .runs
            .iter()
            .filter(|r| r.optimizer == optimizer)
            .map(fit::RunFacts::mean_held_out)
            .collect();
        for &iteration in &iterations {
            let at: Vec<&Checkpoint> = out
                .checkpoints
                .iter()
                .filter(|c| c.optimizer == optimizer && c.iteration == iteration)
                .collect();
            let med = |f: &dyn Fn(&Checkpoint) -> f64| {
                median(&at.iter().map(|c| f(c)).collect::<Vec<_>>())
            };
            rows.push(SweepRow {
                bin_years: regime.bin_years,
                count_scale: regime.count_scale,
                init: regime.init,
                init_scale: regime.init_scale,
                steps: training.len(),
                mean_positive_total: mean_total,
                optimizer: optimizer.into(),
                iteration,
                median_cosine: med(&|c| c.median_cosine),
                median_aligned_cosine: med(&|c| c.median_aligned_cosine),
                coupling: med(&|c| c.coupling),
                total_loss: med(&|c| c.total()),
                held_out_log_likelihood: (iteration == *iterations.last().unwrap_or(&0))
                    .then(|| median(&held_out)),
            });
        }
    }
    rows
}

impl Stage for EvaluateStage {
    const KIND: StageKind = StageKind::Evaluate;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("dwe/evaluate")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let corpus = load_summary(ctx.upstream(&self.counts)?)?;
        let vocabulary: Vec<String> = corpus.vocabulary.iter().map(|(w, _)| w.clone()).collect();
        let mut sweep = Vec::new();
        let mut headline = None;
        for (k, (regime, id)) in self.regimes.iter().enumerate() {
            let out = fit::load(ctx.upstream(id)?, regime)?;
            sweep.extend(sweep_rows(regime, &out, &self.optimizers));
            if k == 0 {
                headline = Some(out);
            }
        }
        let Some(out) = headline else {
            return Err(crate::error::Error::Other("no fit regime".into()));
        };
        let seeds = out.cosine.shape()[1];
        let mut quantiles = Vec::new();
        let mut cosines = Vec::new();
        for (o, optimizer) in self.optimizers.iter().enumerate() {
            let mut pooled = (Vec::new(), Vec::new());
            for seed in 0..seeds {
                let raw = out.cosine.slice(ndarray::s![o, seed, ..]).to_vec();
                let aligned = out.aligned.slice(ndarray::s![o, seed, ..]).to_vec();
                quantiles.push(quantile_row(
                    optimizer.name(),
                    seed.to_string(),
                    "raw",
                    &raw,
                ));
                quantiles.push(quantile_row(
                    optimizer.name(),
                    seed.to_string(),
                    "procrustes",
                    &aligned,
                ));
                pooled.0.extend(raw);
                pooled.1.extend(aligned);
            }
            quantiles.push(quantile_row(
                optimizer.name(),
                "all".into(),
                "raw",
                &pooled.0,
            ));
            quantiles.push(quantile_row(
                optimizer.name(),
                "all".into(),
                "procrustes",
                &pooled.1,
            ));
            cosines.push((optimizer.to_string(), pooled.0, pooled.1));
        }
        let mut aging_rows = Vec::new();
        let mut missing_queries = Vec::new();
        for query in &self.queries {
            let Some(index) = vocabulary.iter().position(|w| w == query) else {
                missing_queries.push(query.clone());
                continue;
            };
            for (o, optimizer) in self.optimizers.iter().enumerate() {
                for (rank, (word, cosine)) in
                    aging(&out, o, index, &vocabulary).into_iter().enumerate()
                {
                    aging_rows.push(AgingRow {
                        query: query.clone(),
                        optimizer: optimizer.to_string(),
                        rank: rank + 1,
                        word,
                        cosine,
                    });
                }
            }
        }
        let mut runs = Vec::new();
        let mut held_out_steps = Vec::new();
        for run in &out.runs {
            let last = last_checkpoint(&out, &run.optimizer, run.seed);
            runs.push(RunRow {
                optimizer: run.optimizer.clone(),
                seed: run.seed,
                seconds_per_iteration: run.median_step_seconds,
                gauge_seconds: run.gauge_seconds,
                phases: run.phases,
                gauge_overhead: run.gauge_overhead,
                held_out_log_likelihood: run.mean_held_out(),
                final_total_loss: last.map_or(f64::NAN, Checkpoint::total),
                final_coupling: last.map_or(f64::NAN, |c| c.coupling),
                median_cosine: last.map_or(f64::NAN, |c| c.median_cosine),
                median_aligned_cosine: last.map_or(f64::NAN, |c| c.median_aligned_cosine),
                mirror_walls: last.map_or(0, |c| c.mirror_walls),
            });
            for (&k, &ll) in out.layout.held_out.iter().zip(&run.held_out) {
                held_out_steps.push((run.optimizer.clone(), run.seed, out.layout.times[k], ll));
            }
        }
        write_json(
            &ctx.out_dir.join("summary.json"),
            &Summary {
                headline: self.regimes[0].0.label(),
                quantiles,
                aging: aging_rows,
                missing_queries,
                runs,
                curves: out.checkpoints.clone(),
                sweep,
                held_out_steps,
                cosines,
            },
        )
    }
}

/// Reads the summary written by [`EvaluateStage`].
pub fn load(dir: &std::path::Path) -> Result<Summary> {
    crate::fsutil::read_json(&dir.join("summary.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_linearly() {
        let sorted = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&sorted, 0.5), 2.0);
        assert_eq!(quantile(&sorted, 0.25), 1.0);
        assert!((quantile(&sorted, 0.1) - 0.4).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
