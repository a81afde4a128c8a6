//! Dense linear algebra for the models, delegated to faer: symmetric eigendecomposition, the
//! inverse and log-determinant of symmetric positive-definite matrices, determinants and the
//! orthogonal Procrustes problem.
//! Matrices live as `ndarray::Array2<f64>` everywhere else; conversion happens only here.

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, MatRef, Side};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2};

use crate::error::{Error, Result};

fn to_faer(a: ArrayView2<'_, f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

fn from_faer(m: MatRef<'_, f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

/// Eigenvalues (ascending) and eigenvectors (as columns) of a symmetric matrix.
pub struct SymmetricEigen {
    pub values: Array1<f64>,
    pub vectors: Array2<f64>,
}

/// Full eigendecomposition of the symmetric matrix `a` (only its lower triangle is read).
pub fn symmetric_eigen(a: ArrayView2<'_, f64>) -> Result<SymmetricEigen> {
    let evd = to_faer(a)
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::LinearAlgebra(format!("symmetric eigendecomposition: {e:?}")))?;
    let values = evd.S().column_vector().iter().copied().collect();
    Ok(SymmetricEigen {
        values,
        vectors: from_faer(evd.U()),
    })
}

/// Eigenvalues of the symmetric matrix `a`, ascending.
pub fn symmetric_eigenvalues(a: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
    let values = to_faer(a)
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| Error::LinearAlgebra(format!("symmetric eigenvalues: {e:?}")))?;
    Ok(Array1::from(values))
}

/// Determinant of a square matrix, by partial-pivot LU (faer).
pub fn determinant(a: ArrayView2<'_, f64>) -> f64 {
    to_faer(a).determinant()
}

/// Inverse and natural log-determinant of a symmetric positive-definite matrix, by Cholesky.
/// Fails with [`Error::LinearAlgebra`] when `a` is not positive definite.
pub fn spd_inverse_and_log_det(a: ArrayView2<'_, f64>) -> Result<(Array2<f64>, f64)> {
    let llt = to_faer(a)
        .llt(Side::Lower)
        .map_err(|_| Error::LinearAlgebra("matrix is not positive definite".into()))?;
    let l = llt.L();
    let log_det = 2.0 * (0..l.nrows()).map(|i| l[(i, i)].ln()).sum::<f64>();
    let inverse = from_faer(llt.inverse().as_ref());
    Ok((inverse, log_det))
}

/// `a` as a mutable faer view without copying, when its elements are contiguous by rows or by
/// columns.
fn faer_view_mut<T>(a: ArrayViewMut2<'_, T>) -> Option<faer::MatMut<'_, T>> {
    let (rows, columns) = a.dim();
    if a.is_standard_layout() {
        let values = a.into_slice()?;
        return Some(faer::MatMut::from_row_major_slice_mut(
            values, rows, columns,
        ));
    }
    let values = a.reversed_axes().into_slice()?;
    Some(faer::MatMut::from_column_major_slice_mut(
        values, rows, columns,
    ))
}

/// c ← α a b (or c + α a b when `accumulate`), single-threaded: faer when all three are
/// contiguous by rows or by columns (its kernels beat ndarray's at every shape the models use;
/// at the RBM's few tens of rows by ten, its fixed-size kernels spend far less on packing),
/// ndarray's product for other strides.
pub fn gemm<T: faer::traits::ComplexField + ndarray::LinalgScalar>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    accumulate: bool,
    mut c: ArrayViewMut2<'_, T>,
) {
    let contiguous = |v: &ArrayViewMut2<'_, T>| {
        v.is_standard_layout() || v.view().reversed_axes().is_standard_layout()
    };
    if let (Some(fa), Some(fb), true) = (faer_view(a), faer_view(b), contiguous(&c)) {
        let fc = faer_view_mut(c).expect("checked contiguous");
        let accum = if accumulate {
            faer::Accum::Add
        } else {
            faer::Accum::Replace
        };
        faer::linalg::matmul::matmul(fc, accum, fa, fb, alpha, faer::Par::Seq);
    } else {
        let beta = if accumulate { T::one() } else { T::zero() };
        ndarray::linalg::general_mat_mul(alpha, &a, &b, beta, &mut c);
    }
}

