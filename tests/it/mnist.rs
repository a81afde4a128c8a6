//! The rbm-mnist data stages on the vendored MNIST files, and refusal of a corrupted copy.

use crate::util::Workspace;

const EXP: &str = "rbm-mnist";

fn workspace() -> Workspace {
    Workspace::with_data(EXP, &["mnist/train-images-idx3-ubyte.gz"])
}

#[test]
fn spectrum_shows_the_never_lit_pixels_as_zero_modes() {
    let ws = workspace();
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
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
    // The trace is the mean squared pixel sum: the spectrum is complete and non-negative.
    let spectrum = ws.table(EXP, "spectrum");
    assert_eq!(spectrum.rows.len(), 784);
    assert!(
        spectrum
            .rows
            .iter()
            .all(|r| spectrum.f64(r, "eigenvalue") > -1e-9)
    );
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
