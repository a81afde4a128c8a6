//! The spec of the Goldstone-mode study of the Gaussian RBM (`kind = "goldstone-modes"`), the
//! measured answers to the open questions of the critique of "spontaneous symmetry breaking in
//! deep networks": `[target]` the periodic free field the RBM learns (N_v, m², σ_h); `[hessian]`
//! the configurations (N_h, μ², whether μ² is trained) whose Hessian spectra are counted at an
//! exact fixed point and at a trained one, and the exact-gradient training that reaches it;
//! `[deformation]` the sizes and the log grid of strengths ε of the three deformations that
//! might break the symmetry (see [`Deformation`]).

use serde::{Deserialize, Serialize};

use super::{Header, MAX_MASS_SQUARED, MAX_UPDATES, MIN_MASS_SQUARED, SpecDocument};
use crate::analysis::lattice::free_field_spectrum;
use crate::error::Result;
use crate::models::rbm::hessian::{FixedPointLayout, smallest_curved};
use crate::models::rbm::orbit::{
    NoiseSource, kernel_noise_variance, kernel_relaxation_rate, slowest_kernel_rate,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[allow(dead_code)]
    experiment: super::RawHeader,
    target: Option<RawTarget>,
    hessian: Option<RawHessian>,
    deformation: Option<RawDeformation>,
    diffusion: Option<RawDiffusion>,
    ensemble: Option<RawEnsemble>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiffusion {
    n_hidden: Option<usize>,
    mu_squared: Option<f64>,
    estimators: Option<Vec<Estimator>>,
    learning_rates: Option<Vec<f64>>,
    scan_batch: Option<usize>,
    batches: Option<Vec<usize>>,
    scan_learning_rate: Option<f64>,
    isotropic_scale: Option<f64>,
    rate_factors: Option<std::collections::BTreeMap<Estimator, f64>>,
    replicas: Option<usize>,
    burn_in: Option<f64>,
    updates: Option<usize>,
    record_every: Option<usize>,
    max_msa: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnsemble {
    configurations: Option<Vec<RawConfiguration>>,
    runs: Option<usize>,
    learning_rate: Option<f64>,
    gradient_tolerance: Option<f64>,
    max_updates: Option<usize>,
    weighted_epsilon: Option<f64>,
    weighted_runs: Option<usize>,
}

crate::spec_choice! {
    /// The noisy gradient of one plain-SGD update along the orbit.
    pub enum Estimator ("estimator") {
        /// The authors': exact positive phase minus |B| persistent chains after one sweep.
        PcdK1 = "pcd_k1",
        /// The same after three sweeps per update.
        PcdK3 = "pcd_k3",
        /// |B| fresh exact samples of the model instead of chains.
        Independent = "independent",
        /// ⟨φhᵀ⟩ with the hidden units sampled given |B| fresh exact samples.
        SampledHidden = "sampled_hidden",
        /// The exact gradient plus isotropic Gaussian noise.
        Isotropic = "isotropic",
    }
}

impl Estimator {
    /// The model-level noise source, with the isotropic noise's scale.
    pub fn source(self, isotropic_scale: f64) -> NoiseSource {
        match self {
            Estimator::PcdK1 => NoiseSource::Pcd { gibbs_steps: 1 },
            Estimator::PcdK3 => NoiseSource::Pcd { gibbs_steps: 3 },
            Estimator::Independent => NoiseSource::Independent,
            Estimator::SampledHidden => NoiseSource::SampledHidden,
            Estimator::Isotropic => NoiseSource::Isotropic {
                scale: isotropic_scale,
            },
        }
    }
}

/// One (learning rate, batch size) point of the diffusion grid.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Setting {
    pub learning_rate: f64,
    pub batch: usize,
}

impl Diffusion {
    /// The learning rate `estimator` runs at in `setting`.
    pub fn rate_of(&self, estimator: Estimator, setting: &Setting) -> f64 {
        grid_rate(&self.rate_factors, estimator, setting)
    }
}

/// A setting's learning rate scaled by the estimator's factor (1 when it has none).
fn grid_rate(
    rate_factors: &std::collections::BTreeMap<Estimator, f64>,
    estimator: Estimator,
    setting: &Setting,
) -> f64 {
    setting.learning_rate * rate_factors.get(&estimator).copied().unwrap_or(1.0)
}

/// §3 and §5: plain SGD at a minimum where every hidden unit is learned.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diffusion {
    pub n_hidden: usize,
    pub mu_squared: f64,
    pub estimators: Vec<Estimator>,
    /// The α scan (at `scan_batch`) and the |B| scan (at `scan_learning_rate`), deduplicated.
    pub settings: Vec<Setting>,
    pub scan_batch: usize,
    pub scan_learning_rate: f64,
    /// The isotropic estimator adds N(0, scale²/|B|) to every gradient entry.
    pub isotropic_scale: f64,
    /// Per estimator, a factor on every learning rate of the grid (an estimator whose noise is
    /// larger is scanned at smaller α, with the same ratios, to stay in the small-noise regime).
    pub rate_factors: std::collections::BTreeMap<Estimator, f64>,
    pub replicas: usize,
    /// Burn-in in units of the slowest relaxation time 1/(α·γ_min).
    pub burn_in: f64,
    /// Recorded updates per replica after the burn-in.
    pub updates: usize,
    pub record_every: usize,
    /// Largest mean ½‖log R‖² in the rate fit (angles well below π).
    pub max_msa: f64,
}

