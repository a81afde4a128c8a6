//! Blocked leave-one-bin-out jackknife for smooth functions of sample means.
//!
//! Samples are rows of a feature matrix; an estimator is a function of the column means. The
//! samples are split into `bins` contiguous bins; the estimator is recomputed with each bin left
//! out, and the spread of those values gives the standard error. With independent samples and one
//! sample per bin this is the classical leave-one-out jackknife.

use ndarray::{Array1, ArrayView2, Axis};

/// Estimate and jackknife standard error of each output of `estimator`.
pub struct JackknifeResult {
    pub estimate: Vec<f64>,
    pub error: Vec<f64>,
}

/// Applies `estimator` to the means of `features` (rows are samples), with blocked jackknife errors.
pub fn jackknife<F>(features: ArrayView2<'_, f64>, bins: usize, estimator: F) -> JackknifeResult
where
    F: Fn(&[f64]) -> Vec<f64>,
{
    let n = features.nrows();
    let bins = bins.clamp(2, n.max(2));
    let total: Array1<f64> = features.sum_axis(Axis(0));
    let full_mean = (&total / n as f64).to_vec();
    let estimate = estimator(&full_mean);
    let mut leave_out: Vec<Vec<f64>> = Vec::with_capacity(bins);
    for b in 0..bins {
        let start = b * n / bins;
        let end = (b + 1) * n / bins;
        let bin_sum = features
            .slice(ndarray::s![start..end, ..])
            .sum_axis(Axis(0));
        let kept = (n - (end - start)) as f64;
        let mean = ((&total - &bin_sum) / kept).to_vec();
        leave_out.push(estimator(&mean));
    }
    let outputs = estimate.len();
    let error = (0..outputs)
        .map(|k| {
            let avg = leave_out.iter().map(|v| v[k]).sum::<f64>() / bins as f64;
            let ss = leave_out.iter().map(|v| (v[k] - avg).powi(2)).sum::<f64>();
            ((bins as f64 - 1.0) / bins as f64 * ss).sqrt()
        })
        .collect();
    JackknifeResult { estimate, error }
}

/// Mean and standard deviation of `x` with jackknife errors: `([mean, std], [err, err])`.
pub fn mean_and_std(x: &[f64], bins: usize) -> JackknifeResult {
    let features =
        ndarray::Array2::from_shape_fn(
            (x.len(), 2),
            |(i, k)| {
                if k == 0 { x[i] } else { x[i] * x[i] }
            },
        );
    jackknife(features.view(), bins, |m| {
        vec![m[0], (m[1] - m[0] * m[0]).max(0.0).sqrt()]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    #[test]
    fn leave_one_out_error_of_mean_is_the_standard_error() {
        let x: Vec<f64> = (0..50).map(|i| ((i * 37) % 11) as f64).collect();
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let r = mean_and_std(&x, x.len());
        assert_abs_diff_eq!(r.estimate[0], mean, epsilon = 1e-12);
        assert_abs_diff_eq!(r.error[0], (var / n).sqrt(), epsilon = 1e-12);
    }
}
