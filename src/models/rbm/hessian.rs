//! The curvature of the Gaussian RBM's loss: the analytic Hessian of the negative mean
//! log-likelihood in the weights (and μ² when it is trained), its spectrum in closed form at the
//! fixed points of a target whose spectrum is known, and those fixed points built exactly.
//!
//! With the loss ℒ = −L = ½ Tr(K C) − ½ ln det K + const, K = μ² − σ² W Wᵀ and G = C − K⁻¹,
//! the gradient is ∇_W ℒ = −σ² G W, ∂ℒ/∂μ² = ½ Tr G, and the Hessian acts on a direction E as
//!
//!   H[E] = −σ² G E + σ⁴ K⁻¹ (E Wᵀ + W Eᵀ) K⁻¹ W,   ∂²ℒ/∂μ²∂W = −σ² K⁻² W,   ∂²ℒ/∂(μ²)² = ½ Tr K⁻².
//!
//! At a fixed point W = Σ_{a∈S} ξ_a u_a r_aᵀ (u_a the target's eigenvectors, σ²ξ_a² = μ² − κ_a
//! for the learned set S of r modes, r_a orthonormal in hidden space) the Hessian is
//! block-diagonal in the basis E = u_a r_jᵀ (r_j completing r_a to a basis of R^{N_h}):
//!
//! - a = d ∈ S: γ_a = 2σ²(μ² − κ_a)/κ_a², the linear relaxation rate of mode a (rbm-scalar);
//! - a ≠ d, both in S: a 2 × 2 block of rank one, eigenvalues 0 (the rotation of r_a into r_d)
//!   and σ²(2μ² − κ_a − κ_d)/(κ_a κ_d);
//! - a ∈ S, j a null hidden direction: 0 (the rotation of r_a into the null space);
//! - a ∉ S, d ∈ S: σ²(1/κ_d − 1/κ_a), zero when a and d are the two halves of a ± momentum
//!   pair that N_h cuts (which direction of the degenerate plane is learned is free);
//! - a ∉ S, j null: σ²(1/μ² − 1/κ_a), zero only for κ_a = μ².
//!
//! With μ² trained the diagonal entries γ_a and μ² form one bordered block, which has an extra
//! zero exactly when every mode is learned (r = N_v): raising μ² and every σ²ξ_a² together
//! leaves K unchanged. The O(N_h) zeros number dim O(N_h) − dim O(N_h − r), the dimension of the
//! orbit (the stabiliser O(N_h − r) rotates the null directions and moves nothing).

use ndarray::{Array1, Array2, ArrayView2, s};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use super::GaussianRbm;
use crate::error::{Error, Result};
use crate::linalg::symmetric_eigenvalues;

/// Two target eigenvalues closer than this (relative) are one degenerate level.
const DEGENERATE: f64 = 1e-12;

/// The loss gradient (∇_W ℒ, ∂ℒ/∂μ²) of ℒ = −L.
pub fn loss_gradient(
    model: &GaussianRbm,
    target_cov: ArrayView2<'_, f64>,
) -> Result<(Array2<f64>, f64)> {
    let g = model.exact_gradient(target_cov)?;
    // ∂L/∂μ = 2μ ∂L/∂μ².
    Ok((-g.weights, -g.mu / (2.0 * model.mu)))
}

/// The analytic Hessian of ℒ in the coordinates W (row-major: index i·N_h + a), then μ² when
/// `with_mu`. Symmetrised (the two halves agree to rounding).
pub fn loss_hessian(
    model: &GaussianRbm,
    target_cov: ArrayView2<'_, f64>,
    with_mu: bool,
) -> Result<Array2<f64>> {
    let (nv, nh) = model.weights.dim();
    let w = &model.weights;
    let s2 = model.sigma_h * model.sigma_h;
    let (kinv, _) = model.covariance_and_log_det()?;
    let g = &target_cov - &kinv;
    let kinv_w = kinv.dot(w);
    let n = nv * nh + usize::from(with_mu);
    let mut h = Array2::zeros((n, n));
    let mut e = Array2::<f64>::zeros((nv, nh));
    for i in 0..nv {
        for a in 0..nh {
            e[[i, a]] = 1.0;
            let sym = e.dot(&w.t()) + w.dot(&e.t());
            let column = g.dot(&e) * (-s2) + kinv.dot(&sym).dot(&kinv_w) * (s2 * s2);
            h.slice_mut(s![..nv * nh, i * nh + a])
                .assign(&Array1::from_iter(column.iter().copied()));
            e[[i, a]] = 0.0;
        }
    }
    if with_mu {
        let cross = kinv.dot(&kinv_w) * (-s2);
        let last = nv * nh;
        for (k, v) in cross.iter().enumerate() {
            h[[k, last]] = *v;
            h[[last, k]] = *v;
        }
        h[[last, last]] = 0.5 * kinv.dot(&kinv).diag().sum();
    }
    let symmetric = (&h + &h.t()) * 0.5;
    Ok(symmetric)
}

