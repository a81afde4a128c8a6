//! Claims: every run judges the claims beside its spec; `check` compares them with the reference
//! results; `reference update` makes those; `status` and `results/index.html` show them all.

use crate::util::{Workspace, git};

const EXP: &str = "rbm-scalar-smoke";

fn claims_json(ws: &Workspace) -> serde_json::Value {
    let text = std::fs::read_to_string(ws.latest(EXP).join("claims.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_run_judges_its_claims_and_check_compares_them_with_the_reference() {
    let ws = Workspace::with_spec(EXP);
    let run = ws.run(&["run", EXP]);
    run.expect_code(0);
    let declared = std::fs::read_to_string(ws.claims_path(EXP))
        .unwrap()
        .matches("[[claim]]")
        .count();
    assert!(declared >= 3, "the smoke spec declares its exact claims");
    let headline = format!("claims: {EXP}: {declared}/{declared} reproduced");
    assert!(run.stdout().contains(&headline), "{}", run.stdout());
    assert!(run.stdout().contains("report: "), "{}", run.stdout());
    let record = claims_json(&ws);
    assert_eq!(record["claims"].as_array().unwrap().len(), declared);
    let metrics: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ws.latest(EXP).join("metrics.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(metrics.as_object().unwrap().len(), declared);
    assert!(metrics["exact-fixed-points"].as_f64().unwrap() < 1e-8);
    let report = std::fs::read_to_string(ws.latest(EXP).join("report.html")).unwrap();
    let claims_at = report.find("id=\"claims\"").expect("a claims section");
    let provenance_at = report.find("id=\"provenance\"").unwrap();
    let figures_at = report.find("id=\"figures\"").unwrap();
    assert!(claims_at < figures_at && figures_at < provenance_at);
    assert!(
        report.contains("Eigenvalues of K during training"),
        "captions"
    );

    // No reference yet: every claim reproduced is enough.
    let check = ws.run(&["check", EXP]);
    check.expect_code(0);
    assert!(check.stdout().contains("reference —"), "{}", check.stdout());

    let update = ws.run(&["reference", "update", EXP]);
    update.expect_code(0);
    assert!(
        update.stdout().contains("tables added"),
        "{}",
        update.stdout()
    );
    let reference = ws.path().join("results/reference").join(EXP);
    for file in [
        "claims.json",
        "metrics.json",
        "manifest.json",
        "tables/fixed_points.csv",
        "tables/fixed_points.parquet",
    ] {
        assert!(reference.join(file).is_file(), "{file}");
    }
    assert!(!reference.join("figures").exists() && !reference.join("arrays").exists());
    ws.run(&["check", EXP]).expect_code(0);
    // The reference is no run of its own, and the latest run equals it.
    let diff = ws.run(&["diff", "reference", "--experiment", EXP]);
    diff.expect_code(0);
    ws.run(&["status", EXP]).expect_code(0);

    // A claim whose value moved from the reference's is news.
    let path = reference.join("claims.json");
    let mut moved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    moved["claims"][0]["value"] = serde_json::json!(1e-9);
    std::fs::write(&path, serde_json::to_string_pretty(&moved).unwrap()).unwrap();
    let check = ws.run(&["check", EXP]);
    check.expect_code(1);
    assert!(
        check.stdout().contains("differs from reference")
            && check.stdout().contains("DIFFER from the reference"),
        "{}",
        check.stdout()
    );
}

#[test]
fn status_and_the_index_page_show_every_experiment_with_its_claims() {
    let ws = Workspace::with_spec(EXP);
    ws.add_spec("goldstone-synthetic-smoke");
    let none = ws.run(&["check"]);
    none.expect_code(1);
    assert!(
        none.stdout().contains("nothing to check"),
        "{}",
        none.stdout()
    );
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let status = ws.run(&["status"]);
    status.expect_code(0);
    let text = status.stdout();
    assert!(
        text.contains("goldstone-synthetic-smoke") && text.contains("no complete run"),
        "{text}"
    );
    assert!(text.contains("reproduced"), "{text}");
    let index = ws.path().join("results/index.html");
    let page = std::fs::read_to_string(&index).unwrap();
    assert!(page.contains(EXP) && page.contains("goldstone-synthetic-smoke"));
    assert!(page.contains("report.html") && page.contains("figures/spectrum_flow"));
    assert!(!page.contains("<script"));
    crate::util::assert_renders(&index, ws.path());
}

#[test]
fn a_broken_claims_file_stops_the_run_before_it_computes() {
    let ws = Workspace::with_spec(EXP);
    let path = ws.claims_path(EXP);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("at_most =", "at_mots =", 1)).unwrap();
    let run = ws.run(&["run", EXP]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("claims/rbm-scalar-smoke.toml:") && run.stderr().contains("at_mots"),
        "{}",
        run.stderr()
    );
    assert!(!ws.path().join("results").join(EXP).exists());
}

#[test]
fn a_claim_on_a_missing_column_cannot_be_evaluated_and_fails_the_check() {
    let ws = Workspace::with_spec(EXP);
    let path = ws.claims_path(EXP);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("column = \"final\"", "column = \"finale\"", 1),
    )
    .unwrap();
    // The run itself completes: its tables are fine, one claim names a column they lack.
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let check = ws.run(&["check", EXP]);
    check.expect_code(1);
    assert!(
        check.stdout().contains("cannot be evaluated") && check.stdout().contains("\"finale\""),
        "{}",
        check.stdout()
    );
}

#[test]
fn diff_reads_the_reference_committed_at_a_revision_from_git() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    ws.run(&["reference", "update", EXP]).expect_code(0);
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "experiments", "results/reference"]);
    git(ws.path(), &["commit", "-q", "-m", "reference"]);
    // The reference in the working tree goes; the committed one is still read from git.
    std::fs::remove_dir_all(ws.path().join("results/reference")).unwrap();
    let diff = ws.run(&["diff", "HEAD", "--experiment", EXP]);
    diff.expect_code(0);
    assert!(
        diff.stdout().contains("reference results committed"),
        "{}",
        diff.stdout()
    );
}

