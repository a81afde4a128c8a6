//! Evaluate stage: observables of one fitted model against the predictions of its fixed-point
//! spectrum.
//!
//! The predicted spectrum keeps κ_a for the learnable modes — the N_h lowest with κ_a < μ² —
//! and μ² for every other mode (μ² is the model's final value, which matters when μ is trained).
//! From it follow the predicted propagator, G(t) and action-density moments. The stage also
//! regenerates fields (chains from φ = 1, `gibbs_steps` block-Gibbs sweeps) and measures their
//! covariance, G(t) and action density with blocked-jackknife errors, averages each eigenvalue
//! over the late window of training (jackknife over bins of that window), and fits a
//! relaxation time per mode to the ensemble-mean eigenvalue trajectory and to the ensemble mean
//! of the kernel projected on the target eigenvectors.

use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use super::fit;
use super::preprocess;
use crate::analysis::jackknife::{jackknife, mean_and_std};
use crate::analysis::lattice::{
    action_density, action_density_moments, translation_averaged_correlator,
};
use crate::analysis::relaxation::{RelaxationWindow, fit_relaxation};
use crate::emit::npy;
use crate::emit::slug;
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::models::rbm::train::NegativePhase;
use crate::models::rbm::{GaussianRbm, second_moment};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::seed::rng_for;
use crate::spec::rbm_scalar::{EvaluateParams, FitParams};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct EvaluateStage {
    pub fit: FitParams,
    pub evaluate: EvaluateParams,
    pub target: StageHandle,
    pub fitted: StageHandle,
    pub seed: u64,
}

/// Relaxation of one mode.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModeRelaxation {
    pub index: usize,
    pub kappa: f64,
    pub learnable: bool,
    /// Linear rate γ_a = 2σ²(μ² − κ_a)/κ_a² per unit flow time.
    pub gamma: f64,
    pub tau_fit: Option<f64>,
    pub tau_fit_error: Option<f64>,
    pub fit_points: usize,
    /// The same fit on the ensemble mean of v_aᵀ K v_a (target eigenvector v_a): linear in K,
    /// so unlike sorted eigenvalues it carries no level-repulsion bias.
    pub tau_fit_projected: Option<f64>,
    pub tau_fit_projected_error: Option<f64>,
    /// The eigenvalue fit with the window starting at `late_upper` instead of `upper` (exact
    /// runs only).
    pub tau_fit_late: Option<f64>,
    pub tau_fit_late_error: Option<f64>,
    /// 1/(α γ_a), in updates.
    pub tau_predicted: f64,
    /// −1/ln|1 − α γ_a|: the same for the discrete update, which overshoots and alternates for
    /// α γ_a > 1; none for α γ_a ≥ 2, where the linearised update does not relax at all.
    pub tau_predicted_discrete: Option<f64>,
}

/// Everything [`EvaluateStage`] measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Evaluation {
    pub label: String,
    pub mu_squared_final: f64,
    pub kappa: Vec<f64>,
    pub predicted_eigenvalues: Vec<f64>,
    pub final_eigenvalues: Vec<f64>,
    pub late_eigenvalues: Vec<f64>,
    pub late_errors: Vec<f64>,
    pub distances: Vec<usize>,
    pub correlator_target: Vec<f64>,
    pub correlator_predicted: Vec<f64>,
    pub correlator_model: Vec<f64>,
    pub correlator_samples: Vec<f64>,
    pub correlator_samples_error: Vec<f64>,
    pub samples: usize,
    pub action_mean: f64,
    pub action_mean_error: f64,
    pub action_std: f64,
    pub action_std_error: f64,
    pub action_mean_model: f64,
    pub action_std_model: f64,
    pub action_mean_predicted: f64,
    pub action_std_predicted: f64,
    /// μ trained: where ∂L/∂μ² = 0 with the unlearned modes at μ², N_u / Σ_unlearned 1/κ_a, for
    /// N_h < N_v; for N_h = N_v every μ² ≥ κ_max is stationary and the flow approaches κ_max
    /// from below (the last mode is learned ever more slowly), so κ_max is given.
    pub mu_squared_predicted: Option<f64>,
    pub relaxation: Vec<ModeRelaxation>,
}

