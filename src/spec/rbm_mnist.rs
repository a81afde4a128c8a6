//! The spec of the Gaussian-RBM-on-MNIST experiment (`kind = "rbm-mnist"`).
//!
//! `[data]` names the registered raw file of training images; `[preprocess]` chooses the
//! correlation matrix (uncentred ⟨φ_i φ_j⟩ by default, as the authors used, or centred);
//! `[spectrum]` sets the mass μ² whose inverse marks the UV cutoff in the spectrum figure and the
//! thresholds of the small-eigenvalue counts.

use serde::{Deserialize, Serialize};

use super::{Header, SpecDocument};
use crate::error::Result;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[allow(dead_code)]
    experiment: super::RawHeader,
    data: RawData,
    preprocess: Option<RawPreprocess>,
    spectrum: Option<RawSpectrum>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    train_images: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreprocess {
    centred: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpectrum {
    mu_squared: Option<f64>,
    thresholds: Option<Vec<f64>>,
}

/// Validated rbm-mnist spec.
#[derive(Clone, Debug, Serialize)]
pub struct RbmMnistSpec {
    pub header: Header,
    /// Registry name of the training images.
    pub train_images: String,
    pub centred: bool,
    pub mu_squared: f64,
    /// Ascending thresholds for the counts of small eigenvalues.
    pub thresholds: Vec<f64>,
}

/// Parses and validates the rbm-mnist spec in `doc`.
pub fn parse(doc: &SpecDocument, header: Header) -> Result<RbmMnistSpec> {
    let raw: RawSpec = doc.deserialize()?;
    let spectrum = raw.spectrum.unwrap_or_default();
    let mu_squared = spectrum.mu_squared.unwrap_or(144.0);
    if !(mu_squared.is_finite() && mu_squared > 0.0) {
        return Err(doc.error(
            "spectrum.mu_squared",
            format!("must be > 0, got {mu_squared}"),
        ));
    }
    let mut thresholds = spectrum
        .thresholds
        .unwrap_or_else(|| vec![1e-10, 1e-6, 1e-4, 1e-3, 1.0 / mu_squared, 1e-2, 1e-1]);
    if thresholds.iter().any(|t| !(t.is_finite() && *t > 0.0)) {
        return Err(doc.error("spectrum.thresholds", "every threshold must be > 0"));
    }
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    Ok(RbmMnistSpec {
        header,
        train_images: raw.data.train_images,
        centred: raw.preprocess.unwrap_or_default().centred.unwrap_or(false),
        mu_squared,
        thresholds,
    })
}
