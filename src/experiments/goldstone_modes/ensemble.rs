//! Fit stage `fit[ensemble=<haar|weighted_l2>,<configuration>]`: weight correlation functions
//! over an ensemble of independently initialised exact-gradient runs, against the uniform (Haar)
//! distribution over the orbit of minima.
//!
//! Where the uniformity comes from: the start W₀ (i.i.d. Gaussian entries) has a distribution
//! invariant under W → O W R for every R ∈ O(N_h) and every visible O that commutes with the
//! target covariance (O(1) or O(2) per level of κ); the exact gradient flow is equivariant
//! under both (∇L(OWR) = O ∇L(W) R). So the distribution of the end point is invariant too: on
//! the orbit of minima, whose points all share the singular values x_a = (μ² − κ_a)/σ², it is
//! W = W*·Q with Q Haar on O(N_h), and a cut degenerate level is learned along a uniform angle.
//! Every prediction below follows from that and from the spectrum alone:
//!
//! - ⟨W_ia W_jb⟩ = δ_ab ⟨WWᵀ⟩_ij / N_h, ⟨WWᵀ⟩ = Σ_levels (learned/dim) x_level P_level;
//! - a column norm ‖w_a‖² = qᵀXq with q uniform on S^{N_h−1} (u_k² Dirichlet(½, …, ½)): mean
//!   Σx/N, variance (2Σx² + (Σx)²)/(N(N+2)) − (Σx/N)²;
//! - an overlap w_aᵀw_b (a ≠ b): mean 0, variance (NΣx² − (Σx)²)/((N − 1)N(N + 2));
//! - a nearest-neighbour sum Σ_i W_ia W_{i+1,a} = qᵀYq with Y = diag(x_l c_l), c_l the symmetric
//!   shift's eigenvalue on mode l: as a column norm with y for x;
//! - O = M^{+½}W (M = WWᵀ; the partial isometry U Vᵀ), Tr O = Σ_{i<min(N_v,N_h)} O_ii:
//!   ⟨Tr O⟩ = 0, ⟨(Tr O)²⟩ = Σ_{i<min} ⟨P_range⟩_ii / N_h, and P(det O > 0) = ½ when O is square
//!   of full rank.
//!
//! The contrast adds the weighted penalty ε Σ_j c_j‖w_j‖² (c_j ascending): the hidden rotations
//! are broken to sign flips, unit j is pinned to mode j (the least penalised unit carries the
//! strongest mode) with x_j = (μ² − λ_j)/σ², λ_j = 1/(1/κ_j − 2εc_j/σ²), and only the visible
//! O(2) of each ± pair stays free: ⟨W_ia W_jb⟩ = δ_ab x_a (P_level(a))_ij / dim.
//!
//! Output: `arrays/ensemble.<slug>.second_moment.npy` and `.predicted.npy` (the (N_v N_h)² tensor
//! as a matrix, row index i·N_h + a) and the private `ensemble.json` ([`EnsembleSummary`]).

use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::diffuse::levels;
use super::fit::target_moments;
use crate::analysis::jackknife::jackknife;
use crate::analysis::stats::mean_and_standard_error;
use crate::emit::{npy, slug};
use crate::error::{Error, Result};
use crate::fsutil::{read_json, write_json};
use crate::linalg::{determinant, symmetric_eigen, symmetric_eigenvalues};
use crate::models::rbm::GaussianRbm;
use crate::models::rbm::hessian::{
    FixedPointLayout, add_penalty_gradient, add_penalty_hessian, loss_gradient, loss_hessian,
};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageKind};
use crate::seed::rng_for;
use crate::spec::goldstone_modes::{Configuration, Target, unit_weights};