/// `a` as a faer view without copying, when its elements are contiguous by rows or by columns.
fn faer_view<T>(a: ArrayView2<'_, T>) -> Option<MatRef<'_, T>> {
    let (rows, columns) = a.dim();
    if let Some(values) = a.to_slice() {
        return Some(MatRef::from_row_major_slice(values, rows, columns));
    }
    let values = a.reversed_axes().to_slice()?;
    Some(MatRef::from_column_major_slice(values, rows, columns))
}

/// Whether symmetric matrices of one size are positive definite, by an in-place Cholesky
/// factorisation in buffers kept between calls: a check made every training update allocates
/// nothing.
pub struct PositiveDefiniteCheck {
    factor: Mat<f64>,
    scratch: faer::dyn_stack::MemBuffer,
}

impl PositiveDefiniteCheck {
    pub fn new(n: usize) -> Self {
        use faer::linalg::cholesky::llt::factor::cholesky_in_place_scratch;
        Self {
            factor: Mat::zeros(n, n),
            scratch: faer::dyn_stack::MemBuffer::new(cholesky_in_place_scratch::<f64>(
                n,
                faer::Par::Seq,
                Default::default(),
            )),
        }
    }

    /// Whether `a` (n × n, lower triangle read) is positive definite.
    pub fn holds(&mut self, a: ArrayView2<'_, f64>) -> bool {
        use faer::linalg::cholesky::llt::factor::cholesky_in_place;
        let n = self.factor.nrows();
        assert_eq!(a.dim(), (n, n), "matrix of the size the check was made for");
        for j in 0..n {
            for i in j..n {
                self.factor[(i, j)] = a[[i, j]];
            }
        }
        cholesky_in_place(
            self.factor.as_mut(),
            Default::default(),
            faer::Par::Seq,
            faer::dyn_stack::MemStack::new(&mut self.scratch),
            Default::default(),
        )
        .is_ok()
    }
}

/// The lower Cholesky factor L of a symmetric positive-definite matrix, a = L Lᵀ.
pub fn cholesky_lower(a: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
    let llt = to_faer(a)
        .llt(Side::Lower)
        .map_err(|_| Error::LinearAlgebra("matrix is not positive definite".into()))?;
    Ok(from_faer(llt.L()))
}

/// The orthogonal matrix R (reflections allowed) minimising ‖R a − b‖_F for d × n matrices a and
/// b (orthogonal Procrustes): with b aᵀ = U Σ Vᵀ, R = U Vᵀ.
pub fn procrustes(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
    let m = b.dot(&a.t());
    let svd = to_faer(m.view())
        .svd()
        .map_err(|e| Error::LinearAlgebra(format!("singular value decomposition: {e:?}")))?;
    let r = svd.U() * svd.V().transpose();
    Ok(from_faer(r.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    #[test]
    fn gemm_matches_ndarray_for_every_layout() {
        let a = Array2::from_shape_fn((7, 5), |(i, j)| (i * 5 + j) as f64 * 0.1 - 1.0);
        let b = Array2::from_shape_fn((5, 3), |(i, j)| (i + 2 * j) as f64 * 0.3 - 0.5);
        let expected = a.dot(&b) * 2.5;
        let a_by_columns = a.t().as_standard_layout().to_owned();
        let strided = Array2::from_shape_fn((7, 10), |(i, j)| a[[i, j / 2]]);
        for (label, view) in [
            ("rows", a.view()),
            ("columns", a_by_columns.t()),
            ("strided", strided.slice(ndarray::s![.., ..;2])),
        ] {
            let mut c = Array2::zeros((7, 3));
            gemm(2.5, view, b.view(), false, c.view_mut());
            assert_abs_diff_eq!(c, expected, epsilon = 1e-12);
            assert!(c.iter().all(|v| v.is_finite()), "{label}");
        }
    }

    #[test]
    fn positive_definite_check_agrees_with_the_smallest_eigenvalue() {
        let mut check = PositiveDefiniteCheck::new(2);
        for (off_diagonal, expected) in [(0.5, true), (0.999, true), (1.001, false), (-2.0, false)]
        {
            // Eigenvalues 1 ± c.
            let a = array![[1.0, off_diagonal], [off_diagonal, 1.0]];
            assert_eq!(check.holds(a.view()), expected, "c = {off_diagonal}");
        }
    }

    #[test]
    fn eigen_of_a_known_symmetric_matrix() {
        let a = array![[2.0, 1.0], [1.0, 2.0]];
        let eig = symmetric_eigen(a.view()).unwrap();
        assert_abs_diff_eq!(eig.values[0], 1.0, epsilon = 1e-14);
        assert_abs_diff_eq!(eig.values[1], 3.0, epsilon = 1e-14);
        let v = eig.vectors.column(1);
        assert_abs_diff_eq!(v[0].abs(), std::f64::consts::FRAC_1_SQRT_2, epsilon = 1e-14);
    }

    #[test]
    fn inverse_and_log_det_match_closed_form() {
        let a = array![[4.0, 2.0], [2.0, 3.0]];
        let (inv, log_det) = spd_inverse_and_log_det(a.view()).unwrap();
        assert_abs_diff_eq!(log_det, 8f64.ln(), epsilon = 1e-14);
        let product = a.dot(&inv);
        assert_abs_diff_eq!(product, Array2::eye(2), epsilon = 1e-14);
    }

    #[test]
    fn indefinite_matrix_is_refused() {
        let a = array![[1.0, 2.0], [2.0, 1.0]];
        assert!(spd_inverse_and_log_det(a.view()).is_err());
    }

    /// A known rotation-with-reflection is recovered exactly from noiseless data.
    #[test]
    fn procrustes_recovers_an_orthogonal_map() {
        let (c, s) = (0.6, 0.8);
        // A rotation in the (0, 1) plane times a reflection of axis 2: det = −1.
        let r0 = array![[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, -1.0]];
        let a = Array2::from_shape_fn((3, 7), |(i, j)| {
            (((i + 1) * (j + 2) * (j + 1)) as f64).sin()
        });
        let b = r0.dot(&a);
        let r = procrustes(a.view(), b.view()).unwrap();
        for (x, y) in r.iter().zip(&r0) {
            assert_abs_diff_eq!(x, y, epsilon = 1e-12);
        }
    }
}
