//! Fit stage `fit[estimator=<e>,learning_rate=<α>,batch=<|B|>]`: the role of stochasticity.
//! Each replica starts at an exact minimum (a seeded Haar point of the orbit), runs plain SGD
//! with the estimator's noisy gradient for a burn-in of several slowest relaxation times, then
//! records W every `record_every` updates. From the snapshots it measures
//!
//! - the orbit diffusion: the mean squared Procrustes angle MSA(ℓ) = ⟨½‖log R(t, t+ℓ)‖²⟩ over
//!   time origins, on a log grid of lags, and its slope per update with an intercept, fitted per
//!   replica over the lags where it is linear (beyond one slowest relaxation time for the
//!   estimators whose single step is orthogonal to the orbit, where rotation is the area swept
//!   by correlated stretches; from the first lag for those with tangent noise) and below
//!   `max_msa`; the slope's error is the spread over independent replicas;
//! - the stationary noise of K in the target's eigenbasis: v_aᵀKv_a per non-degenerate mode
//!   and the level spacing of each ± pair's 2 × 2 block (no sorting across levels, so a level's
//!   neighbours cannot leak into it), per replica, for jackknife errors over replicas;
//! - the smallest singular value of W over the run, the witness of the small-noise regime.
//!
//! Comparing the polar factors of W(t) and W(t+ℓ) instead would be wrong: W = S·Q with
//! S = (WWᵀ)^½, and a step orthogonal to the orbit (one that only changes K) still changes Q,
//! since the polar coordinates are not orthogonal in the Frobenius metric; the Procrustes
//! rotation removes exactly the orbit motion (one step (1 + αG)W with G symmetric gives R = 1).
//!
//! Output: the private `diffusion.json` ([`DiffusionRun`]).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::fit::target_moments;
use crate::analysis::stats::{least_squares_line, mean_and_standard_error};
use crate::error::{Error, Result};
use crate::fsutil::{read_json, write_json};
use crate::linalg::symmetric_eigenvalues;
use crate::models::rbm::GaussianRbm;
use crate::models::rbm::hessian::{FixedPointLayout, haar_orthogonal};
use crate::models::rbm::orbit::{
    NoiseSource, Walker, kernel_noise_variance, learned_xi_squared, mean_squared_angle,
    rate_exponents, slowest_kernel_rate, tangent_rate,
};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageKind};
use crate::seed::rng_for;
use crate::spec::goldstone_modes::{Estimator, Target};

/// Spacing samples kept per pair and replica for the histogram (every k-th snapshot).
const SPACING_SAMPLES: usize = 500;
/// Time origins per lag in the MSA, at most.
const MAX_ORIGINS: usize = 400;

/// A level of the target spectrum: κ and the indices of its modes (one or a ± pair).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Level {
    pub kappa: f64,
    pub modes: Vec<usize>,
}

/// The levels of an ascending spectrum, equal κ (to 1e-9 relative) grouped.
pub fn levels(kappa: &[f64]) -> Vec<Level> {
    let mut out: Vec<Level> = Vec::new();
    for (a, &k) in kappa.iter().enumerate() {
        match out.last_mut() {
            Some(level) if (level.kappa - k).abs() <= 1e-9 * k.abs() => level.modes.push(a),
            _ => out.push(Level {
                kappa: k,
                modes: vec![a],
            }),
        }
    }
    out
}

/// The kernel's stationary noise in one level, per replica.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LevelNoise {
    pub kappa: f64,
    pub dimension: usize,
    /// Per replica: the mean and mean square of v_aᵀKv_a (one mode) or of the pair's spacing.
    pub mean: Vec<f64>,
    pub mean_square: Vec<f64>,
    /// Var(v_aᵀKv_a) predicted by the linearised update ([`kernel_noise_variance`]).
    pub predicted_variance: f64,
    /// Spacings of a pair, pooled over replicas (subsampled), for the Wigner comparison.
    pub spacings: Vec<f64>,
}

/// The fitted orbit diffusion rate.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RateFit {
    pub rate: f64,
    pub rate_error: f64,
    pub intercept: f64,
    pub intercept_error: f64,
    pub first_lag: usize,
    pub last_lag: usize,
    pub lags: usize,
}

/// Everything one setting measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DiffusionRun {
    pub estimator: Estimator,
    pub learning_rate: f64,
    pub batch: usize,
    pub replicas: usize,
    pub burn_in_updates: usize,
    pub updates: usize,
    /// Lags of the MSA curve, in updates.
    pub lags: Vec<usize>,
    /// replicas × lags, NaN beyond the lag where a rotation angle passed π.
    pub msa: Vec<Vec<f64>>,
    pub fit: RateFit,
    /// First-order prediction of the rate (estimators with tangent noise only).
    pub predicted_rate: Option<f64>,
    pub predicted_exponents: (f64, f64),
    /// Smallest singular value of W over each replica's recorded updates.
    pub smallest_singular_value: Vec<f64>,
    pub levels: Vec<LevelNoise>,
    pub seconds: f64,
}

