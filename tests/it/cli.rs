//! The command line as a user meets it: suggestions for mistyped names, stages an experiment does
//! not have, errors as JSON, shell completions, and `diff <experiment>`.

use crate::util::{Workspace, git};

const EXP: &str = "rbm-scalar-smoke";

#[test]
fn a_mistyped_verb_or_experiment_gets_a_suggestion() {
    let ws = Workspace::with_spec(EXP);
    let verb = ws.run(&["stauts"]);
    verb.expect_code(2);
    assert!(verb.stderr().contains("'status'"), "{}", verb.stderr());
    let name = ws.run(&["run", "rbm-scalr-smoke"]);
    name.expect_code(2);
    assert!(
        name.stderr().contains("did you mean \"rbm-scalar-smoke\""),
        "{}",
        name.stderr()
    );
}

#[test]
fn a_stage_the_experiment_does_not_have_is_refused_before_anything_runs() {
    let ws = Workspace::with_spec("googlebooks-sample");
    let run = ws.run(&["run", "googlebooks-sample", "--stage", "fit"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("has no fit stage") && run.stderr().contains("preprocess"),
        "{}",
        run.stderr()
    );
    assert!(!ws.path().join("results").exists());
}

#[test]
fn errors_are_a_json_document_under_json() {
    let ws = Workspace::with_spec(EXP);
    for args in [
        &["--json", "run", "no-such-experiment"][..],
        &["--json", "rnu", EXP][..],
    ] {
        let run = ws.run(args);
        run.expect_code(2);
        let document: serde_json::Value = serde_json::from_str(&run.stdout())
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", run.stdout()));
        assert!(document["error"].is_string(), "{document}");
    }
}

#[test]
fn completions_are_printed_for_a_shell_outside_any_project() {
    let empty = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_symbreak"))
        .args(["completions", "bash"])
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(script.contains("_symbreak") && script.contains("check"));
}

#[test]
fn diff_of_an_experiment_compares_its_previous_run_with_its_latest_and_never_a_run_with_itself() {
    let ws = Workspace::with_spec(EXP);
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "experiments"]);
    git(ws.path(), &["commit", "-q", "-m", "spec"]);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let one = ws.run(&["diff", EXP]);
    one.expect_code(2);
    assert!(one.stderr().contains("1 complete run"), "{}", one.stderr());
    // Regression: `diff HEAD` compared the newest run, made at HEAD, with itself.
    let itself = ws.run(&["diff", "HEAD"]);
    itself.expect_code(2);
    assert!(itself.stderr().contains("same run"), "{}", itself.stderr());
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let two = ws.run(&["diff", EXP]);
    two.expect_code(0);
    assert!(two.stdout().contains("no differences"), "{}", two.stdout());
}

/// Every bench figure names what its ratio divides by, and an unknown group is refused with
/// the known ones (the figures themselves are measurements, not asserted).
#[test]
fn bench_figures_name_their_reference() {
    let ws = Workspace::with_spec(EXP);
    let run = ws.run(&["--json", "bench", "--only", "rbm"]);
    run.expect_code(0);
    let figures: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let figures = figures.as_array().unwrap();
    let names: Vec<&str> = figures
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("PCD update")),
        "{names:?}"
    );
    for figure in figures {
        let reference = figure["reference"].as_str().unwrap();
        if figure["ratio_to_reference"].is_number() {
            assert!(
                names.contains(&reference) || reference.ends_with("GEMM peak"),
                "{figure}"
            );
        }
    }
    let unknown = ws.run(&["bench", "--only", "gpu"]);
    assert_ne!(unknown.code(), 0);
    assert!(
        unknown.stderr().contains("rbm, gauge, dwe, googlebooks"),
        "{}",
        unknown.stderr()
    );
}
