//! The spec of the Gaussian-RBM-on-MNIST experiment (`kind = "rbm-mnist"`).
//!
//! `[data]` names the registered raw files of training and test images; `[preprocess]` chooses
//! the correlation matrix (uncentred ⟨φ_i φ_j⟩ by default, as the authors used, or centred) and
//! how many test digits are regenerated; `[model]` fixes μ² and σ_h; `[fit]` sweeps N_h and sets
//! the fit (maximum likelihood by default, or the authors' gradient training); `[regeneration]` the Gibbs steps from the data; `[relaxation]` the
//! gradient-ascent runs whose approach to the fixed point measures relaxation times;
//! `[spectrum]` the thresholds of the small-eigenvalue counts.

use serde::{Deserialize, Serialize};

use super::{
    Header, MAX_CHAINS, MAX_GIBBS_STEPS, MAX_MASS_SQUARED, MAX_RECORDS, MAX_UPDATES,
    MIN_MASS_SQUARED, SpecDocument, Sweep,
};
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
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
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
/// Regenerated test digits are drawn in the regeneration figures' six-column grids.
const MAX_TEST_DIGITS: usize = 120;
const MAX_THRESHOLDS: usize = 100;
/// σ_h is a scale of the hidden units relative to pixel values in [0, 1].
const MAX_SIGMA_H: f64 = 1e3;

/// `value` as a count of iterations if it is at most [`MAX_UPDATES`].
fn iteration_count(doc: &SpecDocument, key: &str, value: usize) -> Result<usize> {
    doc.at_most(key, value as f64, MAX_UPDATES, "days of training; a typo?")?;
    Ok(value)
}

/// Parses and validates the rbm-mnist spec in `doc`.
pub fn parse(doc: &SpecDocument, header: Header) -> Result<RbmMnistSpec> {
    let raw: RawSpec = doc.deserialize()?;
    let positive = |key: &str, value: f64| doc.positive(key, value);
    let at_least_one = |key: &str, value: usize| doc.at_least(key, value, 1);
    let model = raw.model.unwrap_or_default();
    let mu_squared = positive("model.mu_squared", model.mu_squared.unwrap_or(144.0))?;
    if !(MIN_MASS_SQUARED..=MAX_MASS_SQUARED).contains(&mu_squared) {
        return Err(doc.error(
            "model.mu_squared",
            format!(
                "must be in [{MIN_MASS_SQUARED:e}, {MAX_MASS_SQUARED:e}] (1/μ² is the variance \
                 threshold of a learnable mode; pixel variances are below 1), got {mu_squared}"
            ),
        ));
    }
    let sigma_h = doc.at_most(
        "model.sigma_h",
        positive("model.sigma_h", model.sigma_h.unwrap_or(1.0))?,
        MAX_SIGMA_H,
        "the hidden scale relative to pixel values in [0, 1]",
    )?;
    let preprocess = raw.preprocess.unwrap_or_default();
    let test_digits = doc.at_most(
        "preprocess.test_digits",
        at_least_one(
            "preprocess.test_digits",
            preprocess.test_digits.unwrap_or(24),
        )?,
        MAX_TEST_DIGITS,
        "each is drawn in the regeneration figures",
    )?;

    let fit = raw.fit.unwrap_or_default();
    let n_hidden = fit
        .n_hidden
        .map_or_else(|| vec![784, 225, 64, 36, 16, 4], |s| s.values());
    if n_hidden.iter().any(|&n| n == 0 || n > PIXELS) {
        return Err(doc.error("fit.n_hidden", format!("every N_h must be in 1..={PIXELS}")));
    }
    doc.distinct("fit.n_hidden", &n_hidden)?;
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
                    chains: doc.at_most(
                        "fit.chains",
                        at_least_one("fit.chains", fit.chains.unwrap_or(64))?,
                        MAX_CHAINS,
                        "each chain holds 784 pixels and N_h hidden values",
                    )?,
                    gibbs_steps: doc.at_most(
                        "fit.gibbs_steps",
                        at_least_one("fit.gibbs_steps", fit.gibbs_steps.unwrap_or(1))?,
                        MAX_GIBBS_STEPS,
                        "sweeps per update",
                    )?,
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
                updates: iteration_count(
                    doc,
                    "fit.updates",
                    at_least_one("fit.updates", fit.updates.unwrap_or(1000))?,
                )?,
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
        max_iterations: iteration_count(
            doc,
            "fit.max_iterations",
            at_least_one("fit.max_iterations", fit.max_iterations.unwrap_or(2000))?,
        )?,
        tolerance: positive("fit.tolerance", fit.tolerance.unwrap_or(1e-6))?,
    };

    // The Gibbs mean map is raised to this power as an i32.
    let gibbs_steps = doc.at_most(
        "regeneration.gibbs_steps",
        at_least_one(
            "regeneration.gibbs_steps",
            raw.regeneration
                .unwrap_or_default()
                .gibbs_steps
                .unwrap_or(10),
        )?,
        MAX_GIBBS_STEPS,
        "Gibbs sweeps from each test digit",
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
    doc.instance_count("relaxation.learning_rates", learning_rates.len() as u128)?;
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
    doc.distinct("relaxation.modes", &modes)?;
    if modes.iter().any(|&a| a >= relax_hidden) {
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
    let updates = iteration_count(
        doc,
        "relaxation.updates",
        at_least_one("relaxation.updates", relaxation.updates.unwrap_or(25_000))?,
    )?;
    let record_every = doc.at_most(
        "relaxation.record_every",
        at_least_one(
            "relaxation.record_every",
            relaxation.record_every.unwrap_or(5),
        )?,
        updates,
        "a run records its start and every record_every-th update: at most its updates",
    )?;
    let records = doc.at_most(
        "relaxation.record_every",
        updates / record_every,
        MAX_RECORDS,
        "records per run: raise record_every",
    )?;
    // A run has records + 1 points; a window asking for more can never be fitted.
    let min_points = match relaxation.min_points {
        Some(given) => doc.at_most(
            "relaxation.min_points",
            given,
            records + 1,
            "the fit window is drawn from the records of one run",
        )?,
        None => 20,
    }
    .max(4);
    let relaxation = RelaxationSettings {
        n_hidden: relax_hidden,
        learning_rates,
        start_kernel_factor,
        updates,
        record_every,
        modes,
        window: RelaxationWindow {
            upper,
            tail_fraction,
            min_points,
        },
    };

    let mut thresholds = raw
        .spectrum
        .unwrap_or_default()
        .thresholds
        .unwrap_or_else(|| vec![1e-10, 1e-6, 1e-4, 1e-3, 1.0 / mu_squared, 1e-2, 1e-1]);
    doc.at_most(
        "spectrum.thresholds",
        thresholds.len(),
        MAX_THRESHOLDS,
        "each is a column of the spectrum table",
    )?;
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
