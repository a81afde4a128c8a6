//! Evaluate stage `evaluate[<configuration>]`: the analytic Hessian of ℒ at both stationary
//! points, its eigenvalues against the closed-form spectrum, and the count of flat directions
//! against the predicted dimension of the manifold of minima.
//!
//! A zero is counted below the threshold τ = √(noise · gap): the geometric mean of the scale at
//! which a flat direction can look curved (rounding, ~ n·ε·h_max, and non-stationarity: along an
//! orbit tangent T = WA the curvature is ⟨T, HT⟩ = −⟨∇ℒ, WA²⟩, zero only where ∇ℒ = 0, which is
//! why counting at a point that is not stationary is meaningless) and the smallest predicted
//! non-zero eigenvalue. The count is then wrong only if either scale is off by the whole
//! log-distance to τ — several orders of magnitude here.
//!
//! Outputs: `arrays/hessian.<slug>.{exact,trained}.eigenvalues.npy` and the private
//! `hessian.json` (one [`PointSpectrum`] per point).

use ndarray::Array1;
use serde::{Deserialize, Serialize};

use super::fit::{self, Point};
use crate::emit::{npy, slug};
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::linalg::symmetric_eigenvalues;
use crate::models::rbm::GaussianRbm;
use crate::models::rbm::hessian::{
    FixedPointLayout, FlatCounts, PredictedEigenvalue, loss_hessian, noise_scale, smallest_curved,
};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::spec::goldstone_modes::{Configuration, Target};

/// The Hessian spectrum at one point against its closed form.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PointSpectrum {
    pub point: String,
    pub mu_squared: f64,
    pub gradient_norm: f64,
    pub updates: usize,
    pub coordinates: usize,
    pub learned: usize,
    pub predicted_orbit: usize,
    pub predicted_degenerate_level: usize,
    pub predicted_mass_shift: usize,
    pub predicted_flat: usize,
    pub counted_flat: usize,
    /// Eigenvalues below −τ: a saddle, not a minimum.
    pub counted_negative: usize,
    pub threshold: f64,
    pub noise_scale: f64,
    pub predicted_gap: f64,
    /// The smallest eigenvalue above τ (none if every one is below).
    pub measured_gap: Option<f64>,
    pub predicted_largest: f64,
    pub measured_largest: f64,
    /// max_k |h_k − p_k| over the sorted spectra.
    pub max_abs_deviation: f64,
    pub measured: Vec<f64>,
    pub predicted: Vec<f64>,
    pub directions: Vec<String>,
}

#[derive(Serialize, serde::Deserialize)]
pub struct EvaluateStage {
    pub target: Target,
    pub configuration: Configuration,
    pub fit: StageHandle,
}

/// The spectrum at `weights` (μ² = `point.mu_squared`) against the closed form.
fn spectrum_at(
    name: &str,
    weights: ndarray::Array2<f64>,
    point: &Point,
    target: &Target,
    configuration: &Configuration,
) -> Result<PointSpectrum> {
    let (covariance, kappa, _) = fit::target_moments(target)?;
    let with_mu = configuration.mu_trained;
    let model = GaussianRbm {
        weights,
        mu: point.mu_squared.sqrt(),
        sigma_h: target.sigma_h,
    };
    let hessian = loss_hessian(&model, covariance.view(), with_mu)?;
    let measured = symmetric_eigenvalues(hessian.view())?;
    let layout = FixedPointLayout::stable(
        &kappa,
        configuration.n_hidden,
        point.mu_squared,
        target.sigma_h,
        with_mu,
    );
    let predicted: Vec<PredictedEigenvalue> = layout.spectrum()?;
    let counts: FlatCounts = layout.flat_counts();
    let n = measured.len();
    let noise_scale = noise_scale(measured.as_slice().unwrap_or_default(), point.gradient_norm);
    let predicted_gap = smallest_curved(&predicted);
    let threshold = (noise_scale * predicted_gap).sqrt();
    let counted_flat = measured.iter().filter(|v| v.abs() < threshold).count();
    let counted_negative = measured.iter().filter(|&&v| v < -threshold).count();
    let measured_gap = measured.iter().copied().find(|v| *v >= threshold);
    let max_abs_deviation = measured
        .iter()
        .zip(&predicted)
        .fold(0.0_f64, |m, (h, p)| m.max((h - p.value).abs()));
    Ok(PointSpectrum {
        point: name.into(),
        mu_squared: point.mu_squared,
        gradient_norm: point.gradient_norm,
        updates: point.updates,
        coordinates: n,
        learned: layout.learned,
        predicted_orbit: counts.orbit,
        predicted_degenerate_level: counts.degenerate_level,
        predicted_mass_shift: counts.mass_shift,
        predicted_flat: counts.total(),
        counted_flat,
        counted_negative,
        threshold,
        noise_scale,
        predicted_gap,
        measured_gap,
        predicted_largest: predicted.last().map_or(f64::NAN, |p| p.value),
        measured_largest: measured[n - 1],
        max_abs_deviation,
        measured: measured.to_vec(),
        predicted: predicted.iter().map(|p| p.value).collect(),
        directions: predicted
            .iter()
            .map(|p| {
                serde_json::to_value(p.direction)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            })
            .collect(),
    })
}

impl Stage for EvaluateStage {
    const KIND: StageKind = StageKind::Evaluate;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("goldstone-modes/evaluate")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let (points, exact, trained) = fit::load(ctx.upstream(&self.fit)?, &self.configuration)?;
        let spectra = vec![
            spectrum_at(
                "exact",
                exact,
                &points.exact,
                &self.target,
                &self.configuration,
            )?,
            spectrum_at(
                "trained",
                trained,
                &points.trained,
                &self.target,
                &self.configuration,
            )?,
        ];
        // A stationary point with a negative curvature is a saddle, not the minimum whose
        // flat directions this experiment counts.
        if let Some(saddle) = spectra.iter().find(|s| s.counted_negative > 0) {
            return Err(crate::error::Error::Other(format!(
                "{}: the {} point is a saddle ({} negative Hessian eigenvalues below −{:.1e}), \
                 not a minimum",
                self.configuration.label(),
                saddle.point,
                saddle.counted_negative,
                saddle.threshold
            )));
        }
        let arrays = ctx.out_dir.join("arrays");
        let prefix = format!("hessian.{}", slug(&self.configuration.label()));
        for s in &spectra {
            npy::write(
                &arrays.join(format!("{prefix}.{}.eigenvalues.npy", s.point)),
                &Array1::from(s.measured.clone()),
            )?;
        }
        write_json(&ctx.out_dir.join("hessian.json"), &spectra)
    }
}

/// Reads what [`EvaluateStage`] wrote.
pub fn load(dir: &std::path::Path) -> Result<Vec<PointSpectrum>> {
    read_json(&dir.join("hessian.json"))
}
