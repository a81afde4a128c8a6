//! Evaluate stage: the eigenvalues of the correlation matrix (faer), descending, and how many
//! fall below each threshold.

use ndarray::Array1;
use serde::{Deserialize, Serialize};

use super::preprocess::load_correlation;
use crate::emit::npy;
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::linalg::symmetric_eigenvalues;
use crate::pipeline::{StageContext, StageTask};

pub struct SpectrumStage {
    pub preprocess_id: String,
    pub thresholds: Vec<f64>,
}

/// Counts of eigenvalues below each threshold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpectrumCounts {
    pub thresholds: Vec<f64>,
    pub below: Vec<usize>,
}

impl StageTask for SpectrumStage {
    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let correlation = load_correlation(ctx.upstream_dir(&self.preprocess_id)?)?;
        let ascending = symmetric_eigenvalues(correlation.view())?;
        let descending: Array1<f64> = ascending.iter().rev().copied().collect();
        let below = self
            .thresholds
            .iter()
            .map(|&t| descending.iter().filter(|&&c| c < t).count())
            .collect();
        npy::write(
            &ctx.out_dir.join("arrays").join("mnist.spectrum.npy"),
            &descending,
        )?;
        write_json(
            &ctx.out_dir.join("counts.json"),
            &SpectrumCounts {
                thresholds: self.thresholds.clone(),
                below,
            },
        )
    }
}

/// Reads what [`SpectrumStage`] wrote.
pub fn load(dir: &std::path::Path) -> Result<(Array1<f64>, SpectrumCounts)> {
    Ok((
        npy::read(&dir.join("arrays").join("mnist.spectrum.npy"))?,
        read_json(&dir.join("counts.json"))?,
    ))
}
