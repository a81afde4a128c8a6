//! Stochastic motion of the Gaussian RBM along its orbit of minima: one plain-SGD update with a
//! noisy gradient from each of four estimators, the orbit angle between two weight matrices, and
//! the first-principles predictions of both the orbit diffusion rate and the stationary noise of
//! K that each estimator implies.
//!
//! Every estimator's exact part is ∇_W L = σ²(C_t − K⁻¹)W. The authors' PCD estimator and the
//! same with independent samples replace K⁻¹ by a sample covariance Ĉ, so their step is G·W
//! with G = σ²(C_t − Ĉ) *symmetric*: for any antisymmetric A, ⟨WA, GW⟩ = Tr(AᵀWᵀGW) = 0, so a
//! single step is orthogonal to the orbit {WR} and the Procrustes rotation between W and
//! (1 + αG)W is exactly the identity (Wᵀ(1 + αG)W is symmetric positive definite). Rotation
//! appears only at second order, as the area swept by successive non-commuting steps:
//! ½α²[G_j, G_i] with G ~ |B|^{-½} per step and the accumulated stretch ~ (α/|B|)^{½}, so the
//! mean squared angle grows by O(α³/|B|²) per update. The estimator that samples the hidden
//! units, ⟨φhᵀ⟩ with h = σ²Wᵀφ + σζ, and isotropic noise added to the update both have a
//! tangent component at first order: O(α²/|B|) per update, with a closed-form prefactor
//! ([`tangent_rate`]).

use ndarray::{Array1, Array2, ArrayView2};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use super::{GaussianRbm, second_moment};
use crate::error::{Error, Result};
use crate::linalg::{cholesky_lower, determinant, procrustes, symmetric_eigenvalues};

/// Where the noise of one update comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NoiseSource {
    /// The authors': exact positive phase minus the sample covariance of persistent chains
    /// advanced by `gibbs_steps` block-Gibbs sweeps per update.
    Pcd { gibbs_steps: usize },
    /// The same with |B| fresh exact samples of the current model each update.
    Independent,
    /// σ²C_tW − ⟨φhᵀ⟩ over |B| fresh exact samples φ and hidden units drawn given them.
    SampledHidden,
    /// The exact gradient plus N(0, scale²/|B|) on every weight (so the update's noise is
    /// α·scale/√|B| per entry).
    Isotropic { scale: f64 },
}

impl NoiseSource {
    /// Whether one update is G·W with G symmetric, orthogonal to the orbit (the sample-covariance
    /// estimators), so that rotation starts at second order.
    pub fn step_is_orthogonal(self) -> bool {
        matches!(self, NoiseSource::Pcd { .. } | NoiseSource::Independent)
    }
}

/// The relaxation rate per unit α of the kernel in a learned mode with target eigenvalue κ,
/// γ = 2σ²(μ² − κ)/κ² (the exact flow linearised; also the mode's radial Hessian eigenvalue).
pub fn kernel_relaxation_rate(kappa: f64, mu_squared: f64, sigma_h: f64) -> f64 {
    2.0 * sigma_h * sigma_h * (mu_squared - kappa) / (kappa * kappa)
}

/// The slowest of [`kernel_relaxation_rate`] over the first `n_hidden` (learned) modes.
pub fn slowest_kernel_rate(kappa: &[f64], mu_squared: f64, sigma_h: f64, n_hidden: usize) -> f64 {
    kappa
        .iter()
        .take(n_hidden)
        .map(|&k| kernel_relaxation_rate(k, mu_squared, sigma_h))
        .fold(f64::INFINITY, f64::min)
}

/// One replica of plain SGD (no momentum, decay or weight decay; μ fixed).
pub struct Walker {
    pub model: GaussianRbm,
    source: NoiseSource,
    batch: usize,
    rate: f64,
    /// |B| × N_v persistent chains (PCD only).
    chains: Option<Array2<f64>>,
}

/// |B| exact draws φ ~ N(0, K⁻¹) as rows.
fn exact_samples(model: &GaussianRbm, batch: usize, rng: &mut impl Rng) -> Result<Array2<f64>> {
    let (covariance, _) = model.covariance_and_log_det()?;
    let lower = cholesky_lower(covariance.view())?;
    let z = Array2::from_shape_simple_fn((batch, model.n_visible()), || {
        rng.sample::<f64, _>(StandardNormal)
    });
    Ok(z.dot(&lower.t()))
}

