//! The N_v = 2, N_h = 1 toy: one hidden unit w = ξ(cos θ, sin θ) learning the target
//! C_t = diag(1/κ₁, 1/κ₂) by the exact gradient. The angle obeys
//! dθ/dt = σ_h²(1/κ₂ − 1/κ₁) sin θ cos θ whatever ξ does, so
//! tan θ(t) = tan θ₀ · exp(−σ_h²(1/κ₁ − 1/κ₂) t) with t = α·updates.
//!
//! Output `arrays/toy.angle.npy`: rows (update, t, θ trained, θ closed form, ξ).

use ndarray::{Array2, array};

use crate::emit::npy;
use crate::error::Result;
use crate::models::rbm::GaussianRbm;
use crate::models::rbm::train::{NegativePhase, TrainOptions, train};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageKind};
use crate::seed::rng_for;
use crate::spec::rbm_scalar::ToyParams;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct ToyStage {
    pub toy: ToyParams,
    pub seed: u64,
}

/// θ(t) of the gradient flow, from the closed form.
pub fn closed_form_angle(p: &ToyParams, t: f64) -> f64 {
    let rate = p.sigma_h * p.sigma_h * (1.0 / p.kappa_1 - 1.0 / p.kappa_2);
    (p.theta_0.tan() * (-rate * t).exp()).atan()
}

/// Trains the toy and returns its rows (update, t, θ, θ closed form, ξ).
pub fn run_toy(p: &ToyParams, seed: u64, progress: &mut dyn FnMut(usize)) -> Result<Array2<f64>> {
    let mut model = GaussianRbm {
        weights: array![[p.xi_0 * p.theta_0.cos()], [p.xi_0 * p.theta_0.sin()]],
        mu: p.mu_squared.sqrt(),
        sigma_h: p.sigma_h,
    };
    let target = array![[1.0 / p.kappa_1, 0.0], [0.0, 1.0 / p.kappa_2]];
    let chunk = TrainOptions::plain(p.learning_rate, p.record_every, NegativePhase::Exact);
    // The exact flow draws no random numbers; the stream exists only to satisfy the trainer.
    let mut rng = rng_for(seed, "fit[toy]");
    let records = p.updates.div_ceil(p.record_every);
    let mut rows = Vec::with_capacity(records + 1);
    let mut push = |update: usize, model: &GaussianRbm| {
        let (w1, w2) = (model.weights[[0, 0]], model.weights[[1, 0]]);
        let t = update as f64 * p.learning_rate;
        // w and −w are the same hidden unit: fold the angle into (−π/2, π/2].
        let theta = (w2 / w1).atan();
        rows.push([
            update as f64,
            t,
            theta,
            closed_form_angle(p, t),
            w1.hypot(w2),
        ]);
    };
    push(0, &model);
    for r in 1..=records {
        train(&mut model, target.view(), &chunk, &mut rng, &mut |_| {})?;
        push(r * p.record_every, &model);
        progress(r * p.record_every);
    }
    Ok(Array2::from_shape_fn((rows.len(), 5), |(i, j)| rows[i][j]))
}

impl Stage for ToyStage {
    const KIND: StageKind = StageKind::Fit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-scalar/toy")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        ctx.progress.set_length(self.toy.updates as u64);
        let rows = run_toy(&self.toy, self.seed, &mut |u| {
            ctx.progress.set_position(u as u64)
        })?;
        npy::write(&ctx.out_dir.join("arrays").join("toy.angle.npy"), &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(learning_rate: f64) -> ToyParams {
        ToyParams {
            kappa_1: 4.0,
            kappa_2: 8.0,
            mu_squared: 9.0,
            sigma_h: 1.0,
            theta_0: 1.2,
            xi_0: 1.0,
            learning_rate,
            updates: (40.0 / learning_rate).ceil() as usize,
            record_every: 1000,
        }
    }

    /// Gradient ascent with a small step follows the closed-form angle to within 1e-4 rad.
    #[test]
    fn trained_angle_follows_the_closed_form() {
        let p = params(1e-4);
        let rows = run_toy(&p, 1, &mut |_| {}).unwrap();
        let worst = rows
            .rows()
            .into_iter()
            .map(|r| (r[2] - r[3]).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-4, "max |θ − θ_closed| = {worst:e}");
        // The angle has relaxed substantially, so the comparison is not trivially near θ₀.
        assert!(rows[[rows.nrows() - 1, 2]] < 0.1);
    }

    /// The deviation is a discretisation error: it shrinks in proportion to the step.
    #[test]
    fn angle_error_is_first_order_in_the_step() {
        let worst = |lr: f64| {
            let rows = run_toy(&params(lr), 1, &mut |_| {}).unwrap();
            rows.rows()
                .into_iter()
                .map(|r| (r[2] - r[3]).abs())
                .fold(0.0, f64::max)
        };
        let ratio = worst(2e-3) / worst(1e-3);
        assert!((ratio - 2.0).abs() < 0.2, "error ratio {ratio}");
    }
}