/// §4: ensembles of independently initialised exact-gradient runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ensemble {
    pub configurations: Vec<Configuration>,
    pub runs: usize,
    pub learning_rate: f64,
    pub gradient_tolerance: f64,
    pub max_updates: usize,
    /// The contrast: ε of the weighted penalty ε Σ_j c_j‖w_j‖², at the first configuration.
    pub weighted_epsilon: f64,
    pub weighted_runs: usize,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeformation {
    n_hidden: Option<Vec<usize>>,
    mu_squared: Option<f64>,
    epsilons: Option<Vec<f64>>,
}

crate::spec_choice! {
    /// A deformation of the loss with strength ε and distinct weights c_j = 1 + j/N_h per
    /// hidden unit j.
    pub enum Deformation ("deformation") {
        /// Per-unit hidden widths σ_j² = σ²(1 + ε c_j).
        HiddenWidths = "hidden_widths",
        /// ε ‖W‖².
        UniformL2 = "uniform_l2",
        /// ε Σ_j c_j ‖w_j‖².
        WeightedL2 = "weighted_l2",
    }
}

/// The deformations' sizes and strengths (μ² fixed).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deformations {
    pub n_hidden: Vec<usize>,
    pub mu_squared: f64,
    /// Strengths ε, ascending.
    pub epsilons: Vec<f64>,
}

/// c_j = 1 + j/N_h, the distinct per-unit weights of the deformations.
pub fn unit_weights(n_hidden: usize) -> Vec<f64> {
    (0..n_hidden)
        .map(|j| 1.0 + j as f64 / n_hidden as f64)
        .collect()
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    n_visible: Option<usize>,
    mass_squared: Option<f64>,
    sigma_h: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHessian {
    configurations: Option<Vec<RawConfiguration>>,
    learning_rate: Option<f64>,
    init_scale: Option<f64>,
    gradient_tolerance: Option<f64>,
    max_updates: Option<usize>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfiguration {
    n_hidden: usize,
    mu_squared: f64,
    mu_trained: Option<bool>,
}

/// The free-field target.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Target {
    pub n_visible: usize,
    pub mass_squared: f64,
    pub sigma_h: f64,
}

/// One model whose Hessian is counted.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Configuration {
    pub n_hidden: usize,
    /// μ² of the exact fixed point and the start of training.
    pub mu_squared: f64,
    /// μ² is trained and a coordinate of the Hessian.
    pub mu_trained: bool,
}

impl Configuration {
    /// The configurations a spec lists, or N_h = N_v at μ² = 9 when it lists none.
    fn list_or_default(raw: Option<Vec<RawConfiguration>>, n_visible: usize) -> Vec<Self> {
        match raw {
            Some(list) => list
                .into_iter()
                .map(|c| Configuration {
                    n_hidden: c.n_hidden,
                    mu_squared: c.mu_squared,
                    mu_trained: c.mu_trained.unwrap_or(false),
                })
                .collect(),
            None => vec![Configuration {
                n_hidden: n_visible,
                mu_squared: 9.0,
                mu_trained: false,
            }],
        }
    }

    /// The stage label, e.g. `n_hidden=10,mu_squared=9,mu=trained`.
    pub fn label(&self) -> String {
        format!(
            "n_hidden={},mu_squared={},mu={}",
            self.n_hidden,
            self.mu_squared,
            if self.mu_trained { "trained" } else { "fixed" }
        )
    }
}

