//! Preprocess stage: corpus → per-year co-occurrence counts. Documents of the same calendar year
//! are joined into one time step (so gaps such as 1933 and 1973 in the State of the Union give
//! Δτ = 2 there); the vocabulary is the top V words by summed per-step relative frequency; counts
//! follow [`crate::corpus::counts`].
//!
//! Outputs, private to the stages downstream (the data a fit reads, not a result; a run of
//! several corpora would otherwise hold several under one name): `counts/counts.offsets.npy`
//! (i64, T + 1: step t owns entries offsets[t]..offsets[t+1]), `counts/counts.{word,context}.npy`
//! (u32) and `counts.value.npy` (f32, exact: multiples of ¼) — all non-zero n⁺ entries sorted by
//! step, word, context — `counts/steps.year.npy`, `counts/negative.{unigram,smoothed}.npy` (f32,
//! T × V: P_t and P'_t) and `corpus.json` (vocabulary with scores, per-step token counts).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::corpus::counts::{PairCounts, add_sentence, negative_marginals, vocabulary};
use crate::corpus::{Document, for_each_document};
use crate::data::registry::RegisteredInput;
use crate::emit::npy;
use crate::error::{Error, Result};
use crate::fsutil::{read_json, write_json};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageKind};
use crate::spec::dwe::Preprocess;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct CountsStage {
    pub corpus: RegisteredInput,
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

/// What the stage learned about the corpus, and what reading it cost.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CorpusSummary {
    pub vocabulary: Vec<(String, f64)>,
    pub steps: Vec<StepSummary>,
    /// Decompressed size of the corpus file (JSON Lines), in MB.
    #[serde(default)]
    pub text_megabytes: f64,
    #[serde(default)]
    pub documents_read: usize,
    /// Distinct tokens in the selected documents, before the vocabulary cut.
    #[serde(default)]
    pub distinct_words: usize,
    #[serde(default)]
    pub seconds: f64,
    /// Decompressed MB cleaned and tokenised per second (two passes per MB).
    #[serde(default)]
    pub megabytes_per_second: f64,
}

/// The first pass's tally of one year.
#[derive(Default)]
struct YearTally {
    documents: usize,
    tokens: usize,
    /// Interned word id → count.
    frequencies: HashMap<u32, f64>,
}

/// The folder of a counts stage's output that holds the count arrays.
const COUNTS_FOLDER: &str = "counts";

/// The count arrays, filled one step at a time in year order.
pub(crate) struct CountArrays {
    offsets: Vec<i64>,
    words: Vec<u32>,
    contexts: Vec<u32>,
    values: Vec<f32>,
    unigram: Array2<f32>,
    smoothed: Array2<f32>,
    steps: Vec<StepSummary>,
}

impl CountArrays {
    pub(crate) fn new(steps: usize, vocabulary: usize) -> Self {
        Self {
            offsets: vec![0],
            words: Vec::new(),
            contexts: Vec::new(),
            values: Vec::new(),
            unigram: Array2::zeros((steps, vocabulary)),
            smoothed: Array2::zeros((steps, vocabulary)),
            steps: Vec::new(),
        }
    }

    /// Appends the next step: its pair counts, marginals and summary.
    pub(crate) fn push(&mut self, mut summary: StepSummary, counts: &PairCounts, gamma: f64) {
        let k = self.steps.len();
        let (p, q) = negative_marginals(counts, self.unigram.ncols(), gamma);
        self.unigram
            .row_mut(k)
            .assign(&p.iter().map(|&x| x as f32).collect::<Array1<f32>>());
        self.smoothed
            .row_mut(k)
            .assign(&q.iter().map(|&x| x as f32).collect::<Array1<f32>>());
        for (&(i, j), &n) in counts {
            self.words.push(i);
            self.contexts.push(j);
            self.values.push(n as f32);
        }
        self.offsets.push(self.words.len() as i64);
        summary.positive_total = counts.values().sum();
        summary.nonzero_pairs = counts.len();
        self.steps.push(summary);
    }

    pub(crate) fn write(self, out_dir: &Path, summary: CorpusSummary) -> Result<()> {
        let arrays = out_dir.join(COUNTS_FOLDER);
        npy::write(
            &arrays.join("counts.offsets.npy"),
            &Array1::from(self.offsets),
        )?;
        npy::write(&arrays.join("counts.word.npy"), &Array1::from(self.words))?;
        npy::write(
            &arrays.join("counts.context.npy"),
            &Array1::from(self.contexts),
        )?;
        npy::write(&arrays.join("counts.value.npy"), &Array1::from(self.values))?;
        let years: Array1<f64> = self.steps.iter().map(|st| f64::from(st.year)).collect();
        npy::write(&arrays.join("steps.year.npy"), &years)?;
        npy::write(&arrays.join("negative.unigram.npy"), &self.unigram)?;
        npy::write(&arrays.join("negative.smoothed.npy"), &self.smoothed)?;
        write_json(
            &out_dir.join("corpus.json"),
            &CorpusSummary {
                steps: self.steps,
                ..summary
            },
        )
    }
}