#[derive(Serialize, serde::Deserialize)]
pub struct DiffuseStage {
    pub target: Target,
    pub n_hidden: usize,
    pub mu_squared: f64,
    pub estimator: Estimator,
    pub source_scale: f64,
    pub learning_rate: f64,
    pub batch: usize,
    pub replicas: usize,
    pub burn_in: f64,
    pub updates: usize,
    pub record_every: usize,
    pub max_msa: f64,
    pub seed: u64,
}

impl DiffuseStage {
    pub fn label(estimator: Estimator, learning_rate: f64, batch: usize) -> String {
        format!("estimator={estimator},learning_rate={learning_rate},batch={batch}")
    }

    fn source(&self) -> NoiseSource {
        self.estimator.source(self.source_scale)
    }

    /// 1/(α·γ_min): the slowest kernel relaxation, in updates.
    fn slowest_relaxation(&self, kappa: &[f64]) -> f64 {
        let gamma_min =
            slowest_kernel_rate(kappa, self.mu_squared, self.target.sigma_h, self.n_hidden);
        1.0 / (self.learning_rate * gamma_min)
    }
}

/// Log-spaced lags 1, 2, 5, 10, 20, 50, … (in snapshots) up to half the snapshots.
fn lag_grid(snapshots: usize) -> Vec<usize> {
    let mut lags = Vec::new();
    let mut decade = 1;
    'grid: loop {
        for m in [1, 2, 5] {
            let lag = m * decade;
            if lag > snapshots / 2 {
                break 'grid;
            }
            lags.push(lag);
        }
        decade *= 10;
    }
    lags
}

impl Stage for DiffuseStage {
    const KIND: StageKind = StageKind::Fit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("goldstone-modes/diffuse")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let clock = Instant::now();
        let label = Self::label(self.estimator, self.learning_rate, self.batch);
        let (covariance, kappa, modes) = target_moments(&self.target)?;
        let sigma_h = self.target.sigma_h;
        let layout =
            FixedPointLayout::stable(&kappa, self.n_hidden, self.mu_squared, sigma_h, false);
        let relaxation = self.slowest_relaxation(&kappa);
        let burn_in_updates = (self.burn_in * relaxation).ceil() as usize;
        let snapshots_per_replica = self.updates / self.record_every;
        let lags = lag_grid(snapshots_per_replica);
        let spacing_stride = (snapshots_per_replica / SPACING_SAMPLES).max(1);
        let all_levels = levels(&kappa);
        let s2 = sigma_h * sigma_h;
        // Single modes and ± pairs whose every mode is learned.
        let kept: Vec<&Level> = all_levels
            .iter()
            .filter(|l| l.modes.len() <= 2 && l.modes.iter().all(|&a| a < self.n_hidden))
            .collect();
        let mut noise: Vec<LevelNoise> = kept
            .iter()
            .map(|l| LevelNoise {
                kappa: l.kappa,
                dimension: l.modes.len(),
                predicted_variance: kernel_noise_variance(
                    self.source(),
                    l.kappa,
                    self.mu_squared,
                    sigma_h,
                    self.learning_rate,
                    self.batch,
                ),
                ..Default::default()
            })
            .collect();

        let mut msa = Vec::with_capacity(self.replicas);
        let mut smallest = Vec::with_capacity(self.replicas);
        let total_updates = (burn_in_updates + self.updates) * self.replicas;
        ctx.progress.set_length(total_updates as u64);
        for replica in 0..self.replicas {
            let mut rng = rng_for(self.seed, &format!("diffuse/{label}/replica={replica}"));
            let rotation = haar_orthogonal(self.n_hidden, &mut rng);
            let (weights, _) = layout.weights(modes.view(), rotation.view(), 0.0)?;
            let model = GaussianRbm {
                weights,
                mu: self.mu_squared.sqrt(),
                sigma_h,
            };
            let mut walker = Walker::new(
                model,
                self.source(),
                self.batch,
                self.learning_rate,
                &mut rng,
            )?;
            let done = replica * (burn_in_updates + self.updates);
            for update in 1..=burn_in_updates {
                walker
                    .step(covariance.view(), update, &mut rng)
                    .map_err(|e| in_replica(e, &label, replica))?;
                if update % 4096 == 0 {
                    ctx.progress.set_position((done + update) as u64);
                }
            }
            let mut snapshots = Vec::with_capacity(snapshots_per_replica);
            let mut sums = vec![(0.0, 0.0); kept.len()];
            let mut least = f64::INFINITY;
            for update in 1..=self.updates {
                walker
                    .step(covariance.view(), burn_in_updates + update, &mut rng)
                    .map_err(|e| in_replica(e, &label, replica))?;
                if update % 4096 == 0 {
                    ctx.progress
                        .set_position((done + burn_in_updates + update) as u64);
                }
                if update % self.record_every != 0 {
                    continue;
                }
                let w = &walker.model.weights;
                let gram = w.t().dot(w);
                let lowest = symmetric_eigenvalues(gram.view())?[0].max(0.0).sqrt();
                least = least.min(lowest);
                // The kernel in the target's eigenbasis, only the entries the levels need:
                // (VᵀKV)_ab = μ²δ_ab − σ²(Vᵀw)_a·(Vᵀw)_b.
                let projected = modes.t().dot(w);
                let entry = |a: usize, b: usize| {
                    let k = -s2 * projected.row(a).dot(&projected.row(b));
                    if a == b { k + self.mu_squared } else { k }
                };
                let index = snapshots.len();
                for (slot, level) in kept.iter().enumerate() {
                    let value = match level.modes[..] {
                        [a] => entry(a, a),
                        [a, b] => {
                            ((entry(a, a) - entry(b, b)).powi(2) + 4.0 * entry(a, b).powi(2)).sqrt()
                        }
                        _ => unreachable!("levels of one or two modes only"),
                    };
                    sums[slot].0 += value;
                    sums[slot].1 += value * value;
                    if level.modes.len() == 2 && index % spacing_stride == 0 {
                        noise[slot].spacings.push(value);
                    }
                }
                snapshots.push(w.clone());
            }
            let n = snapshots.len() as f64;
            for (slot, (sum, sum_sq)) in sums.iter().enumerate() {
                noise[slot].mean.push(sum / n);
                noise[slot].mean_square.push(sum_sq / n);
            }
            smallest.push(least);
            msa.push(mean_squared_angle(&snapshots, &lags, 4, MAX_ORIGINS)?.to_vec());
        }