/// Adds the penalty ½ Σ_j ρ_j ‖w_j‖² to a loss gradient in W: + ρ_j w_j.
pub fn add_penalty_gradient(gradient: &mut Array2<f64>, weights: &Array2<f64>, penalty: &[f64]) {
    for (j, rho) in penalty.iter().enumerate() {
        gradient.column_mut(j).scaled_add(*rho, &weights.column(j));
    }
}

/// Adds the penalty ½ Σ_j ρ_j ‖w_j‖² to a loss Hessian in W (row-major coordinates): + ρ_j on
/// the diagonal of every coordinate of unit j.
pub fn add_penalty_hessian(hessian: &mut Array2<f64>, n_hidden: usize, penalty: &[f64]) {
    let n = hessian.nrows() - hessian.nrows() % n_hidden;
    for k in 0..n {
        hessian[[k, k]] += penalty[k % n_hidden];
    }
}

/// The smallest eigenvalue of a closed-form spectrum that is not flat (∞ if all are): the gap a
/// zero count must be separated from.
pub fn smallest_curved(spectrum: &[PredictedEigenvalue]) -> f64 {
    spectrum
        .iter()
        .filter(|p| !p.direction.is_flat())
        .map(|p| p.value)
        .fold(f64::INFINITY, f64::min)
}

/// The scale at which a flat direction of a measured spectrum can look curved: rounding,
/// n·ε·max|h|, or the gradient norm of a point that is not exactly stationary.
pub fn noise_scale(eigenvalues: &[f64], gradient_norm: f64) -> f64 {
    let largest = eigenvalues.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    gradient_norm.max(eigenvalues.len() as f64 * f64::EPSILON * largest)
}

/// What an eigenvalue of the closed-form spectrum is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A rotation of the hidden units, W → W e^A: the broken O(N_h).
    Orbit,
    /// The learned direction turning inside a degenerate target level that N_h cuts.
    DegenerateLevel,
    /// μ² raised with every ξ_a² (K unchanged): only when every mode is learned.
    MassShift,
    /// A change of a learned singular value ξ_a (with μ² trained: mixed with μ²).
    Radial,
    /// The non-zero partner of an orbit direction between two learned modes.
    PairShear,
    /// An unlearned target mode entering a learned hidden direction.
    Leak,
    /// An unlearned target mode entering a null hidden direction.
    Unlearned,
    /// An orbit direction lifted by a penalty that breaks the hidden rotations.
    PseudoGoldstone,
}

impl Direction {
    /// Whether the closed form makes this direction exactly flat.
    pub fn is_flat(self) -> bool {
        matches!(
            self,
            Direction::Orbit | Direction::DegenerateLevel | Direction::MassShift
        )
    }
}

/// One eigenvalue of the closed-form Hessian spectrum.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PredictedEigenvalue {
    pub value: f64,
    pub direction: Direction,
}

