//! The periodic one-dimensional free scalar field that the Gaussian RBM learns, and the
//! observables of any zero-mean Gaussian field on that lattice: the kernel
//! K_φ = (m²+2)δ_ij − δ_{i,j±1}, its momentum-space spectrum κ_n = m² + 4 sin²(πn/N), the
//! translation-averaged correlator G(t) and the moments of the action density s = ½φᵀK_φφ/N.

use ndarray::{Array1, Array2, ArrayView2};

/// Lattice kernel K_φ of the periodic free field with `n` sites and squared mass `mass_squared`.
pub fn free_field_kernel(n: usize, mass_squared: f64) -> Array2<f64> {
    let mut k = Array2::zeros((n, n));
    for i in 0..n {
        k[[i, i]] += mass_squared + 2.0;
        k[[i, (i + 1) % n]] -= 1.0;
        k[[i, (i + n - 1) % n]] -= 1.0;
    }
    k
}

/// κ_n = m² + 4 sin²(πn/N) for n = 0…N−1, sorted ascending: the closed-form spectrum of
/// [`free_field_kernel`].
pub fn free_field_spectrum(n: usize, mass_squared: f64) -> Array1<f64> {
    let mut kappa: Vec<f64> = (0..n)
        .map(|m| {
            let s = (std::f64::consts::PI * m as f64 / n as f64).sin();
            mass_squared + 4.0 * s * s
        })
        .collect();
    kappa.sort_by(f64::total_cmp);
    Array1::from(kappa)
}

/// The real momentum modes of [`free_field_kernel`], κ ascending: the spectrum and, as columns,
/// orthonormal eigenvectors (the constant mode, cos and sin of each momentum 0 < n < N/2, and
/// the alternating mode for even N). A ± momentum pair is a cos/sin pair of adjacent columns
/// with equal κ, so degenerate subspaces have a known basis instead of the arbitrary one an
/// eigensolver returns.
pub fn free_field_modes(n: usize, mass_squared: f64) -> (Array1<f64>, Array2<f64>) {
    let kappa_of = |m: usize| {
        let s = (std::f64::consts::PI * m as f64 / n as f64).sin();
        mass_squared + 4.0 * s * s
    };
    let mut modes: Vec<(f64, Vec<f64>)> = vec![(kappa_of(0), vec![1.0 / (n as f64).sqrt(); n])];
    let norm = (2.0 / n as f64).sqrt();
    for m in 1..n.div_ceil(2) {
        let phase = |x: usize| 2.0 * std::f64::consts::PI * (m * x) as f64 / n as f64;
        modes.push((kappa_of(m), (0..n).map(|x| norm * phase(x).cos()).collect()));
        modes.push((kappa_of(m), (0..n).map(|x| norm * phase(x).sin()).collect()));
    }
    if n.is_multiple_of(2) {
        let alternating = (0..n)
            .map(|x| if x % 2 == 0 { 1.0 } else { -1.0 } / (n as f64).sqrt())
            .collect();
        modes.push((kappa_of(n / 2), alternating));
    }
    // Stable: the cos/sin columns of a pair stay adjacent and in order.
    modes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let kappa = modes.iter().map(|m| m.0).collect();
    let vectors = Array2::from_shape_fn((n, n), |(x, k)| modes[k].1[x]);
    (kappa, vectors)
}

/// G(t) = (1/N) Σ_x C_{x, x+t} for t = 0…`max_distance`, periodic in x.
pub fn translation_averaged_correlator(c: ArrayView2<'_, f64>, max_distance: usize) -> Vec<f64> {
    let n = c.nrows();
    (0..=max_distance)
        .map(|t| (0..n).map(|x| c[[x, (x + t) % n]]).sum::<f64>() / n as f64)
        .collect()
}

/// Mean and standard deviation of s = ½φᵀK_φφ/N for φ ~ N(0, C):
/// ⟨s⟩ = Tr(K_φC)/(2N), Var s = Tr((K_φC)²)/(2N²).
pub fn action_density_moments(k_phi: ArrayView2<'_, f64>, c: ArrayView2<'_, f64>) -> (f64, f64) {
    let n = k_phi.nrows() as f64;
    let kc = k_phi.dot(&c);
    let mean = kc.diag().sum() / (2.0 * n);
    let variance = kc.dot(&kc).diag().sum() / (2.0 * n * n);
    (mean, variance.sqrt())
}

/// Action density s = ½φᵀK_φφ/N of each row of `fields`.
pub fn action_density(k_phi: ArrayView2<'_, f64>, fields: ArrayView2<'_, f64>) -> Array1<f64> {
    let n = k_phi.nrows() as f64;
    let kf = fields.dot(&k_phi);
    (&kf * &fields).sum_axis(ndarray::Axis(1)) / (2.0 * n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::{spd_inverse_and_log_det, symmetric_eigenvalues};
    use approx::assert_abs_diff_eq;

    #[test]
    fn kernel_spectrum_matches_closed_form() {
        let k = free_field_kernel(10, 4.0);
        let eig = symmetric_eigenvalues(k.view()).unwrap();
        assert_abs_diff_eq!(eig, free_field_spectrum(10, 4.0), epsilon = 1e-12);
        assert_abs_diff_eq!(eig[0], 4.0, epsilon = 1e-12);
        assert_abs_diff_eq!(eig[9], 8.0, epsilon = 1e-12);
    }

    #[test]
    fn real_momentum_modes_diagonalise_the_kernel() {
        for n in [9, 10] {
            let k = free_field_kernel(n, 4.0);
            let (kappa, u) = free_field_modes(n, 4.0);
            assert_abs_diff_eq!(kappa, free_field_spectrum(n, 4.0), epsilon = 1e-12);
            assert_abs_diff_eq!(u.t().dot(&u), Array2::eye(n), epsilon = 1e-13);
            assert_abs_diff_eq!(
                u.t().dot(&k).dot(&u),
                Array2::from_diag(&kappa),
                epsilon = 1e-12
            );
        }
    }

    #[test]
    fn correlator_equals_momentum_sum() {
        // G(t) = (1/N) Σ_n cos(2πnt/N)/κ_n for the translation-invariant target.
        let n = 10;
        let k = free_field_kernel(n, 4.0);
        let (c, _) = spd_inverse_and_log_det(k.view()).unwrap();
        let g = translation_averaged_correlator(c.view(), 5);
        for (t, g_t) in g.iter().enumerate() {
            let sum: f64 = (0..n)
                .map(|m| {
                    let p = 2.0 * std::f64::consts::PI * m as f64 / n as f64;
                    (p * t as f64).cos() / (4.0 + 2.0 - 2.0 * p.cos())
                })
                .sum::<f64>()
                / n as f64;
            assert_abs_diff_eq!(*g_t, sum, epsilon = 1e-14);
        }
    }

    #[test]
    fn exact_model_has_equipartition_action_density() {
        let n = 10;
        let k = free_field_kernel(n, 4.0);
        let (c, _) = spd_inverse_and_log_det(k.view()).unwrap();
        let (mean, std) = action_density_moments(k.view(), c.view());
        assert_abs_diff_eq!(mean, 0.5, epsilon = 1e-14);
        assert_abs_diff_eq!(std, (1.0 / (2.0 * n as f64)).sqrt(), epsilon = 1e-14);
    }
}