impl Walker {
    /// A walker at `model`; persistent chains start from exact samples of it, so that they need
    /// no burn-in of their own.
    pub fn new(
        model: GaussianRbm,
        source: NoiseSource,
        batch: usize,
        rate: f64,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let chains = match source {
            NoiseSource::Pcd { .. } => Some(exact_samples(&model, batch, rng)?),
            _ => None,
        };
        Ok(Self {
            model,
            source,
            batch,
            rate,
            chains,
        })
    }

    /// The noisy gradient of the mean log-likelihood at the current weights.
    fn gradient(&mut self, target: ArrayView2<'_, f64>, rng: &mut impl Rng) -> Result<Array2<f64>> {
        let model = &self.model;
        let s2 = model.sigma_h * model.sigma_h;
        Ok(match self.source {
            NoiseSource::Pcd { gibbs_steps } => {
                let chains = self.chains.as_mut().expect("PCD walkers hold chains");
                for _ in 0..gibbs_steps {
                    model.gibbs_sweep(chains, rng);
                }
                model
                    .gradient(target, second_moment(chains.view()).view())
                    .weights
            }
            NoiseSource::Independent => {
                let samples = exact_samples(model, self.batch, rng)?;
                model
                    .gradient(target, second_moment(samples.view()).view())
                    .weights
            }
            NoiseSource::SampledHidden => {
                let phi = exact_samples(model, self.batch, rng)?;
                let mut hidden = phi.dot(&model.weights) * s2;
                hidden.mapv_inplace(|m| m + model.sigma_h * rng.sample::<f64, _>(StandardNormal));
                target.dot(&model.weights) * s2 - phi.t().dot(&hidden) / self.batch as f64
            }
            NoiseSource::Isotropic { scale } => {
                let spread = scale / (self.batch as f64).sqrt();
                let mut g = model.exact_gradient(target)?.weights;
                g.mapv_inplace(|v| v + spread * rng.sample::<f64, _>(StandardNormal));
                g
            }
        })
    }

    /// One update W ← W + α·ĝ; `update` numbers the error if the weights stop being finite or K
    /// leaves the positive-definite domain.
    pub fn step(
        &mut self,
        target: ArrayView2<'_, f64>,
        update: usize,
        rng: &mut impl Rng,
    ) -> Result<()> {
        let lost = |what: &str| Error::Numerical {
            what: what.to_string(),
            update,
        };
        let g = self
            .gradient(target, rng)
            .map_err(|_| lost("the kernel K = μ² − σ²WWᵀ is not positive definite"))?;
        self.model.weights.scaled_add(self.rate, &g);
        if self.model.weights.iter().any(|w| !w.is_finite()) {
            return Err(lost("non-finite weights (NaN/Inf)"));
        }
        if self.model.hidden_inverse_and_log_det().is_err() {
            return Err(lost(
                "the kernel K = μ² − σ²WWᵀ lost positive definiteness (learning rate too large)",
            ));
        }
        Ok(())
    }
}

/// ½‖log R‖²_F for the orthogonal Procrustes rotation R that best maps `from` onto `to`
/// (minimising ‖from·R − to‖_F): the squared geodesic distance on SO(N_h) of the motion along
/// the orbit, Σ_k θ_k² over R's rotation angles. The angles come from the eigenvalues 2cos θ_k
/// of the symmetric R + Rᵀ. `None` if R is a reflection: a continuous walk on one connected
/// orbit produces one only once an angle has passed π, where the nearest map is ambiguous.
pub fn orbit_angle_squared(
    from: ArrayView2<'_, f64>,
    to: ArrayView2<'_, f64>,
) -> Result<Option<f64>> {
    // procrustes(a, b) minimises ‖R a − b‖; with a = fromᵀ, b = toᵀ it returns Rᵀ.
    let r = procrustes(from.t(), to.t())?;
    rotation_angle_squared(r.view())
}