/// A fixed point of the flow for a target with spectrum `kappa` (ascending): the first
/// `learned` modes are learned by `n_hidden` hidden units at visible mass μ², hidden unit a
/// learning mode a. With a quadratic penalty ½ Σ_j ρ_j ‖w_j‖² on the hidden units' weight
/// vectors (ρ_j = 2ε c_j for the weighted L2 penalty ε Σ c_j ‖w_j‖²; all ρ_j equal for the
/// uniform one) stationarity moves a learned mode to λ_a = 1/(1/κ_a − ρ_a/σ²) > κ_a, and
/// the blocks of the Hessian become (b = σ⁴/(λ_a λ_d), δ = ρ_d − ρ_a):
///
/// - radial: 2σ²(μ² − λ_a)/λ_a²;
/// - learned pair: [[δ + bξ_d², bξ_aξ_d], [bξ_aξ_d, −δ + bξ_a²]], determinant
///   δ(b(ξ_a² − ξ_d²) − δ) = δ σ²(1/κ_a − 1/κ_d): zero for δ = 0 (the orbit) and for a ± pair
///   (the visible O(2) of a degenerate level survives every penalty on hidden units);
///   otherwise a pseudo-Goldstone mass, to first order δ(κ_d − κ_a)/(2μ² − κ_a − κ_d);
/// - learned a, null unit j: ρ_j − ρ_a;
/// - unlearned a, learned unit d: σ²(1/κ_d − 1/κ_a), unchanged;
/// - unlearned a, null unit j: σ²(1/μ² − 1/κ_a) + ρ_j.
#[derive(Clone, Debug)]
pub struct FixedPointLayout {
    pub kappa: Vec<f64>,
    pub learned: usize,
    pub n_hidden: usize,
    pub mu_squared: f64,
    pub sigma_h: f64,
    /// μ² is a coordinate of the Hessian.
    pub with_mu: bool,
    /// ρ_j of the penalty ½ Σ_j ρ_j ‖w_j‖², one per hidden unit (all zero: no penalty).
    pub penalty: Vec<f64>,
}

impl FixedPointLayout {
    /// The stable fixed point: the min(N_h, #{κ_a < μ²}) smallest κ are learned.
    pub fn stable(
        kappa: &[f64],
        n_hidden: usize,
        mu_squared: f64,
        sigma_h: f64,
        with_mu: bool,
    ) -> Self {
        let learnable = kappa.iter().filter(|&&k| k < mu_squared).count();
        Self {
            kappa: kappa.to_vec(),
            learned: learnable.min(n_hidden),
            n_hidden,
            mu_squared,
            sigma_h,
            with_mu,
            penalty: vec![0.0; n_hidden],
        }
    }

    /// The same layout under the penalty ½ Σ_j ρ_j ‖w_j‖². Stable when ρ is ascending (the
    /// strongest modes on the least penalised units, the null units most penalised) and every
    /// learned mode stays learned (ρ_a < σ²(1/κ_a − 1/μ²)); an error otherwise.
    pub fn penalised(mut self, penalty: Vec<f64>) -> Result<Self> {
        if penalty.len() != self.n_hidden || self.with_mu {
            return Err(Error::Other(format!(
                "a penalty needs one ρ per hidden unit ({} given for {}) and μ² fixed",
                penalty.len(),
                self.n_hidden
            )));
        }
        if penalty.windows(2).any(|w| w[1] < w[0]) || penalty.iter().any(|r| r.is_nan() || *r < 0.0)
        {
            return Err(Error::Other(format!(
                "penalty coefficients must be ≥ 0 and ascending, got {penalty:?}"
            )));
        }
        let s2 = self.sigma_h * self.sigma_h;
        for (a, (rho, kappa)) in penalty
            .iter()
            .zip(&self.kappa)
            .take(self.learned)
            .enumerate()
        {
            if *rho >= s2 * (1.0 / kappa - 1.0 / self.mu_squared) {
                return Err(Error::Other(format!(
                    "penalty ρ = {rho} unlearns mode {a} (κ = {kappa}): needs ρ < σ²(1/κ − 1/μ²)"
                )));
            }
        }
        self.penalty = penalty;
        Ok(self)
    }

    fn same_level(&self, a: usize, b: usize) -> bool {
        (self.kappa[a] - self.kappa[b]).abs()
            <= DEGENERATE * self.kappa[a].abs().max(self.kappa[b].abs())
    }

    fn marginal(&self, a: usize) -> bool {
        (self.kappa[a] - self.mu_squared).abs() <= DEGENERATE * self.kappa[a]
    }

    /// Whether N_h cuts a degenerate level: its last learned mode shares κ with an unlearned one.
    pub fn cuts_a_level(&self) -> bool {
        self.learned > 0
            && self.learned < self.kappa.len()
            && self.same_level(self.learned - 1, self.learned)
    }

