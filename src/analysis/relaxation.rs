//! Relaxation times from the approach of a trajectory to its plateau.
//!
//! Given y(t) relaxing to y(∞), the plateau is the mean of the last `tail_fraction` of the
//! records and the noise floor is `noise_multiple` times the standard deviation of y over that
//! tail. The fit window is the contiguous stretch that starts where |y − y(∞)| first falls below
//! `upper · |y(0) − y(∞)|` (past the nonlinear transient) and ends where it first falls below
//! `max(lower · |y(0) − y(∞)|, noise floor)`. On that window ln|y − y(∞)| = c − t/τ is fitted by
//! least squares; τ carries the slope's standard error propagated to τ.

/// Window and floor settings of a relaxation fit.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RelaxationWindow {
    pub upper: f64,
    pub lower: f64,
    pub tail_fraction: f64,
    pub noise_multiple: f64,
    pub min_points: usize,
}

/// A fitted relaxation time, or the reason there is none.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RelaxationFit {
    pub tau: f64,
    pub tau_error: f64,
    pub plateau: f64,
    pub points: usize,
    pub window_start: f64,
    pub window_end: f64,
}

/// Fits y(t) ≈ y(∞) + A e^{−t/τ}; `None` when the window holds fewer than `min_points` records.
pub fn fit_relaxation(t: &[f64], y: &[f64], window: &RelaxationWindow) -> Option<RelaxationFit> {
    let n = y.len();
    if n < 4 || t.len() != n {
        return None;
    }
    let tail_len = ((n as f64 * window.tail_fraction).ceil() as usize).clamp(1, n);
    let tail = &y[n - tail_len..];
    let plateau = tail.iter().sum::<f64>() / tail_len as f64;
    let tail_std =
        (tail.iter().map(|v| (v - plateau).powi(2)).sum::<f64>() / tail_len as f64).sqrt();
    let initial = (y[0] - plateau).abs();
    if initial == 0.0 {
        return None;
    }
    let upper = window.upper * initial;
    let floor = (window.lower * initial).max(window.noise_multiple * tail_std);
    let start = y.iter().position(|v| (v - plateau).abs() <= upper)?;
    let end = y[start..]
        .iter()
        .position(|v| (v - plateau).abs() <= floor)
        .map_or(n - tail_len, |k| start + k)
        .min(n - tail_len);
    if end <= start || end - start < window.min_points {
        return None;
    }
    let xs = &t[start..end];
    let ys: Vec<f64> = y[start..end]
        .iter()
        .map(|v| (v - plateau).abs().ln())
        .collect();
    let m = xs.len() as f64;
    let x_mean = xs.iter().sum::<f64>() / m;
    let y_mean = ys.iter().sum::<f64>() / m;
    let sxx: f64 = xs.iter().map(|x| (x - x_mean).powi(2)).sum();
    let sxy: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (x - x_mean) * (y - y_mean))
        .sum();
    let slope = sxy / sxx;
    let intercept = y_mean - slope * x_mean;
    let residual: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (y - intercept - slope * x).powi(2))
        .sum();
    let slope_error = (residual / (m - 2.0).max(1.0) / sxx).sqrt();
    if slope >= 0.0 {
        return None;
    }
    let tau = -1.0 / slope;
    Some(RelaxationFit {
        tau,
        tau_error: tau * tau * slope_error,
        plateau,
        points: xs.len(),
        window_start: xs[0],
        window_end: xs[xs.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    const WINDOW: RelaxationWindow = RelaxationWindow {
        upper: 0.1,
        lower: 1e-9,
        tail_fraction: 0.1,
        noise_multiple: 3.0,
        min_points: 5,
    };

    #[test]
    fn recovers_the_time_constant_of_an_exponential() {
        let t: Vec<f64> = (0..4000).map(f64::from).collect();
        let y: Vec<f64> = t.iter().map(|t| 2.0 + 3.0 * (-t / 123.0).exp()).collect();
        let fit = fit_relaxation(&t, &y, &WINDOW).unwrap();
        assert_relative_eq!(fit.tau, 123.0, max_relative = 1e-6);
        assert_relative_eq!(fit.plateau, 2.0, max_relative = 1e-9);
    }

    #[test]
    fn a_flat_series_has_no_relaxation_time() {
        let t: Vec<f64> = (0..100).map(f64::from).collect();
        assert!(fit_relaxation(&t, &[1.0; 100], &WINDOW).is_none());
    }
}