/// ½‖log R‖²_F of a proper rotation R. With every angle at most π/2 (all 2cos θ ≥ 0) the
/// angles come from the eigenvalues sin²θ_k of SᵀS, S = (R − Rᵀ)/2, which keep their relative
/// precision for tiny rotations (2cos θ rounds to 2 below θ ~ 1e-8); otherwise from arccos.
pub fn rotation_angle_squared(r: ArrayView2<'_, f64>) -> Result<Option<f64>> {
    if determinant(r) < 0.0 {
        return Ok(None);
    }
    let symmetric = &r + &r.t();
    let doubled_cosines = symmetric_eigenvalues(symmetric.view())?;
    // Each angle appears twice among the eigenvalues (once per member of its 2-plane).
    if doubled_cosines.iter().all(|&c| c >= 0.0) {
        let skew = (&r - &r.t()) * 0.5;
        let sines_squared = symmetric_eigenvalues(skew.t().dot(&skew).view())?;
        return Ok(Some(
            sines_squared
                .iter()
                .map(|s| 0.5 * s.clamp(0.0, 1.0).sqrt().asin().powi(2))
                .sum(),
        ));
    }
    Ok(Some(
        doubled_cosines
            .iter()
            .map(|c| 0.5 * (0.5 * c).clamp(-1.0, 1.0).acos().powi(2))
            .sum(),
    ))
}

/// The squared singular values x_a = ξ_a² of W at a full-rank minimum, σ²x_a = μ² − κ_a.
pub fn learned_xi_squared(
    kappa: &[f64],
    mu_squared: f64,
    sigma_h: f64,
    n_hidden: usize,
) -> Vec<f64> {
    kappa[..n_hidden]
        .iter()
        .map(|k| (mu_squared - k) / (sigma_h * sigma_h))
        .collect()
}

/// Leading-order growth of ½‖log R‖² per update at a minimum where every hidden unit is learned
/// (x_a = ξ_a² > 0), for the estimators with a first-order tangent component; `None` for those
/// whose step is orthogonal to the orbit (PCD, independent samples), where it starts at O(α³).
///
/// A tangent perturbation δ of W rotates it by A with A_ab = (Y_ab − Y_ba)/(x_a + x_b),
/// Y = Wᵀδ in W's singular basis; ½‖A‖² = Σ_{a<b} A_ab². Isotropic noise of variance
/// v = (α·scale)²/|B| per entry gives E[A_ab²] = v/(x_a + x_b). Sampled hidden units give
/// δ = −(ασ/|B|) Σ φζᵀ with Var((Wᵀφ)_a) = x_a/κ_a, so E[A_ab²] = α²σ²(x_a/κ_a + x_b/κ_b) /
/// (|B|(x_a + x_b)²).
pub fn tangent_rate(
    source: NoiseSource,
    xi_squared: &[f64],
    kappa: &[f64],
    sigma_h: f64,
    rate: f64,
    batch: usize,
) -> Option<f64> {
    let b = batch as f64;
    let n = xi_squared.len();
    let pairs = (0..n).flat_map(|a| (a + 1..n).map(move |c| (a, c)));
    match source {
        NoiseSource::Pcd { .. } | NoiseSource::Independent => None,
        NoiseSource::Isotropic { scale } => {
            let v = (rate * scale).powi(2) / b;
            Some(
                pairs
                    .map(|(a, c)| v / (xi_squared[a] + xi_squared[c]))
                    .sum(),
            )
        }
        NoiseSource::SampledHidden => {
            let v = (rate * sigma_h).powi(2) / b;
            Some(
                pairs
                    .map(|(a, c)| {
                        let (xa, xc) = (xi_squared[a], xi_squared[c]);
                        v * (xa / kappa[a] + xc / kappa[c]) / (xa + xc).powi(2)
                    })
                    .sum(),
            )
        }
    }
}

/// Predicted exponents (p_α, p_B) of the orbit diffusion rate ∝ α^{p_α} |B|^{p_B}.
pub fn rate_exponents(source: NoiseSource) -> (f64, f64) {
    if source.step_is_orthogonal() {
        (3.0, -2.0)
    } else {
        (2.0, -1.0)
    }
}

