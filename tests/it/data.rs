//! `symbreak verify` on the vendored data, and on a copy with one flipped byte.

use crate::util::Workspace;

fn workspace_with_data() -> Workspace {
    Workspace::with_data(
        "rbm-scalar-smoke",
        &[
            "mnist/train-images-idx3-ubyte.gz",
            "mnist/train-labels-idx1-ubyte.gz",
            "mnist/t10k-images-idx3-ubyte.gz",
            "mnist/t10k-labels-idx1-ubyte.gz",
            "sotu/sotu_statsmaths_1790-2020.jsonl.gz",
            "philtrans/philtrans_1665-1869.jsonl.gz",
            "googlebooks/googlebooks-eng-all-totalcounts-20120701.txt",
            "googlebooks/googlebooks-eng-all-4gram-20120701-zz.gz",
        ],
    )
}

#[test]
fn vendored_data_verifies() {
    let ws = workspace_with_data();
    let run = ws.run(&["verify"]);
    run.expect_code(0);
    assert_eq!(run.stdout().matches("ok ").count(), 8, "{}", run.stdout());
}

#[test]
fn a_flipped_byte_is_refused_with_both_hashes() {
    let ws = workspace_with_data();
    let path = ws.path().join("data/mnist/train-labels-idx1-ubyte.gz");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let run = ws.run(&["verify"]);
    run.expect_code(2);
    let err = run.stderr();
    assert!(err.contains("1 of 8 files failed verification"), "{err}");
    assert!(
        err.contains("mnist-train-labels has sha256 ")
            && err.contains(
                "expected 3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
            ),
        "{err}"
    );
    std::fs::remove_file(&path).unwrap();
    let run = ws.run(&["verify"]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("mnist-train-labels is missing: download it from one of")
    );
    // A file no URL serves says how to rebuild it.
    std::fs::remove_file(
        ws.path()
            .join("data/sotu/sotu_statsmaths_1790-2020.jsonl.gz"),
    )
    .unwrap();
    let run = ws.run(&["verify"]);
    assert!(
        run.stderr()
            .contains("sotu-statsmaths is missing: rebuild it (read data/sotu_text.rda"),
        "{}",
        run.stderr()
    );
}
