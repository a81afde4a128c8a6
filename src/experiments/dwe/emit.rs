//! Emit stage: the vocabulary and the per-step corpus tables.

use super::preprocess::load_summary;
use crate::emit::table::Table;
use crate::error::Result;
use crate::pipeline::{StageContext, StageTask};

pub struct EmitStage {
    pub counts_id: String,
}

impl StageTask for EmitStage {
    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let summary = load_summary(ctx.upstream_dir(&self.counts_id)?)?;
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
            .write(&tables)
    }
}