/// The predicted fixed-point spectrum (sorted like κ): κ_a for the `n_hidden` lowest modes with
/// κ_a < μ², μ² for the rest.
pub fn predicted_spectrum(kappa: &[f64], n_hidden: usize, mu_squared: f64) -> Vec<f64> {
    kappa
        .iter()
        .enumerate()
        .map(|(a, &k)| {
            if a < n_hidden && k < mu_squared {
                k
            } else {
                mu_squared
            }
        })
        .collect()
}

/// Diagonal covariance with the given spectrum in the eigenbasis `vectors` (columns).
fn covariance_from_spectrum(vectors: &Array2<f64>, spectrum: &[f64]) -> Array2<f64> {
    let inv = Array1::from_iter(spectrum.iter().map(|l| 1.0 / l));
    let scaled = vectors * &inv.view().insert_axis(Axis(0));
    scaled.dot(&vectors.t())
}

impl Stage for EvaluateStage {
    const KIND: StageKind = StageKind::Evaluate;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-scalar/evaluate")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let label = self.fit.label();
        let (k_phi, target_cov, kappa) = preprocess::load(ctx.upstream(&self.target)?)?;
        let fitted = fit::load(ctx.upstream(&self.fitted)?, &label)?;
        let mu_final = fitted.mu_final[0];
        let model = GaussianRbm {
            weights: fitted.weights.clone(),
            mu: mu_final,
            sigma_h: self.fit.sigma_h,
        };
        let mu2 = model.mu_squared();
        let n = k_phi.nrows();
        let kappa_v = kappa.to_vec();
        let predicted = predicted_spectrum(&kappa_v, self.fit.n_hidden, mu2);
        let eig = crate::linalg::symmetric_eigen(k_phi.view())?;
        let predicted_cov = covariance_from_spectrum(&eig.vectors, &predicted);
        let (model_cov, _) = model.covariance_and_log_det()?;
        let p = &self.evaluate;
        ctx.progress.set_length(p.samples as u64);

        let mut rng = rng_for(self.seed, &format!("evaluate[{label}]"));
        let samples = model.sample(p.samples, p.gibbs_steps, &mut rng);
        ctx.progress.set_position(p.samples as u64);
        let sample_cov = second_moment(samples.view());
        let d = p.max_distance.min(n / 2);
        let distances: Vec<usize> = (0..=d).collect();
        let lagged = Array2::from_shape_fn((samples.nrows(), d + 1), |(s, t)| {
            (0..n)
                .map(|x| samples[[s, x]] * samples[[s, (x + t) % n]])
                .sum::<f64>()
                / n as f64
        });
        let correlator = jackknife(lagged.view(), p.jackknife_bins, |m| m.to_vec());
        let s = action_density(k_phi.view(), samples.view());
        let action = mean_and_std(s.as_slice().unwrap_or(&s.to_vec()), p.jackknife_bins);
        let (model_mean, model_std) = action_density_moments(k_phi.view(), model_cov.view());
        let (pred_mean, pred_std) = action_density_moments(k_phi.view(), predicted_cov.view());

        let records = fitted.updates.len();
        let tail =
            ((records as f64 * p.relaxation.tail_fraction).ceil() as usize).clamp(1, records);
        let mut late = Vec::with_capacity(n);
        let mut late_err = Vec::with_capacity(n);
        for a in 0..n {
            let column = fitted.eigenvalues_mean.column(a);
            let window: Vec<f64> = column.iter().skip(records - tail).copied().collect();
            let r = mean_and_std(&window, 10.min(window.len()));
            late.push(r.estimate[0]);
            late_err.push(r.error[0]);
        }

