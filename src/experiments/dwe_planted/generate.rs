//! Generate stage `preprocess[T=…,N=…,seed=…]`: the planted truth of (T, seed) — the same for
//! every count scale — and Poisson counts with N_t = N per step, written in the dwe count layout
//! (steps numbered 0…T−1, words `w0`…) plus `truth/truth.{words,contexts}.npy` (T × d × V) and
//! `truth.json` (rates, planted words), all private to the fit that reads them.

use ndarray::Array3;
use serde::{Deserialize, Serialize};

use crate::corpus::counts::PairCounts;
use crate::emit::npy;
use crate::error::Result;
use crate::experiments::dwe::preprocess::{CorpusSummary, CountArrays, StepSummary};
use crate::fsutil::{read_json, write_json};
use crate::models::dwe::planted::{PlantedOptions, PlantedTruth, generate};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageKind};
use crate::seed::rng_for;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct GenerateStage {
    pub options: PlantedOptions,
    pub counts: f64,
    pub base_seed: u64,
    pub seed: usize,
}

/// The truth's scalars.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TruthFacts {
    pub rates: Vec<f64>,
    pub planted: Vec<usize>,
    pub frequencies: Vec<f64>,
    pub smoothed: Vec<f64>,
    /// s² of the random coordinates.
    pub stationary_variance: f64,
}

impl Stage for GenerateStage {
    const KIND: StageKind = StageKind::Preprocess;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("dwe-planted/generate")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let o = &self.options;
        let label = format!("T={},seed={}", o.steps, self.seed);
        let truth = generate(o, &mut rng_for(self.base_seed, &format!("truth/{label}")));
        let mut rng = rng_for(self.base_seed, &format!("counts/{label}/N={}", self.counts));
        let steps = truth.sample_counts(self.counts, o.gamma, &mut rng);
        let v = o.vocabulary;
        let mut arrays = CountArrays::new(steps.len(), v);
        for (t, step) in steps.iter().enumerate() {
            let counts: PairCounts = step.positive.iter().map(|&(i, j, n)| ((i, j), n)).collect();
            let summary = StepSummary {
                year: t as i32,
                documents: 0,
                tokens: 0,
                vocabulary_tokens: 0,
                positive_total: 0.0,
                nonzero_pairs: 0,
            };
            arrays.push(summary, &counts, o.gamma);
        }
        arrays.write(
            ctx.out_dir,
            CorpusSummary {
                vocabulary: (0..v)
                    .map(|i| (format!("w{i}"), truth.frequencies[i]))
                    .collect(),
                steps: Vec::new(),
                text_megabytes: 0.0,
                documents_read: 0,
                distinct_words: v,
                seconds: 0.0,
                megabytes_per_second: 0.0,
            },
        )?;
        // The truth is the data a fit is scored against, private like the counts it generated.
        let arrays_dir = ctx.out_dir.join("truth");
        npy::write(&arrays_dir.join("truth.words.npy"), &truth.words)?;
        npy::write(&arrays_dir.join("truth.contexts.npy"), &truth.contexts)?;
        write_json(
            &ctx.out_dir.join("truth.json"),
            &TruthFacts {
                rates: truth.rates.clone(),
                planted: truth.planted.clone(),
                frequencies: truth.frequencies.clone(),
                smoothed: truth.smoothed.clone(),
                stationary_variance: o.stationary_variance(),
            },
        )
    }
}

/// Reads the truth written by [`GenerateStage`] and s² of its random coordinates.
pub fn load_truth(dir: &std::path::Path) -> Result<(PlantedTruth, f64)> {
    let facts: TruthFacts = read_json(&dir.join("truth.json"))?;
    let words: Array3<f64> = npy::read(&dir.join("truth").join("truth.words.npy"))?;
    let contexts: Array3<f64> = npy::read(&dir.join("truth").join("truth.contexts.npy"))?;
    let truth = PlantedTruth {
        words,
        contexts,
        rates: facts.rates,
        planted: facts.planted,
        frequencies: facts.frequencies,
        smoothed: facts.smoothed,
    };
    Ok((truth, facts.stationary_variance))
}
