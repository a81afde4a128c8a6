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

use ndarray::{Array2, Array3, ArrayView3, ArrayViewMut2, Axis};
use rayon::prelude::*;

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
    /// Eigenvectors as columns, in the order of `eigenvalues` (read by the dense pseudo-inverse,
    /// the reference of [`ChainSolver`]'s tests).
    #[cfg_attr(not(test), allow(dead_code))]
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
    #[cfg(test)]
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

/// [`ChainLaplacian::pseudo_inverse`] applied along the time axis without forming it: L is
/// tridiagonal, so L⁺b costs O(T) per component instead of the O(T²) of the dense product.
/// For the Moore–Penrose inverse, b is projected off the constant mode, the flux
/// f_t = c_t(y_{t+1} − y_t) = −Σ_{s≤t} b_s integrated to y, and y projected off the constant mode;
/// for the capped inverse, (L + μ/T) y = b − b̄ is solved by elimination (μ the mean coupling),
/// whose solution has no constant mode.
#[derive(Clone, Debug)]
pub struct ChainSolver {
    couplings: Vec<f64>,
    /// Capped: the elimination's inverse pivots 1/p_t and ratios c_t/p_t.
    elimination: Option<(Vec<f64>, Vec<f64>)>,
}

impl ChainSolver {
    /// The solver of `laplacian.pseudo_inverse(capped)`.
    pub fn new(laplacian: &ChainLaplacian, capped: bool) -> Self {
        let c = &laplacian.couplings;
        let steps = laplacian.steps();
        let elimination = capped.then(|| {
            let mean = if c.is_empty() {
                1.0
            } else {
                c.iter().sum::<f64>() / c.len() as f64
            };
            let shift = mean / steps as f64;
            let coupling = |k: usize| if k < c.len() { c[k] } else { 0.0 };
            let (mut inverse_pivots, mut ratios) = (vec![0.0; steps], vec![0.0; steps]);
            for t in 0..steps {
                let below = if t > 0 { c[t - 1] } else { 0.0 };
                let diagonal = below + coupling(t) + shift;
                // Eliminating −c_{t−1} below the diagonal leaves the pivot
                // p_t = d_t − c_{t−1}·(c_{t−1}/p_{t−1}) and the super-diagonal −c_t/p_t.
                let pivot = diagonal - if t > 0 { below * ratios[t - 1] } else { 0.0 };
                inverse_pivots[t] = 1.0 / pivot;
                ratios[t] = coupling(t) * inverse_pivots[t];
            }
            (inverse_pivots, ratios)
        });
        Self {
            couplings: c.clone(),
            elimination,
        }
    }

    /// Replaces every column of `b` (T rows, one per step, each contiguous) by the
    /// preconditioner applied to it: blocks of columns in parallel, each small enough to stay
    /// in cache through the passes of its solve.
    pub fn solve_in_place(&self, mut b: ArrayViewMut2<'_, f64>) {
        assert_eq!(b.nrows(), self.couplings.len() + 1, "one row per step");
        b.axis_chunks_iter_mut(Axis(1), 64)
            .into_par_iter()
            .for_each(|block| self.solve_block(block));
    }

    fn solve_block(&self, mut b: ArrayViewMut2<'_, f64>) {
        let columns = b.ncols();
        remove_column_means(&mut b);
        let contiguous = "rows of a preconditioned block are contiguous";
        match &self.elimination {
            None => {
                // Row t becomes y_t = y_{t−1} + f_{t−1}/c_{t−1}; `flux` carries f_{t−1}.
                let (mut flux, mut y) = (vec![0.0; columns], vec![0.0; columns]);
                for (t, mut row) in b.outer_iter_mut().enumerate() {
                    let row = row.as_slice_mut().expect(contiguous);
                    let inverse = if t > 0 {
                        1.0 / self.couplings[t - 1]
                    } else {
                        0.0
                    };
                    for ((x, f), y) in row.iter_mut().zip(&mut flux).zip(&mut y) {
                        let b_t = *x;
                        *y += *f * inverse;
                        *x = *y;
                        *f -= b_t;
                    }
                }
                remove_column_means(&mut b);
            }
            Some((inverse_pivots, ratios)) => {
                let mut previous = vec![0.0; columns];
                for (t, mut row) in b.outer_iter_mut().enumerate() {
                    let row = row.as_slice_mut().expect(contiguous);
                    let below = if t > 0 { self.couplings[t - 1] } else { 0.0 };
                    for (x, p) in row.iter_mut().zip(&mut previous) {
                        *x = (*x + below * *p) * inverse_pivots[t];
                        *p = *x;
                    }
                }
                let mut next = vec![0.0; columns];
                for (t, mut row) in b.outer_iter_mut().enumerate().rev() {
                    let row = row.as_slice_mut().expect(contiguous);
                    for (x, n) in row.iter_mut().zip(&mut next) {
                        *x += ratios[t] * *n;
                        *n = *x;
                    }
                }
            }
        }
    }
}

/// Subtracts from every column of `b` its mean over the rows.
fn remove_column_means(b: &mut ArrayViewMut2<'_, f64>) {
    if let Some(mean) = b.mean_axis(Axis(0)) {
        *b -= &mean;
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

    /// The O(T) solves equal the dense pseudo-inverses (both kinds) on uneven couplings spanning
    /// three decades, for T = 1, 2 and 40, within 100 ε κ ‖b‖/h_min (κ = h_max/h_min the
    /// condition number of L on its non-zero modes, ‖b‖/h_min the scale of L⁺b: the rounding
    /// bound of either method).
    #[test]
    fn chain_solves_equal_the_dense_pseudo_inverses() {
        for steps in [1usize, 2, 40] {
            let couplings: Vec<f64> = (0..steps - 1)
                .map(|k| 10f64.powf(((k * 7) % 13) as f64 / 4.0 - 1.0))
                .collect();
            let laplacian = ChainLaplacian::new(&couplings).unwrap();
            let (smallest, largest) = match laplacian.eigenvalues.as_slice() {
                [_, smallest, rest @ ..] => (*smallest, *rest.last().unwrap_or(smallest)),
                _ => (1.0, 1.0),
            };
            let columns = 130; // three blocks of the parallel solve
            let b = Array2::from_shape_fn((steps, columns), |(t, j)| {
                ((t * 5 + j * 11) % 9) as f64 - 3.7 + j as f64
            });
            for capped in [false, true] {
                let expected = laplacian.pseudo_inverse(capped).dot(&b);
                let mut solved = b.clone();
                ChainSolver::new(&laplacian, capped).solve_in_place(solved.view_mut());
                let size = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                let bound = 100.0 * f64::EPSILON * (largest / smallest) * size / smallest;
                for (x, y) in solved.iter().zip(&expected) {
                    assert!(
                        (x - y).abs() < bound,
                        "T = {steps}, capped = {capped}: {x} vs {y}"
                    );
                }
            }
        }
    }

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
