//! Dense dynamic matrix factorisation (ICML 2018 §5.1): Z_t = (U_t, V_t) ∈ R^{d×(n_u+n_v)},
//! per-step loss ℓ_t = ½‖X_t − U_tᵀV_t‖² (−log N(X_t; U_tᵀV_t, 1) up to a constant), coupled by
//! ψ. The data term is invariant under U → AU, V → A^{−T}V for every A ∈ GL(d), not only under
//! rotations; the coupling respects only the global transformations of all steps at once.

use ndarray::{Array2, Array3, s};

use super::{coupling_energy, coupling_gradient};

/// Data X_t (the same or different per step), shapes n_u × n_v.
#[derive(Clone, Debug)]
pub struct DenseMf {
    pub data: Vec<Array2<f64>>,
    pub couplings: Vec<f64>,
}

/// The two parts of the loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossParts {
    pub local: f64,
    pub coupling: f64,
}

impl LossParts {
    pub fn total(&self) -> f64 {
        self.local + self.coupling
    }
}

impl DenseMf {
    pub fn rows(&self) -> usize {
        self.data.first().map_or(0, Array2::nrows)
    }

    fn residual(&self, z: &Array3<f64>, t: usize) -> Array2<f64> {
        let n_u = self.rows();
        let u = z.slice(s![t, .., ..n_u]);
        let v = z.slice(s![t, .., n_u..]);
        &self.data[t] - &u.t().dot(&v)
    }

    pub fn loss(&self, z: &Array3<f64>) -> LossParts {
        let local = (0..self.data.len())
            .map(|t| 0.5 * self.residual(z, t).iter().map(|r| r * r).sum::<f64>())
            .sum();
        LossParts {
            local,
            coupling: coupling_energy(z, &self.couplings),
        }
    }

    /// ∇L: ∂ℓ_t/∂U_t = −V_t Rᵀ, ∂ℓ_t/∂V_t = −U_t R with R = X_t − U_tᵀV_t, plus L Z.
    pub fn gradient(&self, z: &Array3<f64>) -> Array3<f64> {
        let n_u = self.rows();
        let mut gradient = coupling_gradient(&z.view(), &self.couplings);
        for t in 0..self.data.len() {
            let r = self.residual(z, t);
            let u = z.slice(s![t, .., ..n_u]);
            let v = z.slice(s![t, .., n_u..]);
            let mut gu = gradient.slice_mut(s![t, .., ..n_u]);
            gu -= &v.dot(&r.t());
            let mut gv = gradient.slice_mut(s![t, .., n_u..]);
            gv -= &u.dot(&r);
        }
        gradient
    }

    /// Hessian of L by central differences of the analytic gradient (the gradient is cubic in
    /// Z, so the error is O(h²) in the third derivatives only).
    pub fn hessian(&self, z: &Array3<f64>, h: f64) -> Array2<f64> {
        let n = z.len();
        let mut hessian = Array2::zeros((n, n));
        let flat: Vec<f64> = z.iter().copied().collect();
        for k in 0..n {
            let shifted = |delta: f64| {
                let mut values = flat.clone();
                values[k] += delta;
                let zz = Array3::from_shape_vec(z.raw_dim(), values)
                    .unwrap_or_else(|e| panic!("Hessian layout: {e}"));
                self.gradient(&zz).iter().copied().collect::<Vec<f64>>()
            };
            let (plus, minus) = (shifted(h), shifted(-h));
            for (j, (p, m)) in plus.iter().zip(&minus).enumerate() {
                hessian[[j, k]] = (p - m) / (2.0 * h);
            }
        }
        // Symmetrise the rounding.
        let transpose = hessian.t().to_owned();
        (hessian + transpose) * 0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
        let data: Vec<Array2<f64>> = (0..4)
            .map(|_| Array2::from_shape_simple_fn((3, 5), &mut normal))
            .collect();
        let model = DenseMf {
            data,
            couplings: vec![1.0, 3.0, 0.5],
        };
        let z = Array3::from_shape_simple_fn((4, 2, 8), &mut normal);
        crate::models::goldstone::train::assert_gradient_matches_finite_differences(
            &model, &z, 1e-6,
        );
    }
}
