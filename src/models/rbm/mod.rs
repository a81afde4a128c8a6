//! The Gaussian (scalar-field) restricted Boltzmann machine of Park, Aarts & Lucini.
//!
//! Visible φ ∈ R^{N_v}, hidden h ∈ R^{N_h}, weights W (N_v × N_h, paper orientation), visible
//! mass μ and hidden width σ_h. Integrating out h gives a zero-mean Gaussian
//! p(φ) ∝ exp(−½ φᵀKφ) with kernel K = μ²·1 − σ_h² W Wᵀ (the hidden bias η, never trained by the
//! authors, is zero here, so the source J = Wη vanishes). The block-Gibbs conditionals are
//! h | φ ~ N(σ_h² Wᵀφ, σ_h²) and φ | h ~ N(W h / μ², 1/μ²).
//!
//! For a zero-mean target with covariance C_t the mean log-likelihood is
//! L = −½ Tr(K C_t) + ½ ln det K − (N_v/2) ln 2π, with gradients
//! ∂L/∂W = σ_h² (C_t − K⁻¹) W and ∂L/∂μ = −μ Tr(C_t − K⁻¹).
//! [`train`] runs gradient ascent with the model moment K⁻¹ either exact or estimated by
//! persistent contrastive divergence; [`ppca`] fits the same distribution by maximum
//! likelihood, through its equivalence with probabilistic PCA.
//!
//! Exact quantities never form the N_v × N_v inverse: K has eigenvalue μ² off the span of W, so
//! with the N_h × N_h matrix M = μ² − σ_h² WᵀW the push-through identity gives K⁻¹W = W M⁻¹,
//! ln det K = (N_v − N_h) ln μ² + ln det M and Tr K⁻¹ = Tr M⁻¹ + (N_v − N_h)/μ². K is positive
//! definite exactly when M is.

pub mod hessian;
pub mod normals;
pub mod orbit;
pub mod ppca;
pub mod train;

use ndarray::{Array2, ArrayView2};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use crate::error::Result;
use crate::linalg::{gemm, spd_inverse_and_log_det};

/// Parameters of a Gaussian RBM.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianRbm {
    /// Coupling matrix, N_v × N_h.
    pub weights: Array2<f64>,
    /// Visible mass μ (the kernel uses μ²).
    pub mu: f64,
    /// Hidden width σ_h.
    pub sigma_h: f64,
}

/// Gradient of the mean log-likelihood with respect to W and μ.
#[derive(Clone, Debug)]
pub struct Gradient {
    pub weights: Array2<f64>,
    pub mu: f64,
}

impl GaussianRbm {
    /// A model with weights drawn i.i.d. from N(0, `init_scale`²).
    pub fn random(
        n_visible: usize,
        n_hidden: usize,
        mu: f64,
        sigma_h: f64,
        init_scale: f64,
        rng: &mut impl Rng,
    ) -> Self {
        let weights = Array2::from_shape_simple_fn((n_visible, n_hidden), || {
            init_scale * rng.sample::<f64, _>(StandardNormal)
        });
        Self {
            weights,
            mu,
            sigma_h,
        }
    }

    pub fn n_visible(&self) -> usize {
        self.weights.nrows()
    }

    pub fn n_hidden(&self) -> usize {
        self.weights.ncols()
    }

    pub fn mu_squared(&self) -> f64 {
        self.mu * self.mu
    }

    /// K = μ²·1 − σ_h² W Wᵀ.
    pub fn kernel(&self) -> Array2<f64> {
        let s2 = self.sigma_h * self.sigma_h;
        let mut k = self.weights.dot(&self.weights.t()) * (-s2);
        k.diag_mut().mapv_inplace(|v| v + self.mu_squared());
        k
    }

    /// Model covariance K⁻¹ and ln det K; fails if K is not positive definite.
    pub fn covariance_and_log_det(&self) -> Result<(Array2<f64>, f64)> {
        spd_inverse_and_log_det(self.kernel().view())
    }

    /// M⁻¹ and ln det M for the hidden-side matrix M = μ² − σ_h² WᵀW; fails when K is not
    /// positive definite.
    pub fn hidden_inverse_and_log_det(&self) -> Result<(Array2<f64>, f64)> {
        let mut m = Array2::zeros((self.n_hidden(), self.n_hidden()));
        self.hidden_matrix_into(&mut m);
        spd_inverse_and_log_det(m.view())
    }

    /// The hidden-side matrix M = μ² − σ_h² WᵀW (N_h × N_h), written into `m`.
    pub fn hidden_matrix_into(&self, m: &mut Array2<f64>) {
        let s2 = self.sigma_h * self.sigma_h;
        gemm(
            -s2,
            self.weights.t(),
            self.weights.view(),
            false,
            m.view_mut(),
        );
        m.diag_mut().mapv_inplace(|v| v + self.mu_squared());
    }

    /// ln det K, via the hidden-side matrix.
    fn log_det_kernel(&self, hidden_log_det: f64) -> f64 {
        let free = self.n_visible() as f64 - self.n_hidden() as f64;
        free * self.mu_squared().ln() + hidden_log_det
    }