/// Stationary variance of v_aᵀKv_a (a target eigenmode with eigenvalue κ at a learned minimum)
/// under each estimator, from the linearised update of the kernel in that mode:
/// δ' = (1 − r)δ + η with r = 2ασ²(μ² − κ)/κ², and η the estimator's noise, white except for
/// PCD chains, whose φ_a² keep a correlation c = ρ^{2k} from one update to the next
/// (ρ = (μ² − κ)/μ², the Gibbs mean map's eigenvalue). For an AR(1) filter φ = 1 − r of AR(1)
/// noise, Var = q(1 + φc)/((1 − φ²)(1 − φc)). The noise variances q per update: sample
/// covariances 8α²σ⁴x²/(κ²|B|) with σ²x = μ² − κ (the variance of ⟨φ_a²⟩ is 2/(κ²|B|));
/// sampled hidden units add 4α²σ⁶x/(κ|B|); isotropic noise gives 4α²σ⁴ scale² x/|B|.
/// In a degenerate ± pair the off-diagonal element has half this variance, the Gaussian
/// orthogonal ensemble of a 2 × 2 block, whose level spacing is the β = 1 Wigner surmise with
/// mean √(π·Var).
pub fn kernel_noise_variance(
    source: NoiseSource,
    kappa: f64,
    mu_squared: f64,
    sigma_h: f64,
    rate: f64,
    batch: usize,
) -> f64 {
    let s2 = sigma_h * sigma_h;
    let x = (mu_squared - kappa) / s2;
    let b = batch as f64;
    let r = 2.0 * rate * s2 * s2 * x / (kappa * kappa);
    let sampled = 8.0 * rate * rate * s2 * s2 * x * x / (kappa * kappa * b);
    let (q, c) = match source {
        NoiseSource::Pcd { gibbs_steps } => {
            let rho = (mu_squared - kappa) / mu_squared;
            (sampled, rho.powi(2 * gibbs_steps as i32))
        }
        NoiseSource::Independent => (sampled, 0.0),
        NoiseSource::SampledHidden => (
            sampled + 4.0 * rate * rate * s2 * s2 * s2 * x / (kappa * b),
            0.0,
        ),
        NoiseSource::Isotropic { scale } => {
            (4.0 * rate * rate * s2 * s2 * scale * scale * x / b, 0.0)
        }
    };
    let phi = 1.0 - r;
    q * (1.0 + phi * c) / ((1.0 - phi * phi) * (1.0 - phi * c))
}

/// The β = 1 Wigner surmise for spacings of unit mean, P(s) = (πs/2)·exp(−πs²/4).
pub fn wigner_surmise(s: f64) -> f64 {
    use std::f64::consts::PI;
    0.5 * PI * s * (-0.25 * PI * s * s).exp()
}

