//! The Gaussian RBM as probabilistic PCA, and its maximum-likelihood fit by EM.
//!
//! By the Woodbury identity the model covariance is
//! K⁻¹ = (μ² − σ_h² WWᵀ)⁻¹ = s² + AAᵀ with s² = 1/μ² and A = (σ_h/μ) W (μ² − σ_h² WᵀW)^{−½}:
//! a probabilistic-PCA model (Tipping & Bishop 1999) whose noise level is fixed by the mass.
//! The map is a bijection between loadings A and weights W with positive-definite K, inverted by
//! σ_h W = μ² A (1 + μ² AᵀA)^{−½}; along a singular direction σ_h² ξ² = a²μ⁴ / (1 + a²μ²).
//! PPCA's maximum-likelihood solution keeps the eigenvectors of the data covariance whose
//! variance c_a exceeds s² — the RBM's UV cutoff c_a > 1/μ², i.e. κ_a < μ² — with a² = c_a − s².
//!
//! Plain gradient ascent on MNIST is stiff: near the fixed point mode a relaxes at
//! γ_a = 2σ²(μ² − 1/c_a)c_a² per unit αt, from ≈ 4·10⁵ (c = 38) down to 0 at the cutoff, so
//! stability caps α near 5·10⁻⁶ while the smaller learnable modes need αt ≫ 10². PPCA's EM
//! with the noise held fixed is no cure either: along a mode it contracts the error only by
//! ≈ 1 − 2s²/c per iteration, slowest for the strongest modes. [`fit_ml`] instead ascends the
//! likelihood along Σ∇_A L = C A M⁻¹ − A (M = AᵀA + s²), the gradient preconditioned by the
//! model covariance: A ← A + ω (C A M⁻¹ − A). Along a learned mode its contraction factor is
//! 1 − ω(2 − 2s²/c_a) — with ω = ½ about s²/c_a, fast for strong modes — and 1 − ω(1 − c_a/s²)
//! for a mode below the cutoff; across modes the span is power-iterated with C, selecting the
//! largest variances. Its fixed points are those of the RBM's own gradient flow (the map A ↔ W is
//! a bijection), so the result is checked against the flow: the exact W-gradient must vanish.
//! A trial step that lowers the likelihood is rejected and retried with ω halved.

use ndarray::{Array2, ArrayView2};

use super::GaussianRbm;
use crate::error::{Error, Result};
use crate::linalg::{spd_inverse_and_log_det, symmetric_eigen};

/// S^{p} for a symmetric positive-definite S, through its eigendecomposition.
fn spd_power(s: ArrayView2<'_, f64>, power: f64) -> Result<Array2<f64>> {
    let eig = symmetric_eigen(s)?;
    if eig.values.iter().any(|&v| v <= 0.0) {
        return Err(Error::LinearAlgebra(
            "matrix power of a matrix that is not positive definite".into(),
        ));
    }
    let scaled = &eig.vectors * &eig.values.mapv(|v| v.powf(power));
    Ok(scaled.dot(&eig.vectors.t()))
}

/// The PPCA loading A of `model` (N_v × N_h).
pub fn loading_from_weights(model: &GaussianRbm) -> Result<Array2<f64>> {
    let s2 = model.sigma_h * model.sigma_h;
    let mut m = model.weights.t().dot(&model.weights) * (-s2);
    m.diag_mut().mapv_inplace(|v| v + model.mu_squared());
    Ok(model.weights.dot(&spd_power(m.view(), -0.5)?) * (model.sigma_h / model.mu))
}

/// The RBM weights whose model covariance is 1/μ² + AAᵀ.
pub fn weights_from_loading(
    loading: ArrayView2<'_, f64>,
    mu: f64,
    sigma_h: f64,
) -> Result<Array2<f64>> {
    let mu2 = mu * mu;
    let mut g = loading.t().dot(&loading) * mu2;
    g.diag_mut().mapv_inplace(|v| v + 1.0);
    Ok(loading.dot(&spd_power(g.view(), -0.5)?) * (mu2 / sigma_h))
}