    /// Mean log-likelihood of a zero-mean target with covariance `target_cov`.
    pub fn log_likelihood(&self, target_cov: ArrayView2<'_, f64>) -> Result<f64> {
        let (_, hidden_log_det) = self.hidden_inverse_and_log_det()?;
        let s2 = self.sigma_h * self.sigma_h;
        let n = self.n_visible() as f64;
        // Tr(KC) = μ² Tr C − σ² Tr(Wᵀ C W)
        let projected = (&target_cov.dot(&self.weights) * &self.weights).sum();
        let trace = self.mu_squared() * target_cov.diag().sum() - s2 * projected;
        Ok(-0.5 * trace + 0.5 * self.log_det_kernel(hidden_log_det)
            - 0.5 * n * (2.0 * std::f64::consts::PI).ln())
    }

    /// Gradient given the target covariance and a model second moment ⟨φφᵀ⟩ (exact K⁻¹ or a
    /// chain estimate).
    pub fn gradient(
        &self,
        target_cov: ArrayView2<'_, f64>,
        model_moment: ArrayView2<'_, f64>,
    ) -> Gradient {
        let s2 = self.sigma_h * self.sigma_h;
        let difference = &target_cov - &model_moment;
        Gradient {
            weights: difference.dot(&self.weights) * s2,
            mu: -self.mu * difference.diag().sum(),
        }
    }

    /// Exact gradient, with the model moment K⁻¹ (applied through K⁻¹W = W M⁻¹).
    pub fn exact_gradient(&self, target_cov: ArrayView2<'_, f64>) -> Result<Gradient> {
        let (hidden_inverse, _) = self.hidden_inverse_and_log_det()?;
        let s2 = self.sigma_h * self.sigma_h;
        let free = self.n_visible() as f64 - self.n_hidden() as f64;
        let model_trace = hidden_inverse.diag().sum() + free / self.mu_squared();
        let weights = (target_cov.dot(&self.weights) - self.weights.dot(&hidden_inverse)) * s2;
        Ok(Gradient {
            weights,
            mu: -self.mu * (target_cov.diag().sum() - model_trace),
        })
    }

    /// The mean map of one Gibbs sweep, E[φ' | φ] = T φ with T = σ_h² W Wᵀ / μ² = 1 − K/μ².
    pub fn sweep_mean_map(&self) -> Array2<f64> {
        let s2 = self.sigma_h * self.sigma_h;
        self.weights.dot(&self.weights.t()) * (s2 / self.mu_squared())
    }

    /// One block-Gibbs sweep (h | φ, then φ | h) of every chain; rows of `chains` are φ.
    pub fn gibbs_sweep(&self, chains: &mut Array2<f64>, rng: &mut impl Rng) {
        let mut hidden = Array2::zeros((chains.nrows(), self.n_hidden()));
        self.gibbs_sweep_with(chains, &mut hidden, rng);
    }

    /// [`GaussianRbm::gibbs_sweep`] with the hidden layer held in `hidden` (chains × N_h), so
    /// that repeated sweeps allocate nothing. Normals are drawn for the hidden layer row by row,
    /// then for the visible layer row by row.
    pub fn gibbs_sweep_with(
        &self,
        chains: &mut Array2<f64>,
        hidden: &mut Array2<f64>,
        rng: &mut impl Rng,
    ) {
        let s2 = self.sigma_h * self.sigma_h;
        gemm(
            s2,
            chains.view(),
            self.weights.view(),
            false,
            hidden.view_mut(),
        );
        add_scaled_normals(hidden, self.sigma_h, rng);
        gemm(
            1.0 / self.mu_squared(),
            hidden.view(),
            self.weights.t(),
            false,
            chains.view_mut(),
        );
        add_scaled_normals(chains, 1.0 / self.mu, rng);
    }

    /// `n` chains started at φ = 1 (the authors' cold start), advanced by `sweeps` Gibbs sweeps.
    pub fn sample(&self, n: usize, sweeps: usize, rng: &mut impl Rng) -> Array2<f64> {
        let mut chains = Array2::ones((n, self.n_visible()));
        for _ in 0..sweeps {
            self.gibbs_sweep(&mut chains, rng);
        }
        chains
    }
}

/// a ← a + scale·ε with ε i.i.d. standard normal, in memory order.
fn add_scaled_normals(a: &mut Array2<f64>, scale: f64, rng: &mut impl Rng) {
    match a.as_slice_memory_order_mut() {
        Some(values) => normals::add_scaled(values, scale, rng),
        None => a
            .iter_mut()
            .for_each(|x| *x += scale * rng.sample::<f64, _>(StandardNormal)),
    }
}

