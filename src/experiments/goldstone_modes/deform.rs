//! Fit stage `fit[deformation=<d>,n_hidden=<n>]`: breaking the symmetry on purpose. For each
//! strength ε the stage first shows whether the deformation breaks the hidden rotations at all
//! (the loss at W and at WR, and at the rotation the deformation maps it to, for a random W and
//! a Haar R), then builds the minimum of the *deformed* loss exactly, counts its flat directions
//! and measures the lifted eigenvalues against the closed form and its first order in ε.
//!
//! The Hessian must be taken at the deformed minimum: at the undeformed one the deformed loss
//! has a gradient (of order ε), and curvature counted at a non-stationary point mixes in
//! −⟨∇ℒ, WA²⟩ along every orbit tangent — an O(ε) error in an O(ε) mass.
//!
//! - Per-unit hidden widths σ_j² = σ²(1 + εc_j): K = μ² − σ² V Vᵀ with V = W diag(σ_j/σ), a
//!   reparametrisation. The rotations act as W → W D R D⁻¹ and survive; the Hessian in W is
//!   J H_V J with J diagonal, which by Sylvester's law of inertia has exactly as many zero
//!   eigenvalues as H_V: no mass is lifted.
//! - ε‖W‖²: invariant under W → WR; the minimum moves (λ_a = 1/(1/κ_a − 2ε/σ²)) but every
//!   orbit direction stays flat.
//! - ε Σ_j c_j ‖w_j‖² with distinct c_j: breaks O(N_h) to its sign flips; the orbit is lifted
//!   (masses in [`FixedPointLayout::spectrum`]), except the visible O(2) of each learned ± pair
//!   and a cut pair, which no penalty on hidden units can see.
//!
//! Outputs: `arrays/deformation.<slug>.eigenvalues.npy` (ε × coordinates) and the private
//! `deformation.json` ([`DeformedPoint`] per ε).

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::fit::target_moments;
use crate::emit::{npy, slug};
use crate::error::{Error, Result};
use crate::fsutil::{read_json, write_json};
use crate::linalg::symmetric_eigenvalues;
use crate::models::rbm::GaussianRbm;
use crate::models::rbm::hessian::{
    Direction, FixedPointLayout, add_penalty_gradient, add_penalty_hessian, haar_orthogonal,
    loss_gradient, loss_hessian, noise_scale, smallest_curved,
};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageKind};
use crate::seed::rng_for;
use crate::spec::goldstone_modes::{Deformation, Target, unit_weights};

/// The deformed minimum at one ε.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeformedPoint {
    pub epsilon: f64,
    /// |ℒ_ε(WR) − ℒ_ε(W)| at a random W and Haar R.
    pub rotation_residual: f64,
    /// The same for the rotation as the deformation maps it (W → W D R D⁻¹ for hidden widths,
    /// W → WR otherwise).
    pub deformed_rotation_residual: f64,
    /// kept, reparametrised or broken.
    pub symmetry: String,
    pub gradient_norm: f64,
    pub undeformed_flat: usize,
    pub predicted_flat: usize,
    pub counted_flat: usize,
    pub threshold: f64,
    /// max |h_k − p_k| where a closed form exists (not for hidden widths).
    pub max_abs_deviation: Option<f64>,
    /// The shortcut: the deformed loss's Hessian taken at the *undeformed* minimum (where its
    /// gradient is O(ε)), its flat directions counted the same way (penalties only).
    pub shortcut_flat: Option<usize>,
    /// The shortcut's lightest eigenvalue above its threshold.
    pub shortcut_lightest: Option<f64>,
    /// ‖∇(ℒ + P)‖ where the shortcut takes its Hessian.
    pub shortcut_gradient_norm: Option<f64>,
    /// Lifted orbit eigenvalues, ascending: measured, closed form, first order in ε.
    pub masses: Vec<f64>,
    pub masses_predicted: Vec<f64>,
    pub masses_first_order: Vec<f64>,
    pub eigenvalues: Vec<f64>,
}

#[derive(Serialize, serde::Deserialize)]
pub struct DeformStage {
    pub target: Target,
    pub deformation: Deformation,
    pub n_hidden: usize,
    pub mu_squared: f64,
    pub epsilons: Vec<f64>,
    pub seed: u64,
}

impl DeformStage {
    pub fn label(deformation: Deformation, n_hidden: usize) -> String {
        format!("deformation={deformation},n_hidden={n_hidden}")
    }

    /// The deformed loss ℒ_ε at `weights`.
    fn loss(&self, weights: &Array2<f64>, covariance: &Array2<f64>, epsilon: f64) -> Result<f64> {
        let s = self.target.sigma_h;
        let c = unit_weights(self.n_hidden);
        let model = |w: Array2<f64>| GaussianRbm {
            weights: w,
            mu: self.mu_squared.sqrt(),
            sigma_h: s,
        };
        Ok(match self.deformation {
            Deformation::HiddenWidths => {
                let v = weights * &Array1::from(widths_over_sigma(&c, epsilon));
                -model(v).log_likelihood(covariance.view())?
            }
            Deformation::UniformL2 | Deformation::WeightedL2 => {
                let rho = self.penalty(&c, epsilon);
                let penalty: f64 = (0..self.n_hidden)
                    .map(|j| 0.5 * rho[j] * weights.column(j).dot(&weights.column(j)))
                    .sum();
                -model(weights.clone()).log_likelihood(covariance.view())? + penalty
            }
        })
    }