    /// λ_a = 1/(1/κ_a − ρ_a/σ²), the model eigenvalue of learned mode a (κ_a without penalty).
    pub fn learned_eigenvalue(&self, a: usize) -> f64 {
        let s2 = self.sigma_h * self.sigma_h;
        if self.penalty[a] == 0.0 {
            self.kappa[a]
        } else {
            1.0 / (1.0 / self.kappa[a] - self.penalty[a] / s2)
        }
    }

    /// ξ_a² = (μ² − λ_a)/σ² of learned mode a.
    fn xi_squared(&self, a: usize) -> f64 {
        (self.mu_squared - self.learned_eigenvalue(a)) / (self.sigma_h * self.sigma_h)
    }

    /// The predicted number of exactly flat directions, split by cause: the orbit of the hidden
    /// rotations the penalty leaves (without penalty dim O(N_h) − dim of the stabiliser
    /// O(N_h − r)), the degenerate levels (a cut ± pair, a mode at κ = μ², and under a
    /// penalty that splits a learned ± pair, its visible O(2)), and the mass shift when μ² is
    /// trained and every mode learned.
    pub fn flat_counts(&self) -> FlatCounts {
        let (nv, nh, r) = (self.kappa.len(), self.n_hidden, self.learned);
        let rho = &self.penalty;
        let mut counts = FlatCounts {
            orbit: 0,
            degenerate_level: 0,
            mass_shift: usize::from(self.with_mu && r == nv),
        };
        for a in 0..r {
            for d in a + 1..r {
                if rho[a] == rho[d] {
                    counts.orbit += 1;
                } else if self.same_level(a, d) {
                    counts.degenerate_level += 1;
                }
            }
            counts.orbit += (r..nh).filter(|&j| rho[j] == rho[a]).count();
        }
        for a in r..nv {
            counts.degenerate_level += (0..r).filter(|&d| self.same_level(d, a)).count();
            if self.marginal(a) {
                counts.degenerate_level += (r..nh).filter(|&j| rho[j] == 0.0).count();
            }
        }
        counts
    }

    /// The whole Hessian spectrum, ascending, from the block structure in the module comment.
    pub fn spectrum(&self) -> Result<Vec<PredictedEigenvalue>> {
        let (nv, nh, r) = (self.kappa.len(), self.n_hidden, self.learned);
        let s2 = self.sigma_h * self.sigma_h;
        let mu2 = self.mu_squared;
        let k = &self.kappa;
        let rho = &self.penalty;
        let lambda: Vec<f64> = (0..r).map(|a| self.learned_eigenvalue(a)).collect();
        let xi2: Vec<f64> = (0..r).map(|a| self.xi_squared(a)).collect();
        let mut out = Vec::with_capacity(nv * nh + 1);
        let mut push =
            |value: f64, direction: Direction| out.push(PredictedEigenvalue { value, direction });
        if self.with_mu {
            // The bordered block of the ξ_a and μ².
            let mut block = Array2::zeros((r + 1, r + 1));
            for d in 0..r {
                block[[d, d]] = 2.0 * s2 * (mu2 - k[d]) / (k[d] * k[d]);
                let cross = -s2 * xi2[d].sqrt() / (k[d] * k[d]);
                block[[d, r]] = cross;
                block[[r, d]] = cross;
            }
            block[[r, r]] = 0.5
                * (0..nv)
                    .map(|a| {
                        let l = if a < r { k[a] } else { mu2 };
                        1.0 / (l * l)
                    })
                    .sum::<f64>();
            let values = symmetric_eigenvalues(block.view())?;
            let shift = self.flat_counts().mass_shift;
            for (index, value) in values.iter().enumerate() {
                if index < shift {
                    push(0.0, Direction::MassShift);
                } else {
                    push(*value, Direction::Radial);
                }
            }
        } else {
            for l in &lambda {
                push(2.0 * s2 * (mu2 - l) / (l * l), Direction::Radial);
            }
        }
        for a in 0..r {
            for d in a + 1..r {
                let b = s2 * s2 / (lambda[a] * lambda[d]);
                let delta = rho[d] - rho[a];
                let trace = b * (xi2[a] + xi2[d]);
                if delta == 0.0 || self.same_level(a, d) {
                    let kind = if delta == 0.0 {
                        Direction::Orbit
                    } else {
                        Direction::DegenerateLevel
                    };
                    push(0.0, kind);
                    push(trace, Direction::PairShear);
                } else {
                    // The small eigenvalue as det/large: no cancellation for small δ.
                    let (p, q) = (delta + b * xi2[d], -delta + b * xi2[a]);
                    let off = b * (xi2[a] * xi2[d]).sqrt();
                    let large = 0.5 * (trace + ((p - q).powi(2) + 4.0 * off * off).sqrt());
                    // δ(b(ξ_a² − ξ_d²) − δ), with b(ξ_a² − ξ_d²) = σ²(1/κ_a − 1/κ_d) + δ.
                    let det = delta * s2 * (1.0 / k[a] - 1.0 / k[d]);
                    push(det / large, Direction::PseudoGoldstone);
                    push(large, Direction::PairShear);
                }
            }
            for j in r..nh {
                if rho[j] == rho[a] {
                    push(0.0, Direction::Orbit);
                } else {
                    push(rho[j] - rho[a], Direction::PseudoGoldstone);
                }
            }
        }
        for a in r..nv {
            for d in 0..r {
                if self.same_level(d, a) {
                    push(0.0, Direction::DegenerateLevel);
                } else {
                    push(s2 * (1.0 / k[d] - 1.0 / k[a]), Direction::Leak);
                }
            }
            for rho_j in &rho[r..nh] {
                if self.marginal(a) && *rho_j == 0.0 {
                    push(0.0, Direction::DegenerateLevel);
                } else {
                    push(s2 * (1.0 / mu2 - 1.0 / k[a]) + rho_j, Direction::Unlearned);
                }
            }
        }
        out.sort_by(|a, b| {
            a.value
                .total_cmp(&b.value)
                .then(a.direction.cmp(&b.direction))
        });
        Ok(out)
    }