/// Step size and stopping rule of [`fit_ml`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlOptions {
    /// Relaxation factor ω of the preconditioned step (½ is optimal for strong modes).
    pub step: f64,
    pub max_iterations: usize,
    /// Stop once the fixed-point residual ‖C A M⁻¹ − A‖_F / ‖A‖_F falls below this.
    pub tolerance: f64,
}

/// Backtracking gives up below this fraction of the configured step.
const MIN_STEP_FRACTION: f64 = 1e-6;

/// A likelihood that falls by less than this fraction of |L| is rounding, not a worse point.
const ROUNDING: f64 = 1e-13;

/// What the fit did: the mean log-likelihood of the start and of every accepted iterate.
#[derive(Clone, Debug, Default)]
pub struct MlTrace {
    pub log_likelihood: Vec<f64>,
    /// Trial steps rejected because the likelihood fell (each halves ω for that iteration).
    pub rejected: usize,
    pub converged: bool,
}

fn frobenius(a: &Array2<f64>) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// One evaluation at a loading: the likelihood and the fixed-point map C A M⁻¹.
struct Evaluation {
    log_likelihood: f64,
    target: Array2<f64>,
}

fn evaluate(
    loading: &Array2<f64>,
    target_cov: ArrayView2<'_, f64>,
    noise: f64,
    trace_target: f64,
) -> Result<Evaluation> {
    let (n_visible, n_hidden) = loading.dim();
    let covariance_loading = target_cov.dot(loading);
    let mut m = loading.t().dot(loading);
    m.diag_mut().mapv_inplace(|v| v + noise);
    let (m_inverse, m_log_det) = spd_inverse_and_log_det(m.view())?;
    let explained = (&m_inverse * &loading.t().dot(&covariance_loading)).sum();
    // ln det Σ = (N_v − N_h) ln s² + ln det M and Tr(Σ⁻¹C) = (Tr C − Tr(M⁻¹AᵀCA)) / s².
    let log_det = (n_visible as f64 - n_hidden as f64) * noise.ln() + m_log_det;
    let trace = (trace_target - explained) / noise;
    Ok(Evaluation {
        log_likelihood: -0.5
            * (log_det + trace + n_visible as f64 * (2.0 * std::f64::consts::PI).ln()),
        target: covariance_loading.dot(&m_inverse),
    })
}

