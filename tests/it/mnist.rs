//! rbm-mnist on the vendored MNIST files: the data side, the fitted models against their
//! analytic fixed point (PCA with the cutoff 1/μ²), relaxation times against the linearised
//! flow, and refusal of a corrupted copy.

use crate::util::Workspace;

const EXP: &str = "rbm-mnist-smoke";

fn workspace() -> Workspace {
    Workspace::with_data(
        EXP,
        &[
            "mnist/train-images-idx3-ubyte.gz",
            "mnist/t10k-images-idx3-ubyte.gz",
        ],
    )
}

fn run() -> Workspace {
    let ws = workspace();
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    ws
}

#[test]
fn spectrum_fits_and_relaxation_match_first_principles() {
    let ws = run();
    spectrum_shows_the_never_lit_pixels_as_zero_modes(&ws);
    fitted_models_are_pca_with_a_cutoff(&ws);
    relaxation_times_follow_the_linearised_flow(&ws);
    let latest = ws.latest(EXP);
    for figure in [
        "spectrum",
        "learned_spectrum",
        "regeneration",
        "regeneration_mean",
        "relaxation",
    ] {
        for ext in ["png", "svg"] {
            let path = latest.join("figures").join(format!("{figure}.{ext}"));
            assert!(path.is_file(), "{} missing", path.display());
        }
    }
    // The SVG grid embeds one bitmap per panel, not one element per pixel.
    let svg = std::fs::metadata(latest.join("figures/regeneration.svg")).unwrap();
    assert!(
        svg.len() < 2_000_000,
        "regeneration.svg is {} bytes",
        svg.len()
    );
}

fn spectrum_shows_the_never_lit_pixels_as_zero_modes(ws: &Workspace) {
    let summary = ws.table(EXP, "data_summary");
    let row = &summary.rows[0];
    assert_eq!(summary.f64(row, "images"), 60000.0);
    let never_lit = summary.f64(row, "always_zero_pixels");
    assert_eq!(never_lit, 67.0);
    // Each never-lit pixel is an exactly zero row and column of ⟨φφᵀ⟩: a zero eigenvalue.
    let counts = ws.table(EXP, "spectrum_counts");
    let tiny = counts
        .rows
        .iter()
        .find(|r| counts.f64(r, "threshold") == 1e-10)
        .map(|r| counts.f64(r, "count_below"))
        .unwrap();
    assert!(tiny >= never_lit, "{tiny} eigenvalues below 1e-10");
    let spectrum = ws.table(EXP, "spectrum");
    assert_eq!(spectrum.rows.len(), 784);
    assert!(
        spectrum
            .rows
            .iter()
            .all(|r| spectrum.f64(r, "eigenvalue") > -1e-9)
    );
}

/// At the maximum-likelihood point the RBM keeps exactly the N_h largest variances (all above
/// 1/μ² here): its span is the top-N_h PCA subspace, so projecting onto it loses what PCA
/// loses; the k-sweep Gibbs mean equals the analytic fixed point's; learned variances equal the
/// data's. Fits converge to a relative residual of 1e-6, which bounds these at ~1e-6 (the
/// likelihood, being stationary, to ~1e-9 relative).
fn fitted_models_are_pca_with_a_cutoff(ws: &Workspace) {
    let table = ws.table(EXP, "pca_comparison");
    assert_eq!(table.rows.len(), 4);
    for row in &table.rows {
        let n_hidden = table.f64(row, "n_hidden");
        assert_eq!(table.f64(row, "learned"), n_hidden);
        assert_eq!(table.f64(row, "predicted_learned"), n_hidden);
        assert_eq!(table.str(row, "fit_status"), "converged");
        assert!(table.f64(row, "subspace_overlap") > 1.0 - 1e-6);
        let pca = table.f64(row, "pca_error");
        let span = table.f64(row, "rbm_span_error");
        assert!(
            (span - pca).abs() < 1e-6 * pca,
            "N_h {n_hidden}: {span} vs {pca}"
        );
        let gibbs = table.f64(row, "rbm_gibbs_mean_error");
        let fixed = table.f64(row, "fixed_point_gibbs_mean_error");
        assert!((gibbs - fixed).abs() < 1e-6 * fixed, "{gibbs} vs {fixed}");
        // The Gibbs mean shrinks every kept mode, so it never beats the projection.
        assert!(gibbs >= pca * (1.0 - 1e-9));
        let fit_ll = table.f64(row, "fit_log_likelihood");
        let best_ll = table.f64(row, "fixed_point_log_likelihood");
        assert!(fit_ll <= best_ll + 1e-9 * best_ll.abs());
        assert!(
            best_ll - fit_ll < 1e-9 * best_ll.abs(),
            "{fit_ll} vs {best_ll}"
        );
    }
    let spectrum = ws.table(EXP, "learned_spectrum");
    for row in &spectrum.rows {
        let error = spectrum.f64(row, "relative_error").abs();
        assert!(error < 1e-6, "{row:?}");
    }
}

/// The runs start at λ_a = 2κ_a and the fit window opens when 1 % of the excess is left, where
/// the rate is γ_a/(1 + δ) ≥ γ_a/1.01: the fitted τ lies between the discrete linearised
/// prediction −1/ln(1 − αγ_a) and 1 % above it, at both learning rates.
fn relaxation_times_follow_the_linearised_flow(ws: &Workspace) {
    let table = ws.table(EXP, "relaxation_times");
    assert_eq!(table.rows.len(), 4);
    for row in &table.rows {
        let ratio = table.f64(row, "tau_ratio");
        assert!((0.999..1.01).contains(&ratio), "{row:?}");
    }
}

#[test]
fn a_corrupted_copy_of_the_images_is_refused() {
    let ws = workspace();
    let path = ws.path().join("data/mnist/train-images-idx3-ubyte.gz");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5000] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let run = ws.run(&["run", EXP, "--quiet"]);
    run.expect_code(2);
    let err = run.stderr();
    assert!(err.contains("mnist-train-images has sha256"), "{err}");
    assert!(
        err.contains("expected 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "{err}"
    );
}
