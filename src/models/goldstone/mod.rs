//! Goldstone gradient descent (Bamler & Mandt, ICML 2018, Algorithm 1) for any model whose
//! parameters are a chain Z = (Z_1 … Z_T), Z_t ∈ R^{d×N}, with per-step losses invariant under
//! Z_t → R Z_t (R orthogonal) and the coupling ψ(Z) = ½ Σ_t c_t ‖Z_{t+1} − Z_t‖² = ½ Tr(Zᵀ L Z),
//! L the weighted chain Laplacian. [`gauge`] owns the gauge-field subproblem; [`dense_mf`] the
//! synthetic dense dynamic matrix factorisation of the paper's §5.1; [`train`] the baseline and
//! Goldstone-GD training loops.
//!
//! Parameters are stored as an `Array3` of shape (T, d, N).

pub mod dense_mf;
pub mod gauge;
pub mod train;

use ndarray::{Array2, Array3, ArrayView3, Axis};

use crate::error::Result;
use crate::linalg::symmetric_eigen;

/// The weighted chain Laplacian over T steps with couplings c_t between t and t + 1, and its
/// eigendecomposition (computed once).
#[derive(Clone, Debug)]
pub struct ChainLaplacian {
    pub couplings: Vec<f64>,
    pub matrix: Array2<f64>,
    /// Eigenvalues, ascending (the first is the zero mode of global rotations).
    pub eigenvalues: Vec<f64>,
    /// Eigenvectors as columns, in the order of `eigenvalues`.
    pub eigenvectors: Array2<f64>,
}

impl ChainLaplacian {
    pub fn new(couplings: &[f64]) -> Result<Self> {
        let t = couplings.len() + 1;
        let mut matrix = Array2::zeros((t, t));
        for (k, &c) in couplings.iter().enumerate() {
            matrix[[k, k]] += c;
            matrix[[k + 1, k + 1]] += c;
            matrix[[k, k + 1]] -= c;
            matrix[[k + 1, k]] -= c;
        }
        let eig = symmetric_eigen(matrix.view())?;
        Ok(Self {
            couplings: couplings.to_vec(),
            matrix,
            eigenvalues: eig.values.to_vec(),
            eigenvectors: eig.vectors,
        })
    }

    /// Uniform couplings λ over T steps.
    pub fn uniform(steps: usize, coupling: f64) -> Result<Self> {
        Self::new(&vec![coupling; steps.saturating_sub(1)])
    }

    pub fn steps(&self) -> usize {
        self.matrix.nrows()
    }

    /// A pseudo-inverse of L. `capped = false`: the Moore–Penrose pseudo-inverse (zero mode
    /// dropped), as the paper. `capped = true`: the reference code's regularised inverse, which
    /// with the couplings normalised to mean 1 replaces 1/h by 1/(h + 1/T) for every non-zero
    /// mode — it damps the slowest modes and caps the inverse at T.
    pub fn pseudo_inverse(&self, capped: bool) -> Array2<f64> {
        let t = self.steps() as f64;
        let mean = if self.couplings.is_empty() {
            1.0
        } else {
            self.couplings.iter().sum::<f64>() / self.couplings.len() as f64
        };
        let inverse: Vec<f64> = self
            .eigenvalues
            .iter()
            .enumerate()
            .map(|(k, &h)| {
                if k == 0 {
                    0.0
                } else if capped {
                    1.0 / (h / mean + 1.0 / t) / mean
                } else {
                    1.0 / h
                }
            })
            .collect();
        let scaled = &self.eigenvectors * &ndarray::Array1::from(inverse);
        scaled.dot(&self.eigenvectors.t())
    }
}

/// ψ(Z) = ½ Σ_t c_t ‖Z_{t+1} − Z_t‖².
pub fn coupling_energy(z: &Array3<f64>, couplings: &[f64]) -> f64 {
    couplings
        .iter()
        .enumerate()
        .map(|(t, &c)| {
            let diff = &z.index_axis(Axis(0), t + 1) - &z.index_axis(Axis(0), t);
            0.5 * c * diff.iter().map(|x| x * x).sum::<f64>()
        })
        .sum()
}

/// ∇ψ = L Z (along the time axis), for all columns of `z` or a slice of them.
pub fn coupling_gradient(z: &ArrayView3<'_, f64>, couplings: &[f64]) -> Array3<f64> {
    let mut gradient = Array3::zeros(z.raw_dim());
    for (t, &c) in couplings.iter().enumerate() {
        let diff = (&z.index_axis(Axis(0), t + 1) - &z.index_axis(Axis(0), t)) * c;
        let mut lower = gradient.index_axis_mut(Axis(0), t);
        lower -= &diff;
        let mut upper = gradient.index_axis_mut(Axis(0), t + 1);
        upper += &diff;
    }
    gradient
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain Laplacian's spectrum is h_ν = (2 − 2cos(πν/T))λ (QFT 2019 §2.2).
    #[test]
    fn laplacian_spectrum_is_the_dispersion_relation() {
        for (steps, coupling) in [(30, 10.0), (100, 1.0), (209, 0.3)] {
            let laplacian = ChainLaplacian::uniform(steps, coupling).unwrap();
            for (nu, &h) in laplacian.eigenvalues.iter().enumerate() {
                let q = std::f64::consts::PI * nu as f64 / steps as f64;
                let expected = (2.0 - 2.0 * q.cos()) * coupling;
                assert!(
                    (h - expected).abs() < 1e-10 * coupling.max(1.0),
                    "T {steps} ν {nu}"
                );
            }
        }
    }

    #[test]
    fn coupling_gradient_is_the_laplacian_times_z() {
        let couplings = [1.0, 2.5, 0.5, 4.0];
        let z = Array3::from_shape_fn((5, 2, 3), |(t, k, i)| ((t * 7 + k * 3 + i) as f64).sin());
        let laplacian = ChainLaplacian::new(&couplings).unwrap();
        let gradient = coupling_gradient(&z.view(), &couplings);
        for k in 0..2 {
            for i in 0..3 {
                let column = z.slice(ndarray::s![.., k, i]).to_owned();
                let expected = laplacian.matrix.dot(&column);
                for t in 0..5 {
                    assert!((gradient[[t, k, i]] - expected[t]).abs() < 1e-12);
                }
            }
        }
        // ψ = ½ Tr(Zᵀ L Z)
        let quadratic: f64 = (0..2)
            .flat_map(|k| (0..3).map(move |i| (k, i)))
            .map(|(k, i)| {
                let column = z.slice(ndarray::s![.., k, i]).to_owned();
                let image: ndarray::Array1<f64> = laplacian.matrix.dot(&column);
                0.5 * column.iter().zip(&image).map(|(a, b)| a * b).sum::<f64>()
            })
            .sum();
        assert!((coupling_energy(&z, &couplings) - quadratic).abs() < 1e-12);
    }
}