/// Exact-gradient training to a stationary point.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Training {
    pub learning_rate: f64,
    pub init_scale: f64,
    /// Training stops when ‖∇ℒ‖ falls below this.
    pub gradient_tolerance: f64,
    pub max_updates: usize,
}

/// Validated goldstone-modes spec.
#[derive(Clone, Debug, Serialize)]
pub struct GoldstoneModesSpec {
    pub header: Header,
    pub target: Target,
    pub configurations: Vec<Configuration>,
    pub training: Training,
    pub deformations: Deformations,
    pub diffusion: Diffusion,
    pub ensemble: Ensemble,
}

/// The Hessian is dense in N_v·N_h (+1) coordinates and diagonalised per configuration.
const MAX_COORDINATES: usize = 2000;

/// Parses and validates the goldstone-modes spec in `doc`.
pub fn parse(doc: &SpecDocument, header: Header) -> Result<GoldstoneModesSpec> {
    let raw: RawSpec = doc.deserialize()?;
    let t = raw.target.unwrap_or_default();
    let n_visible = doc.at_most(
        "target.n_visible",
        doc.at_least("target.n_visible", t.n_visible.unwrap_or(10), 2)?,
        MAX_COORDINATES,
        "every Hessian has at least N_v coordinates and is dense",
    )?;
    let mass_squared = t.mass_squared.unwrap_or(4.0);
    if !(MIN_MASS_SQUARED..=MAX_MASS_SQUARED).contains(&mass_squared) {
        return Err(doc.error(
            "target.mass_squared",
            format!(
                "must be in [{MIN_MASS_SQUARED:e}, {MAX_MASS_SQUARED:e}] (K_φ must stay well \
                 conditioned), got {mass_squared}"
            ),
        ));
    }
    let sigma_h = doc.at_most(
        "target.sigma_h",
        doc.positive("target.sigma_h", t.sigma_h.unwrap_or(1.0))?,
        1e3,
        "the hidden width sets the scale of W",
    )?;
    let kappa = free_field_spectrum(n_visible, mass_squared);
    let kappa_max = kappa[kappa.len() - 1];

    let h = raw.hessian.unwrap_or_default();
    let configurations = Configuration::list_or_default(h.configurations, n_visible);
    const KEY: &str = "hessian.configurations";
    doc.distinct(KEY, &configurations)?;
    doc.instance_count(KEY, configurations.len() as u128 * 2)?;
    for c in &configurations {
        let n_hidden = doc.at_least(&format!("{KEY}.n_hidden"), c.n_hidden, 1)?;
        doc.at_most(
            &format!("{KEY}.n_hidden"),
            n_visible * n_hidden + 1,
            MAX_COORDINATES,
            "N_v·N_h (+1) coordinates of a dense Hessian",
        )?;
        if !(MIN_MASS_SQUARED..=MAX_MASS_SQUARED).contains(&c.mu_squared) {
            return Err(doc.error(
                &format!("{KEY}.mu_squared"),
                format!(
                    "must be in [{MIN_MASS_SQUARED:e}, {MAX_MASS_SQUARED:e}], got {}",
                    c.mu_squared
                ),
            ));
        }
        if kappa.iter().any(|&k| (k - c.mu_squared).abs() <= 1e-9 * k) {
            return Err(doc.error(
                &format!("{KEY}.mu_squared"),
                format!(
                    "μ² = {} equals a target eigenvalue κ: the mode is marginal (neither learned \
                     nor stable) and the fixed point is not isolated in its radial direction",
                    c.mu_squared
                ),
            ));
        }
        // With μ² trained, ∂ℒ/∂μ² = ½ Σ_unlearned (1/κ_a − 1/μ²) vanishes only when no mode is
        // left unlearned, so only then is the exact point stationary.
        if c.mu_trained && !(n_hidden >= n_visible && c.mu_squared > kappa_max) {
            return Err(doc.error(
                &format!("{KEY}.mu_trained"),
                format!(
                    "a trained μ² is stationary only when every mode is learned: needs n_hidden \
                     >= n_visible = {n_visible} and mu_squared > κ_max = {kappa_max}"
                ),
            ));
        }
    }

    let learning_rate = doc.positive("hessian.learning_rate", h.learning_rate.unwrap_or(1.0))?;
    // Each configuration's Hessian spectrum at its minimum, for the checks of the descent.
    let spectra = configurations
        .iter()
        .map(|c| {
            FixedPointLayout::stable(
                kappa.as_slice().unwrap_or_default(),
                c.n_hidden,
                c.mu_squared,
                sigma_h,
                c.mu_trained,
            )
            .spectrum()
        })
        .collect::<Result<Vec<_>>>()?;
    // Descent converges to a minimum only below 2/h_max, h_max its largest Hessian eigenvalue.
    for (c, spectrum) in configurations.iter().zip(&spectra) {
        let largest = spectrum.last().map_or(0.0, |p| p.value);
        if largest > 0.0 && learning_rate >= 2.0 / largest {
            return Err(doc.error(
                "hessian.learning_rate",
                format!(
                    "must be below 2/h_max = {:.4} for {} (h_max = {largest:.4}, the largest \
                     Hessian eigenvalue at its minimum: above it descent diverges)",
                    2.0 / largest,
                    c.label()
                ),
            ));
        }
    }
    let init_scale = doc.positive("hessian.init_scale", h.init_scale.unwrap_or(0.1))?;
    // A start with σ²·s²(√N_v + √N_h)² (the typical top of σ²WWᵀ) near μ² leaves K indefinite.
    for c in &configurations {
        let top = sigma_h
            * sigma_h
            * init_scale
            * init_scale
            * ((n_visible as f64).sqrt() + (c.n_hidden as f64).sqrt()).powi(2);
        if top >= 0.5 * c.mu_squared {
            return Err(doc.error(
                "hessian.init_scale",
                format!(
                    "too large for {}: σ²s²(√N_v + √N_h)² = {top:.3} must stay below μ²/2 = {} \
                     so that the random start has a positive-definite kernel",
                    c.label(),
                    0.5 * c.mu_squared
                ),
            ));
        }
    }
    let gradient_tolerance = doc.positive(
        "hessian.gradient_tolerance",
        h.gradient_tolerance.unwrap_or(1e-10),
    )?;
    if gradient_tolerance < 1e-13 {
        return Err(doc.error(
            "hessian.gradient_tolerance",
            format!(
                "must be at least 1e-13 (the gradient itself is rounded at ~1e-15·‖W‖·‖C‖), got \
                 {gradient_tolerance}"
            ),
        ));
    }
    if gradient_tolerance > 1e-4 {
        return Err(doc.error(
            "hessian.gradient_tolerance",
            format!(
                "must be at most 1e-4 (a point further from stationary has no exact flat \
                 directions to count), got {gradient_tolerance}"
            ),
        ));
    }
    let max_updates = doc.at_least("hessian.max_updates", h.max_updates.unwrap_or(1_000_000), 1)?;
    doc.at_most(
        "hessian.max_updates",
        max_updates as f64,
        MAX_UPDATES,
        "updates of one training run",
    )?;
    let deformations = parse_deformations(
        doc,
        raw.deformation.unwrap_or_default(),
        &kappa,
        sigma_h,
        n_visible,
    )?;
    // W = 0 is a stationary point (a saddle): a start whose gradient is already below the
    // tolerance would be taken for the trained minimum. ‖∇ℒ‖ at the start is about
    // σ²·s·√(N_v N_h)·(1/κ_min − 1/μ²).
    for c in &configurations {
        let start = sigma_h
            * sigma_h
            * init_scale
            * ((n_visible * c.n_hidden) as f64).sqrt()
            * (1.0 / kappa[0] - 1.0 / c.mu_squared).abs();
        if start < 100.0 * gradient_tolerance {
            return Err(doc.error(
                "hessian.init_scale",
                format!(
                    "too small for {}: the start's gradient (~{start:.2e}) must exceed 100 × \
                     hessian.gradient_tolerance, or the saddle at W = 0 passes for a minimum",
                    c.label()
                ),
            ));
        }
    }
    // Near the minimum the slowest direction contracts by (1 − α·gap) per update, so reaching
    // the tolerance from ‖∇ℒ‖ ~ 1 takes at least ln(1/tol)/(α·gap) updates.
    for (c, spectrum) in configurations.iter().zip(&spectra) {
        let gap = smallest_curved(spectrum);
        let needed = (1.0 / gradient_tolerance).ln() / (learning_rate * gap);
        if needed > max_updates as f64 {
            return Err(doc.error(
                "hessian.learning_rate",
                format!(
                    "too small for {}: descent needs at least {needed:.3e} updates to reach \
                     ‖∇ℒ‖ < {gradient_tolerance:e} (slowest rate {gap:.4} per unit of α), more \
                     than hessian.max_updates = {max_updates}",
                    c.label()
                ),
            ));
        }
    }
    let diffusion = parse_diffusion(doc, raw.diffusion.unwrap_or_default(), &kappa, sigma_h)?;
    let ensemble = parse_ensemble(doc, raw.ensemble.unwrap_or_default(), &kappa, sigma_h)?;
    Ok(GoldstoneModesSpec {
        header,
        deformations,
        diffusion,
        ensemble,
        target: Target {
            n_visible,
            mass_squared,
            sigma_h,
        },
        configurations,
        training: Training {
            learning_rate,
            init_scale,
            gradient_tolerance,
            max_updates,
        },
    })
}

