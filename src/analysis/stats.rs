//! Order statistics, means with standard errors and straight-line fits shared by the
//! experiments' summaries.

/// Median of the values (mean of the middle two for an even count); sorts them in place.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    })
}

/// Median of the finite values, NaN if there are none.
pub fn finite_median(values: &[f64]) -> f64 {
    let mut finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    median(&mut finite).unwrap_or(f64::NAN)
}

/// Mean and standard error (sample standard deviation / √n) of independent values; the error is
/// NaN for fewer than two.
pub fn mean_and_standard_error(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (variance / n).sqrt())
}

/// Ordinary least squares y ≈ intercept + slope·x: `(slope, intercept)`.
pub fn least_squares_line(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let slope = sxy / sxx;
    (slope, my - slope * mx)
}

/// A weighted straight-line fit with the errors of its two parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightedLine {
    pub slope: f64,
    pub slope_error: f64,
    pub intercept: f64,
    pub intercept_error: f64,
    /// Σ((y − fit)/σ)²; its expectation is the number of points minus two.
    pub chi_squared: f64,
}

/// Weighted least squares of y with standard errors `sigma` on x: the parameter errors are those
/// implied by `sigma` alone (not rescaled by χ², which the caller reports beside them).
pub fn weighted_line(x: &[f64], y: &[f64], sigma: &[f64]) -> WeightedLine {
    let w: Vec<f64> = sigma.iter().map(|s| 1.0 / (s * s)).collect();
    let s: f64 = w.iter().sum();
    let sx: f64 = w.iter().zip(x).map(|(w, x)| w * x).sum();
    let sy: f64 = w.iter().zip(y).map(|(w, y)| w * y).sum();
    let sxx: f64 = w.iter().zip(x).map(|(w, x)| w * x * x).sum();
    let sxy: f64 = w.iter().zip(x).zip(y).map(|((w, x), y)| w * x * y).sum();
    let det = s * sxx - sx * sx;
    let slope = (s * sxy - sx * sy) / det;
    let intercept = (sxx * sy - sx * sxy) / det;
    let chi_squared = x
        .iter()
        .zip(y)
        .zip(sigma)
        .map(|((x, y), s)| ((y - intercept - slope * x) / s).powi(2))
        .sum();
    WeightedLine {
        slope,
        slope_error: (s / det).sqrt(),
        intercept,
        intercept_error: (sxx / det).sqrt(),
        chi_squared,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_even_and_non_finite_values() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
        assert_eq!(finite_median(&[f64::NAN, 5.0, 1.0, f64::INFINITY]), 3.0);
        assert!(finite_median(&[f64::NAN]).is_nan());
    }

    /// Exact data on a line is fitted exactly; the errors of a two-point weighted fit follow from
    /// the textbook formulas (slope error √2/Δx·σ for two points Δx apart).
    #[test]
    fn lines_are_fitted_with_their_errors() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let y: Vec<f64> = x.iter().map(|v| 0.5 + 2.0 * v).collect();
        let (slope, intercept) = least_squares_line(&x, &y);
        assert!((slope - 2.0).abs() < 1e-12 && (intercept - 0.5).abs() < 1e-12);
        let fit = weighted_line(&[0.0, 2.0], &[1.0, 5.0], &[0.1, 0.1]);
        assert!((fit.slope - 2.0).abs() < 1e-12 && fit.chi_squared < 1e-20);
        assert!((fit.slope_error - 0.1 * 2f64.sqrt() / 2.0).abs() < 1e-12);
        let (mean, se) = mean_and_standard_error(&[1.0, 3.0]);
        assert!((mean - 2.0).abs() < 1e-12 && (se - 1.0).abs() < 1e-12);
    }
}