/// Fits `model.weights` by maximum likelihood to a zero-mean target with covariance
/// `target_cov`, μ and σ_h fixed, calling `progress` with the iteration number.
pub fn fit_ml(
    model: &mut GaussianRbm,
    target_cov: ArrayView2<'_, f64>,
    options: &MlOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<MlTrace> {
    let noise = 1.0 / model.mu_squared();
    let trace_target = target_cov.diag().sum();
    let mut loading = loading_from_weights(model)?;
    let mut current = evaluate(&loading, target_cov, noise, trace_target)?;
    let mut trace = MlTrace {
        log_likelihood: vec![current.log_likelihood],
        ..MlTrace::default()
    };
    'iterations: for iteration in 1..=options.max_iterations {
        let scale = current.log_likelihood.abs().max(1.0);
        let residual = frobenius(&(&current.target - &loading)) / frobenius(&loading).max(1e-300);
        if residual < options.tolerance {
            trace.converged = true;
            break;
        }
        let mut step = options.step;
        let (trial, next) = loop {
            let trial = &loading + &((&current.target - &loading) * step);
            let next = evaluate(&trial, target_cov, noise, trace_target)?;
            if !next.log_likelihood.is_finite() {
                return Err(Error::Numerical {
                    what: "non-finite log-likelihood in the maximum-likelihood fit".into(),
                    update: iteration,
                });
            }
            if next.log_likelihood - current.log_likelihood >= -ROUNDING * scale {
                break (trial, next);
            }
            trace.rejected += 1;
            step *= 0.5;
            if step < options.step * MIN_STEP_FRACTION {
                // No step along the preconditioned direction raises the likelihood: stalled.
                break 'iterations;
            }
        };
        loading = trial;
        current = next;
        trace.log_likelihood.push(current.log_likelihood);
        progress(iteration);
    }
    model.weights = weights_from_loading(loading.view(), model.mu, model.sigma_h)?;
    Ok(trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::Array1;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A covariance with known eigenvalues `spectrum` in a random orthonormal basis.
    fn covariance(spectrum: &[f64], rng: &mut ChaCha8Rng) -> (Array2<f64>, Array2<f64>) {
        let n = spectrum.len();
        let noise = GaussianRbm::random(n, n, 1.0, 1.0, 1.0, rng).weights;
        let basis = symmetric_eigen((&noise + &noise.t()).view())
            .unwrap()
            .vectors;
        let cov = (&basis * &Array1::from(spectrum.to_vec())).dot(&basis.t());
        (cov, basis)
    }

    #[test]
    fn loading_and_weights_are_inverse_maps_with_the_same_covariance() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n_hidden in [3, 7, 10] {
            let model = GaussianRbm::random(7, n_hidden, 2.5, 0.8, 0.4, &mut rng);
            let loading = loading_from_weights(&model).unwrap();
            let (cov, _) = model.covariance_and_log_det().unwrap();
            let mut ppca = loading.dot(&loading.t());
            ppca.diag_mut()
                .mapv_inplace(|v| v + 1.0 / model.mu_squared());
            assert_abs_diff_eq!(ppca, cov, epsilon = 1e-12);
            let back = weights_from_loading(loading.view(), model.mu, model.sigma_h).unwrap();
            // W is fixed only up to a hidden rotation; WWᵀ is not.
            assert_abs_diff_eq!(
                back.dot(&back.t()),
                model.weights.dot(&model.weights.t()),
                epsilon = 1e-12
            );
        }
    }

    /// The fit reaches the analytic fixed point: the N_h largest variances above 1/μ² are
    /// learned exactly (model variance c_a), every other direction keeps 1/μ²; the exact
    /// gradient vanishes there, and the likelihood never decreases on the way.
    #[test]
    fn ml_fit_reaches_the_pca_fixed_point_of_the_gradient_flow() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let spectrum = [3.0, 1.5, 0.9, 0.4, 0.2, 0.05, 0.02, 0.0];
        let (cov, _) = covariance(&spectrum, &mut rng);
        let mu2: f64 = 16.0; // cutoff 1/μ² = 0.0625: five learnable modes
        for n_hidden in [2, 5, 8] {
            let mut model = GaussianRbm::random(8, n_hidden, mu2.sqrt(), 1.0, 0.1, &mut rng);
            let options = MlOptions {
                step: 0.5,
                max_iterations: 5000,
                tolerance: 1e-12,
            };
            let trace = fit_ml(&mut model, cov.view(), &options, &mut |_| {}).unwrap();
            assert!(trace.converged, "N_h = {n_hidden}");
            for pair in trace.log_likelihood.windows(2) {
                assert!(pair[1] >= pair[0] - 1e-12, "likelihood fell: {pair:?}");
            }
            let (model_cov, _) = model.covariance_and_log_det().unwrap();
            let mut learned: Vec<f64> = symmetric_eigen(model_cov.view()).unwrap().values.to_vec();
            learned.sort_by(|a, b| b.total_cmp(a));
            let kept = n_hidden.min(5);
            for (a, (&got, &c)) in learned.iter().zip(&spectrum).enumerate() {
                let expected = if a < kept { c } else { 1.0 / mu2 };
                assert_abs_diff_eq!(got, expected, epsilon = 1e-8);
            }
            let gradient = model.exact_gradient(cov.view()).unwrap();
            assert!(
                gradient.weights.iter().all(|g| g.abs() < 1e-7),
                "gradient at the fitted fixed point: {}",
                gradient.weights
            );
            assert_abs_diff_eq!(
                *trace.log_likelihood.last().unwrap(),
                model.log_likelihood(cov.view()).unwrap(),
                epsilon = 1e-10
            );
        }
    }
}
