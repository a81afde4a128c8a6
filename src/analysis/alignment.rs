//! Alignment of chains of embeddings (T × d × N: one d × N matrix per step) with each other and
//! with a known truth: the exact minimiser of the chain coupling ψ over O(d)^T (sequential
//! orthogonal Procrustes, reflections allowed), and the misalignment of a fit against the truth —
//! one global orthogonal map against one map per step (the twist gap), sign changes of det R_t
//! along the chain (mirror walls, which no rotation removes), which of those walls are smooth (an
//! axis of the fit shrinks through zero there rather than the chain jumping by a reflection),
//! and the length of the path of the per-step maps between walls (the smooth twist).

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};

use crate::error::Result;
use crate::linalg::{determinant, procrustes, symmetric_eigenvalues};

/// A wall is smooth when the thinner of its two steps has its smallest axis below this fraction
/// of the chain's median smallest axis: an axis passing through zero over k steps leaves a
/// neighbour of the crossing at ≲ 1/k of its size, a sharp reflection leaves both at full size.
pub const SMOOTH_WALL_RATIO: f64 = 0.5;

/// Rotates every step onto its already-aligned predecessor (step 0 stays), in place; returns
/// the maps R_t (R_0 = I). Because ψ = ½ Σ c_t ‖Z_{t+1} − Z_t‖² couples only neighbours, this
/// minimises ψ over O(d)^T exactly.
pub fn chain_procrustes(z: &mut Array3<f64>) -> Result<Vec<Array2<f64>>> {
    let (steps, d, _) = z.dim();
    let mut maps = vec![Array2::eye(d)];
    for t in 1..steps {
        let r = procrustes(z.index_axis(Axis(0), t), z.index_axis(Axis(0), t - 1))?;
        let rotated = r.dot(&z.index_axis(Axis(0), t));
        z.index_axis_mut(Axis(0), t).assign(&rotated);
        maps.push(r);
    }
    Ok(maps)
}

/// How a fitted chain sits against the truth.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Misalignment {
    /// mean_t ‖R Ẑ_t − Ẑ*_t‖² with one orthogonal R for all steps (unit-norm steps).
    pub global_error: f64,
    /// mean_t min_{R_t} ‖R_t Ẑ_t − Ẑ*_t‖².
    pub step_error: f64,
    /// global − step: 0 without a twist, up to ≈ 2 when completely scrambled.
    pub twist_gap: f64,
    /// Sign changes of det R_t along the chain.
    pub walls: usize,
    /// Walls at which an axis of the fit collapses (see [`SMOOTH_WALL_RATIO`]).
    pub smooth_walls: usize,
    /// min_t / median_t of the smallest singular value of the unit-norm fitted steps: ≈ 1 when
    /// every step keeps all d axes, → 0 when an axis passes through zero somewhere.
    pub axis_dip: f64,
    /// Σ ‖R_{t+1} − R_t‖_F over the links without a sign change.
    pub twist_path: f64,
}

fn unit(step: ArrayView2<'_, f64>) -> Array2<f64> {
    let norm = step.iter().map(|x| x * x).sum::<f64>().sqrt();
    step.mapv(|x| x / norm.max(f64::MIN_POSITIVE))
}