/// Validates `[deformation]`: the strongest ε must leave every learned mode learned under the
/// weighted penalty (ρ_j = 2εc_j < σ²(1/κ_j − 1/μ²)), or the deformed minimum is another phase.
fn parse_deformations(
    doc: &SpecDocument,
    raw: RawDeformation,
    kappa: &ndarray::Array1<f64>,
    sigma_h: f64,
    n_visible: usize,
) -> Result<Deformations> {
    let n_hidden = raw.n_hidden.unwrap_or_else(|| vec![n_visible]);
    doc.distinct("deformation.n_hidden", &n_hidden)?;
    for &nh in &n_hidden {
        doc.at_least("deformation.n_hidden", nh, 1)?;
        doc.at_most(
            "deformation.n_hidden",
            n_visible * nh,
            MAX_COORDINATES,
            "N_v·N_h coordinates of a dense Hessian",
        )?;
    }
    let mu_squared = raw.mu_squared.unwrap_or(9.0);
    if !(MIN_MASS_SQUARED..=MAX_MASS_SQUARED).contains(&mu_squared)
        || kappa.iter().any(|&k| (k - mu_squared).abs() <= 1e-9 * k)
    {
        return Err(doc.error(
            "deformation.mu_squared",
            format!(
                "must be in [{MIN_MASS_SQUARED:e}, {MAX_MASS_SQUARED:e}] and differ from every \
                 target eigenvalue κ, got {mu_squared}"
            ),
        ));
    }
    let mut epsilons = raw.epsilons.unwrap_or_else(|| vec![1e-5, 1e-4, 1e-3]);
    doc.distinct("deformation.epsilons", &epsilons)?;
    doc.instance_count(
        "deformation.epsilons",
        (epsilons.len() * n_hidden.len() * Deformation::ALL.len()) as u128,
    )?;
    for &e in &epsilons {
        doc.positive("deformation.epsilons", e)?;
    }
    epsilons.sort_by(f64::total_cmp);
    let s2 = sigma_h * sigma_h;
    for &nh in &n_hidden {
        let c = unit_weights(nh);
        let learned = kappa.iter().filter(|&&k| k < mu_squared).count().min(nh);
        let bound = (0..learned)
            .map(|j| s2 * (1.0 / kappa[j] - 1.0 / mu_squared) / (2.0 * c[j]))
            .fold(f64::INFINITY, f64::min);
        let largest = epsilons[epsilons.len() - 1];
        if largest >= bound {
            return Err(doc.error(
                "deformation.epsilons",
                format!(
                    "ε = {largest} unlearns a mode under the weighted penalty at N_h = {nh}: \
                     needs ε < {bound:.4e}"
                ),
            ));
        }
    }
    Ok(Deformations {
        n_hidden,
        mu_squared,
        epsilons,
    })
}

