//! Preprocess stage: corpus → per-year co-occurrence counts. Documents of the same calendar year
//! are joined into one time step (so gaps such as 1933 and 1973 in the State of the Union give
//! Δτ = 2 there); the vocabulary is the top V words by summed per-step relative frequency; counts
//! follow [`crate::corpus::counts`].
//!
//! Outputs: `arrays/counts.offsets.npy` (i64, T + 1: step t owns entries offsets[t]..offsets[t+1]),
//! `arrays/counts.{word,context}.npy` (u32) and `counts.value.npy` (f32, exact: multiples of ¼)
//! — all non-zero n⁺ entries sorted by step, word, context — `arrays/steps.year.npy`,
//! `arrays/negative.{unigram,smoothed}.npy` (f32, T × V: P_t and P'_t) and `corpus.json`
//! (vocabulary with scores, per-step token counts).

use std::collections::{BTreeMap, HashMap};

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::corpus::counts::{PairCounts, add_sentence, negative_marginals, vocabulary};
use crate::corpus::{clean, read_jsonl_gz, sentences};
use crate::data::registry::Registry;
use crate::emit::npy;
use crate::error::{Error, Result};
use crate::fsutil::{read_json, write_json};
use crate::pipeline::{StageContext, StageTask};
use crate::spec::dwe::Preprocess;

pub struct CountsStage {
    pub registry: Registry,
    pub corpus: String,
    pub settings: Preprocess,
}

/// One time step of the corpus.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepSummary {
    pub year: i32,
    pub documents: usize,
    pub tokens: usize,
    pub vocabulary_tokens: usize,
    pub positive_total: f64,
    pub nonzero_pairs: usize,
}

/// What the stage learned about the corpus.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CorpusSummary {
    pub vocabulary: Vec<(String, f64)>,
    pub steps: Vec<StepSummary>,
}

impl StageTask for CountsStage {
    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let s = &self.settings;
        let path = self.registry.require(&self.corpus)?;
        let documents = read_jsonl_gz(&path)?;
        let mut by_year: BTreeMap<i32, (usize, Vec<Vec<String>>)> = BTreeMap::new();
        for document in documents {
            if s.first_year.is_some_and(|y| document.year < y)
                || s.last_year.is_some_and(|y| document.year > y)
            {
                continue;
            }
            let entry = by_year.entry(document.year).or_default();
            entry.0 += 1;
            entry.1.extend(sentences(&clean(&document.text)));
        }
        if by_year.len() < 2 {
            return Err(Error::Other(format!(
                "{}: fewer than two years of documents in the selected range",
                path.display()
            )));
        }
        let frequencies: Vec<HashMap<String, f64>> = by_year
            .values()
            .map(|(_, sents)| {
                let mut f = HashMap::new();
                for token in sents.iter().flatten() {
                    *f.entry(token.clone()).or_insert(0.0) += 1.0;
                }
                f
            })
            .collect();
        let vocab = vocabulary(&frequencies, s.vocabulary);
        let index: HashMap<&str, u32> = vocab
            .iter()
            .enumerate()
            .map(|(i, (w, _))| (w.as_str(), i as u32))
            .collect();
        let v = vocab.len();
        let t = by_year.len();
        let (mut offsets, mut word_col, mut context_col, mut value_col) = (
            vec![0i64],
            Vec::<u32>::new(),
            Vec::<u32>::new(),
            Vec::<f32>::new(),
        );
        let mut unigram = Array2::<f32>::zeros((t, v));
        let mut smoothed = Array2::<f32>::zeros((t, v));
        let mut steps = Vec::new();
        for (k, (year, (documents, sents))) in by_year.iter().enumerate() {
            let mut counts = PairCounts::new();
            let mut vocabulary_tokens = 0;
            for sentence in sents {
                let ids: Vec<Option<u32>> = sentence
                    .iter()
                    .map(|w| index.get(w.as_str()).copied())
                    .collect();
                vocabulary_tokens += ids.iter().filter(|i| i.is_some()).count();
                add_sentence(&mut counts, &ids, s.window);
            }
            let (p, q) = negative_marginals(&counts, v, s.gamma);
            unigram
                .row_mut(k)
                .assign(&p.iter().map(|&x| x as f32).collect::<Array1<f32>>());
            smoothed
                .row_mut(k)
                .assign(&q.iter().map(|&x| x as f32).collect::<Array1<f32>>());
            for (&(i, j), &n) in &counts {
                word_col.push(i);
                context_col.push(j);
                value_col.push(n as f32);
            }
            offsets.push(word_col.len() as i64);
            steps.push(StepSummary {
                year: *year,
                documents: *documents,
                tokens: sents.iter().map(Vec::len).sum(),
                vocabulary_tokens,
                positive_total: counts.values().sum(),
                nonzero_pairs: counts.len(),
            });
        }
        let arrays = ctx.out_dir.join("arrays");
        npy::write(&arrays.join("counts.offsets.npy"), &Array1::from(offsets))?;
        npy::write(&arrays.join("counts.word.npy"), &Array1::from(word_col))?;
        npy::write(
            &arrays.join("counts.context.npy"),
            &Array1::from(context_col),
        )?;
        npy::write(&arrays.join("counts.value.npy"), &Array1::from(value_col))?;
        let years: Array1<f64> = steps.iter().map(|st| f64::from(st.year)).collect();
        npy::write(&arrays.join("steps.year.npy"), &years)?;
        npy::write(&arrays.join("negative.unigram.npy"), &unigram)?;
        npy::write(&arrays.join("negative.smoothed.npy"), &smoothed)?;
        write_json(
            &ctx.out_dir.join("corpus.json"),
            &CorpusSummary {
                vocabulary: vocab,
                steps,
            },
        )
    }
}

