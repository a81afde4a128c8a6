//! Fit stages. `fit[n_hidden=N]`: the Gaussian RBM with N hidden units fitted to the training
//! correlation matrix from the authors' random start, μ and σ_h fixed — by maximum likelihood
//! ([`crate::models::rbm::ppca::fit_ml`]) or, on request, by the authors' gradient training for
//! a fixed number of updates. `fit[relaxation,learning_rate=α]`: plain
//! exact-gradient ascent (the dynamics of the paper's training) from the fitted model with every
//! kernel eigenvalue on the span of W raised from λ_a to f·λ_a, following ξ_a² along chosen
//! data modes back to the fixed point. The perturbation is set in λ because the flow is linear
//! only for |λ_a − κ_a| ≲ κ_a: a start at a fraction of ξ_a*² instead spends almost all its time
//! in the nonlinear growth dx/dt ≈ 2σ²c_a x, which says nothing about the relaxation rate.
//!
//! Outputs: `arrays/fit.<slug>.weights.npy` (N_v × N_h) and `.log_likelihood.npy` (start and
//! every accepted iterate) with `fit.json`; for relaxation runs `arrays/fit.<slug>.updates.npy`
//! and `.xi_squared.npy` (records × modes, σ_h² ξ_a² = μ² − u_aᵀKu_a along data eigenvector u_a).

use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use super::{preprocess, spectrum};
use crate::emit::npy;
use crate::emit::slug;
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::models::rbm::GaussianRbm;
use crate::models::rbm::ppca::{MlOptions, MlTrace, fit_ml};
use crate::models::rbm::train::{NegativePhase, TrainOptions, Trajectory, train};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::seed::rng_for;
use crate::spec::rbm_mnist::{FitMethod, FitSettings, RelaxationSettings};

/// Path prefix of an instance's arrays.
pub fn prefix(label: &str) -> String {
    format!("fit.{}", slug(label))
}

/// Label of the fit with `n_hidden` hidden units; `extra_ml` marks the maximum-likelihood fit
/// added as the start of the relaxation runs when the swept fits use another method.
pub fn fit_label(n_hidden: usize, extra_ml: bool) -> String {
    if extra_ml {
        format!("n_hidden={n_hidden},method=ml")
    } else {
        format!("n_hidden={n_hidden}")
    }
}

/// Label of the relaxation run at `learning_rate`.
pub fn relaxation_label(learning_rate: f64) -> String {
    format!("relaxation,learning_rate={learning_rate:e}")
}

/// How a maximum-likelihood fit ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FitReport {
    pub n_hidden: usize,
    pub iterations: usize,
    pub rejected: usize,
    pub converged: bool,
    pub log_likelihood: f64,
    /// Whether the iteration limit was reached (otherwise the fit converged or stalled).
    pub hit_limit: bool,
}

