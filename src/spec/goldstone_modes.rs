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

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[allow(dead_code)]
    experiment: super::RawHeader,
    target: Option<RawTarget>,
    hessian: Option<RawHessian>,
    deformation: Option<RawDeformation>,
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
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    pub n_visible: usize,
    pub mass_squared: f64,
    pub sigma_h: f64,
}

/// One model whose Hessian is counted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Configuration {
    pub n_hidden: usize,
    /// μ² of the exact fixed point and the start of training.
    pub mu_squared: f64,
    /// μ² is trained and a coordinate of the Hessian.
    pub mu_trained: bool,
}

impl Configuration {
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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
    let configurations: Vec<Configuration> = match h.configurations {
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
    };
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
    Ok(GoldstoneModesSpec {
        header,
        deformations,
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