/// A scalar observable: measured mean and its standard error against the prediction, and the
/// same for its variance (the error of a variance from the fourth moment).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Moment {
    pub observable: String,
    pub samples: usize,
    pub mean: f64,
    pub mean_error: f64,
    pub predicted_mean: Option<f64>,
    pub variance: f64,
    pub variance_error: f64,
    pub predicted_variance: Option<f64>,
    /// Whether a deviation in standard errors means anything for the mean and for the variance
    /// (see [`moment`]).
    pub compare_mean: bool,
    pub compare_variance: bool,
}

/// Everything one ensemble measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnsembleSummary {
    pub ensemble: String,
    pub n_hidden: usize,
    pub mu_squared: f64,
    pub epsilon: f64,
    pub runs: usize,
    /// Largest ‖∇ℒ‖ at the end of a run and the largest |λ_a − λ_a*| of K.
    pub worst_gradient_norm: f64,
    pub worst_kernel_deviation: f64,
    pub median_updates: f64,
    /// Saddle-free Newton steps after gradient descent (penalised runs only), median, and the
    /// most negative Hessian eigenvalues any run ended with (a saddle would show here).
    pub median_newton_steps: f64,
    pub worst_negative_curvatures: usize,
    /// Σ z² over the distinct entries of ⟨W_ia W_jb⟩ that fluctuate from run to run, and their
    /// number; entries the minimum fixes in every run (standard error below 1e-6 of the largest
    /// prediction: a unit pinned to one mode) are counted apart with their largest |deviation|,
    /// which is a convergence residual, not a sampling error.
    pub tensor_chi_squared: f64,
    pub pinned_entries: usize,
    pub pinned_max_abs_deviation: f64,
    pub tensor_entries: usize,
    pub tensor_max_abs_z: f64,
    pub moments: Vec<Moment>,
    pub seconds: f64,
}

#[derive(Serialize, serde::Deserialize)]
pub struct EnsembleStage {
    pub target: Target,
    pub configuration: Configuration,
    pub runs: usize,
    pub learning_rate: f64,
    pub init_scale: f64,
    pub gradient_tolerance: f64,
    pub max_updates: usize,
    /// ε of the weighted penalty (0: none).
    pub epsilon: f64,
    pub seed: u64,
}

impl EnsembleStage {
    pub fn name(epsilon: f64) -> &'static str {
        if epsilon > 0.0 { "weighted_l2" } else { "haar" }
    }

    pub fn label(configuration: &Configuration, epsilon: f64) -> String {
        let base = format!(
            "ensemble={},n_hidden={},mu_squared={}",
            Self::name(epsilon),
            configuration.n_hidden,
            configuration.mu_squared
        );
        if epsilon > 0.0 {
            format!("{base},epsilon={epsilon}")
        } else {
            base
        }
    }

    fn penalty(&self) -> Vec<f64> {
        unit_weights(self.configuration.n_hidden)
            .iter()
            .map(|c| 2.0 * self.epsilon * c)
            .collect()
    }
}

/// Mean and variance of an observable measured several times per run (every column, every
/// pair of columns), with jackknife errors over runs: values of one run are correlated (the
/// column norms of a run sum to Tr WᵀW, which is the same for every run), runs are independent.
/// `compare` says, for the mean and the variance, whether the prediction is statistical: it is
/// not where the spectrum fixes the value in every run (the mean column norm is Tr WᵀW / N_h),
/// and then the only deviation is the convergence residual, set by the gradient tolerance
/// rather than by sampling, so no deviation in errors is printed.
fn moment(
    observable: &str,
    per_run: &[Vec<f64>],
    mean: Option<f64>,
    variance: Option<f64>,
    compare: (bool, bool),
) -> Moment {
    let runs = per_run.len();
    let features = Array2::from_shape_fn((runs, 2), |(r, k)| {
        let values = &per_run[r];
        let n = values.len() as f64;
        if k == 0 {
            values.iter().sum::<f64>() / n
        } else {
            values.iter().map(|v| v * v).sum::<f64>() / n
        }
    });
    let jk = jackknife(features.view(), runs, |m| {
        vec![m[0], (m[1] - m[0] * m[0]).max(0.0)]
    });
    Moment {
        observable: observable.to_string(),
        samples: per_run.iter().map(Vec::len).sum(),
        mean: jk.estimate[0],
        mean_error: jk.error[0],
        predicted_mean: mean,
        variance: jk.estimate[1],
        variance_error: jk.error[1],
        predicted_variance: variance,
        compare_mean: compare.0,
        compare_variance: compare.1,
    }
}