impl Stage for CountsStage {
    const KIND: StageKind = StageKind::Preprocess;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("dwe/preprocess")
    }

    /// Two streaming passes over the corpus file, so that the text is never held in memory:
    /// the first tallies every year's word frequencies (words interned), which fix the
    /// vocabulary; the second counts pairs. The corpus files are sorted by year, so a year's
    /// pair counts are complete — and written out — when the next year begins.
    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let s = &self.settings;
        let path = self.corpus.require()?;
        let clock = Instant::now();
        let selected = |d: &Document| -> Option<i32> {
            let year = d.year?;
            let in_range =
                !(s.first_year.is_some_and(|y| year < y) || s.last_year.is_some_and(|y| year > y));
            let language = s
                .language
                .as_ref()
                .is_none_or(|l| d.language.as_deref() == Some(l.as_str()));
            (in_range && language).then_some(year)
        };

        let mut interned: HashMap<String, u32> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        let mut tallies: BTreeMap<i32, YearTally> = BTreeMap::new();
        let first = for_each_document(path, |_, d| {
            let Some(year) = selected(&d) else {
                return Ok(());
            };
            let tally = tallies.entry(year).or_default();
            tally.documents += 1;
            for sentence in s.cleaning.sentences(d.text.as_deref().unwrap_or("")) {
                tally.tokens += sentence.len();
                for word in sentence {
                    let id = match interned.get(&word) {
                        Some(&id) => id,
                        None => {
                            let id = names.len() as u32;
                            names.push(word.clone());
                            interned.insert(word, id);
                            id
                        }
                    };
                    *tally.frequencies.entry(id).or_insert(0.0) += 1.0;
                }
            }
            Ok(())
        })?;
        if tallies.len() < 2 {
            return Err(Error::Other(format!(
                "{}: fewer than two years of documents in the selected range",
                path.display()
            )));
        }
        let distinct_words = names.len();
        let mut years: Vec<(i32, usize, usize)> = Vec::with_capacity(tallies.len());
        let mut frequencies: Vec<HashMap<u32, f64>> = Vec::with_capacity(tallies.len());
        for (year, tally) in tallies {
            years.push((year, tally.documents, tally.tokens));
            frequencies.push(tally.frequencies);
        }
        let vocab = vocabulary(&frequencies, &names, s.vocabulary);
        drop((frequencies, names, interned));
        let index: HashMap<&str, u32> = vocab
            .iter()
            .enumerate()
            .map(|(i, (w, _))| (w.as_str(), i as u32))
            .collect();

        let mut arrays = CountArrays::new(years.len(), vocab.len());
        let mut current: Option<(StepSummary, PairCounts)> = None;
        for_each_document(path, |line, d| {
            let Some(year) = selected(&d) else {
                return Ok(());
            };
            if current.as_ref().is_none_or(|(step, _)| step.year != year) {
                let next = arrays.steps.len() + usize::from(current.is_some());
                if years.get(next).is_none_or(|&(y, _, _)| y != year) {
                    return Err(Error::Other(format!(
                        "{}:{line}: documents are not sorted by year (year {year} here); the \
                         preprocess stage streams the corpus one year at a time",
                        path.display()
                    )));
                }
                if let Some((summary, counts)) = current.take() {
                    arrays.push(summary, &counts, s.gamma);
                }
                let (_, documents, tokens) = years[next];
                current = Some((
                    StepSummary {
                        year,
                        documents,
                        tokens,
                        vocabulary_tokens: 0,
                        positive_total: 0.0,
                        nonzero_pairs: 0,
                    },
                    PairCounts::new(),
                ));
            }
            let (summary, counts) = current.as_mut().expect("set above");
            for sentence in s.cleaning.sentences(d.text.as_deref().unwrap_or("")) {
                let ids: Vec<Option<u32>> = sentence
                    .iter()
                    .map(|w| index.get(w.as_str()).copied())
                    .collect();
                summary.vocabulary_tokens += ids.iter().filter(|i| i.is_some()).count();
                add_sentence(counts, &ids, s.window);
            }
            Ok(())
        })?;
        if let Some((summary, counts)) = current.take() {
            arrays.push(summary, &counts, s.gamma);
        }
        let seconds = clock.elapsed().as_secs_f64();
        let megabytes = first.bytes as f64 / 1e6;
        arrays.write(
            ctx.out_dir,
            CorpusSummary {
                vocabulary: vocab,
                steps: Vec::new(),
                text_megabytes: megabytes,
                documents_read: first.documents,
                distinct_words,
                seconds,
                // Both passes decompress, clean and tokenise the whole text.
                megabytes_per_second: 2.0 * megabytes / seconds.max(1e-9),
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
    let arrays = dir.join(COUNTS_FOLDER);
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