fn squared_distance(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// Misalignment of `fit` against `truth` (both T × d × N, same d).
pub fn misalignment(fit: ArrayView3<'_, f64>, truth: ArrayView3<'_, f64>) -> Result<Misalignment> {
    let steps = fit.dim().0;
    let fits: Vec<Array2<f64>> = fit.outer_iter().map(unit).collect();
    let truths: Vec<Array2<f64>> = truth.outer_iter().map(unit).collect();
    // One map for all steps: Procrustes of the steps side by side.
    let side_by_side = |steps_of: &[Array2<f64>]| -> Result<Array2<f64>> {
        let views: Vec<ArrayView2<'_, f64>> = steps_of.iter().map(|s| s.view()).collect();
        ndarray::concatenate(Axis(1), &views)
            .map_err(|e| crate::error::Error::Other(format!("steps of unequal shape: {e}")))
    };
    let global = procrustes(side_by_side(&fits)?.view(), side_by_side(&truths)?.view())?;
    let mut global_error = 0.0;
    let mut step_error = 0.0;
    let mut maps = Vec::with_capacity(steps);
    for (f, t) in fits.iter().zip(&truths) {
        global_error += squared_distance(&global.dot(f), t);
        let r = procrustes(f.view(), t.view())?;
        step_error += squared_distance(&r.dot(f), t);
        maps.push(r);
    }
    let (global_error, step_error) = (global_error / steps as f64, step_error / steps as f64);
    let signs: Vec<bool> = maps.iter().map(|r| determinant(r.view()) > 0.0).collect();
    let thinnest = fits
        .iter()
        .map(|f| smallest_singular_value(f.view()))
        .collect::<Result<Vec<f64>>>()?;
    let typical = crate::analysis::stats::median(&mut thinnest.clone()).unwrap_or(0.0);
    let axis_dip = if typical > 0.0 {
        thinnest.iter().copied().fold(f64::INFINITY, f64::min) / typical
    } else {
        0.0
    };
    let mut walls = 0;
    let mut smooth_walls = 0;
    let mut twist_path = 0.0;
    for t in 1..steps {
        if signs[t] != signs[t - 1] {
            walls += 1;
            if thinnest[t].min(thinnest[t - 1]) < SMOOTH_WALL_RATIO * typical {
                smooth_walls += 1;
            }
        } else {
            twist_path += squared_distance(&maps[t], &maps[t - 1]).sqrt();
        }
    }
    Ok(Misalignment {
        global_error,
        step_error,
        twist_gap: global_error - step_error,
        walls,
        smooth_walls,
        axis_dip,
        twist_path,
    })
}

/// The smallest singular value of a d × N step (d ≤ N), from the eigenvalues of its Gram matrix.
fn smallest_singular_value(step: ArrayView2<'_, f64>) -> Result<f64> {
    let gram = step.dot(&step.t());
    let values = symmetric_eigenvalues(gram.view())?;
    Ok(values.first().copied().unwrap_or(0.0).max(0.0).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array3, s};

    /// Steps whose rows are orthogonal with equal norms (a scaled slice of an orthogonal
    /// matrix), different at every step.
    fn isotropic_chain(steps: usize, d: usize, n: usize) -> Array3<f64> {
        let mut z = Array3::zeros((steps, d, n));
        for t in 0..steps {
            // Rows: cosines of distinct frequencies over n points (orthogonal, equal norm).
            for k in 0..d {
                for j in 0..n {
                    let phase = 2.0 * std::f64::consts::PI * ((k + 1) * j) as f64 / n as f64;
                    z[[t, k, j]] = (phase + 0.1 * t as f64).cos();
                }
            }
        }
        z
    }

    fn plane_rotation(d: usize, angle: f64) -> Array2<f64> {
        let mut r = Array2::eye(d);
        r[[0, 0]] = angle.cos();
        r[[0, 1]] = -angle.sin();
        r[[1, 0]] = angle.sin();
        r[[1, 1]] = angle.cos();
        r
    }

    fn apply(maps: impl Fn(usize) -> Array2<f64>, z: &Array3<f64>) -> Array3<f64> {
        let mut out = z.clone();
        for t in 0..z.dim().0 {
            let rotated = maps(t).dot(&z.index_axis(Axis(0), t));
            out.index_axis_mut(Axis(0), t).assign(&rotated);
        }
        out
    }

    /// The truth under one global orthogonal map (a reflection included): no twist, no wall.
    #[test]
    fn a_global_map_has_no_twist() {
        let truth = isotropic_chain(12, 4, 32);
        let mut global = plane_rotation(4, 1.1);
        global.row_mut(3).mapv_inplace(|x| -x);
        let fit = apply(|_| global.clone(), &truth);
        let m = misalignment(fit.view(), truth.view()).unwrap();
        assert!(
            m.global_error.abs() < 1e-12 && m.step_error.abs() < 1e-12,
            "{m:?}"
        );
        assert!(m.twist_gap.abs() < 1e-12);
        assert_eq!(m.walls, 0);
        assert!(m.twist_path < 1e-10);
    }

    /// A smooth twist θ_t from −a to a in one plane: per-step maps fit exactly, the global map is
    /// the identity by symmetry, and for steps with Ẑ Ẑᵀ = I/d the gap is (4/d) mean_t (1 − cos θ_t);
    /// the path of the maps is Σ ‖R(θ_{t+1}) − R(θ_t)‖ = (T − 1)·2√2·sin(Δθ/2).
    #[test]
    fn a_smooth_twist_has_the_predicted_gap() {
        let (steps, d, n, a) = (21, 4, 64, 1.2);
        let truth = isotropic_chain(steps, d, n);
        let angle = |t: usize| -a + 2.0 * a * t as f64 / (steps - 1) as f64;
        let fit = apply(|t| plane_rotation(d, angle(t)), &truth);
        let m = misalignment(fit.view(), truth.view()).unwrap();
        let predicted =
            4.0 / d as f64 * (0..steps).map(|t| 1.0 - angle(t).cos()).sum::<f64>() / steps as f64;
        assert!(
            (m.twist_gap - predicted).abs() < 1e-10,
            "{} vs {predicted}",
            m.twist_gap
        );
        assert!(m.step_error < 1e-12);
        assert_eq!(m.walls, 0);
        let step = 2.0 * a / (steps - 1) as f64;
        let path = (steps - 1) as f64 * 2.0 * 2f64.sqrt() * (step / 2.0).sin();
        assert!(
            (m.twist_path - path).abs() < 1e-9,
            "{} vs {path}",
            m.twist_path
        );
    }

    /// Reflecting the second half of the chain is one mirror wall.
    #[test]
    fn a_single_det_flip_is_one_wall() {
        let truth = isotropic_chain(10, 3, 16);
        let mut flip = Array2::eye(3);
        flip[[2, 2]] = -1.0;
        let fit = apply(
            |t| if t < 5 { Array2::eye(3) } else { flip.clone() },
            &truth,
        );
        let m = misalignment(fit.view(), truth.view()).unwrap();
        assert_eq!(m.walls, 1);
        assert_eq!(m.smooth_walls, 0, "a jump by a reflection is sharp");
        assert!((m.axis_dip - 1.0).abs() < 1e-10, "{}", m.axis_dip);
        assert!(m.twist_path < 1e-10);
        assert!(m.twist_gap > 0.1);
    }

    /// One axis scaled by a_t running linearly from 1 to −1 over ten steps (±1/9 around the
    /// crossing): det R_t flips once, and the wall is smooth; the dip is the crossing's share.
    #[test]
    fn an_axis_through_zero_is_one_smooth_wall() {
        let truth = isotropic_chain(10, 3, 16);
        let fit = apply(
            |t| {
                let mut squeeze = Array2::eye(3);
                squeeze[[2, 2]] = 1.0 - 2.0 * t as f64 / 9.0;
                squeeze
            },
            &truth,
        );
        let m = misalignment(fit.view(), truth.view()).unwrap();
        assert_eq!((m.walls, m.smooth_walls), (1, 1));
        // Rows of equal norm scaled by (1, 1, a): the unit-norm step's smallest singular value
        // is |a|/√(2 + a²); its median over the chain is at |a| = 5/9.
        let thinnest = |a: f64| a.abs() / (2.0 + a * a).sqrt();
        let expected = thinnest(1.0 / 9.0) / thinnest(5.0 / 9.0);
        assert!(
            (m.axis_dip - expected).abs() < 1e-10,
            "{} vs {expected}",
            m.axis_dip
        );
    }

    /// Chain Procrustes undoes per-step orthogonal maps up to one global map: after it, the
    /// chain's neighbours are as close as the truth's, and the misalignment is global only.
    #[test]
    fn chain_procrustes_removes_per_step_maps() {
        let truth = isotropic_chain(8, 3, 24);
        let scrambled = apply(
            |t| {
                let mut r = plane_rotation(3, 0.7 * t as f64 * t as f64);
                if t % 3 == 1 {
                    r.row_mut(2).mapv_inplace(|x| -x);
                }
                r
            },
            &truth,
        );
        let mut aligned = scrambled.clone();
        let maps = chain_procrustes(&mut aligned).unwrap();
        assert_eq!(maps.len(), 8);
        let m = misalignment(aligned.view(), truth.view()).unwrap();
        assert!(m.twist_gap.abs() < 1e-10 && m.walls == 0, "{m:?}");
        assert!(
            (aligned.slice(s![0, .., ..]).to_owned() - scrambled.slice(s![0, .., ..]))
                .iter()
                .all(|x| x.abs() < 1e-15)
        );
    }
}