/// Uncentred second moment ⟨φφᵀ⟩ over the rows of `fields`.
pub fn second_moment(fields: ArrayView2<'_, f64>) -> Array2<f64> {
    fields.t().dot(&fields) / fields.nrows() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::lattice::free_field_kernel;
    use approx::assert_abs_diff_eq;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn target_cov() -> Array2<f64> {
        spd_inverse_and_log_det(free_field_kernel(6, 4.0).view())
            .unwrap()
            .0
    }

    #[test]
    fn weight_gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let model = GaussianRbm::random(6, 4, 3.0, 0.8, 0.5, &mut rng);
        let c = target_cov();
        let grad = model.exact_gradient(c.view()).unwrap();
        let h = 1e-6;
        for i in 0..6 {
            for a in 0..4 {
                let mut plus = model.clone();
                plus.weights[[i, a]] += h;
                let mut minus = model.clone();
                minus.weights[[i, a]] -= h;
                let numeric = (plus.log_likelihood(c.view()).unwrap()
                    - minus.log_likelihood(c.view()).unwrap())
                    / (2.0 * h);
                assert_abs_diff_eq!(grad.weights[[i, a]], numeric, epsilon = 1e-8);
            }
        }
    }

    /// The push-through forms agree with the direct N_v × N_v inverse, for N_h below and above
    /// N_v.
    #[test]
    fn exact_quantities_match_the_direct_inverse() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let c = target_cov();
        for n_hidden in [2, 6, 9] {
            let model = GaussianRbm::random(6, n_hidden, 3.0, 0.9, 0.3, &mut rng);
            let (model_cov, log_det) = model.covariance_and_log_det().unwrap();
            let direct = model.gradient(c.view(), model_cov.view());
            let fast = model.exact_gradient(c.view()).unwrap();
            assert_abs_diff_eq!(fast.weights, direct.weights, epsilon = 1e-12);
            assert_abs_diff_eq!(fast.mu, direct.mu, epsilon = 1e-12);
            let k = model.kernel();
            let direct_ll =
                -0.5 * (&k * &c).sum() + 0.5 * log_det - 3.0 * (2.0 * std::f64::consts::PI).ln();
            assert_abs_diff_eq!(
                model.log_likelihood(c.view()).unwrap(),
                direct_ll,
                epsilon = 1e-12
            );
        }
    }

    #[test]
    fn mu_gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let model = GaussianRbm::random(6, 3, 2.7, 1.0, 0.4, &mut rng);
        let c = target_cov();
        let grad = model.exact_gradient(c.view()).unwrap();
        let h = 1e-6;
        let mut plus = model.clone();
        plus.mu += h;
        let mut minus = model.clone();
        minus.mu -= h;
        let numeric = (plus.log_likelihood(c.view()).unwrap()
            - minus.log_likelihood(c.view()).unwrap())
            / (2.0 * h);
        assert_abs_diff_eq!(grad.mu, numeric, epsilon = 1e-7);
    }

    /// k sweeps from a fixed φ₀ have mean T^k φ₀. Each component of the average over n chains
    /// has standard error √(Var/n) with Var ≤ the model variance; all must lie within five.
    #[test]
    fn gibbs_sweeps_have_the_mean_map_as_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let model = GaussianRbm::random(6, 3, 2.0, 0.8, 0.4, &mut rng);
        let start = ndarray::Array1::from(vec![1.0, -0.5, 2.0, 0.0, 0.3, -1.2]);
        let n = 40_000;
        let sweeps = 3;
        let mut chains = Array2::from_shape_fn((n, 6), |(_, i)| start[i]);
        for _ in 0..sweeps {
            model.gibbs_sweep(&mut chains, &mut rng);
        }
        let map = model.sweep_mean_map();
        let mut expected = start.clone();
        for _ in 0..sweeps {
            expected = map.dot(&expected);
        }
        let (cov, _) = model.covariance_and_log_det().unwrap();
        let mean = chains.mean_axis(ndarray::Axis(0)).unwrap();
        for i in 0..6 {
            let se = (cov[[i, i]] / n as f64).sqrt();
            assert!(
                (mean[i] - expected[i]).abs() < 5.0 * se,
                "component {i}: {} vs {} (se {se})",
                mean[i],
                expected[i]
            );
        }
    }

    #[test]
    fn gibbs_samples_have_the_model_covariance() {
        // Each entry of the sample moment of n independent Gaussian draws has standard error
        // sqrt((C_ii C_jj + C_ij²)/n); every entry must lie within five of them.
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let model = GaussianRbm::random(5, 5, 2.0, 1.0, 0.3, &mut rng);
        let (cov, _) = model.covariance_and_log_det().unwrap();
        let n = 20_000;
        let samples = model.sample(n, 60, &mut rng);
        let moment = second_moment(samples.view());
        for i in 0..5 {
            for j in 0..5 {
                let se = ((cov[[i, i]] * cov[[j, j]] + cov[[i, j]].powi(2)) / n as f64).sqrt();
                assert!(
                    (moment[[i, j]] - cov[[i, j]]).abs() < 5.0 * se,
                    "entry ({i},{j}): sampled {} vs exact {} (se {se})",
                    moment[[i, j]],
                    cov[[i, j]]
                );
            }
        }
    }
}