    /// The pseudo-Goldstone masses to first order in the penalty, ascending: δ(κ_d − κ_a)/(2μ²
    /// − κ_a − κ_d) for a learned pair on units with δ = ρ_d − ρ_a ≠ 0 (not a ± pair), and
    /// ρ_j − ρ_a (exact) for a learned mode against a null unit.
    pub fn first_order_masses(&self) -> Vec<f64> {
        let (nh, r) = (self.n_hidden, self.learned);
        let (k, rho, mu2) = (&self.kappa, &self.penalty, self.mu_squared);
        let mut out = Vec::new();
        for a in 0..r {
            for d in a + 1..r {
                let delta = rho[d] - rho[a];
                if delta != 0.0 && !self.same_level(a, d) {
                    out.push(delta * (k[d] - k[a]) / (2.0 * mu2 - k[a] - k[d]));
                }
            }
            for j in r..nh {
                if rho[j] != rho[a] {
                    out.push(rho[j] - rho[a]);
                }
            }
        }
        out.sort_by(f64::total_cmp);
        out
    }

    /// The fixed point itself: W = Σ_{a<r} ξ_a u_a r_aᵀ with the target's eigenvectors `modes`
    /// (columns, in the order of `kappa`) and the first r columns of the orthogonal `rotation`
    /// (N_h × N_h; the identity under a non-uniform penalty, which pins unit a to mode a). A cut
    /// degenerate level is learned along cos θ u + sin θ u' of its two columns; the returned
    /// modes are rotated the same way, so column a stays mode a.
    pub fn weights(
        &self,
        modes: ArrayView2<'_, f64>,
        rotation: ArrayView2<'_, f64>,
        level_angle: f64,
    ) -> Result<(Array2<f64>, Array2<f64>)> {
        let (nv, nh, r) = (self.kappa.len(), self.n_hidden, self.learned);
        if modes.dim() != (nv, nv) || rotation.dim() != (nh, nh) {
            return Err(Error::Other(format!(
                "fixed point of {nv} modes and {nh} hidden units: modes {:?}, rotation {:?}",
                modes.dim(),
                rotation.dim()
            )));
        }
        let mut modes = modes.to_owned();
        if self.cuts_a_level() {
            let (c, s) = (level_angle.cos(), level_angle.sin());
            let (u, v) = (modes.column(r - 1).to_owned(), modes.column(r).to_owned());
            modes.column_mut(r - 1).assign(&(&u * c + &v * s));
            modes.column_mut(r).assign(&(&v * c - &u * s));
        }
        let mut w = Array2::zeros((nv, nh));
        for a in 0..r {
            let xi = self.xi_squared(a).sqrt();
            let u = modes.column(a);
            let hidden = rotation.column(a);
            for i in 0..nv {
                for j in 0..nh {
                    w[[i, j]] += xi * u[i] * hidden[j];
                }
            }
        }
        Ok((w, modes))
    }
}