/// Mean and variance of qᵀ diag(y) q for q uniform on the unit sphere of R^N (y zero-padded).
fn sphere_quadratic_form(y: &[f64], n: usize) -> (f64, f64) {
    let nf = n as f64;
    let sum: f64 = y.iter().sum();
    let sum_sq: f64 = y.iter().map(|v| v * v).sum();
    let mean = sum / nf;
    (
        mean,
        (2.0 * sum_sq + sum * sum) / (nf * (nf + 2.0)) - mean * mean,
    )
}

impl Stage for EnsembleStage {
    const KIND: StageKind = StageKind::Fit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("goldstone-modes/ensemble")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let clock = Instant::now();
        let c = &self.configuration;
        let label = Self::label(c, self.epsilon);
        let (covariance, kappa, modes) = target_moments(&self.target)?;
        let (nv, nh) = (self.target.n_visible, c.n_hidden);
        let sigma_h = self.target.sigma_h;
        let s2 = sigma_h * sigma_h;
        let mut layout = FixedPointLayout::stable(&kappa, nh, c.mu_squared, sigma_h, false);
        let penalty = self.penalty();
        if self.epsilon > 0.0 {
            layout = layout.penalised(penalty.clone())?;
        }
        let r = layout.learned;
        let x: Vec<f64> = (0..r)
            .map(|a| (c.mu_squared - layout.learned_eigenvalue(a)) / s2)
            .collect();
        // The model spectrum every run must end at: λ_a for learned modes, μ² elsewhere.
        let mut expected: Vec<f64> = (0..nv)
            .map(|a| {
                if a < r {
                    layout.learned_eigenvalue(a)
                } else {
                    c.mu_squared
                }
            })
            .collect();
        expected.sort_by(f64::total_cmp);

        let mut finals = Vec::with_capacity(self.runs);
        let mut worst_gradient: f64 = 0.0;
        let mut worst_kernel: f64 = 0.0;
        let mut updates_used = Vec::with_capacity(self.runs);
        let mut newton_steps = Vec::new();
        let mut worst_negative = 0usize;
        ctx.progress.set_length(self.runs as u64);
        for run in 0..self.runs {
            let mut rng = rng_for(self.seed, &format!("{label}/run={run}"));
            let mut model = GaussianRbm::random(
                nv,
                nh,
                c.mu_squared.sqrt(),
                sigma_h,
                self.init_scale,
                &mut rng,
            );
            let mut updates = 0;
            let polish_from = if self.epsilon > 0.0 {
                NEWTON_FROM.max(self.gradient_tolerance)
            } else {
                self.gradient_tolerance
            };
            let mut norm = loop {
                let g = penalised_gradient(&model, &covariance, &penalty).map_err(|e| {
                    Error::Numerical {
                        what: format!("{label}, run {run}: {e}"),
                        update: updates,
                    }
                })?;
                let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
                if !norm.is_finite() {
                    return Err(Error::Numerical {
                        what: format!("{label}, run {run}: gradient norm {norm}"),
                        update: updates,
                    });
                }
                if norm < polish_from {
                    break norm;
                }
                if updates == self.max_updates {
                    return Err(Error::Numerical {
                        what: format!(
                            "{label}, run {run}: ‖∇ℒ‖ = {norm:e} still above {polish_from:e} \
                             (raise ensemble.max_updates)"
                        ),
                        update: updates,
                    });
                }
                model.weights.scaled_add(-self.learning_rate, &g);
                updates += 1;
            };
            if norm >= self.gradient_tolerance {
                let polish =
                    saddle_free_newton(&mut model, &covariance, &penalty, self.gradient_tolerance)
                        .map_err(|e| Error::Numerical {
                            what: format!("{label}, run {run}: Newton polish: {e}"),
                            update: updates,
                        })?;
                norm = polish.gradient_norm;
                newton_steps.push(polish.steps as f64);
                worst_negative = worst_negative.max(polish.negative);
            }
            let spectrum = symmetric_eigenvalues(model.kernel().view())?;
            for (got, want) in spectrum.iter().zip(&expected) {
                worst_kernel = worst_kernel.max((got - want).abs());
            }
            worst_gradient = worst_gradient.max(norm);
            updates_used.push(updates as f64);
            finals.push(model.weights);
            ctx.progress.set_position(run as u64 + 1);
        }

