//! Evaluate stages. `evaluate[reconstruction]` checks every fitted model against its analytic
//! fixed point — a Gaussian RBM keeps the N_h largest data variances above 1/μ², i.e. it is PCA
//! with a UV cutoff — and regenerates the test digits. `evaluate[relaxation]` fits relaxation
//! times to the gradient-ascent runs and sets them against the linearised flow.
//!
//! Reconstruction errors are per-pixel mean squared errors of linear maps R (a projector, or the
//! mean of k Gibbs sweeps, E[φ_k | φ_0] = T^k φ_0 with T = σ_h² WWᵀ/μ²), computed exactly as
//! Tr((1 − R) C (1 − R)ᵀ) / N_v against the training or the test correlation matrix. The
//! analytic fixed point has T = Σ_a (1 − 1/(μ² c_a)) u_a u_aᵀ over the kept modes.

use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use serde::{Deserialize, Serialize};

use super::fit::{fit_label, load_fit, load_relaxation};
use super::{preprocess, spectrum};
use crate::analysis::relaxation::fit_relaxation;
use crate::emit::npy;
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::linalg::symmetric_eigen;
use crate::models::rbm::GaussianRbm;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::seed::rng_for;
use crate::spec::rbm_mnist::RelaxationSettings;

/// A mode counts as learned when σ_h² ξ_a² exceeds this fraction of μ² (its model variance is
/// then above the cutoff 1/μ² by more than 0.1 %).
pub const LEARNED_FRACTION: f64 = 1e-3;

/// Per-pixel reconstruction errors on one image set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Errors {
    /// Projection onto the top-q data eigenvectors, q = the number of learned modes.
    pub pca: f64,
    /// Projection onto the span of the learned directions of W.
    pub rbm_span: f64,
    /// Mean of k Gibbs sweeps of the fitted model.
    pub rbm_gibbs_mean: f64,
    /// Mean of k Gibbs sweeps of the analytic fixed point.
    pub fixed_point_gibbs_mean: f64,
}

/// The fixed-point check of one fitted model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReconstructionRow {
    pub n_hidden: usize,
    /// Data modes with variance above 1/μ².
    pub learnable: usize,
    /// Modes the analytic fixed point learns (by the same criterion as `learned`).
    pub predicted_learned: usize,
    pub learned: usize,
    /// ‖U_qᵀ V‖_F² / q between the top-q data eigenvectors and the learned directions.
    pub subspace_overlap: f64,
    pub fit_log_likelihood: f64,
    pub fixed_point_log_likelihood: f64,
    pub fit_iterations: usize,
    /// `converged`, `stalled` (no step raised the likelihood beyond rounding) or
    /// `iteration limit`.
    pub fit_status: String,
    pub train: Errors,
    pub test: Errors,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct ReconstructionStage {
    pub n_hidden: Vec<usize>,
    pub mu_squared: f64,
    pub sigma_h: f64,
    pub gibbs_steps: usize,
    pub centred: bool,
    pub preprocess: StageHandle,
    pub spectrum: StageHandle,
    /// Upstream fit instance id for each entry of `n_hidden`.
    pub fits: Vec<StageHandle>,
    pub seed: u64,
}

/// Array path of one N_h's output `what`.
pub fn array_name(n_hidden: usize, what: &str) -> String {
    format!("evaluate.n_hidden-{n_hidden}.{what}.npy")
}

/// Tr((1 − R) C (1 − R)ᵀ) / N_v.
fn reconstruction_error(map: ArrayView2<'_, f64>, cov: ArrayView2<'_, f64>) -> f64 {
    let mut residual = -&map;
    residual.diag_mut().mapv_inplace(|v| v + 1.0);
    (&residual.dot(&cov) * &residual).sum() / cov.nrows() as f64
}

/// Σ_a f(t_a) v_a v_aᵀ for eigenpairs (t_a, v_a).
fn spectral_map(
    values: &Array1<f64>,
    vectors: &Array2<f64>,
    f: impl Fn(f64) -> f64,
) -> Array2<f64> {
    (vectors * &values.mapv(f)).dot(&vectors.t())
}

impl ReconstructionStage {
    fn errors(&self, cov: ArrayView2<'_, f64>, maps: [&Array2<f64>; 4]) -> Errors {
        Errors {
            pca: reconstruction_error(maps[0].view(), cov),
            rbm_span: reconstruction_error(maps[1].view(), cov),
            rbm_gibbs_mean: reconstruction_error(maps[2].view(), cov),
            fixed_point_gibbs_mean: reconstruction_error(maps[3].view(), cov),
        }
    }