/// Flat directions predicted at a fixed point, by cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FlatCounts {
    pub orbit: usize,
    pub degenerate_level: usize,
    pub mass_shift: usize,
}

impl FlatCounts {
    pub fn total(&self) -> usize {
        self.orbit + self.degenerate_level + self.mass_shift
    }
}

/// A Haar-distributed orthogonal n × n matrix: Q of the QR decomposition of a Gaussian matrix,
/// with the signs of R's diagonal moved into Q (without that step Q is not Haar).
pub fn haar_orthogonal(n: usize, rng: &mut impl Rng) -> Array2<f64> {
    let mut q: Array2<f64> = Array2::from_shape_simple_fn((n, n), || rng.sample(StandardNormal));
    // Gram–Schmidt on the columns, each projection done twice (once loses orthogonality to
    // rounding for ill-conditioned draws); the diagonal of R is then positive by construction,
    // which is the sign convention that makes Q Haar.
    for j in 0..n {
        for _pass in 0..2 {
            for k in 0..j {
                let proj = q.column(k).dot(&q.column(j));
                let prev = q.column(k).to_owned();
                q.column_mut(j).scaled_add(-proj, &prev);
            }
        }
        let norm = q.column(j).dot(&q.column(j)).sqrt();
        q.column_mut(j).mapv_inplace(|v| v / norm);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::lattice::{free_field_kernel, free_field_modes};
    use crate::linalg::spd_inverse_and_log_det;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn target() -> (Array1<f64>, Array2<f64>, Array2<f64>) {
        let (kappa, modes) = free_field_modes(10, 4.0);
        let (c, _) = spd_inverse_and_log_det(free_field_kernel(10, 4.0).view()).unwrap();
        (kappa, modes, c)
    }

    fn exact_point(
        n_hidden: usize,
        mu2: f64,
        with_mu: bool,
        seed: u64,
    ) -> (FixedPointLayout, GaussianRbm) {
        let (kappa, modes, _) = target();
        let layout =
            FixedPointLayout::stable(kappa.as_slice().unwrap(), n_hidden, mu2, 1.0, with_mu);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rotation = haar_orthogonal(n_hidden, &mut rng);
        let (w, _) = layout.weights(modes.view(), rotation.view(), 0.7).unwrap();
        let model = GaussianRbm {
            weights: w,
            mu: mu2.sqrt(),
            sigma_h: 1.0,
        };
        (layout, model)
    }

    /// The analytic Hessian equals central differences of the analytic gradient. With step
    /// h = 1e-5 the truncation error is h²·|ℒ'''|/6 ≈ 1e-11 and the rounding error
    /// ε·|∇ℒ|/h ≈ 1e-11, so 1e-8 leaves a margin of 1000 and still fails on any wrong term
    /// (each is of order 0.01–1).
    #[test]
    fn hessian_matches_finite_differences_of_the_gradient() {
        let (_, _, c) = target();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (nh, with_mu) in [(6, false), (12, true)] {
            let model = GaussianRbm::random(10, nh, 3.0, 1.0, 0.4, &mut rng);
            let h = loss_hessian(&model, c.view(), with_mu).unwrap();
            let n = h.nrows();
            let step = 1e-5;
            let gradient_at = |m: &GaussianRbm| {
                let (gw, gmu) = loss_gradient(m, c.view()).unwrap();
                let mut v: Vec<f64> = gw.iter().copied().collect();
                if with_mu {
                    v.push(gmu);
                }
                Array1::from(v)
            };
            for k in 0..n {
                let shifted = |sign: f64| {
                    let mut m = model.clone();
                    if k < 10 * nh {
                        m.weights[[k / nh, k % nh]] += sign * step;
                    } else {
                        m.mu = (m.mu * m.mu + sign * step).sqrt();
                    }
                    gradient_at(&m)
                };
                let fd = (shifted(1.0) - shifted(-1.0)) / (2.0 * step);
                for (row, v) in fd.iter().enumerate() {
                    assert!(
                        (h[[row, k]] - v).abs() < 1e-8,
                        "H[{row},{k}] = {} vs {v}",
                        h[[row, k]]
                    );
                }
            }
        }
    }

    #[test]
    fn exact_fixed_points_are_stationary_and_learn_their_modes() {
        let (kappa, _, c) = target();
        for (nh, mu2) in [(10, 9.0), (6, 9.0), (12, 9.0), (10, 6.0)] {
            let (layout, model) = exact_point(nh, mu2, false, 1);
            let (gw, _) = loss_gradient(&model, c.view()).unwrap();
            assert!(gw.iter().all(|v| v.abs() < 1e-13), "N_h = {nh}, μ² = {mu2}");
            let mut lambda = symmetric_eigenvalues(model.kernel().view())
                .unwrap()
                .to_vec();
            let mut expected: Vec<f64> = (0..10)
                .map(|a| if a < layout.learned { kappa[a] } else { mu2 })
                .collect();
            lambda.sort_by(f64::total_cmp);
            expected.sort_by(f64::total_cmp);
            for (l, e) in lambda.iter().zip(&expected) {
                assert!((l - e).abs() < 1e-12);
            }
        }
    }

    /// Every eigenvalue of the analytic Hessian at an exact fixed point equals the closed form,
    /// and the flat ones are as many as the predicted dimension of the manifold of minima.
    #[test]
    fn closed_form_spectrum_and_flat_counts() {
        let (_, _, c) = target();
        // (N_h, μ², μ² trained) → flat directions: orbit + cut level + mass shift.
        let cases = [
            ((10, 9.0, false), 45),
            ((7, 9.0, false), 21),
            ((6, 9.0, false), 15 + 1),
            ((5, 9.0, false), 10),
            ((12, 9.0, false), 45 + 20),
            ((10, 6.0, false), 10 + 25),
            ((10, 9.0, true), 45 + 1),
        ];
        for ((nh, mu2, with_mu), flat) in cases {
            let (layout, model) = exact_point(nh, mu2, with_mu, 3);
            assert_eq!(layout.flat_counts().total(), flat, "N_h = {nh}, μ² = {mu2}");
            let predicted = layout.spectrum().unwrap();
            assert_eq!(
                predicted.iter().filter(|p| p.direction.is_flat()).count(),
                flat
            );
            let h = loss_hessian(&model, c.view(), with_mu).unwrap();
            let measured = symmetric_eigenvalues(h.view()).unwrap();
            assert_eq!(measured.len(), predicted.len());
            for (m, p) in measured.iter().zip(&predicted) {
                assert!(
                    (m - p.value).abs() < 1e-12,
                    "N_h = {nh}, μ² = {mu2}: {m} vs {p:?}"
                );
            }
        }
    }

    /// Under the weighted penalty ε Σ_j c_j ‖w_j‖² (ρ_j = 2εc_j ascending) the exact deformed
    /// minimum is stationary, its Hessian equals the closed form eigenvalue by eigenvalue, the
    /// orbit zeros are lifted except the visible O(2) of each learned ± pair, and the lifted
    /// masses are linear in ε at small ε; a uniform penalty lifts nothing.
    #[test]
    fn penalties_lift_the_orbit_as_the_closed_form_says() {
        let (kappa, modes, c) = target();
        let kappa = kappa.to_vec();
        let cases = [
            ((10, 9.0), true, 4),
            ((6, 9.0), true, 2 + 1),
            ((10, 9.0), false, 45),
        ];
        for ((nh, mu2), weighted, flat) in cases {
            for epsilon in [1e-4, 1e-3] {
                let rho: Vec<f64> = (0..nh)
                    .map(|j| {
                        2.0 * epsilon
                            * if weighted {
                                1.0 + j as f64 / nh as f64
                            } else {
                                1.0
                            }
                    })
                    .collect();
                let layout = FixedPointLayout::stable(&kappa, nh, mu2, 1.0, false)
                    .penalised(rho.clone())
                    .unwrap();
                assert_eq!(
                    layout.flat_counts().total(),
                    flat,
                    "N_h = {nh}, weighted {weighted}"
                );
                let eye = Array2::eye(nh);
                let (w, _) = layout.weights(modes.view(), eye.view(), 0.3).unwrap();
                let model = GaussianRbm {
                    weights: w,
                    mu: mu2.sqrt(),
                    sigma_h: 1.0,
                };
                let (mut gw, _) = loss_gradient(&model, c.view()).unwrap();
                add_penalty_gradient(&mut gw, &model.weights, &rho);
                assert!(gw.iter().all(|v| v.abs() < 1e-13), "not stationary");
                let mut h = loss_hessian(&model, c.view(), false).unwrap();
                add_penalty_hessian(&mut h, nh, &rho);
                let measured = symmetric_eigenvalues(h.view()).unwrap();
                let predicted = layout.spectrum().unwrap();
                for (m, p) in measured.iter().zip(&predicted) {
                    assert!((m - p.value).abs() < 1e-12, "ε = {epsilon}: {m} vs {p:?}");
                }
            }
        }
        // First order in ε: the lightest mass over its first-order value is 1 + O(ε), so the
        // relative remainder is small and grows tenfold from ε = 1e-4 to 1e-3.
        let remainder = |epsilon: f64| {
            let rho: Vec<f64> = (0..10)
                .map(|j| 2.0 * epsilon * (1.0 + j as f64 / 10.0))
                .collect();
            let layout = FixedPointLayout::stable(&kappa, 10, 9.0, 1.0, false)
                .penalised(rho)
                .unwrap();
            let lightest = layout
                .spectrum()
                .unwrap()
                .iter()
                .filter(|p| p.direction == Direction::PseudoGoldstone)
                .map(|p| p.value)
                .fold(f64::INFINITY, f64::min);
            lightest / layout.first_order_masses()[0] - 1.0
        };
        let (small, large) = (remainder(1e-4), remainder(1e-3));
        assert!(small.abs() < 1e-2, "{small}");
        assert!((large / small - 10.0).abs() < 1.0, "{small} → {large}");
    }

    /// W → W O(N_h) only reparametrises the minimum: the counts and the spectrum are the same
    /// at every point of the orbit.
    #[test]
    fn a_rotated_fixed_point_has_the_same_spectrum() {
        let (_, _, c) = target();
        let (_, a) = exact_point(6, 9.0, false, 11);
        let (_, b) = exact_point(6, 9.0, false, 12);
        let ha = symmetric_eigenvalues(loss_hessian(&a, c.view(), false).unwrap().view()).unwrap();
        let hb = symmetric_eigenvalues(loss_hessian(&b, c.view(), false).unwrap().view()).unwrap();
        for (x, y) in ha.iter().zip(&hb) {
            assert!((x - y).abs() < 1e-12);
        }
    }

    /// E[Tr Q] = 0, E[(Tr Q)²] = 1 and P(det Q > 0) = ½ under the Haar measure on O(n) (Diaconis
    /// & Shahshahani); each checked within 4 standard errors of 4000 draws.
    #[test]
    fn haar_orthogonal_has_the_haar_moments() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let draws = 4000;
        let (mut trace, mut trace2, mut positive) = (0.0, 0.0, 0.0);
        for _ in 0..draws {
            let q = haar_orthogonal(5, &mut rng);
            assert!(
                (q.t().dot(&q) - Array2::<f64>::eye(5))
                    .iter()
                    .all(|v| v.abs() < 1e-12)
            );
            let t = q.diag().sum();
            trace += t;
            trace2 += t * t;
            positive += f64::from(u8::from(crate::linalg::determinant(q.view()) > 0.0));
        }
        let n = f64::from(draws);
        // Var Tr Q = 1; Var (Tr Q)² = E Tr⁴ − 1 = 3 − 1 = 2 for n ≥ 4.
        assert!((trace / n).abs() < 4.0 * (1.0 / n).sqrt());
        assert!((trace2 / n - 1.0).abs() < 4.0 * (2.0 / n).sqrt());
        assert!((positive / n - 0.5).abs() < 4.0 * (0.25 / n).sqrt());
    }
}
