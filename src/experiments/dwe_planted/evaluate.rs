//! Evaluate stage: every fit's rows against the truth, collected, and their medians over seeds
//! per (T, N_t, optimiser) — the sweep summary.

use serde::{Deserialize, Serialize};

use super::fit::{CurvePoint, PointRow, load};
use crate::analysis::stats::finite_median;
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct EvaluateStage {
    pub fits: Vec<StageHandle>,
}

/// Medians over seeds at one sweep point.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SummaryRow {
    pub steps: usize,
    pub counts: f64,
    pub optimizer: String,
    pub seeds: usize,
    pub cosine_pearson: f64,
    pub cosine_spearman: f64,
    pub cosine_mae: f64,
    pub twist_gap: f64,
    pub walls: f64,
    pub smooth_walls: f64,
    pub axis_dip: f64,
    pub twist_path: f64,
    pub planted_precision_at_10: f64,
    pub planted_auc: f64,
    /// (loss − loss of the truth) / loss of the truth.
    pub excess_loss: f64,
    /// Median over seeds of the median iteration plus its share of gauge phases, in seconds.
    pub seconds_per_iteration: f64,
    /// Median over seeds of gauge time / step time, from each run's median iteration and phase.
    pub gauge_overhead: f64,
}

/// Everything the emit stage draws.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Evaluation {
    pub rows: Vec<PointRow>,
    /// (T, N, seed, curve point).
    pub curves: Vec<(usize, f64, usize, CurvePoint)>,
    pub summary: Vec<SummaryRow>,
}

impl Stage for EvaluateStage {
    const KIND: StageKind = StageKind::Evaluate;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("dwe-planted/evaluate")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let mut rows = Vec::new();
        let mut curves = Vec::new();
        for id in &self.fits {
            let (r, c) = load(ctx.upstream(id)?)?;
            if let Some(first) = r.first() {
                curves.extend(
                    c.into_iter()
                        .map(|p| (first.steps, first.counts, first.seed, p)),
                );
            }
            rows.extend(r);
        }
        let mut keys: Vec<(usize, u64, String)> = rows
            .iter()
            .map(|r| (r.steps, r.counts.to_bits(), r.optimizer.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        let summary = keys
            .into_iter()
            .map(|(steps, counts, optimizer)| {
                let at: Vec<&PointRow> = rows
                    .iter()
                    .filter(|r| {
                        r.steps == steps && r.counts.to_bits() == counts && r.optimizer == optimizer
                    })
                    .collect();
                let med = |f: &dyn Fn(&PointRow) -> f64| {
                    finite_median(&at.iter().map(|r| f(r)).collect::<Vec<_>>())
                };
                SummaryRow {
                    steps,
                    counts: f64::from_bits(counts),
                    optimizer,
                    seeds: at.len(),
                    cosine_pearson: med(&|r| r.cosine_pearson),
                    cosine_spearman: med(&|r| r.cosine_spearman),
                    cosine_mae: med(&|r| r.cosine_mae),
                    twist_gap: med(&|r| r.twist_gap),
                    walls: med(&|r| r.walls as f64),
                    smooth_walls: med(&|r| r.smooth_walls as f64),
                    axis_dip: med(&|r| r.axis_dip),
                    twist_path: med(&|r| r.twist_path),
                    planted_precision_at_10: med(&|r| r.planted_precision_at_10),
                    planted_auc: med(&|r| r.planted_auc),
                    excess_loss: med(&|r| (r.loss - r.truth_loss) / r.truth_loss.abs()),
                    seconds_per_iteration: med(&|r| {
                        r.median_step_seconds
                            + r.phases as f64 * r.median_phase_seconds / r.iterations.max(1) as f64
                    }),
                    gauge_overhead: med(&|r| r.gauge_overhead),
                }
            })
            .collect();
        write_json(
            &ctx.out_dir.join("evaluation.json"),
            &Evaluation {
                rows,
                curves,
                summary,
            },
        )
    }
}

/// Reads the evaluation written by [`EvaluateStage`].
pub fn load_evaluation(dir: &std::path::Path) -> Result<Evaluation> {
    read_json(&dir.join("evaluation.json"))
}