    /// ρ_j = 2εc_j (weighted) or 2ε (uniform).
    fn penalty(&self, c: &[f64], epsilon: f64) -> Vec<f64> {
        c.iter()
            .map(|cj| {
                2.0 * epsilon
                    * if self.deformation == Deformation::WeightedL2 {
                        *cj
                    } else {
                        1.0
                    }
            })
            .collect()
    }

    fn point(&self, epsilon: f64) -> Result<DeformedPoint> {
        let (covariance, kappa, modes) = target_moments(&self.target)?;
        let (nh, s) = (self.n_hidden, self.target.sigma_h);
        let c = unit_weights(nh);
        let label = Self::label(self.deformation, nh);
        let mut rng = rng_for(self.seed, &format!("deform/{label}/epsilon={epsilon}"));

        // Does it break the rotations? Compare the loss at W and at its rotations.
        let probe = GaussianRbm::random(
            self.target.n_visible,
            nh,
            self.mu_squared.sqrt(),
            s,
            0.3,
            &mut rng,
        );
        let rotation = haar_orthogonal(nh, &mut rng);
        let base = self.loss(&probe.weights, &covariance, epsilon)?;
        let rotated = self.loss(&probe.weights.dot(&rotation), &covariance, epsilon)?;
        let deformed_rotated = match self.deformation {
            Deformation::HiddenWidths => {
                let d = Array1::from(widths_over_sigma(&c, epsilon));
                let conjugated = (&probe.weights * &d).dot(&rotation) / &d;
                self.loss(&conjugated, &covariance, epsilon)?
            }
            _ => rotated,
        };
        let scale = base.abs().max(1.0) * 1e-12;
        let (rotation_residual, deformed_rotation_residual) =
            ((rotated - base).abs(), (deformed_rotated - base).abs());
        let symmetry = if rotation_residual <= scale {
            "kept"
        } else if deformed_rotation_residual <= scale {
            "reparametrised"
        } else {
            "broken"
        };

        // The deformed minimum, exactly.
        let undeformed = FixedPointLayout::stable(&kappa, nh, self.mu_squared, s, false);
        let angle = std::f64::consts::TAU * rand::RngExt::random::<f64>(&mut rng);
        let haar = haar_orthogonal(nh, &mut rng);
        let mut shortcut = None;
        let (hessian, gradient, layout) = match self.deformation {
            Deformation::HiddenWidths => {
                let (v, _) = undeformed.weights(modes.view(), haar.view(), angle)?;
                let model = GaussianRbm {
                    weights: v,
                    mu: self.mu_squared.sqrt(),
                    sigma_h: s,
                };
                // ℒ_ε(W) = ℒ(V), V = W·diag(σ_j/σ): ∇_W = ∇_V·J, H_W = J H_V J.
                let j = Array1::from(widths_over_sigma(&c, epsilon));
                let (gv, _) = loss_gradient(&model, covariance.view())?;
                let mut h = loss_hessian(&model, covariance.view(), false)?;
                let n = h.nrows();
                for row in 0..n {
                    for col in 0..n {
                        h[[row, col]] *= j[row % nh] * j[col % nh];
                    }
                }
                (h, &gv * &j, None)
            }
            Deformation::UniformL2 | Deformation::WeightedL2 => {
                let rho = self.penalty(&c, epsilon);
                let layout = undeformed.clone().penalised(rho.clone())?;
                // A non-uniform penalty pins unit a to mode a: no rotation of the units.
                let turn = if self.deformation == Deformation::WeightedL2 {
                    Array2::eye(nh)
                } else {
                    haar
                };
                let (w, _) = layout.weights(modes.view(), turn.view(), angle)?;
                let model = GaussianRbm {
                    weights: w,
                    mu: self.mu_squared.sqrt(),
                    sigma_h: s,
                };
                let (mut g, _) = loss_gradient(&model, covariance.view())?;
                add_penalty_gradient(&mut g, &model.weights, &rho);
                let mut h = loss_hessian(&model, covariance.view(), false)?;
                add_penalty_hessian(&mut h, nh, &rho);
                (h, g, Some(layout))
            }
        };
        let gradient_norm = gradient.iter().map(|v| v * v).sum::<f64>().sqrt();
        if gradient_norm > 1e-10 {
            return Err(Error::Other(format!(
                "{label}, ε = {epsilon}: the constructed minimum has ‖∇ℒ_ε‖ = {gradient_norm:e}"
            )));
        }
        let measured = symmetric_eigenvalues(hessian.view())?;
        let noise = noise_scale(measured.as_slice().unwrap_or_default(), gradient_norm);
        let undeformed_spectrum = undeformed.spectrum()?;
        let undeformed_flat = undeformed.flat_counts().total();
        let (predicted_flat, gap, deviation, masses, masses_predicted, masses_first_order) =
            match &layout {
                None => {
                    // Congruence by J scales every eigenvalue by a factor in [min J², max J²]
                    // (Ostrowski), so the gap shrinks at most by min J².
                    let j_min = widths_over_sigma(&c, epsilon)
                        .into_iter()
                        .fold(f64::INFINITY, f64::min);
                    let gap0 = smallest_curved(&undeformed_spectrum);
                    (
                        undeformed_flat,
                        gap0 * j_min * j_min,
                        None,
                        vec![],
                        vec![],
                        vec![],
                    )
                }
                Some(layout) => {
                    let predicted = layout.spectrum()?;
                    let gap = smallest_curved(&predicted);
                    shortcut = Some(self.shortcut(
                        &undeformed,
                        &modes,
                        &covariance,
                        &layout.penalty,
                        angle,
                        gap,
                    )?);
                    let deviation = measured
                        .iter()
                        .zip(&predicted)
                        .fold(0.0_f64, |m, (h, p)| m.max((h - p.value).abs()));
                    let lifted: Vec<usize> = predicted
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| p.direction == Direction::PseudoGoldstone)
                        .map(|(k, _)| k)
                        .collect();
                    (
                        layout.flat_counts().total(),
                        gap,
                        Some(deviation),
                        lifted.iter().map(|&k| measured[k]).collect(),
                        lifted.iter().map(|&k| predicted[k].value).collect(),
                        layout.first_order_masses(),
                    )
                }
            };
        let threshold = (noise * gap).sqrt();
        Ok(DeformedPoint {
            epsilon,
            rotation_residual,
            deformed_rotation_residual,
            symmetry: symmetry.into(),
            gradient_norm,
            undeformed_flat,
            predicted_flat,
            counted_flat: measured.iter().filter(|v| v.abs() < threshold).count(),
            threshold,
            max_abs_deviation: deviation,
            shortcut_flat: shortcut.map(|s: (usize, Option<f64>, f64)| s.0),
            shortcut_lightest: shortcut.and_then(|s| s.1),
            shortcut_gradient_norm: shortcut.map(|s| s.2),
            masses,
            masses_predicted,
            masses_first_order,
            eigenvalues: measured.to_vec(),
        })
    }
}