        let lags_updates: Vec<usize> = lags.iter().map(|l| l * self.record_every).collect();
        let first_lag = if self.source().step_is_orthogonal() {
            relaxation
        } else {
            0.0
        };
        let fit = fit_rate(&lags_updates, &msa, first_lag, self.max_msa).ok_or_else(|| {
            Error::Other(format!(
                "{label}: fewer than three lags between {first_lag:.0} updates and MSA = {} \
                 (record W more often with diffusion.record_every, or lower the learning rate)",
                self.max_msa
            ))
        })?;
        let xi2 = learned_xi_squared(&kappa, self.mu_squared, sigma_h, self.n_hidden);
        let run = DiffusionRun {
            estimator: self.estimator,
            learning_rate: self.learning_rate,
            batch: self.batch,
            replicas: self.replicas,
            burn_in_updates,
            updates: self.updates,
            lags: lags_updates,
            msa,
            fit,
            predicted_rate: tangent_rate(
                self.source(),
                &xi2,
                &kappa,
                sigma_h,
                self.learning_rate,
                self.batch,
            ),
            predicted_exponents: rate_exponents(self.source()),
            smallest_singular_value: smallest,
            levels: noise,
            seconds: clock.elapsed().as_secs_f64(),
        };
        write_json(&ctx.out_dir.join("diffusion.json"), &run)
    }
}

fn in_replica(error: Error, label: &str, replica: usize) -> Error {
    match error {
        Error::Numerical { what, update } => Error::Numerical {
            what: format!("{label}, replica {replica}: {what}"),
            update,
        },
        other => other,
    }
}

/// The slope of MSA against lag, fitted per replica over the lags from `first_lag` on where the
/// replica-mean MSA stays at most `max_msa`; mean and standard error over replicas. `None` with
/// fewer than three such lags.
pub fn fit_rate(lags: &[usize], msa: &[Vec<f64>], first_lag: f64, max_msa: f64) -> Option<RateFit> {
    let replicas = msa.len();
    let mean: Vec<f64> = (0..lags.len())
        .map(|k| msa.iter().map(|m| m[k]).sum::<f64>() / replicas as f64)
        .collect();
    let window: Vec<usize> = (0..lags.len())
        .filter(|&k| lags[k] as f64 >= first_lag && mean[k].is_finite() && mean[k] <= max_msa)
        .collect();
    if window.len() < 3 {
        return None;
    }
    let x: Vec<f64> = window.iter().map(|&k| lags[k] as f64).collect();
    let (slopes, intercepts): (Vec<f64>, Vec<f64>) = msa
        .iter()
        .map(|m| {
            let y: Vec<f64> = window.iter().map(|&k| m[k]).collect();
            least_squares_line(&x, &y)
        })
        .unzip();
    let (rate, rate_error) = mean_and_standard_error(&slopes);
    let (intercept, intercept_error) = mean_and_standard_error(&intercepts);
    Some(RateFit {
        rate,
        rate_error,
        intercept,
        intercept_error,
        first_lag: lags[window[0]],
        last_lag: lags[window[window.len() - 1]],
        lags: window.len(),
    })
}

/// Reads what [`DiffuseStage`] wrote.
pub fn load(dir: &std::path::Path) -> Result<DiffusionRun> {
    read_json(&dir.join("diffusion.json"))
}

/// The replica-mean MSA and its standard error at each lag (NaN where any replica is).
pub fn mean_curve(run: &DiffusionRun) -> Vec<(f64, f64)> {
    (0..run.lags.len())
        .map(|k| mean_and_standard_error(&run.msa.iter().map(|m| m[k]).collect::<Vec<_>>()))
        .collect()
}