        // Predicted ⟨w_a w_bᵀ⟩ blocks (visible × visible, per hidden pair).
        let all_levels = levels(&kappa);
        let level_of = |a: usize| {
            all_levels
                .iter()
                .find(|l| l.modes.contains(&a))
                .expect("every mode has a level")
        };
        let projector = |modes_of_level: &[usize]| -> Array2<f64> {
            let mut p = Array2::<f64>::zeros((nv, nv));
            for &m in modes_of_level {
                let v = modes.column(m);
                for i in 0..nv {
                    for j in 0..nv {
                        p[[i, j]] += v[i] * v[j];
                    }
                }
            }
            p
        };
        let weighted = self.epsilon > 0.0;
        // Unbroken: every column has ⟨w wᵀ⟩ = ⟨WWᵀ⟩/N_h. Broken: column a has x_a P_level/dim.
        let mut range_projector = Array2::<f64>::zeros((nv, nv));
        let mut mean_gram = Array2::<f64>::zeros((nv, nv));
        for level in &all_levels {
            let learned_here = level.modes.iter().filter(|&&m| m < r).count();
            if learned_here == 0 {
                continue;
            }
            let share = learned_here as f64 / level.modes.len() as f64;
            let p = projector(&level.modes);
            range_projector.scaled_add(share, &p);
            let x_level = level
                .modes
                .iter()
                .filter(|&&m| m < r)
                .map(|&m| x[m])
                .sum::<f64>()
                / learned_here as f64;
            mean_gram.scaled_add(share * x_level, &p);
        }
        let column_block = |a: usize| -> Array2<f64> {
            if weighted {
                if a < r {
                    let level = level_of(a);
                    projector(&level.modes) * (x[a] / level.modes.len() as f64)
                } else {
                    Array2::zeros((nv, nv))
                }
            } else {
                &mean_gram / nh as f64
            }
        };
        let blocks: Vec<Array2<f64>> = (0..nh).map(column_block).collect();
        let coordinates = nv * nh;
        let predicted = Array2::from_shape_fn((coordinates, coordinates), |(p, q)| {
            let (i, a) = (p / nh, p % nh);
            let (j, b) = (q / nh, q % nh);
            if a == b { blocks[a][[i, j]] } else { 0.0 }
        });

        // Sample second moments and the χ² of the tensor, entry by entry.
        let flat: Vec<Array1<f64>> = finals
            .iter()
            .map(|w| Array1::from_iter(w.iter().copied()))
            .collect();
        let mut second = Array2::<f64>::zeros((coordinates, coordinates));
        let mut chi_squared = 0.0;
        let mut entries = 0;
        let mut max_z: f64 = 0.0;
        let (mut pinned, mut pinned_deviation) = (0, 0.0_f64);
        let scale = predicted.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        for p in 0..coordinates {
            for q in p..coordinates {
                let values: Vec<f64> = flat.iter().map(|w| w[p] * w[q]).collect();
                let (mean, error) = mean_and_standard_error(&values);
                second[[p, q]] = mean;
                second[[q, p]] = mean;
                if error < 1e-6 * scale {
                    pinned += 1;
                    pinned_deviation = pinned_deviation.max((mean - predicted[[p, q]]).abs());
                } else {
                    let z = (mean - predicted[[p, q]]) / error;
                    chi_squared += z * z;
                    max_z = max_z.max(z.abs());
                    entries += 1;
                }
            }
        }

