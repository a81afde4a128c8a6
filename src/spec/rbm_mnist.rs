//! The spec of the Gaussian-RBM-on-MNIST experiment (`kind = "rbm-mnist"`).
//!
//! `[data]` names the registered raw files of training and test images; `[preprocess]` chooses
//! the correlation matrix (uncentred ⟨φ_i φ_j⟩ by default, as the authors used, or centred) and
//! how many test digits are regenerated; `[model]` fixes μ² and σ_h; `[fit]` sweeps N_h and sets
//! the fit (maximum likelihood by default, or the authors' gradient training); `[regeneration]` the Gibbs steps from the data; `[relaxation]` the
//! gradient-ascent runs whose approach to the fixed point measures relaxation times;
//! `[spectrum]` the thresholds of the small-eigenvalue counts.

use serde::{Deserialize, Serialize};

use super::{Header, SpecDocument, Sweep};
use crate::analysis::relaxation::RelaxationWindow;
use crate::error::Result;
use crate::models::rbm::train::NegativePhase;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[allow(dead_code)]
    experiment: super::RawHeader,
    data: RawData,
    preprocess: Option<RawPreprocess>,
    model: Option<RawModel>,
    fit: Option<RawFit>,
    regeneration: Option<RawRegeneration>,
    relaxation: Option<RawRelaxation>,
    spectrum: Option<RawSpectrum>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    train_images: String,
    test_images: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreprocess {
    centred: Option<bool>,
    test_digits: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    mu_squared: Option<f64>,
    sigma_h: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFit {
    n_hidden: Option<Sweep<usize>>,
    method: Option<String>,
    init_scale: Option<f64>,
    learning_rate: Option<f64>,
    momentum: Option<f64>,
    updates: Option<usize>,
    negative_phase: Option<String>,
    chains: Option<usize>,
    gibbs_steps: Option<usize>,
    step: Option<f64>,
    max_iterations: Option<usize>,
    tolerance: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegeneration {
    gibbs_steps: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelaxation {
    n_hidden: Option<usize>,
    learning_rates: Option<Vec<f64>>,
    start_kernel_factor: Option<f64>,
    updates: Option<usize>,
    record_every: Option<usize>,
    modes: Option<Vec<usize>>,
    upper: Option<f64>,
    tail_fraction: Option<f64>,
    min_points: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpectrum {
    thresholds: Option<Vec<f64>>,
}

/// How the weights are fitted.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum FitMethod {
    /// Maximum likelihood by the covariance-preconditioned ascent (reaches the fixed point).
    Ml,
    /// The authors' training: gradient ascent with EMA momentum for a fixed number of updates,
    /// the negative phase exact or by PCD (on MNIST a non-equilibrium state: see the README).
    Gradient {
        learning_rate: f64,
        momentum: f64,
        updates: usize,
        negative_phase: NegativePhase,
    },
}

/// Settings of the fit (one instance per N_h).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FitSettings {
    pub method: FitMethod,
    /// Standard deviation of the random initial weights (the authors' w_sig).
    pub init_scale: f64,
    /// Relaxation factor ω of the preconditioned ascent.
    pub step: f64,
    pub max_iterations: usize,
    pub tolerance: f64,
}

/// Gradient-ascent runs from a perturbed fixed point, one per learning rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RelaxationSettings {
    /// N_h of the fitted model the runs start from.
    pub n_hidden: usize,
    pub learning_rates: Vec<f64>,
    /// The runs start with every learned kernel eigenvalue λ_a = κ_a raised to f·κ_a (> 1).
    pub start_kernel_factor: f64,
    pub updates: usize,
    pub record_every: usize,
    /// Data modes (0-based, variance descending) whose ξ_a² is followed.
    pub modes: Vec<usize>,
    pub window: RelaxationWindow,
}

/// Validated rbm-mnist spec.
#[derive(Clone, Debug, Serialize)]
pub struct RbmMnistSpec {
    pub header: Header,
    /// Registry names of the training and test images.
    pub train_images: String,
    pub test_images: String,
    pub centred: bool,
    /// The first `test_digits` test images are regenerated.
    pub test_digits: usize,
    pub mu_squared: f64,
    pub sigma_h: f64,
    /// Hidden-layer sizes, one fit each, in the order written.
    pub n_hidden: Vec<usize>,
    pub fit: FitSettings,
    pub gibbs_steps: usize,
    pub relaxation: RelaxationSettings,
    /// Ascending thresholds for the counts of small eigenvalues.
    pub thresholds: Vec<f64>,
}

const PIXELS: usize = 784;

/// Parses and validates the rbm-mnist spec in `doc`.
pub fn parse(doc: &SpecDocument, header: Header) -> Result<RbmMnistSpec> {
    let raw: RawSpec = doc.deserialize()?;
    let positive = |key: &str, value: f64| doc.positive(key, value);
    let at_least_one = |key: &str, value: usize| doc.at_least(key, value, 1);
    let model = raw.model.unwrap_or_default();
    let mu_squared = positive("model.mu_squared", model.mu_squared.unwrap_or(144.0))?;
    let sigma_h = positive("model.sigma_h", model.sigma_h.unwrap_or(1.0))?;
    let preprocess = raw.preprocess.unwrap_or_default();
    let test_digits = at_least_one(
        "preprocess.test_digits",
        preprocess.test_digits.unwrap_or(24),
    )?;

    let fit = raw.fit.unwrap_or_default();
    let n_hidden = fit
        .n_hidden
        .map_or_else(|| vec![784, 225, 64, 36, 16, 4], |s| s.values());
    if n_hidden.iter().any(|&n| n == 0 || n > PIXELS) {
        return Err(doc.error("fit.n_hidden", format!("every N_h must be in 1..={PIXELS}")));
    }
    let mut seen = n_hidden.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != n_hidden.len() {
        return Err(doc.error("fit.n_hidden", "a hidden-layer size is listed twice"));
    }
    let step = positive("fit.step", fit.step.unwrap_or(0.5))?;
    if step > 1.0 {
        return Err(doc.error("fit.step", format!("must be in (0, 1], got {step}")));
    }
    let method = match fit.method.as_deref().unwrap_or("ml") {
        "ml" => FitMethod::Ml,
        "gradient" => {
            let momentum = fit.momentum.unwrap_or(0.0);
            if !(0.0..1.0).contains(&momentum) {
                return Err(doc.error("fit.momentum", format!("must be in [0, 1), got {momentum}")));
            }
            let negative_phase = match fit.negative_phase.as_deref().unwrap_or("exact") {
                "exact" => NegativePhase::Exact,
                "pcd" => NegativePhase::Pcd {
                    chains: at_least_one("fit.chains", fit.chains.unwrap_or(64))?,
                    gibbs_steps: at_least_one("fit.gibbs_steps", fit.gibbs_steps.unwrap_or(1))?,
                },
                other => {
                    return Err(doc.error(
                        "fit.negative_phase",
                        format!("unknown negative phase {other:?}; expected \"exact\" or \"pcd\""),
                    ));
                }
            };
            FitMethod::Gradient {
                learning_rate: positive("fit.learning_rate", fit.learning_rate.unwrap_or(1e-6))?,
                momentum,
                updates: at_least_one("fit.updates", fit.updates.unwrap_or(1000))?,
                negative_phase,
            }
        }
        other => {
            return Err(doc.error(
                "fit.method",
                format!("unknown method {other:?}; expected \"ml\" or \"gradient\""),
            ));
        }
    };
    let fit_settings = FitSettings {
        method,
        init_scale: positive("fit.init_scale", fit.init_scale.unwrap_or(0.1))?,
        step,
        max_iterations: at_least_one("fit.max_iterations", fit.max_iterations.unwrap_or(2000))?,
        tolerance: positive("fit.tolerance", fit.tolerance.unwrap_or(1e-6))?,
    };

    let gibbs_steps = at_least_one(
        "regeneration.gibbs_steps",
        raw.regeneration
            .unwrap_or_default()
            .gibbs_steps
            .unwrap_or(10),
    )?;

    let relaxation = raw.relaxation.unwrap_or_default();
    let relax_hidden = relaxation.n_hidden.unwrap_or(16);
    if relax_hidden == 0 || relax_hidden > PIXELS {
        return Err(doc.error("relaxation.n_hidden", format!("must be in 1..={PIXELS}")));
    }
    let learning_rates = relaxation
        .learning_rates
        .unwrap_or_else(|| vec![4e-6, 2e-6]);
    doc.distinct("relaxation.learning_rates", &learning_rates)?;
    for &rate in &learning_rates {
        positive("relaxation.learning_rates", rate)?;
    }
    let start_kernel_factor = relaxation.start_kernel_factor.unwrap_or(2.0);
    if !(start_kernel_factor.is_finite() && start_kernel_factor > 1.0) {
        return Err(doc.error(
            "relaxation.start_kernel_factor",
            format!("must be a finite number > 1, got {start_kernel_factor}"),
        ));
    }
    let modes = relaxation.modes.unwrap_or_else(|| vec![1, 3, 7, 15]);
    if modes.is_empty() || modes.iter().any(|&a| a >= relax_hidden) {
        return Err(doc.error(
            "relaxation.modes",
            format!("needs mode indices below relaxation.n_hidden = {relax_hidden}"),
        ));
    }
    let upper = positive("relaxation.upper", relaxation.upper.unwrap_or(0.01))?;
    let tail_fraction = positive(
        "relaxation.tail_fraction",
        relaxation.tail_fraction.unwrap_or(0.1),
    )?;
    if upper >= 1.0 || tail_fraction >= 1.0 {
        return Err(doc.error(
            "relaxation.upper",
            "upper and tail_fraction must be below 1",
        ));
    }
    let relaxation = RelaxationSettings {
        n_hidden: relax_hidden,
        learning_rates,
        start_kernel_factor,
        updates: at_least_one("relaxation.updates", relaxation.updates.unwrap_or(25_000))?,
        record_every: at_least_one(
            "relaxation.record_every",
            relaxation.record_every.unwrap_or(5),
        )?,
        modes,
        window: RelaxationWindow {
            upper,
            tail_fraction,
            min_points: relaxation.min_points.unwrap_or(20).max(4),
        },
    };

    let mut thresholds = raw
        .spectrum
        .unwrap_or_default()
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
        test_images: raw
            .data
            .test_images
            .unwrap_or_else(|| "mnist-test-images".into()),
        centred: preprocess.centred.unwrap_or(false),
        test_digits,
        mu_squared,
        sigma_h,
        n_hidden,
        fit: fit_settings,
        gibbs_steps,
        relaxation,
        thresholds,
    })
}