/// Validates `[diffusion]`: every hidden unit learned (W of full column rank, so the Procrustes
/// rotation is unique), learning rates that keep the slowest mode's kernel noise well inside its
/// gap to μ², and enough recorded updates for lags of several relaxation times.
fn parse_diffusion(
    doc: &SpecDocument,
    raw: RawDiffusion,
    kappa: &ndarray::Array1<f64>,
    sigma_h: f64,
) -> Result<Diffusion> {
    let n_visible = kappa.len();
    let n_hidden = doc.at_least("diffusion.n_hidden", raw.n_hidden.unwrap_or(n_visible), 2)?;
    doc.at_most(
        "diffusion.n_hidden",
        n_hidden,
        n_visible,
        "every hidden unit must be learned for W to have full column rank",
    )?;
    let mu_squared = raw.mu_squared.unwrap_or(9.0);
    let top = kappa[n_hidden - 1];
    if !(mu_squared > top * (1.0 + 1e-6) && mu_squared <= MAX_MASS_SQUARED) {
        return Err(doc.error(
            "diffusion.mu_squared",
            format!(
                "must exceed κ_{{N_h}} = {top} (every hidden unit learned, W of full column rank) \
                 and be at most {MAX_MASS_SQUARED:e}, got {mu_squared}"
            ),
        ));
    }
    let estimators = raw.estimators.unwrap_or_else(|| Estimator::ALL.to_vec());
    doc.distinct("diffusion.estimators", &estimators)?;
    let learning_rates = raw.learning_rates.unwrap_or_else(|| vec![0.05, 0.1, 0.2]);
    doc.distinct("diffusion.learning_rates", &learning_rates)?;
    let batches = raw.batches.unwrap_or_else(|| vec![16, 32, 64, 128]);
    doc.distinct("diffusion.batches", &batches)?;
    let scan_batch = doc.at_least("diffusion.scan_batch", raw.scan_batch.unwrap_or(16), 1)?;
    doc.at_most(
        "diffusion.scan_batch",
        scan_batch,
        super::MAX_CHAINS,
        "chains per update",
    )?;
    let scan_learning_rate = doc.positive(
        "diffusion.scan_learning_rate",
        raw.scan_learning_rate.unwrap_or(0.2),
    )?;
    let mut settings: Vec<Setting> = Vec::new();
    for &learning_rate in &learning_rates {
        doc.positive("diffusion.learning_rates", learning_rate)?;
        settings.push(Setting {
            learning_rate,
            batch: scan_batch,
        });
    }
    for &batch in &batches {
        doc.at_least("diffusion.batches", batch, 1)?;
        doc.at_most(
            "diffusion.batches",
            batch,
            super::MAX_CHAINS,
            "chains per update",
        )?;
        let setting = Setting {
            learning_rate: scan_learning_rate,
            batch,
        };
        if !settings.contains(&setting) {
            settings.push(setting);
        }
    }
    doc.instance_count(
        "diffusion.estimators",
        (settings.len() * estimators.len()) as u128,
    )?;
    let rate_factors = raw.rate_factors.unwrap_or_default();
    for (estimator, &factor) in &rate_factors {
        if !estimators.contains(estimator) {
            return Err(doc.error(
                "diffusion.rate_factors",
                format!("names {estimator}, which diffusion.estimators does not list"),
            ));
        }
        doc.positive(&format!("diffusion.rate_factors.{estimator}"), factor)?;
        doc.at_most(
            &format!("diffusion.rate_factors.{estimator}"),
            factor,
            1.0,
            "a factor scales the grid down",
        )?;
    }
    // The exact flow's largest rate per unit α is 2σ²(μ² − κ_0)/κ_0² along the stiffest mode
    // (and the orbit's Hessian is bounded by it): a step at or above 1 of it overshoots.
    let stiffest = kernel_relaxation_rate(kappa[0], mu_squared, sigma_h);
    let isotropic_scale = doc.positive(
        "diffusion.isotropic_scale",
        raw.isotropic_scale.unwrap_or(0.1),
    )?;
    let replicas = doc.at_least("diffusion.replicas", raw.replicas.unwrap_or(10), 3)?;
    doc.at_most(
        "diffusion.replicas",
        replicas,
        10_000,
        "replicas per setting",
    )?;
    let burn_in = doc.positive("diffusion.burn_in", raw.burn_in.unwrap_or(3.0))?;
    if burn_in < 1.0 {
        return Err(doc.error(
            "diffusion.burn_in",
            format!(
                "must be at least 1 slowest relaxation time (the kernel's noise must reach its \
                 stationary spread before W is recorded), got {burn_in}"
            ),
        ));
    }
    doc.at_most(
        "diffusion.burn_in",
        burn_in,
        1e3,
        "relaxation times of burn-in",
    )?;
    let updates = doc.at_least("diffusion.updates", raw.updates.unwrap_or(50_000), 100)?;
    doc.at_most(
        "diffusion.updates",
        updates as f64,
        MAX_UPDATES,
        "updates of one replica",
    )?;
    // The slowest kernel relaxation sets the burn-in and, for estimators whose step is
    // orthogonal to the orbit, the first lag of the rate fit: the recorded updates must reach ten
    // of them, and the burn-in must stay a bounded amount of work.
    let gamma_min = slowest_kernel_rate(
        kappa.as_slice().unwrap_or_default(),
        mu_squared,
        sigma_h,
        n_hidden,
    );
    for setting in &settings {
        let key = if learning_rates.contains(&setting.learning_rate) {
            "diffusion.learning_rates"
        } else {
            "diffusion.scan_learning_rate"
        };
        for &estimator in &estimators {
            let rate = grid_rate(&rate_factors, estimator, setting);
            if rate * stiffest >= 1.0 {
                return Err(doc.error(
                    key,
                    format!(
                        "α = {rate} ({estimator}) overshoots the stiffest kernel mode \
                         (α·2σ²(μ² − κ_0)/κ_0² = {:.3} must stay below 1)",
                        rate * stiffest
                    ),
                ));
            }
            // Small noise: the weakest learned mode's stationary spread must stay well inside
            // its distance to μ², or W loses rank and the orbit changes.
            let variance = kernel_noise_variance(
                estimator.source(isotropic_scale),
                top,
                mu_squared,
                sigma_h,
                rate,
                setting.batch,
            );
            if 4.0 * variance.sqrt() >= mu_squared - top {
                return Err(doc.error(
                    key,
                    format!(
                        "α = {rate}, |B| = {} is not small noise for {estimator}: the weakest \
                         mode's kernel spread {:.3} is more than a quarter of its gap μ² − κ = \
                         {:.3} (scale its rates with diffusion.rate_factors)",
                        setting.batch,
                        variance.sqrt(),
                        mu_squared - top
                    ),
                ));
            }
            let relaxation = 1.0 / (rate * gamma_min);
            if burn_in * relaxation > MAX_UPDATES {
                return Err(doc.error(
                    key,
                    format!(
                        "α = {rate:e} ({estimator}) is too small: its burn-in of {burn_in} slowest \
                         relaxation times is {:.3e} updates, more than {MAX_UPDATES:e}",
                        burn_in * relaxation
                    ),
                ));
            }
            if estimator.source(isotropic_scale).step_is_orthogonal()
                && (updates as f64) < 20.0 * relaxation
            {
                return Err(doc.error(
                    "diffusion.updates",
                    format!(
                        "{updates} recorded updates are too few for α = {rate:e} ({estimator}): \
                         its rate is fitted beyond one relaxation time 1/(αγ_min) = {relaxation:.0} \
                         updates and needs lags up to ten of them (at least {:.0} updates)",
                        20.0 * relaxation
                    ),
                ));
            }
        }
    }
    let record_every = doc.at_least("diffusion.record_every", raw.record_every.unwrap_or(5), 1)?;
    doc.at_most(
        "diffusion.record_every",
        record_every,
        updates / 20,
        "the MSA needs at least 20 snapshots per replica",
    )?;
    doc.at_most(
        "diffusion.record_every",
        (updates / record_every) as f64,
        super::MAX_RECORDS as f64,
        "snapshots of W are held in memory",
    )?;
    let max_msa = doc.positive("diffusion.max_msa", raw.max_msa.unwrap_or(0.5))?;
    if max_msa < 0.01 {
        return Err(doc.error(
            "diffusion.max_msa",
            format!(
                "must be at least 0.01 (the fit needs lags over which the orbit angle grows well \
                 beyond its intercept), got {max_msa}"
            ),
        ));
    }
    doc.at_most(
        "diffusion.max_msa",
        max_msa,
        2.0,
        "beyond it angles approach π and the Procrustes rotation is ambiguous",
    )?;
    Ok(Diffusion {
        n_hidden,
        mu_squared,
        estimators,
        settings,
        scan_batch,
        scan_learning_rate,
        isotropic_scale,
        rate_factors,
        replicas,
        burn_in,
        updates,
        record_every,
        max_msa,
    })
}