        // Scalar observables.
        let mut norms = Vec::new();
        let mut overlaps = Vec::new();
        let mut neighbours = Vec::new();
        let mut traces = Vec::new();
        let mut positive_det = Vec::new();
        let d = nv.min(nh);
        for w in &finals {
            let (mut run_norms, mut run_neighbours, mut run_overlaps) =
                (Vec::new(), Vec::new(), Vec::new());
            for a in 0..nh {
                let col = w.column(a);
                run_norms.push(col.dot(&col));
                run_neighbours.push((0..nv).map(|i| col[i] * col[(i + 1) % nv]).sum::<f64>());
                for b in a + 1..nh {
                    run_overlaps.push(col.dot(&w.column(b)));
                }
            }
            norms.push(run_norms);
            neighbours.push(run_neighbours);
            overlaps.push(run_overlaps);
            let isometry = partial_isometry(w.view(), r)?;
            traces.push(vec![(0..d).map(|i| isometry[[i, i]]).sum::<f64>()]);
            if nv == nh && r == nv {
                positive_det.push(vec![f64::from(u8::from(
                    determinant(isometry.view()) > 0.0,
                ))]);
            }
        }
        let mut moments = Vec::new();
        let shift_eigen: Vec<f64> = (0..r)
            .map(|m| {
                let v = modes.column(m);
                (0..nv).map(|i| v[i] * v[(i + 1) % nv]).sum::<f64>()
            })
            .collect();
        if weighted {
            // Each unit has its own norm: the pinned x_a, with no spread beyond convergence.
            for (a, xa) in x.iter().enumerate() {
                let own: Vec<Vec<f64>> = finals
                    .iter()
                    .map(|w| vec![w.column(a).dot(&w.column(a))])
                    .collect();
                moments.push(moment(
                    &format!("column_norm[{a}]"),
                    &own,
                    Some(*xa),
                    Some(0.0),
                    (false, false),
                ));
            }
            if nh > 1 {
                moments.push(moment(
                    "overlap",
                    &overlaps,
                    Some(0.0),
                    Some(0.0),
                    (false, false),
                ));
            }
        } else {
            let (norm_mean, norm_var) = sphere_quadratic_form(&x, nh);
            moments.push(moment(
                "column_norm",
                &norms,
                Some(norm_mean),
                Some(norm_var),
                (false, true),
            ));
            let nf = nh as f64;
            let sum: f64 = x.iter().sum();
            let sum_sq: f64 = x.iter().map(|v| v * v).sum();
            let overlap_var = (nf * sum_sq - sum * sum) / ((nf - 1.0) * nf * (nf + 2.0));
            if nh > 1 {
                moments.push(moment(
                    "overlap",
                    &overlaps,
                    Some(0.0),
                    Some(overlap_var),
                    (true, true),
                ));
            }
            let y: Vec<f64> = x.iter().zip(&shift_eigen).map(|(a, b)| a * b).collect();
            let (nn_mean, nn_var) = sphere_quadratic_form(&y, nh);
            moments.push(moment(
                "neighbour_sum",
                &neighbours,
                Some(nn_mean),
                Some(nn_var),
                (false, true),
            ));
            let trace_square = (0..d).map(|i| range_projector[[i, i]]).sum::<f64>() / nf;
            moments.push(moment(
                "trace_o",
                &traces,
                Some(0.0),
                Some(trace_square),
                (true, true),
            ));
            if !positive_det.is_empty() {
                moments.push(moment(
                    "det_o_positive",
                    &positive_det,
                    Some(0.5),
                    Some(0.25),
                    (true, false),
                ));
            }
        }

