//! Fit stage `fit[<configuration>]`: the two stationary points whose Hessians are counted. The
//! exact one is built in closed form (learned modes at σ²ξ_a² = μ² − κ_a, hidden directions the
//! columns of a seeded Haar rotation, a cut degenerate level learned along a seeded angle); the
//! trained one is reached from small random weights by exact-gradient descent on ℒ = −L (and on
//! μ² when it is trained) until ‖∇ℒ‖ falls below the spec's tolerance.
//!
//! Outputs: `arrays/points.<slug>.{exact,trained}_weights.npy` and the private `points.json`
//! (μ², gradient norm and, for the trained point, updates and seconds).

use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::analysis::lattice::{free_field_kernel, free_field_modes};
use crate::emit::{npy, slug};
use crate::error::{Error, Result};
use crate::fsutil::{read_json, write_json};
use crate::linalg::spd_inverse_and_log_det;
use crate::models::rbm::GaussianRbm;
use crate::models::rbm::hessian::{FixedPointLayout, haar_orthogonal, loss_gradient};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageKind};
use crate::seed::rng_for;
use crate::spec::goldstone_modes::{Configuration, Target, Training};

/// One stationary point.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    pub mu_squared: f64,
    pub gradient_norm: f64,
    /// Updates of exact-gradient descent (0 for the closed-form point).
    pub updates: usize,
    pub seconds: f64,
}

/// Both points of one configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Points {
    pub exact: Point,
    pub trained: Point,
}

#[derive(Serialize, serde::Deserialize)]
pub struct FitStage {
    pub target: Target,
    pub configuration: Configuration,
    pub training: Training,
    pub seed: u64,
}

/// The target covariance C = K_φ⁻¹ and its spectrum and modes.
pub fn target_moments(target: &Target) -> Result<(Array2<f64>, Vec<f64>, Array2<f64>)> {
    let (kernel, (kappa, modes)) = (
        free_field_kernel(target.n_visible, target.mass_squared),
        free_field_modes(target.n_visible, target.mass_squared),
    );
    let (covariance, _) = spd_inverse_and_log_det(kernel.view())?;
    Ok((covariance, kappa.to_vec(), modes))
}

/// ‖(∇_W ℒ, ∂ℒ/∂μ²)‖, the μ² part only when it is trained.
pub fn gradient_norm(model: &GaussianRbm, covariance: &Array2<f64>, with_mu: bool) -> Result<f64> {
    let (gw, gmu) = loss_gradient(model, covariance.view())?;
    let mu_part = if with_mu { gmu * gmu } else { 0.0 };
    Ok((gw.iter().map(|v| v * v).sum::<f64>() + mu_part).sqrt())
}

impl Stage for FitStage {
    const KIND: StageKind = StageKind::Fit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("goldstone-modes/fit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let c = &self.configuration;
        let label = c.label();
        let (covariance, kappa, modes) = target_moments(&self.target)?;
        let sigma_h = self.target.sigma_h;
        let with_mu = c.mu_trained;

        let layout = FixedPointLayout::stable(&kappa, c.n_hidden, c.mu_squared, sigma_h, with_mu);
        let mut rng = rng_for(self.seed, &format!("exact/{label}"));
        let rotation = haar_orthogonal(c.n_hidden, &mut rng);
        let angle = std::f64::consts::TAU * rand::RngExt::random::<f64>(&mut rng);
        let (exact_weights, _) = layout.weights(modes.view(), rotation.view(), angle)?;
        let exact = GaussianRbm {
            weights: exact_weights,
            mu: c.mu_squared.sqrt(),
            sigma_h,
        };
        let exact_point = Point {
            mu_squared: c.mu_squared,
            gradient_norm: gradient_norm(&exact, &covariance, with_mu)?,
            updates: 0,
            seconds: 0.0,
        };

        let mut rng = rng_for(self.seed, &format!("init/{label}"));
        let mut model = GaussianRbm::random(
            self.target.n_visible,
            c.n_hidden,
            c.mu_squared.sqrt(),
            sigma_h,
            self.training.init_scale,
            &mut rng,
        );
        let clock = Instant::now();
        let rate = self.training.learning_rate;
        let mut mu_squared = c.mu_squared;
        let mut updates = 0;
        let trained_norm = loop {
            let (gw, gmu) =
                loss_gradient(&model, covariance.view()).map_err(|e| Error::Numerical {
                    what: format!("{label}: the kernel left the positive-definite domain ({e})"),
                    update: updates,
                })?;
            let mu_part = if with_mu { gmu * gmu } else { 0.0 };
            let norm = (gw.iter().map(|v| v * v).sum::<f64>() + mu_part).sqrt();
            if !norm.is_finite() {
                return Err(Error::Numerical {
                    what: format!("{label}: gradient norm {norm}"),
                    update: updates,
                });
            }
            if norm < self.training.gradient_tolerance {
                break norm;
            }
            if updates == self.training.max_updates {
                return Err(Error::Numerical {
                    what: format!(
                        "{label}: ‖∇ℒ‖ = {norm:e} is still above the tolerance {:e} (raise \
                         hessian.max_updates or the learning rate)",
                        self.training.gradient_tolerance
                    ),
                    update: updates,
                });
            }
            model.weights.scaled_add(-rate, &gw);
            if with_mu {
                mu_squared -= rate * gmu;
                model.mu = mu_squared.sqrt();
            }
            updates += 1;
            if updates % 1000 == 0 {
                ctx.progress.set_position(updates as u64);
            }
        };
        let trained_point = Point {
            mu_squared: model.mu_squared(),
            gradient_norm: trained_norm,
            updates,
            seconds: clock.elapsed().as_secs_f64(),
        };

        let arrays = ctx.out_dir.join("arrays");
        let prefix = format!("points.{}", slug(&label));
        npy::write(
            &arrays.join(format!("{prefix}.exact_weights.npy")),
            &exact.weights,
        )?;
        npy::write(
            &arrays.join(format!("{prefix}.trained_weights.npy")),
            &model.weights,
        )?;
        write_json(
            &ctx.out_dir.join("points.json"),
            &Points {
                exact: exact_point,
                trained: trained_point,
            },
        )
    }
}

/// Reads what [`FitStage`] wrote: the points' facts and their weights (exact, trained).
pub fn load(
    dir: &std::path::Path,
    configuration: &Configuration,
) -> Result<(Points, Array2<f64>, Array2<f64>)> {
    let prefix = format!("points.{}", slug(&configuration.label()));
    let arrays = dir.join("arrays");
    Ok((
        read_json(&dir.join("points.json"))?,
        npy::read(&arrays.join(format!("{prefix}.exact_weights.npy")))?,
        npy::read(&arrays.join(format!("{prefix}.trained_weights.npy")))?,
    ))
}
