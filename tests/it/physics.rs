//! First-principles checks on the smoke run's tables: exact-mode fixed points and cutoff
//! spectra to 1e-6, the 2×1 angle against its closed form, PCD within a few standard errors,
//! exact-mode relaxation times within 20 % of 1/(αγ), propagators and action densities against
//! the predictions of the fixed-point spectrum.

use crate::util::{Table, Workspace};

const EXP: &str = "rbm-scalar-smoke";

fn smoke() -> &'static Workspace {
    static WS: std::sync::OnceLock<Workspace> = std::sync::OnceLock::new();
    WS.get_or_init(|| {
        let ws = Workspace::with_spec(EXP);
        ws.run(&["run", EXP, "--quiet"]).expect_code(0);
        ws
    })
}

fn rows<'a>(t: &'a Table, column: &str, value: &str) -> Vec<&'a Vec<String>> {
    t.rows
        .iter()
        .filter(|r| t.str(r, column) == value)
        .collect()
}

#[test]
fn exact_flow_reaches_every_kappa() {
    let t = smoke().table(EXP, "fixed_points");
    let exact = rows(&t, "instance", "flow,mode=exact");
    assert_eq!(exact.len(), 10);
    for r in exact {
        assert!(t.f64(r, "abs_error_final") < 1e-6, "{r:?}");
    }
}

#[test]
fn cutoff_spectra_match_the_prediction() {
    for name in ["cutoff_hidden", "cutoff_mass"] {
        let t = smoke().table(EXP, name);
        assert_eq!(t.rows.len(), 20);
        for r in &t.rows {
            assert!(t.f64(r, "abs_error") < 1e-6, "{name}: {r:?}");
        }
    }
}

#[test]
fn toy_angle_follows_the_closed_form() {
    let t = smoke().table(EXP, "toy_angle");
    let worst = t
        .rows
        .iter()
        .map(|r| t.f64(r, "abs_difference"))
        .fold(0.0, f64::max);
    // α = 1e-3 here; the error is first order in α (see the unit test at α = 1e-4).
    assert!(worst < 1e-3, "max |Δθ| = {worst}");
}

/// PCD: the late-window mean of each well-separated cluster of eigenvalues is within four
/// standard errors of the mean κ of that cluster. Within a cluster (a degenerate pair, or levels
/// closer than the noise) sorting the noisy eigenvalues pushes them apart (level repulsion), so
/// only the cluster mean is an unbiased estimate.
#[test]
fn pcd_fixed_points_are_within_a_few_standard_errors() {
    let t = smoke().table(EXP, "fixed_points");
    let pcd = rows(&t, "instance", "flow,mode=pcd");
    let clusters: [&[usize]; 4] = [&[0, 1, 2], &[3, 4], &[5, 6], &[7, 8, 9]];
    for c in clusters {
        let n = c.len() as f64;
        let mean = c.iter().map(|&i| t.f64(pcd[i], "late_mean")).sum::<f64>() / n;
        let kappa = c.iter().map(|&i| t.f64(pcd[i], "predicted")).sum::<f64>() / n;
        // Members' errors are correlated; the largest bounds the cluster mean's.
        let se = c
            .iter()
            .map(|&i| t.f64(pcd[i], "late_error"))
            .fold(0.0, f64::max);
        assert!(
            (mean - kappa).abs() < 4.0 * se,
            "modes {c:?}: {mean} vs {kappa} (se {se})"
        );
    }
}

#[test]
fn exact_relaxation_times_match_the_linear_rate() {
    let t = smoke().table(EXP, "relaxation");
    let exact: Vec<_> = rows(&t, "mode", "exact")
        .into_iter()
        .filter(|r| t.str(r, "init") == "aligned")
        .collect();
    assert!(exact.len() >= 20);
    for r in exact {
        let ratio = t.f64(r, "ratio");
        assert!((ratio - 1.0).abs() < 0.2, "τ_fit/τ_pred = {ratio}: {r:?}");
        // Deep in the linear regime the discrete-step rate −1/ln(1 − αγ) holds to 1 %.
        let late = t.f64(r, "tau_fit_late") / t.f64(r, "tau_predicted_discrete");
        assert!(
            (late - 1.0).abs() < 0.01,
            "late τ / discrete prediction = {late}: {r:?}"
        );
    }
}

#[test]
fn propagator_and_action_density_match_predictions() {
    let ws = smoke();
    let g = ws.table(EXP, "propagator_distance");
    for r in &g.rows {
        let (pred, model) = (g.f64(r, "predicted"), g.f64(r, "model"));
        if !g.str(r, "instance").contains("pcd") {
            assert!((pred - model).abs() < 1e-6, "{r:?}");
        }
        let (samples, err) = (g.f64(r, "samples"), g.f64(r, "samples_error"));
        assert!((samples - pred).abs() < 5.0 * err, "{r:?}");
    }
    let s = ws.table(EXP, "action_density");
    for r in &s.rows {
        let (pred, model) = (s.f64(r, "predicted_mean"), s.f64(r, "model_mean"));
        if !s.str(r, "instance").contains("pcd") {
            assert!((pred - model).abs() < 1e-6, "{r:?}");
        }
        let (mean, err) = (s.f64(r, "mean"), s.f64(r, "mean_error"));
        assert!((mean - pred).abs() < 5.0 * err, "{r:?}");
        let (std, std_err) = (s.f64(r, "std"), s.f64(r, "std_error"));
        assert!(
            (std - s.f64(r, "predicted_std")).abs() < 5.0 * std_err,
            "{r:?}"
        );
    }
}

#[test]
fn trained_mu_settles_at_the_harmonic_mean_of_the_unlearned_modes() {
    let t = smoke().table(EXP, "mu_final");
    let r = &t.rows[0];
    let (found, predicted) = (
        t.f64(r, "mu_squared_final"),
        t.f64(r, "mu_squared_predicted"),
    );
    assert!(
        (found - predicted).abs() < 1e-6,
        "μ² = {found}, predicted {predicted}"
    );
}