        let arrays = ctx.out_dir.join("arrays");
        let prefix = format!("ensemble.{}", slug(&label));
        npy::write(&arrays.join(format!("{prefix}.second_moment.npy")), &second)?;
        npy::write(&arrays.join(format!("{prefix}.predicted.npy")), &predicted)?;
        let mut sorted_updates = updates_used.clone();
        let median_updates = crate::analysis::stats::median(&mut sorted_updates).unwrap_or(0.0);
        write_json(
            &ctx.out_dir.join("ensemble.json"),
            &EnsembleSummary {
                ensemble: Self::name(self.epsilon).to_string(),
                n_hidden: nh,
                mu_squared: c.mu_squared,
                epsilon: self.epsilon,
                runs: self.runs,
                worst_gradient_norm: worst_gradient,
                worst_kernel_deviation: worst_kernel,
                median_updates,
                median_newton_steps: crate::analysis::stats::median(&mut newton_steps)
                    .unwrap_or(0.0),
                worst_negative_curvatures: worst_negative,
                tensor_chi_squared: chi_squared,
                pinned_entries: pinned,
                pinned_max_abs_deviation: pinned_deviation,
                tensor_entries: entries,
                tensor_max_abs_z: max_z,
                moments,
                seconds: clock.elapsed().as_secs_f64(),
            },
        )
    }
}

/// Gradient descent hands the penalised runs to Newton below this ‖∇ℒ‖: the stiff directions
/// have converged, while the pseudo-Goldstone ones (masses ~1e-5) would need ~10⁵ more updates.
const NEWTON_FROM: f64 = 1e-4;
/// At most this many Newton steps per run.
const MAX_NEWTON_STEPS: usize = 10_000;

/// ∇(ℒ + ½Σ_j ρ_j‖w_j‖²) in W.
fn penalised_gradient(
    model: &GaussianRbm,
    covariance: &Array2<f64>,
    penalty: &[f64],
) -> Result<Array2<f64>> {
    let (mut g, _) = loss_gradient(model, covariance.view())?;
    add_penalty_gradient(&mut g, &model.weights, penalty);
    Ok(g)
}

/// ℒ + ½Σ_j ρ_j‖w_j‖².
fn penalised_loss(model: &GaussianRbm, covariance: &Array2<f64>, penalty: &[f64]) -> Result<f64> {
    let loss = -model.log_likelihood(covariance.view())?;
    Ok(loss
        + penalty
            .iter()
            .enumerate()
            .map(|(j, rho)| 0.5 * rho * model.weights.column(j).dot(&model.weights.column(j)))
            .sum::<f64>())
}

/// How a Newton polish ended.
struct Polish {
    gradient_norm: f64,
    steps: usize,
    /// Hessian eigenvalues below −(floor) at the end.
    negative: usize,
}