#[test]
fn a_reference_is_made_only_from_a_clean_checkout_unless_asked() {
    let ws = Workspace::with_spec(EXP);
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "experiments"]);
    git(ws.path(), &["commit", "-q", "-m", "spec"]);
    let spec = ws.spec_path(EXP);
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, format!("{text}\n# an uncommitted comment\n")).unwrap();
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let update = ws.run(&["reference", "update", EXP]);
    update.expect_code(2);
    assert!(
        update.stderr().contains("uncommitted"),
        "{}",
        update.stderr()
    );
    // The message reads as one sentence (it once carried the source's indentation inside).
    assert!(!update.stderr().contains("  "), "{}", update.stderr());
    ws.run(&["reference", "update", EXP, "--allow-dirty"])
        .expect_code(0);
    // Every column of the new reference says what it means.
    let columns = ws.run(&["reference", "columns"]);
    columns.expect_code(0);
    assert!(
        columns.stdout().contains(&format!("## {EXP}")) && columns.stdout().contains("| `"),
        "{}",
        columns.stdout()
    );
    // A reader that goes away (`| head`) ends the command quietly.
    for args in [
        &["reference", "columns"][..],
        &["--json", "reference", "columns"],
    ] {
        let mut child = ws
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    let json = ws.run(&["--json", "reference", "columns"]);
    json.expect_code(0);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    let tables = parsed[EXP].as_object().expect("the experiment's tables");
    assert!(!tables.is_empty());
    for (table, columns) in tables {
        for column in columns.as_array().unwrap() {
            assert!(
                !column["description"].as_str().unwrap().is_empty()
                    && !column["unit"].as_str().unwrap().is_empty(),
                "{table}: {column}"
            );
        }
    }
}