    /// The analytic fixed point with `n_hidden` units: W* = Σ_a u_a σ_h⁻¹ √(μ² − 1/c_a) e_aᵀ over
    /// the min(N_h, learnable) largest variances.
    fn fixed_point(
        &self,
        variances: &Array1<f64>,
        vectors: &Array2<f64>,
        n_hidden: usize,
    ) -> GaussianRbm {
        let cutoff = 1.0 / self.mu_squared;
        let mut weights = Array2::zeros((vectors.nrows(), n_hidden));
        for a in 0..n_hidden.min(variances.len()) {
            let c = variances[a];
            if c > cutoff {
                let xi = (self.mu_squared - 1.0 / c).sqrt() / self.sigma_h;
                weights.column_mut(a).assign(&(&vectors.column(a) * xi));
            }
        }
        GaussianRbm {
            weights,
            mu: self.mu_squared.sqrt(),
            sigma_h: self.sigma_h,
        }
    }
}

impl Stage for ReconstructionStage {
    const KIND: StageKind = StageKind::Evaluate;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-mnist/reconstruction")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let pre = ctx.upstream(&self.preprocess)?;
        let train_cov = preprocess::load_correlation(pre)?;
        let (test_cov, digits) = preprocess::load_test(pre)?;
        let mean: Array1<f64> = npy::read(&pre.join("arrays").join("mnist.pixel_mean.npy"))?;
        let (variances, _) = spectrum::load(ctx.upstream(&self.spectrum)?)?;
        let vectors = spectrum::load_vectors(ctx.upstream(&self.spectrum)?)?;
        let n_visible = train_cov.nrows();
        let learnable = variances
            .iter()
            .filter(|&&c| c > 1.0 / self.mu_squared)
            .count();
        let k = self.gibbs_steps as i32;
        let arrays = ctx.out_dir.join("arrays");
        ctx.progress.set_length(self.n_hidden.len() as u64);
        let mut rows = Vec::new();
        for (index, (&n_hidden, fit_id)) in self.n_hidden.iter().zip(&self.fits).enumerate() {
            let (model, report) = load_fit(
                ctx.upstream(fit_id)?,
                &fit_label(n_hidden, false),
                self.mu_squared,
                self.sigma_h,
            )?;
            let sweep = symmetric_eigen(model.sweep_mean_map().view())?;
            let learned_mask = sweep
                .values
                .mapv(|t| if t > LEARNED_FRACTION { 1.0 } else { 0.0 });
            let learned = learned_mask.sum() as usize;
            let span = spectral_map(&learned_mask, &sweep.vectors, |m| m);
            let gibbs = spectral_map(&sweep.values, &sweep.vectors, |t| t.powi(k));

            let fixed = self.fixed_point(&variances, &vectors, n_hidden);
            let fixed_sweep: Array1<f64> = (0..n_visible)
                .map(|a| {
                    let c = variances[a];
                    if a < n_hidden && c > 1.0 / self.mu_squared {
                        1.0 - 1.0 / (self.mu_squared * c)
                    } else {
                        0.0
                    }
                })
                .collect();
            let predicted_learned = fixed_sweep
                .iter()
                .filter(|&&t| t > LEARNED_FRACTION)
                .count();
            let fixed_gibbs = spectral_map(&fixed_sweep, &vectors, |t| t.powi(k));
            let pca_mask: Array1<f64> = (0..n_visible)
                .map(|a| if a < learned { 1.0 } else { 0.0 })
                .collect();
            let pca = spectral_map(&pca_mask, &vectors, |m| m);

            let top = vectors.slice(s![.., ..learned]);
            let learned_vectors = sweep.vectors.slice(s![.., n_visible - learned..]);
            let overlap = if learned == 0 {
                0.0
            } else {
                top.t().dot(&learned_vectors).mapv(|x| x * x).sum() / learned as f64
            };

            let maps = [&pca, &span, &gibbs, &fixed_gibbs];
            let mut model_variances: Vec<f64> = sweep
                .values
                .iter()
                .map(|&t| 1.0 / (self.mu_squared * (1.0 - t)))
                .collect();
            model_variances.sort_by(|a, b| b.total_cmp(a));
            npy::write(
                &arrays.join(array_name(n_hidden, "model_variances")),
                &Array1::from(model_variances),
            )?;

            // Regeneration: k Gibbs sweeps from each test digit (centred data are shifted by the
            // training mean and shifted back for display).
            let mut chains = digits.clone();
            if self.centred {
                chains -= &mean.view().insert_axis(Axis(0));
            }
            let gibbs_mean = chains.dot(&gibbs);
            let mut rng = rng_for(self.seed, &format!("regeneration/n_hidden={n_hidden}"));
            for _ in 0..self.gibbs_steps {
                model.gibbs_sweep(&mut chains, &mut rng);
            }
            let (mut regenerated, mut mean_map) = (chains, gibbs_mean);
            if self.centred {
                regenerated += &mean.view().insert_axis(Axis(0));
                mean_map += &mean.view().insert_axis(Axis(0));
            }
            npy::write(
                &arrays.join(array_name(n_hidden, "regenerated")),
                &regenerated,
            )?;
            npy::write(&arrays.join(array_name(n_hidden, "gibbs_mean")), &mean_map)?;

            rows.push(ReconstructionRow {
                n_hidden,
                learnable,
                predicted_learned,
                learned,
                subspace_overlap: overlap,
                fit_log_likelihood: report.log_likelihood,
                fixed_point_log_likelihood: fixed.log_likelihood(train_cov.view())?,
                fit_iterations: report.iterations,
                fit_status: report.status(),
                train: self.errors(train_cov.view(), maps),
                test: self.errors(test_cov.view(), maps),
            });
            ctx.progress.set_position(index as u64 + 1);
        }
        npy::write(&arrays.join("evaluate.test_digits.npy"), &digits)?;
        write_json(&ctx.out_dir.join("reconstruction.json"), &rows)
    }
}

