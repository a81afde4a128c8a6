//! Relaxation times from the approach of a trajectory to its plateau.
//!
//! The model is y(t) = c + A e^{−(t − t₀)/τ}, fitted by least squares in y itself (not in
//! ln|y − c|, whose noise blows up near the plateau and biases τ). For each τ the amplitude A and
//! plateau c are linear least-squares unknowns, so the fit is a one-dimensional minimisation of
//! the residual over ln τ (a coarse scan, then golden-section refinement). The fit window starts
//! where |y − y_tail| first falls below `upper · |y(0) − y_tail|` — past the nonlinear transient —
//! with y_tail the mean of the last `tail_fraction` of the records, and runs to the end, so the
//! plateau is fitted together with the decay. The error of τ comes from the curvature of the
//! profile residual with the residual variance as noise (records are correlated in time, so for
//! stochastic runs it is a lower bound).

/// Window settings of a relaxation fit.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RelaxationWindow {
    pub upper: f64,
    pub tail_fraction: f64,
    pub min_points: usize,
}

/// A fitted relaxation time.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RelaxationFit {
    pub tau: f64,
    pub tau_error: f64,
    pub plateau: f64,
    pub amplitude: f64,
    pub points: usize,
    pub window_start: f64,
}

/// Best (A, c, residual) for a fixed τ.
fn linear_part(t: &[f64], y: &[f64], tau: f64) -> (f64, f64, f64) {
    let t0 = t[0];
    let n = t.len() as f64;
    let (mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0);
    for (&ti, &yi) in t.iter().zip(y) {
        let x = (-(ti - t0) / tau).exp();
        sx += x;
        sy += yi;
        sxx += x * x;
        sxy += x * yi;
    }
    let det = n * sxx - sx * sx;
    if det.abs() < f64::MIN_POSITIVE {
        return (0.0, sy / n, f64::INFINITY);
    }
    let a = (n * sxy - sx * sy) / det;
    let c = (sy - a * sx) / n;
    let rss = t
        .iter()
        .zip(y)
        .map(|(&ti, &yi)| (yi - c - a * (-(ti - t0) / tau).exp()).powi(2))
        .sum();
    (a, c, rss)
}

/// Fits y(t) ≈ c + A e^{−t/τ}; `None` without a decaying window of `min_points` records.
pub fn fit_relaxation(t: &[f64], y: &[f64], window: &RelaxationWindow) -> Option<RelaxationFit> {
    let n = y.len();
    if n < 4 || t.len() != n {
        return None;
    }
    let tail_len = ((n as f64 * window.tail_fraction).ceil() as usize).clamp(1, n);
    let tail_mean = y[n - tail_len..].iter().sum::<f64>() / tail_len as f64;
    let initial = (y[0] - tail_mean).abs();
    if initial == 0.0 || !initial.is_finite() {
        return None;
    }
    let start = y
        .iter()
        .position(|v| (v - tail_mean).abs() <= window.upper * initial)?;
    let (tw, yw) = (&t[start..], &y[start..]);
    if tw.len() < window.min_points.max(4) {
        return None;
    }
    let span = tw[tw.len() - 1] - tw[0];
    let step = (tw[1] - tw[0]).max(f64::MIN_POSITIVE);
    let rss = |u: f64| linear_part(tw, yw, u.exp()).2;
    // Coarse scan of ln τ from a fraction of a record to ten times the window.
    let (lo, hi) = ((0.1 * step).ln(), (10.0 * span).ln());
    let grid = 200;
    let mut best = (lo, f64::INFINITY);
    for k in 0..=grid {
        let u = lo + (hi - lo) * k as f64 / grid as f64;
        let r = rss(u);
        if r < best.1 {
            best = (u, r);
        }
    }
    let cell = (hi - lo) / grid as f64;
    let (mut a, mut b) = (best.0 - cell, best.0 + cell);
    let golden = 0.5 * (5f64.sqrt() - 1.0);
    for _ in 0..100 {
        let (c1, c2) = (b - golden * (b - a), a + golden * (b - a));
        if rss(c1) < rss(c2) {
            b = c2;
        } else {
            a = c1;
        }
    }
    let u = 0.5 * (a + b);
    let tau = u.exp();
    if tau >= 5.0 * span {
        return None;
    }
    let (amplitude, plateau, residual) = linear_part(tw, yw, tau);
    // Curvature of the profile residual in τ gives var(τ) = 2σ²/RSS''.
    let h = 1e-3 * tau;
    let curvature = (linear_part(tw, yw, tau + h).2 - 2.0 * residual
        + linear_part(tw, yw, tau - h).2)
        / (h * h);
    let sigma2 = residual / (tw.len() as f64 - 3.0).max(1.0);
    let tau_error = if curvature > 0.0 {
        (2.0 * sigma2 / curvature).sqrt()
    } else {
        f64::NAN
    };
    Some(RelaxationFit {
        tau,
        tau_error,
        plateau,
        amplitude,
        points: tw.len(),
        window_start: tw[0],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    const WINDOW: RelaxationWindow = RelaxationWindow {
        upper: 0.1,
        tail_fraction: 0.1,
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

    /// With white noise on top, τ is found within a few of its own standard errors.
    #[test]
    fn noisy_exponential_is_fitted_within_its_error() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let noise = Normal::new(0.0, 0.02).unwrap();
        let t: Vec<f64> = (0..3000).map(f64::from).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|t| 1.0 + 2.0 * (-t / 200.0).exp() + noise.sample(&mut rng))
            .collect();
        let fit = fit_relaxation(&t, &y, &WINDOW).unwrap();
        assert!(
            (fit.tau - 200.0).abs() < 4.0 * fit.tau_error,
            "τ = {} ± {}",
            fit.tau,
            fit.tau_error
        );
        assert!(
            fit.tau_error < 10.0,
            "error {} is uninformative",
            fit.tau_error
        );
    }

    #[test]
    fn a_flat_series_has_no_relaxation_time() {
        let t: Vec<f64> = (0..100).map(f64::from).collect();
        assert!(fit_relaxation(&t, &[1.0; 100], &WINDOW).is_none());
    }
}