/// The Procrustes mean squared angle of one replica: for each lag ℓ (in snapshots), the mean of
/// ½‖log R‖² between snapshots t and t + ℓ over at most `max_origins` origins t spaced
/// max(1, ℓ/`origins_per_lag`) apart (closer origins add almost nothing but cost). A lag at
/// which some pair is related by a reflection (the walk went so far that an angle passed π and
/// the best orthogonal map flipped) is NaN, and so is every longer lag.
pub fn mean_squared_angle(
    snapshots: &[Array2<f64>],
    lags: &[usize],
    origins_per_lag: usize,
    max_origins: usize,
) -> Result<Array1<f64>> {
    let mut msa = Array1::<f64>::from_elem(lags.len(), f64::NAN);
    'lags: for (k, &lag) in lags.iter().enumerate() {
        if lag >= snapshots.len() {
            break;
        }
        let span = snapshots.len() - lag;
        let stride = (lag / origins_per_lag.max(1))
            .max(1)
            .max(span.div_ceil(max_origins.max(1)));
        let mut total = 0.0;
        let mut count = 0usize;
        let mut t = 0;
        while t < span {
            match orbit_angle_squared(snapshots[t].view(), snapshots[t + lag].view())? {
                Some(angle) => total += angle,
                None => break 'lags,
            }
            count += 1;
            t += stride;
        }
        msa[k] = total / count as f64;
    }
    Ok(msa)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::lattice::{free_field_kernel, free_field_modes};
    use crate::linalg::spd_inverse_and_log_det;
    use crate::models::rbm::hessian::{FixedPointLayout, haar_orthogonal};
    use approx::assert_abs_diff_eq;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// exp(A) of a small antisymmetric A (‖A‖ ≲ 0.5) by its Taylor series to rounding, re-polished
    /// onto the orthogonal group.
    fn small_rotation(a: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let n = a.nrows();
        let mut sum = Array2::<f64>::eye(n);
        let mut term = Array2::<f64>::eye(n);
        for k in 1..30 {
            term = term.dot(&a) / k as f64;
            sum += &term;
            if term.iter().all(|v| v.abs() < 1e-18) {
                break;
            }
        }
        procrustes(Array2::<f64>::eye(n).view(), sum.view())
    }

    fn random_antisymmetric(n: usize, spread: f64, rng: &mut ChaCha8Rng) -> Array2<f64> {
        let mut a = Array2::<f64>::zeros((n, n));
        for i in 0..n {
            for j in i + 1..n {
                let v = spread * rng.sample::<f64, _>(StandardNormal);
                a[[i, j]] = v;
                a[[j, i]] = -v;
            }
        }
        a
    }

    /// A minimum of the free-field target with every hidden unit learned.
    fn minimum(n: usize, mu2: f64, rng: &mut ChaCha8Rng) -> (GaussianRbm, Array2<f64>) {
        let (kappa, modes) = free_field_modes(n, 4.0);
        let layout = FixedPointLayout::stable(kappa.as_slice().unwrap(), n, mu2, 1.0, false);
        let rotation = haar_orthogonal(n, rng);
        let (weights, _) = layout.weights(modes.view(), rotation.view(), 0.3).unwrap();
        let (c, _) = spd_inverse_and_log_det(free_field_kernel(n, 4.0).view()).unwrap();
        (
            GaussianRbm {
                weights,
                mu: mu2.sqrt(),
                sigma_h: 1.0,
            },
            c,
        )
    }

    /// The angle of a known rotation: a rotation by θ in one plane and φ in another gives θ² + φ².
    #[test]
    fn the_angle_of_a_planted_rotation_is_recovered() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let w = Array2::from_shape_simple_fn((7, 5), || rng.sample::<f64, _>(StandardNormal));
        let (t1, t2) = (0.4_f64, 2.5_f64);
        // 2.5 > π/2 takes the arccos branch; a second check below takes the sine branch.
        let mut r = Array2::<f64>::eye(5);
        r[[0, 0]] = t1.cos();
        r[[0, 1]] = -t1.sin();
        r[[1, 0]] = t1.sin();
        r[[1, 1]] = t1.cos();
        r[[2, 2]] = t2.cos();
        r[[2, 4]] = -t2.sin();
        r[[4, 2]] = t2.sin();
        r[[4, 4]] = t2.cos();
        let moved = w.dot(&r);
        let angle = orbit_angle_squared(w.view(), moved.view())
            .unwrap()
            .unwrap();
        assert_abs_diff_eq!(angle, t1 * t1 + t2 * t2, epsilon = 1e-10);
        let tiny = 1e-9_f64;
        let mut r = Array2::<f64>::eye(5);
        r[[1, 1]] = tiny.cos();
        r[[1, 3]] = -tiny.sin();
        r[[3, 1]] = tiny.sin();
        r[[3, 3]] = tiny.cos();
        let angle = orbit_angle_squared(w.view(), w.dot(&r).view())
            .unwrap()
            .unwrap();
        assert!((angle / (tiny * tiny) - 1.0).abs() < 1e-4, "{angle:e}");
    }

    /// One step of a symmetric-G estimator is orthogonal to the orbit: its Procrustes rotation is
    /// the identity to rounding, while an isotropic step of the same size rotates W.
    #[test]
    fn a_sample_covariance_step_does_not_rotate_the_weights() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (model, c) = minimum(10, 9.0, &mut rng);
        for source in [
            NoiseSource::Independent,
            NoiseSource::Pcd { gibbs_steps: 1 },
        ] {
            let mut walker = Walker::new(model.clone(), source, 4, 0.2, &mut rng).unwrap();
            walker.step(c.view(), 1, &mut rng).unwrap();
            let moved = (&walker.model.weights - &model.weights)
                .mapv(|v| v * v)
                .sum();
            assert!(moved > 1e-4, "the step moved W by {moved}");
            let angle = orbit_angle_squared(model.weights.view(), walker.model.weights.view())
                .unwrap()
                .unwrap();
            assert!(
                angle < 1e-24,
                "{source:?}: one step rotated by ½‖log R‖² = {angle}"
            );
        }
        let mut walker =
            Walker::new(model.clone(), NoiseSource::SampledHidden, 4, 0.2, &mut rng).unwrap();
        walker.step(c.view(), 1, &mut rng).unwrap();
        let angle = orbit_angle_squared(model.weights.view(), walker.model.weights.view())
            .unwrap()
            .unwrap();
        assert!(
            angle > 1e-6,
            "sampled hidden units rotate at first order: {angle}"
        );
    }

    /// Brownian motion R(n+1) = R(n)·exp(A_n) on SO(n) with i.i.d. N(0, s²) generators above the
    /// diagonal has E[½‖log R(n)‖²] = n·s²·N(N−1)/2 at small angles. Applied to a fixed W, the
    /// slope of the Procrustes MSA over independent replicas lies within four of its standard
    /// errors; the O(θ⁴) curvature of the group is below 1 % at the largest lag used.
    #[test]
    fn procrustes_msa_recovers_the_rate_of_a_planted_brownian_motion() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (n_visible, n) = (8, 6);
        let spread = 0.004;
        let rate = spread * spread * (n * (n - 1) / 2) as f64;
        let w =
            Array2::from_shape_simple_fn((n_visible, n), || rng.sample::<f64, _>(StandardNormal));
        let lags: Vec<usize> = vec![10, 20, 40, 80];
        let replicas = 24;
        let steps = 400;
        let mut slopes = Vec::new();
        for _ in 0..replicas {
            let mut r = Array2::<f64>::eye(n);
            let mut snapshots = vec![w.clone()];
            for _ in 0..steps {
                let step =
                    small_rotation(random_antisymmetric(n, spread, &mut rng).view()).unwrap();
                r = r.dot(&step);
                snapshots.push(w.dot(&r));
            }
            let msa = mean_squared_angle(&snapshots, &lags, 8, 1000).unwrap();
            let x: Vec<f64> = lags.iter().map(|&l| l as f64).collect();
            let (slope, _) =
                crate::analysis::stats::least_squares_line(&x, msa.as_slice().unwrap());
            slopes.push(slope);
        }
        let mean = slopes.iter().sum::<f64>() / replicas as f64;
        let sd =
            (slopes.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (replicas - 1) as f64).sqrt();
        let se = sd / (replicas as f64).sqrt();
        assert!(
            (mean - rate).abs() < 4.0 * se,
            "slope {mean:e} ± {se:e} against the planted rate {rate:e}"
        );
        assert!(
            se < 0.1 * rate,
            "the test cannot fail: se {se:e} vs rate {rate:e}"
        );
    }

    /// The tangent rate of isotropic noise against a direct Monte Carlo of one small step.
    #[test]
    fn the_isotropic_tangent_rate_matches_one_step_monte_carlo() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (model, c) = minimum(6, 9.0, &mut rng);
        let (kappa, _) = free_field_modes(6, 4.0);
        let xi2 = learned_xi_squared(kappa.as_slice().unwrap(), 9.0, 1.0, 6);
        let (scale, rate, batch) = (0.01, 1.0, 1);
        let predicted = tangent_rate(
            NoiseSource::Isotropic { scale },
            &xi2,
            kappa.as_slice().unwrap(),
            1.0,
            rate,
            batch,
        )
        .unwrap();
        let draws = 4000;
        let mut values = Vec::with_capacity(draws);
        for _ in 0..draws {
            let noise = Array2::from_shape_simple_fn(model.weights.raw_dim(), || {
                scale * rng.sample::<f64, _>(StandardNormal)
            });
            let moved = &model.weights + &noise;
            values.push(
                orbit_angle_squared(model.weights.view(), moved.view())
                    .unwrap()
                    .unwrap(),
            );
        }
        let _ = c;
        let mean = values.iter().sum::<f64>() / draws as f64;
        let sd =
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (draws - 1) as f64).sqrt();
        let se = sd / (draws as f64).sqrt();
        assert!(
            (mean - predicted).abs() < 4.0 * se,
            "one-step MSA {mean:e} ± {se:e} against {predicted:e}"
        );
    }

    /// The Wigner surmise is a normalised density of unit mean.
    #[test]
    fn the_wigner_surmise_has_unit_mass_and_mean() {
        let h = 1e-3;
        let (mut mass, mut mean) = (0.0, 0.0);
        for k in 0..20_000 {
            let s = (k as f64 + 0.5) * h;
            mass += wigner_surmise(s) * h;
            mean += s * wigner_surmise(s) * h;
        }
        // The midpoint rule errs by O(h²) ~ 1e-7.
        assert_abs_diff_eq!(mass, 1.0, epsilon = 1e-6);
        assert_abs_diff_eq!(mean, 1.0, epsilon = 1e-6);
    }
}