        let s2 = self.fit.sigma_h * self.fit.sigma_h;
        let rate = self.fit.learning_rate;
        let t: Vec<f64> = fitted.updates.to_vec();
        let late_window = RelaxationWindow {
            upper: p.late_upper,
            ..p.relaxation
        };
        let relaxation = (0..n)
            .map(|a| {
                let k = kappa_v[a];
                let learnable = a < self.fit.n_hidden && k < mu2;
                let gamma = 2.0 * s2 * (mu2 - k) / (k * k);
                let fit_mode = |y: Vec<f64>, window: &RelaxationWindow| {
                    if learnable {
                        fit_relaxation(&t, &y, window)
                    } else {
                        None
                    }
                };
                let y = fitted.eigenvalues_mean.column(a).to_vec();
                let fitted_tau = fit_mode(y.clone(), &p.relaxation);
                // Stochastic trajectories are noise-dominated that close to the plateau.
                let late_tau = if self.fit.negative_phase == NegativePhase::Exact {
                    fit_mode(y, &late_window)
                } else {
                    None
                };
                let projected_tau =
                    fit_mode(fitted.projected_mean.column(a).to_vec(), &p.relaxation);
                ModeRelaxation {
                    index: a,
                    kappa: k,
                    learnable,
                    gamma,
                    tau_fit: fitted_tau.as_ref().map(|f| f.tau),
                    tau_fit_error: fitted_tau.as_ref().map(|f| f.tau_error),
                    fit_points: fitted_tau.as_ref().map_or(0, |f| f.points),
                    tau_fit_projected: projected_tau.as_ref().map(|f| f.tau),
                    tau_fit_projected_error: projected_tau.as_ref().map(|f| f.tau_error),
                    tau_fit_late: late_tau.as_ref().map(|f| f.tau),
                    tau_fit_late_error: late_tau.as_ref().map(|f| f.tau_error),
                    tau_predicted: 1.0 / (rate * gamma),
                    tau_predicted_discrete: discrete_relaxation_time(rate * gamma),
                }
            })
            .collect();

        let unlearned: Vec<f64> = kappa_v.iter().skip(self.fit.n_hidden).copied().collect();
        let kappa_max = kappa_v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mu_squared_predicted = self.fit.train_mu.then(|| {
            if unlearned.is_empty() {
                kappa_max
            } else {
                unlearned.len() as f64 / unlearned.iter().map(|k| 1.0 / k).sum::<f64>()
            }
        });

        let evaluation = Evaluation {
            label: label.clone(),
            mu_squared_final: mu2,
            kappa: kappa_v,
            predicted_eigenvalues: predicted,
            final_eigenvalues: fitted
                .final_eigenvalues
                .mean_axis(Axis(0))
                .map_or_else(Vec::new, |m| m.to_vec()),
            late_eigenvalues: late,
            late_errors: late_err,
            distances,
            correlator_target: translation_averaged_correlator(target_cov.view(), d),
            correlator_predicted: translation_averaged_correlator(predicted_cov.view(), d),
            correlator_model: translation_averaged_correlator(model_cov.view(), d),
            correlator_samples: correlator.estimate,
            correlator_samples_error: correlator.error,
            samples: p.samples,
            action_mean: action.estimate[0],
            action_mean_error: action.error[0],
            action_std: action.estimate[1],
            action_std_error: action.error[1],
            action_mean_model: model_mean,
            action_std_model: model_std,
            action_mean_predicted: pred_mean,
            action_std_predicted: pred_std,
            mu_squared_predicted,
            relaxation,
        };
        let base = array_prefix(&label);
        let arrays = ctx.out_dir.join("arrays");
        npy::write(
            &arrays.join(format!("{base}.model_covariance.npy")),
            &model_cov,
        )?;
        npy::write(
            &arrays.join(format!("{base}.sample_covariance.npy")),
            &sample_cov,
        )?;
        npy::write(&arrays.join(format!("{base}.action_density.npy")), &s)?;
        write_json(&ctx.out_dir.join("evaluation.json"), &evaluation)
    }
}