/// Validates `[ensemble]`.
fn parse_ensemble(
    doc: &SpecDocument,
    raw: RawEnsemble,
    kappa: &ndarray::Array1<f64>,
    sigma_h: f64,
) -> Result<Ensemble> {
    let n_visible = kappa.len();
    const KEY: &str = "ensemble.configurations";
    let configurations = Configuration::list_or_default(raw.configurations, n_visible);
    doc.distinct(KEY, &configurations)?;
    doc.instance_count(KEY, configurations.len() as u128 + 1)?;
    for c in &configurations {
        doc.at_least(&format!("{KEY}.n_hidden"), c.n_hidden, 1)?;
        doc.at_most(
            &format!("{KEY}.n_hidden"),
            n_visible * c.n_hidden,
            MAX_COORDINATES,
            "N_v·N_h weights per run",
        )?;
        if c.mu_trained {
            return Err(doc.error(
                &format!("{KEY}.mu_trained"),
                "the ensembles keep μ² fixed (its orbit is the hidden rotations only)",
            ));
        }
        if !(MIN_MASS_SQUARED..=MAX_MASS_SQUARED).contains(&c.mu_squared)
            || kappa.iter().any(|&k| (k - c.mu_squared).abs() <= 1e-3 * k)
            || c.mu_squared <= kappa[0]
        {
            return Err(doc.error(
                &format!("{KEY}.mu_squared"),
                format!(
                    "must exceed κ_0 = {} (something to learn), stay at least 0.1 % away from \
                     every κ (a marginal mode converges too slowly) and lie in \
                     [{MIN_MASS_SQUARED:e}, {MAX_MASS_SQUARED:e}], got {}",
                    kappa[0], c.mu_squared
                ),
            ));
        }
    }
    let runs = doc.at_least("ensemble.runs", raw.runs.unwrap_or(400), 10)?;
    doc.at_most("ensemble.runs", runs, 100_000, "runs per configuration")?;
    let weighted_runs =
        doc.at_least("ensemble.weighted_runs", raw.weighted_runs.unwrap_or(40), 3)?;
    doc.at_most(
        "ensemble.weighted_runs",
        weighted_runs,
        100_000,
        "runs of the contrast",
    )?;
    let gradient_tolerance = doc.positive(
        "ensemble.gradient_tolerance",
        raw.gradient_tolerance.unwrap_or(1e-8),
    )?;
    if !(1e-13..=1e-4).contains(&gradient_tolerance) {
        return Err(doc.error(
            "ensemble.gradient_tolerance",
            format!("must be in [1e-13, 1e-4], got {gradient_tolerance}"),
        ));
    }
    let max_updates = doc.at_least(
        "ensemble.max_updates",
        raw.max_updates.unwrap_or(1_000_000),
        1,
    )?;
    doc.at_most(
        "ensemble.max_updates",
        max_updates as f64,
        MAX_UPDATES,
        "updates of one run",
    )?;
    let learning_rate = doc.positive("ensemble.learning_rate", raw.learning_rate.unwrap_or(1.0))?;
    for c in &configurations {
        let spectrum = FixedPointLayout::stable(
            kappa.as_slice().unwrap_or_default(),
            c.n_hidden,
            c.mu_squared,
            sigma_h,
            false,
        )
        .spectrum()?;
        let largest = spectrum.last().map_or(0.0, |p| p.value);
        if largest > 0.0 && learning_rate >= 2.0 / largest {
            return Err(doc.error(
                "ensemble.learning_rate",
                format!(
                    "must be below 2/h_max = {:.4} for {} (h_max = {largest:.4})",
                    2.0 / largest,
                    c.label()
                ),
            ));
        }
        // The slowest curved direction contracts by (1 − α·gap) per update.
        let gap = smallest_curved(&spectrum);
        let needed = (1.0 / gradient_tolerance).ln() / (learning_rate * gap);
        if needed > max_updates as f64 {
            return Err(doc.error(
                "ensemble.learning_rate",
                format!(
                    "too small for {}: a run needs at least {needed:.3e} updates to reach \
                     ‖∇ℒ‖ < {gradient_tolerance:e}, more than ensemble.max_updates = {max_updates}",
                    c.label()
                ),
            ));
        }
    }
    let weighted_epsilon = doc.positive(
        "ensemble.weighted_epsilon",
        raw.weighted_epsilon.unwrap_or(2e-3),
    )?;
    if weighted_epsilon < 1e-6 {
        return Err(doc.error(
            "ensemble.weighted_epsilon",
            format!(
                "must be at least 1e-6: below it the lightest pseudo-Goldstone mass (~8e-3·ε) \
                 falls under the Newton polish's curvature floor and nothing pins the hidden \
                 units, got {weighted_epsilon:e}"
            ),
        ));
    }
    let first = &configurations[0];
    let c = unit_weights(first.n_hidden);
    let learned = kappa
        .iter()
        .filter(|&&k| k < first.mu_squared)
        .count()
        .min(first.n_hidden);
    let bound = (0..learned)
        .map(|j| sigma_h * sigma_h * (1.0 / kappa[j] - 1.0 / first.mu_squared) / (2.0 * c[j]))
        .fold(f64::INFINITY, f64::min);
    if weighted_epsilon >= bound {
        return Err(doc.error(
            "ensemble.weighted_epsilon",
            format!(
                "ε = {weighted_epsilon} unlearns a mode of {} under the weighted penalty: needs \
                 ε < {bound:.4e}",
                first.label()
            ),
        ));
    }
    Ok(Ensemble {
        configurations,
        runs,
        learning_rate,
        gradient_tolerance,
        max_updates,
        weighted_epsilon,
        weighted_runs,
    })
}
