//! Evaluate stage `evaluate[corpus=<experiment>]`: the count scale of a real-corpus dwe
//! experiment, to set beside the sweep. From that experiment's own preprocessed counts (the same
//! stage code and raw data, run here under its own label), binned as each of its regimes bins
//! them: the positive-count total Σn⁺ of every time step, its median and range, the median per
//! word–context pair (Σn⁺/V²) and the planted N_t with the same counts per pair at the planted V.
//! Totals cover every binned step, held-out ones included.

use serde::{Deserialize, Serialize};

use crate::analysis::stats::median;
use crate::error::{Error, Result};
use crate::experiments::dwe::fit::year_bins;
use crate::experiments::dwe::preprocess::load_counts;
use crate::fsutil::{read_json, write_json};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};

/// How one regime of the compared experiment bins and scales its counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Binning {
    pub bin_years: usize,
    pub count_scale: f64,
}

impl Binning {
    pub fn label(&self) -> String {
        format!("bin={},counts={}", self.bin_years, self.count_scale)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct CorpusScaleStage {
    pub experiment: String,
    pub binnings: Vec<Binning>,
    pub planted_vocabulary: usize,
    pub counts: StageHandle,
}

/// The count scale of one regime of a compared experiment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CorpusScale {
    pub experiment: String,
    pub regime: String,
    pub vocabulary: usize,
    pub steps: usize,
    pub median_total: f64,
    pub min_total: f64,
    pub max_total: f64,
    pub median_per_pair: f64,
    /// N_t of the planted sweep with the same median counts per pair.
    pub planted_equivalent: f64,
}

/// One time step of a compared experiment: its years and Σn⁺.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepTotal {
    pub experiment: String,
    pub regime: String,
    pub first_year: i64,
    pub last_year: i64,
    pub total: f64,
}

/// Σn⁺ of every bin of `binning` over per-year totals `year_totals` at `years` of `experiment`.
pub fn binned_totals(
    experiment: &str,
    years: &[f64],
    year_totals: &[f64],
    binning: &Binning,
) -> Vec<StepTotal> {
    year_bins(years, binning.bin_years)
        .into_iter()
        .map(|members| StepTotal {
            experiment: experiment.to_string(),
            regime: binning.label(),
            first_year: years[members[0]] as i64,
            last_year: years[members[members.len() - 1]] as i64,
            total: members.iter().map(|&k| year_totals[k]).sum::<f64>() * binning.count_scale,
        })
        .collect()
}

impl Stage for CorpusScaleStage {
    const KIND: StageKind = StageKind::Evaluate;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("dwe-planted/corpus")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let (years, steps, vocabulary) = load_counts(ctx.upstream(&self.counts)?)?;
        if years.is_empty() {
            return Err(Error::Other(format!(
                "{}: the preprocessed counts have no time step",
                self.experiment
            )));
        }
        let year_totals: Vec<f64> = steps
            .iter()
            .map(|s| s.positive.iter().map(|p| p.2).sum())
            .collect();
        let mut scales = Vec::new();
        let mut step_totals = Vec::new();
        for binning in &self.binnings {
            let totals = binned_totals(&self.experiment, &years, &year_totals, binning);
            let mut values: Vec<f64> = totals.iter().map(|s| s.total).collect();
            let median_total = median(&mut values).unwrap_or(0.0);
            let pairs = (vocabulary * vocabulary) as f64;
            scales.push(CorpusScale {
                experiment: self.experiment.clone(),
                regime: binning.label(),
                vocabulary,
                steps: totals.len(),
                median_total,
                min_total: values.iter().copied().fold(f64::INFINITY, f64::min),
                max_total: values.iter().copied().fold(0.0, f64::max),
                median_per_pair: median_total / pairs,
                planted_equivalent: median_total / pairs * (self.planted_vocabulary as f64).powi(2),
            });
            step_totals.extend(totals);
        }
        write_json(&ctx.out_dir.join("corpus_scale.json"), &scales)?;
        write_json(&ctx.out_dir.join("corpus_steps.json"), &step_totals)
    }
}

/// Reads the scales and step totals of a corpus instance.
pub fn load(dir: &std::path::Path) -> Result<(Vec<CorpusScale>, Vec<StepTotal>)> {
    Ok((
        read_json(&dir.join("corpus_scale.json"))?,
        read_json(&dir.join("corpus_steps.json"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bins of five years from the first year, with a gap: the totals add up by hand and their
    /// sum is the corpus total times the count scale.
    #[test]
    fn binned_totals_sum_the_years_of_each_bin() {
        let years = [1930.0, 1931.0, 1934.0, 1935.0, 1941.0];
        let totals = [1.0, 2.0, 4.0, 8.0, 16.0];
        let binning = Binning {
            bin_years: 5,
            count_scale: 0.5,
        };
        let bins = binned_totals("e", &years, &totals, &binning);
        let got: Vec<(i64, i64, f64)> = bins
            .iter()
            .map(|b| (b.first_year, b.last_year, b.total))
            .collect();
        assert_eq!(
            got,
            vec![(1930, 1934, 3.5), (1935, 1935, 4.0), (1941, 1941, 8.0)]
        );
        assert_eq!(bins[0].regime, "bin=5,counts=0.5");
        assert_eq!(bins[0].experiment, "e");
        let yearly = binned_totals(
            "e",
            &years,
            &totals,
            &Binning {
                bin_years: 1,
                count_scale: 1.0,
            },
        );
        assert_eq!(yearly.len(), 5);
        assert_eq!(yearly.iter().map(|b| b.total).sum::<f64>(), 31.0);
    }
}