/// Saddle-free Newton with a trust region: the step −Σ_k v_k (v_k·g)/max(|h_k|, floor) over the
/// Hessian's eigenpairs (h_k, v_k) moves down along negative curvature instead of up to the
/// saddle, and is accepted when it lowers the loss (or, once the loss change is below rounding,
/// the gradient). Exactly flat directions (the visible O(2) of each ± pair) carry no gradient and
/// are left where descent put them; the step commutes with every exact symmetry, so the
/// distribution over the residual orbit is not biased.
fn saddle_free_newton(
    model: &mut GaussianRbm,
    covariance: &Array2<f64>,
    penalty: &[f64],
    tolerance: f64,
) -> Result<Polish> {
    let nh = model.n_hidden();
    let mut radius = 0.5;
    let mut loss = penalised_loss(model, covariance, penalty)?;
    let mut g = penalised_gradient(model, covariance, penalty)?;
    let mut norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    for steps in 0..MAX_NEWTON_STEPS {
        let mut hessian = loss_hessian(model, covariance.view(), false)?;
        add_penalty_hessian(&mut hessian, nh, penalty);
        let eigen = symmetric_eigen(hessian.view())?;
        let top = eigen.values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let floor = 1e-9 * top;
        if norm < tolerance {
            let negative = eigen.values.iter().filter(|&&h| h < -floor).count();
            return Ok(Polish {
                gradient_norm: norm,
                steps,
                negative,
            });
        }
        let flat_g = Array1::from_iter(g.iter().copied());
        let along = eigen.vectors.t().dot(&flat_g);
        let scaled = Array1::from_iter(
            along
                .iter()
                .zip(&eigen.values)
                .map(|(c, h)| -c / h.abs().max(floor)),
        );
        let mut step = eigen.vectors.dot(&scaled);
        let length = step.dot(&step).sqrt();
        if length > radius {
            step *= radius / length;
        }
        let mut trial = model.clone();
        for (w, d) in trial.weights.iter_mut().zip(step.iter()) {
            *w += d;
        }
        let accepted = match (
            penalised_loss(&trial, covariance, penalty),
            penalised_gradient(&trial, covariance, penalty),
        ) {
            (Ok(trial_loss), Ok(trial_g)) => {
                let trial_norm = trial_g.iter().map(|v| v * v).sum::<f64>().sqrt();
                let rounding = 1e-12 * loss.abs().max(1.0);
                let better = trial_loss < loss - rounding
                    || (trial_loss <= loss + rounding && trial_norm < norm);
                better.then_some((trial_loss, trial_g, trial_norm))
            }
            _ => None,
        };
        match accepted {
            Some((trial_loss, trial_g, trial_norm)) => {
                *model = trial;
                loss = trial_loss;
                g = trial_g;
                norm = trial_norm;
                if length <= radius {
                    radius = (2.0 * radius).min(1.0);
                }
            }
            None => {
                radius *= 0.25;
                if radius < 1e-14 {
                    return Err(Error::Other(format!(
                        "the trust region collapsed at ‖∇ℒ‖ = {norm:e}"
                    )));
                }
            }
        }
    }
    Err(Error::Other(format!(
        "no convergence in {MAX_NEWTON_STEPS} steps (‖∇ℒ‖ = {norm:e})"
    )))
}

/// U Vᵀ from the `rank` largest singular directions of W (N_v × N_h): the orthogonal part of W
/// on its range, M^{+½}W with M = WWᵀ.
fn partial_isometry(w: ArrayView2<'_, f64>, rank: usize) -> Result<Array2<f64>> {
    // Right singular vectors from WᵀW (ascending); U = W V Σ⁻¹ for the top `rank`.
    let gram = w.t().dot(&w);
    let eigen = symmetric_eigen(gram.view())?;
    let nh = w.ncols();
    let mut out = Array2::<f64>::zeros(w.raw_dim());
    for k in nh - rank..nh {
        let sigma = eigen.values[k].max(0.0).sqrt();
        let v = eigen.vectors.column(k);
        let u = w.dot(&v) / sigma;
        for i in 0..w.nrows() {
            for j in 0..nh {
                out[[i, j]] += u[i] * v[j];
            }
        }
    }
    Ok(out)
}

/// Reads what [`EnsembleStage`] wrote: the summary, the measured and the predicted tensors.
pub fn load(
    dir: &std::path::Path,
    label: &str,
) -> Result<(EnsembleSummary, Array2<f64>, Array2<f64>)> {
    let prefix = format!("ensemble.{}", slug(label));
    let arrays = dir.join("arrays");
    Ok((
        read_json(&dir.join("ensemble.json"))?,
        npy::read(&arrays.join(format!("{prefix}.second_moment.npy")))?,
        npy::read(&arrays.join(format!("{prefix}.predicted.npy")))?,
    ))
}
