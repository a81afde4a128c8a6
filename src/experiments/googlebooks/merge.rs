//! Merge stage: the reduced slices → one set of per-year counts in the dwe layout
//! ([`crate::experiments::dwe::preprocess`]), so the dwe fit reads Google Books exactly as it
//! reads a JSON Lines corpus. Slices are added word by word; the vocabulary is the top V by the
//! sum over years of the word's tally divided by that year's match_count in the total-counts
//! file (the paper's per-year normalisation); steps are the years with pairs inside the
//! vocabulary. Also writes `arrays/tallies.npy` (steps × V, raw tallies of the vocabulary
//! words) and `googlebooks.json` (per-slice statistics, missing slices, yearly totals).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::reduce::SliceRecord;
use crate::corpus::counts::{PairCounts, top_by_score};
use crate::corpus::ngram::{SliceCounts, read_total_counts};
use crate::data::googlebooks::check_read;
use crate::emit::npy;
use crate::error::{Error, Result};
use crate::experiments::dwe::preprocess::{CorpusSummary, CountArrays, StepSummary};
use crate::fsutil::{read_json, write_json};
use crate::pipeline::{CodeGroup, InputFile, Stage, StageContext, StageHandle, StageKind};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct MergeStage {
    pub reduces: Vec<StageHandle>,
    pub totals_fetch: StageHandle,
    pub totals_path: InputFile,
    pub lock: PathBuf,
    pub vocabulary: usize,
    pub gamma: f64,
    pub first_year: i32,
    pub last_year: i32,
}

/// What the merge saw, beside the dwe corpus summary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MergeRecord {
    pub slices: Vec<SliceRecord>,
    pub missing: Vec<String>,
    /// year → match_count of the total-counts file, inside the year range.
    pub totals: BTreeMap<i32, f64>,
    pub merge_seconds: f64,
}

impl Stage for MergeStage {
    const KIND: StageKind = StageKind::Preprocess;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("googlebooks/merge")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let clock = Instant::now();
        let fetched = super::fetch::load(ctx.upstream(&self.totals_fetch)?)?;
        if fetched.is_missing() {
            return Err(Error::Other(format!(
                "the total-counts file {} is not on the server ({}); the vocabulary needs it",
                fetched.file, fetched.url
            )));
        }
        let sha = crate::data::registry::sha256_file(self.totals_path.path())?;
        check_read(&self.lock, self.totals_path.path(), &sha)?;
        let totals: BTreeMap<i32, f64> = read_total_counts(self.totals_path.path())?
            .into_iter()
            .filter(|(y, _)| (self.first_year..=self.last_year).contains(y))
            .collect();

        let mut merged = SliceCounts::default();
        let mut slices = Vec::new();
        for id in &self.reduces {
            let (record, counts) = super::reduce::load(ctx.upstream(id)?)?;
            merged.merge(&counts);
            slices.push(record);
        }
        let missing: Vec<String> = slices
            .iter()
            .filter(|s| s.missing)
            .map(|s| s.suffix.clone())
            .collect();

        let mut score: HashMap<u32, f64> = HashMap::new();
        for &((word, year), count) in &merged.unigram {
            let total = totals.get(&year).copied().ok_or_else(|| {
                Error::Other(format!(
                    "{}: no total count for {year}, which the slices have",
                    self.totals_path.path().display()
                ))
            })?;
            *score.entry(word).or_insert(0.0) += count / total;
        }
        let vocabulary = top_by_score(score, &merged.words, self.vocabulary);
        let index: HashMap<&str, u32> = vocabulary
            .iter()
            .enumerate()
            .map(|(k, (w, _))| (w.as_str(), k as u32))
            .collect();
        let remap: Vec<Option<u32>> = merged
            .words
            .iter()
            .map(|w| index.get(w.as_str()).copied())
            .collect();

        let mut by_year: BTreeMap<i32, PairCounts> = BTreeMap::new();
        for &((i, j, year), weight) in &merged.pairs {
            if let (Some(a), Some(b)) = (remap[i as usize], remap[j as usize]) {
                *by_year
                    .entry(year)
                    .or_default()
                    .entry((a, b))
                    .or_insert(0.0) += weight;
            }
        }
        if by_year.len() < 2 {
            return Err(Error::Other(format!(
                "the slices give pairs inside the vocabulary in {} year(s) of {}–{}; at least two \
                 are needed",
                by_year.len(),
                self.first_year,
                self.last_year
            )));
        }
        let steps: Vec<i32> = by_year.keys().copied().collect();
        let step_of: HashMap<i32, usize> = steps.iter().enumerate().map(|(k, &y)| (y, k)).collect();
        let mut tallies = Array2::<f64>::zeros((steps.len(), vocabulary.len()));
        let mut tokens: HashMap<i32, f64> = HashMap::new();
        for &((word, year), count) in &merged.unigram {
            *tokens.entry(year).or_insert(0.0) += count;
            if let (Some(&t), Some(v)) = (step_of.get(&year), remap[word as usize]) {
                tallies[[t, v as usize]] += count;
            }
        }
        let mut arrays = CountArrays::new(steps.len(), vocabulary.len());
        for (t, (year, counts)) in by_year.into_iter().enumerate() {
            let summary = StepSummary {
                year,
                documents: merged.lines_by_year.get(&year).copied().unwrap_or(0) as usize,
                tokens: tokens.get(&year).copied().unwrap_or(0.0) as usize,
                vocabulary_tokens: tallies.row(t).sum() as usize,
                positive_total: 0.0,
                nonzero_pairs: 0,
            };
            arrays.push(summary, &counts, self.gamma);
        }
        npy::write(&ctx.out_dir.join("arrays").join("tallies.npy"), &tallies)?;
        let text_bytes: u64 = slices.iter().map(|s| s.stats.text_bytes).sum();
        let reduce_seconds: f64 = slices.iter().map(|s| s.stats.seconds).sum();
        let merge_seconds = clock.elapsed().as_secs_f64();
        write_json(
            &ctx.out_dir.join("googlebooks.json"),
            &MergeRecord {
                slices: slices.clone(),
                missing,
                totals,
                merge_seconds,
            },
        )?;
        arrays.write(
            ctx.out_dir,
            CorpusSummary {
                vocabulary,
                steps: Vec::new(),
                text_megabytes: text_bytes as f64 / 1e6,
                documents_read: slices.iter().map(|s| s.stats.lines as usize).sum(),
                distinct_words: merged.words.len(),
                seconds: reduce_seconds + merge_seconds,
                megabytes_per_second: text_bytes as f64 / 1e6 / reduce_seconds.max(1e-9),
            },
        )
    }
}

/// Reads the record written by [`MergeStage`].
pub fn load(dir: &std::path::Path) -> Result<MergeRecord> {
    read_json(&dir.join("googlebooks.json"))
}