/// Reads the corpus summary written by [`CountsStage`].
pub fn load_summary(dir: &std::path::Path) -> Result<CorpusSummary> {
    read_json(&dir.join("corpus.json"))
}

/// Reads the counts written by [`CountsStage`]: the year of every step, the steps and V.
pub fn load_counts(
    dir: &std::path::Path,
) -> Result<(Vec<f64>, Vec<crate::models::dwe::StepCounts>, usize)> {
    let arrays = dir.join("arrays");
    let offsets: Array1<i64> = npy::read_as(&arrays.join("counts.offsets.npy"))?;
    let words: Array1<u32> = npy::read_as(&arrays.join("counts.word.npy"))?;
    let contexts: Array1<u32> = npy::read_as(&arrays.join("counts.context.npy"))?;
    let values: Array1<f32> = npy::read_as(&arrays.join("counts.value.npy"))?;
    let years: Array1<f64> = npy::read(&arrays.join("steps.year.npy"))?;
    let unigram: Array2<f32> = npy::read_as(&arrays.join("negative.unigram.npy"))?;
    let smoothed: Array2<f32> = npy::read_as(&arrays.join("negative.smoothed.npy"))?;
    let steps = years.len();
    let consistent = offsets.len() == steps + 1
        && words.len() == contexts.len()
        && words.len() == values.len()
        && offsets.last().is_some_and(|&n| n as usize == words.len())
        && unigram.nrows() == steps
        && smoothed.dim() == unigram.dim();
    if !consistent {
        return Err(Error::Other(format!(
            "{}: the count arrays disagree in length; rerun the preprocess stage",
            arrays.display()
        )));
    }
    let v = unigram.ncols();
    let counts = (0..steps)
        .map(|t| {
            let range = offsets[t] as usize..offsets[t + 1] as usize;
            crate::models::dwe::StepCounts {
                positive: range
                    .map(|k| (words[k], contexts[k], f64::from(values[k])))
                    .collect(),
                unigram: unigram.row(t).iter().map(|&p| f64::from(p)).collect(),
                smoothed: smoothed.row(t).iter().map(|&p| f64::from(p)).collect(),
            }
        })
        .collect();
    Ok((years.to_vec(), counts, v))
}
