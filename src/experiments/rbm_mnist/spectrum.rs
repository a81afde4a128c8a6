//! Evaluate stage: the eigendecomposition of the correlation matrix (faer), in descending order
//! of the eigenvalues (the data variances c_a), and how many fall below each threshold.

use ndarray::Array1;
use serde::{Deserialize, Serialize};

use super::preprocess::load_correlation;
use crate::emit::npy;
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::linalg::symmetric_eigen;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct SpectrumStage {
    pub preprocess: StageHandle,
    pub thresholds: Vec<f64>,
}

/// Counts of eigenvalues below each threshold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpectrumCounts {
    pub thresholds: Vec<f64>,
    pub below: Vec<usize>,
}

impl Stage for SpectrumStage {
    const KIND: StageKind = StageKind::Evaluate;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-mnist/spectrum")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let correlation = load_correlation(ctx.upstream(&self.preprocess)?)?;
        let eig = symmetric_eigen(correlation.view())?;
        let descending: Array1<f64> = eig.values.iter().rev().copied().collect();
        let vectors = eig.vectors.slice(ndarray::s![.., ..;-1]).to_owned();
        let below = self
            .thresholds
            .iter()
            .map(|&t| descending.iter().filter(|&&c| c < t).count())
            .collect();
        npy::write(
            &ctx.out_dir.join("arrays").join("mnist.spectrum.npy"),
            &descending,
        )?;
        npy::write(
            &ctx.out_dir.join("arrays").join("mnist.eigenvectors.npy"),
            &vectors,
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

/// The eigenvectors written by [`SpectrumStage`], as columns in the order of the eigenvalues.
pub fn load_vectors(dir: &std::path::Path) -> Result<ndarray::Array2<f64>> {
    npy::read(&dir.join("arrays").join("mnist.eigenvectors.npy"))
}