impl DeformStage {
    /// The shortcut of taking ∇²(ℒ + P) at the undeformed minimum W₀ (unit a on mode a): its
    /// flat count and lightest curved eigenvalue. W₀ is not stationary for ℒ + P, so along an
    /// orbit tangent T = W₀A this misses −⟨∇P, W₀A²⟩, a term of the same order ε as the masses.
    fn shortcut(
        &self,
        undeformed: &FixedPointLayout,
        modes: &Array2<f64>,
        covariance: &Array2<f64>,
        rho: &[f64],
        angle: f64,
        gap: f64,
    ) -> Result<(usize, Option<f64>, f64)> {
        let nh = self.n_hidden;
        let (w, _) = undeformed.weights(modes.view(), Array2::eye(nh).view(), angle)?;
        let model = GaussianRbm {
            weights: w,
            mu: self.mu_squared.sqrt(),
            sigma_h: self.target.sigma_h,
        };
        let (mut g, _) = loss_gradient(&model, covariance.view())?;
        add_penalty_gradient(&mut g, &model.weights, rho);
        let mut h = loss_hessian(&model, covariance.view(), false)?;
        add_penalty_hessian(&mut h, nh, rho);
        let values = symmetric_eigenvalues(h.view())?;
        let gradient_norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        let noise = noise_scale(values.as_slice().unwrap_or_default(), 0.0).max(1e-300);
        // The same threshold rule, with the exact layout's gap: only the count is compared.
        let threshold = (noise * gap).sqrt();
        Ok((
            values.iter().filter(|v| v.abs() < threshold).count(),
            values.iter().copied().find(|v| *v >= threshold),
            gradient_norm,
        ))
    }
}

/// σ_j/σ = √(1 + εc_j).
fn widths_over_sigma(c: &[f64], epsilon: f64) -> Vec<f64> {
    c.iter().map(|cj| (1.0 + epsilon * cj).sqrt()).collect()
}

impl Stage for DeformStage {
    const KIND: StageKind = StageKind::Fit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("goldstone-modes/deform")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let points = self
            .epsilons
            .iter()
            .map(|&e| self.point(e))
            .collect::<Result<Vec<_>>>()?;
        let n = points.first().map_or(0, |p| p.eigenvalues.len());
        let eigenvalues =
            Array2::from_shape_fn((points.len(), n), |(e, k)| points[e].eigenvalues[k]);
        npy::write(
            &ctx.out_dir.join("arrays").join(format!(
                "deformation.{}.eigenvalues.npy",
                slug(&Self::label(self.deformation, self.n_hidden))
            )),
            &eigenvalues,
        )?;
        write_json(&ctx.out_dir.join("deformation.json"), &points)
    }
}

/// Reads what [`DeformStage`] wrote.
pub fn load(dir: &std::path::Path) -> Result<Vec<DeformedPoint>> {
    read_json(&dir.join("deformation.json"))
}
