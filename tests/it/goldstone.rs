//! goldstone-synthetic at test size: a complete result folder, the dispersion relation and the
//! Hessian multiplicities against their closed forms, and the bookkeeping of the speed-up table.

use crate::util::Workspace;

const EXP: &str = "goldstone-synthetic-smoke";

#[test]
fn goldstone_synthetic_runs_and_matches_the_dispersion_relation() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);

    // The chain Laplacian has h_ν = (2 − 2cos(πν/T))λ; at the analytic minimum every h_ν is a
    // Hessian eigenvalue of multiplicity d² = 9 (GL(3) orbit), not d(d−1)/2 = 3 (rotations).
    let dispersion = ws.table(EXP, "dispersion");
    assert_eq!(dispersion.rows.len(), 12);
    for row in &dispersion.rows {
        let formula = dispersion.f64(row, "h_formula");
        assert!((dispersion.f64(row, "h_laplacian") - formula).abs() < 1e-10);
        assert_eq!(dispersion.f64(row, "hessian_multiplicity"), 9.0, "{row:?}");
    }
    let summary = ws.table(EXP, "hessian_summary");
    let row = &summary.rows[0];
    assert_eq!(summary.f64(row, "zero_modes"), 9.0);
    assert!(summary.f64(row, "gradient_norm_at_minimum") < 1e-10);
    // h_{T−1}/h_1 → 4T²/π² (1 − O(1/T²)).
    let condition = ws.table(EXP, "condition_number");
    for row in &condition.rows {
        let ratio = condition.f64(row, "ratio") / condition.f64(row, "four_t2_over_pi2");
        assert!((0.98..1.0).contains(&ratio), "{row:?}");
    }

    // Every run is accounted for: 3 variants × 3 seeds; the baseline's speed-up against itself
    // is 1 wherever it reached; no final loss lies below the closed-form global minimum.
    let runs = ws.table(EXP, "runs");
    assert_eq!(runs.rows.len(), 9);
    for row in &runs.rows {
        let global = runs.f64(row, "global_minimum");
        let last = runs.f64(row, "final_loss");
        assert!(last.is_nan() || last >= global * (1.0 - 1e-9), "{row:?}");
    }
    let speedup = ws.table(EXP, "speedup");
    for row in speedup
        .rows
        .iter()
        .filter(|r| speedup.str(r, "variant") == "baseline")
    {
        let s = speedup.f64(row, "median_speedup");
        assert!(s.is_nan() || s == 1.0, "{row:?}");
    }
    let latest = ws.latest(EXP);
    for figure in ["loss_psi_scale-0", "snapshots_scale-0", "dispersion"] {
        assert!(
            latest
                .join("figures")
                .join(format!("{figure}.png"))
                .is_file()
        );
    }
}