/// Updates per e-fold of x ↦ (1 − αγ)x, the linearised discrete update of a mode with rate γ.
fn discrete_relaxation_time(alpha_gamma: f64) -> Option<f64> {
    let factor = (1.0 - alpha_gamma).abs();
    (factor < 1.0).then(|| {
        if factor == 0.0 {
            0.0
        } else {
            -1.0 / factor.ln()
        }
    })
}

/// File-name prefix of this stage's arrays, `evaluate.<slug>`.
fn array_prefix(label: &str) -> String {
    format!("evaluate.{}", slug(label))
}

/// What [`EvaluateStage`] wrote, read back.
pub struct EvaluateOutput {
    pub evaluation: Evaluation,
    pub model_covariance: Array2<f64>,
    pub sample_covariance: Array2<f64>,
    pub action_density: Array1<f64>,
}

pub fn load(dir: &std::path::Path, label: &str) -> Result<EvaluateOutput> {
    let base = array_prefix(label);
    let arrays = dir.join("arrays");
    Ok(EvaluateOutput {
        evaluation: read_json(&dir.join("evaluation.json"))?,
        model_covariance: npy::read(&arrays.join(format!("{base}.model_covariance.npy")))?,
        sample_covariance: npy::read(&arrays.join(format!("{base}.sample_covariance.npy")))?,
        action_density: npy::read(&arrays.join(format!("{base}.action_density.npy")))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::lattice::{free_field_kernel, free_field_spectrum};

    /// The discrete relaxation time is the decay of |1 − αγ|ⁿ: it matches the continuous 1/(αγ)
    /// for small steps, shrinks to zero at αγ = 1, grows again while the update overshoots, and
    /// does not exist from αγ = 2 on (regression: it was written as NaN, i.e. JSON null, which
    /// the emit stage could not read — rbm-scalar with target.mass_squared = 1.5).
    #[test]
    fn discrete_relaxation_time_follows_the_update_factor() {
        let small = discrete_relaxation_time(1e-4).unwrap();
        assert!((small * 1e-4 - 1.0).abs() < 1e-4);
        assert_eq!(discrete_relaxation_time(1.0), Some(0.0));
        let over = discrete_relaxation_time(1.5).unwrap();
        assert!((over - 1.0 / 2f64.ln()).abs() < 1e-12);
        assert_eq!(discrete_relaxation_time(2.0), None);
        assert_eq!(discrete_relaxation_time(3.0), None);
    }

    /// The predicted spectrum of a regulated model reproduces its defining cases.
    #[test]
    fn predicted_spectrum_cuts_by_hidden_units_and_by_mass() {
        let kappa = free_field_spectrum(10, 4.0).to_vec();
        let by_hidden = predicted_spectrum(&kappa, 4, 9.0);
        assert_eq!(&by_hidden[..4], &kappa[..4]);
        assert!(by_hidden[4..].iter().all(|&l| l == 9.0));
        let by_mass = predicted_spectrum(&kappa, 10, 5.0);
        for (l, k) in by_mass.iter().zip(&kappa) {
            assert_eq!(*l, k.min(5.0));
        }
    }

    /// With nothing cut off, the predicted covariance is the target's.
    #[test]
    fn unregulated_prediction_is_the_target_covariance() {
        let k = free_field_kernel(10, 4.0);
        let eig = crate::linalg::symmetric_eigen(k.view()).unwrap();
        let kappa = eig.values.to_vec();
        let c = covariance_from_spectrum(&eig.vectors, &predicted_spectrum(&kappa, 10, 9.0));
        let (target, _) = crate::linalg::spd_inverse_and_log_det(k.view()).unwrap();
        approx::assert_abs_diff_eq!(c, target, epsilon = 1e-12);
    }
}