impl FitReport {
    /// `converged`, `stalled` or `iteration limit` (always the last for gradient training).
    pub fn status(&self) -> String {
        match (self.converged, self.hit_limit) {
            (true, _) => "converged",
            (false, true) => "iteration limit",
            (false, false) => "stalled",
        }
        .into()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct FitStage {
    pub label: String,
    pub n_hidden: usize,
    pub mu_squared: f64,
    pub sigma_h: f64,
    pub settings: FitSettings,
    pub preprocess: StageHandle,
    pub seed: u64,
}

impl Stage for FitStage {
    const KIND: StageKind = StageKind::Fit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-mnist/fit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let correlation = preprocess::load_correlation(ctx.upstream(&self.preprocess)?)?;
        let label = &self.label;
        let mut rng = rng_for(self.seed, &format!("fit[{label}]"));
        let mut model = GaussianRbm::random(
            correlation.nrows(),
            self.n_hidden,
            self.mu_squared.sqrt(),
            self.sigma_h,
            self.settings.init_scale,
            &mut rng,
        );
        let trace = match &self.settings.method {
            FitMethod::Ml => {
                let options = MlOptions {
                    step: self.settings.step,
                    max_iterations: self.settings.max_iterations,
                    tolerance: self.settings.tolerance,
                };
                ctx.progress.set_length(options.max_iterations as u64);
                fit_ml(&mut model, correlation.view(), &options, &mut |i| {
                    ctx.progress.set_position(i as u64);
                })?
            }
            FitMethod::Gradient {
                learning_rate,
                momentum,
                updates,
                negative_phase,
            } => {
                let mut options = TrainOptions::plain(*learning_rate, *updates, *negative_phase);
                options.momentum = *momentum;
                options.kernel_spectrum = false;
                train_with_progress(&mut model, &correlation, &options, &mut rng, ctx)?;
                // The authors' schedule stops after a fixed number of updates: not a convergence.
                MlTrace {
                    log_likelihood: vec![model.log_likelihood(correlation.view())?],
                    rejected: 0,
                    converged: false,
                }
            }
        };
        let arrays = ctx.out_dir.join("arrays");
        let name = |what: &str| arrays.join(format!("{}.{what}.npy", prefix(label)));
        npy::write(&name("weights"), &model.weights)?;
        npy::write(
            &name("log_likelihood"),
            &Array1::from(trace.log_likelihood.clone()),
        )?;
        write_json(
            &ctx.out_dir.join("fit.json"),
            &FitReport {
                n_hidden: self.n_hidden,
                iterations: trace.log_likelihood.len() - 1,
                rejected: trace.rejected,
                converged: trace.converged,
                log_likelihood: trace.log_likelihood.last().copied().unwrap_or(f64::NAN),
                hit_limit: match self.settings.method {
                    FitMethod::Ml => {
                        !trace.converged
                            && trace.log_likelihood.len() > self.settings.max_iterations
                    }
                    FitMethod::Gradient { .. } => true,
                },
            },
        )
    }
}

/// Gradient training of `model` on the correlation matrix, reported on the stage's progress bar.
fn train_with_progress(
    model: &mut GaussianRbm,
    correlation: &Array2<f64>,
    options: &TrainOptions,
    rng: &mut rand_chacha::ChaCha8Rng,
    ctx: &StageContext<'_>,
) -> Result<Trajectory> {
    ctx.progress.set_length(options.updates as u64);
    train(model, correlation.view(), options, rng, &mut |u| {
        ctx.progress.set_position(u as u64)
    })
}

/// Reads the fitted model and report of the fit labelled `label`.
pub fn load_fit(
    dir: &std::path::Path,
    label: &str,
    mu_squared: f64,
    sigma_h: f64,
) -> Result<(GaussianRbm, FitReport)> {
    let weights: Array2<f64> = npy::read(
        &dir.join("arrays")
            .join(format!("{}.weights.npy", prefix(label))),
    )?;
    Ok((
        GaussianRbm {
            weights,
            mu: mu_squared.sqrt(),
            sigma_h,
        },
        read_json(&dir.join("fit.json"))?,
    ))
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct RelaxationStage {
    pub learning_rate: f64,
    pub settings: RelaxationSettings,
    pub mu_squared: f64,
    pub sigma_h: f64,
    pub preprocess: StageHandle,
    pub spectrum: StageHandle,
    pub fit: StageHandle,
    pub fit_label: String,
}

impl Stage for RelaxationStage {
    const KIND: StageKind = StageKind::Fit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-mnist/relaxation")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let s = &self.settings;
        let correlation = preprocess::load_correlation(ctx.upstream(&self.preprocess)?)?;
        let vectors = spectrum::load_vectors(ctx.upstream(&self.spectrum)?)?;
        let (mut model, _) = load_fit(
            ctx.upstream(&self.fit)?,
            &self.fit_label,
            self.mu_squared,
            self.sigma_h,
        )?;
        model.weights = perturbed_weights(&model, s.start_kernel_factor)?;
        let basis = vectors.select(Axis(1), &s.modes);
        let mut options = TrainOptions::plain(self.learning_rate, s.updates, NegativePhase::Exact);
        options.record_every = s.record_every;
        options.projection_basis = Some(basis);
        options.kernel_spectrum = false;
        let label = relaxation_label(self.learning_rate);
        // Exact gradients draw no random numbers; the generator only satisfies the interface.
        let mut rng = rng_for(0, &label);
        let trajectory = train_with_progress(&mut model, &correlation, &options, &mut rng, ctx)?;
        let projected = Trajectory::stack(&trajectory.projected);
        let xi_squared = projected.mapv(|k| self.mu_squared - k);
        let arrays = ctx.out_dir.join("arrays");
        let name = |what: &str| arrays.join(format!("{}.{what}.npy", prefix(&label)));
        npy::write(
            &name("updates"),
            &Array1::from_iter(trajectory.updates.iter().map(|&u| u as f64)),
        )?;
        npy::write(&name("xi_squared"), &xi_squared)
    }
}

/// W with every nonzero σ²ξ_a² = x_a moved to μ² − f(μ² − x_a) (λ_a → fλ_a), clamped at 0,
/// keeping the singular vectors.
fn perturbed_weights(model: &GaussianRbm, factor: f64) -> Result<Array2<f64>> {
    let s2 = model.sigma_h * model.sigma_h;
    let mu2 = model.mu_squared();
    let gram = model.weights.t().dot(&model.weights);
    let eig = crate::linalg::symmetric_eigen(gram.view())?;
    let scale = eig.values.mapv(|g| {
        let x = s2 * g;
        if x <= 0.0 {
            1.0
        } else {
            ((mu2 - factor * (mu2 - x)).max(0.0) / x).sqrt()
        }
    });
    Ok(model
        .weights
        .dot(&(&eig.vectors * &scale).dot(&eig.vectors.t())))
}

/// Reads a relaxation run: update numbers and σ_h² ξ_a² (records × modes).
pub fn load_relaxation(
    dir: &std::path::Path,
    learning_rate: f64,
) -> Result<(Array1<f64>, Array2<f64>)> {
    let label = relaxation_label(learning_rate);
    let arrays = dir.join("arrays");
    let name = |what: &str| arrays.join(format!("{}.{what}.npy", prefix(&label)));
    Ok((
        npy::read(&name("updates"))?,
        npy::read(&name("xi_squared"))?,
    ))
}