/// Reads what [`ReconstructionStage`] wrote: the rows and, per N_h, an array by name.
pub fn load_reconstruction(dir: &std::path::Path) -> Result<Vec<ReconstructionRow>> {
    read_json(&dir.join("reconstruction.json"))
}

/// Reads one array written by [`ReconstructionStage`].
pub fn load_array<D: ndarray::Dimension>(
    dir: &std::path::Path,
    n_hidden: Option<usize>,
    what: &str,
) -> Result<ndarray::Array<f64, D>> {
    let name = match n_hidden {
        Some(n) => array_name(n, what),
        None => format!("evaluate.{what}.npy"),
    };
    npy::read(&dir.join("arrays").join(name))
}

/// A fitted relaxation time against the linearised flow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RelaxationRow {
    pub learning_rate: f64,
    pub mode: usize,
    pub data_variance: f64,
    /// γ_a = 2σ_h²(μ² − κ_a)/κ_a² with κ_a = 1/c_a, per unit αt.
    pub gamma: f64,
    /// Fitted τ in updates (none when no decaying window was found).
    pub tau_fit: Option<f64>,
    pub tau_error: Option<f64>,
    /// −1/ln(1 − αγ_a): the discrete linearised prediction, in updates.
    pub tau_predicted: f64,
    pub plateau_fit: Option<f64>,
    /// σ_h² ξ_a*² = μ² − 1/c_a.
    pub plateau_predicted: f64,
    pub window_start: Option<f64>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct RelaxationEvaluateStage {
    pub settings: RelaxationSettings,
    pub mu_squared: f64,
    pub sigma_h: f64,
    pub spectrum: StageHandle,
    /// Upstream relaxation instance id for each learning rate.
    pub runs: Vec<StageHandle>,
}

impl Stage for RelaxationEvaluateStage {
    const KIND: StageKind = StageKind::Evaluate;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("rbm-mnist/relaxation-evaluate")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let s = &self.settings;
        let (variances, _) = spectrum::load(ctx.upstream(&self.spectrum)?)?;
        let s2 = self.sigma_h * self.sigma_h;
        let mut rows = Vec::new();
        for (&rate, run_id) in s.learning_rates.iter().zip(&self.runs) {
            let (updates, xi_squared) = load_relaxation(ctx.upstream(run_id)?, rate)?;
            let t = updates.to_vec();
            for (column, &mode) in s.modes.iter().enumerate() {
                let c = variances[mode];
                let kappa = 1.0 / c;
                let gamma = 2.0 * s2 * (self.mu_squared - kappa) / (kappa * kappa);
                let factor = 1.0 - rate * gamma;
                let tau_predicted = if factor > 0.0 {
                    -1.0 / factor.ln()
                } else {
                    f64::NAN
                };
                let y = xi_squared.column(column).to_vec();
                let fit = fit_relaxation(&t, &y, &s.window);
                rows.push(RelaxationRow {
                    learning_rate: rate,
                    mode,
                    data_variance: c,
                    gamma,
                    tau_fit: fit.as_ref().map(|f| f.tau),
                    tau_error: fit.as_ref().map(|f| f.tau_error),
                    tau_predicted,
                    plateau_fit: fit.as_ref().map(|f| f.plateau),
                    plateau_predicted: self.mu_squared - kappa,
                    window_start: fit.as_ref().map(|f| f.window_start),
                });
            }
        }
        write_json(&ctx.out_dir.join("relaxation.json"), &rows)
    }
}

/// Reads the rows written by [`RelaxationEvaluateStage`].
pub fn load_relaxation_rows(dir: &std::path::Path) -> Result<Vec<RelaxationRow>> {
    read_json(&dir.join("relaxation.json"))
}
