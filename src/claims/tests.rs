use super::reference::{Agreement, judge};
use super::*;
use crate::emit::table::{ColumnDoc, Table, Unit, col, std_error};

/// The columns of the tables these tests write.
const TEST_COLUMNS: &[ColumnDoc] = &[
    col("method", Unit::Label, "how λ was found"),
    col("index", Unit::Index, "the mode"),
    col("lambda", Unit::One, "measured eigenvalue"),
    col("kappa", Unit::One, "predicted eigenvalue"),
    std_error("se", "lambda", "standard error of lambda"),
    col("k", Unit::Index, "row key"),
    col("x", Unit::One, "a value"),
];

const PAPERS: &str = r#"
[papers.park]
cite = "Park, Aarts & Lucini 2024"
title = "Scalar-field RBM"
arxiv = "2309.15002"
"#;

fn claims(body: &str) -> Result<ClaimsFile> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.toml");
    std::fs::write(&path, format!("{PAPERS}\n{body}")).unwrap();
    ClaimsFile::load(&path)
}

fn claim(body: &str) -> Claim {
    let file = claims(&format!(
        "[[claim]]\nid = \"c\"\npaper = \"park\"\nitem = \"Fig. 1\"\nstatement = \"s\"\n{body}"
    ))
    .unwrap();
    file.claim[0].clone()
}

/// Modes with a measured λ, the prediction κ, a standard error, and a method label.
fn modes() -> polars::prelude::DataFrame {
    let dir = tempfile::tempdir().unwrap();
    Table::new("modes", &["method", "index"])
        .str(
            "method",
            vec!["exact".into(), "exact".into(), "pcd".into(), "pcd".into()],
        )
        .i64("index", vec![0, 1, 0, 1])
        .f64("lambda", vec![4.0, 5.5, 4.1, f64::NAN])
        .f64("kappa", vec![4.0, 5.5, 4.0, 5.5])
        .f64("se", vec![0.0, 0.0, 0.05, 0.1])
        .describe(TEST_COLUMNS)
        .write(dir.path())
        .unwrap();
    crate::emit::table::read_parquet(&dir.path().join("modes.parquet"))
        .unwrap()
        .frame
}

fn outcome(body: &str) -> Outcome {
    evaluate(&claim(body), "P".into(), Ok(&modes()))
}

#[test]
fn a_bound_on_the_largest_deviation_of_the_selected_rows_is_reproduced_or_not() {
    let body = "table = \"modes\"\nwhere = { method = \"exact\" }\ncolumn = \"lambda\"\n\
                minus = \"kappa\"\nreduce = \"max_abs\"\nat_most = 1e-9\n";
    let o = outcome(body);
    assert_eq!(o.verdict, Verdict::Reproduced, "{o:?}");
    assert_eq!(o.value, Some(0.0));
    // The PCD rows miss κ by 0.1 in the first mode: a bound of 1e-9 fails there…
    let o = outcome(&format!(
        "{}skip_missing = true\n",
        body.replace("\"exact\"", "\"pcd\"")
    ));
    assert_eq!(o.verdict, Verdict::NotReproduced, "{o:?}");
    assert!((o.value.unwrap() - 0.1).abs() < 1e-12);
    assert!(
        o.note
            .unwrap()
            .contains("1 of 2 selected rows have no value")
    );
}

#[test]
fn a_missing_value_fails_a_claim_unless_it_says_to_skip_missing_rows() {
    let body = "table = \"modes\"\nwhere = { method = \"pcd\" }\ncolumn = \"lambda\"\n\
                reduce = \"max\"\nat_most = 10\n";
    let o = outcome(body);
    assert_eq!(o.verdict, Verdict::NotReproduced, "{o:?}");
    assert_eq!(o.value, None);
    let o = outcome(&format!("{body}skip_missing = true\n"));
    assert_eq!(o.verdict, Verdict::Reproduced, "{o:?}");
    assert_eq!(o.value, Some(4.1));
}

#[test]
fn pulls_ratios_counts_and_ranges_measure_what_they_say() {
    // (4.1 − 4.0) / 0.05 = 2 standard errors.
    let o = outcome(
        "table = \"modes\"\nwhere = { method = \"pcd\", index = 0 }\ncolumn = \"lambda\"\n\
         minus = \"kappa\"\nper_error = \"se\"\nreduce = \"only\"\nat_most = 3\n",
    );
    assert!((o.value.unwrap() - 2.0).abs() < 1e-9, "{o:?}");
    assert_eq!(o.verdict, Verdict::Reproduced);
    let o = outcome(
        "table = \"modes\"\nwhere = { method = \"exact\" }\ncolumn = \"lambda\"\nover = \"kappa\"\n\
         reduce = \"mean\"\nnear = 1.0\nrel_tol = 1e-12\n",
    );
    assert_eq!((o.value, o.verdict), (Some(1.0), Verdict::Reproduced));
    let o = outcome(
        "table = \"modes\"\nwhere = { kappa = { above = 4.5 }, method = [\"exact\", \"pcd\"] }\n\
         reduce = \"count\"\nat_least = 2\nat_most = 2\n",
    );
    assert_eq!(
        (o.value, o.verdict),
        (Some(2.0), Verdict::Reproduced),
        "{o:?}"
    );
    let o = outcome(
        "table = \"modes\"\ncolumn = \"kappa\"\nreduce = \"median\"\nnear = 4.75\nabs_tol = 0\n",
    );
    assert_eq!(
        (o.value, o.verdict),
        (Some(4.75), Verdict::Reproduced),
        "{o:?}"
    );
}

#[test]
fn a_claim_on_a_missing_table_column_or_row_cannot_be_evaluated_and_says_why() {
    let o = outcome("table = \"modes\"\ncolumn = \"lamda\"\nreduce = \"max\"\nat_most = 1\n");
    assert_eq!(o.verdict, Verdict::Invalid);
    let note = o.note.unwrap();
    assert!(
        note.contains("no column \"lamda\"") && note.contains("lambda"),
        "{note}"
    );
    let o = outcome(
        "table = \"modes\"\nwhere = { method = \"ml\" }\ncolumn = \"lambda\"\nreduce = \"max\"\n\
         at_most = 1\n",
    );
    assert_eq!(o.verdict, Verdict::Invalid);
    assert!(o.note.unwrap().contains("no row"));
    let o = outcome(
        "table = \"modes\"\nwhere = { method = 1 }\ncolumn = \"lambda\"\nreduce = \"max\"\nat_most = 1\n",
    );
    assert_eq!(o.verdict, Verdict::Invalid);
    let missing = evaluate(
        &claim("table = \"nope\"\ncolumn = \"x\"\nreduce = \"max\"\nat_most = 1\n"),
        "P".into(),
        Err(&"the run has no table \"nope\"".to_string()),
    );
    assert_eq!(missing.verdict, Verdict::Invalid);
}

#[test]
fn a_malformed_claims_file_is_refused_at_its_key_and_line() {
    let base = "[[claim]]\nid = \"c\"\npaper = \"park\"\nitem = \"Fig. 1\"\nstatement = \"s\"\n\
                table = \"t\"\ncolumn = \"x\"\nreduce = \"max\"\n";
    for (extra, key, says) in [
        (
            "at_most = 1\npaper_valu = \"1\"\n",
            "paper_valu",
            "unknown field",
        ),
        ("", "claim[0].reduce", "no test"),
        ("near = 1\n", "claim[0].near", "abs_tol"),
        ("abs_tol = 1\n", "claim[0].abs_tol", "near"),
        (
            "at_most = 1\nnear = 1\nabs_tol = 1\n",
            "claim[0].near",
            "not both",
        ),
        ("at_least = 2\nat_most = 1\n", "claim[0].at_least", "above"),
        ("at_most = 1\nabs_tol = -1\n", "claim[0].abs_tol", "≥ 0"),
        (
            "at_most = 1\nwhere = { x = {} }\n",
            "claim[0].where.x",
            "selects nothing",
        ),
    ] {
        let err = claims(&format!("{base}{extra}")).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains(says), "{extra:?}: {err}");
        assert!(err.contains("x.toml:"), "{err}");
    }
    let err = claims(
        &base
            .replace("park", "parc")
            .replace("reduce", "at_most = 1\nreduce"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not a key of [papers]"), "{err}");
    let err = claims(&format!(
        "{}at_most = 1\n",
        base.replace("\"max\"", "\"farthest\"")
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("claim[0].reduce") && err.contains("give near"),
        "{err}"
    );
    let twice = format!("{base}at_most = 1\n{base}at_most = 1\n");
    let err = claims(&twice).unwrap_err().to_string();
    assert!(err.contains("also the id of claim[0]"), "{err}");
    let err = claims(&format!(
        "{}at_most = 1\ncolumn = \"x\"\n",
        base.replace("\"max\"", "\"count\"")
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("duplicate") || err.contains("reads no column"),
        "{err}"
    );
}

fn record(values: &[(&str, Option<f64>, Verdict)]) -> ClaimsRecord {
    ClaimsRecord {
        experiment: "e".into(),
        run_id: "r".into(),
        claims_file: "f".into(),
        claims_blake3: "h".into(),
        papers: BTreeMap::new(),
        claims: values
            .iter()
            .map(|(id, value, verdict)| Outcome {
                id: id.to_string(),
                paper: "P".into(),
                item: "Fig. 1".into(),
                statement: "s".into(),
                paper_value: None,
                measure: "m".into(),
                test: "t".into(),
                value: *value,
                unit: None,
                verdict: *verdict,
                note: None,
            })
            .collect(),
    }
}

#[test]
fn a_run_is_judged_by_what_moved_from_the_reference_not_by_known_failures() {
    use Verdict::*;
    let file = claims(
        "[[claim]]\nid = \"wide\"\npaper = \"park\"\nitem = \"i\"\nstatement = \"s\"\n\
         table = \"t\"\ncolumn = \"x\"\nreduce = \"max\"\nat_most = 1\nreference_rel_tol = 0.1\n",
    )
    .unwrap();
    let reference = record(&[
        ("same", Some(1.0), Reproduced),
        ("known", Some(3.0), NotReproduced),
        ("moved", Some(1.0), Reproduced),
        ("flipped", Some(1.0), Reproduced),
        ("wide", Some(1.0), Reproduced),
    ]);
    let run = record(&[
        ("same", Some(1.0 + 1e-9), Reproduced),
        ("known", Some(3.0), NotReproduced),
        ("moved", Some(1.01), Reproduced),
        ("flipped", Some(2.0), NotReproduced),
        ("wide", Some(1.05), Reproduced),
        ("new", Some(2.0), NotReproduced),
    ]);
    let judged = judge(&file, &run, Some(&reference));
    let by_id = |id: &str| judged.iter().find(|j| j.outcome.id == id).unwrap();
    assert_eq!(by_id("same").agreement, Agreement::AsReference);
    assert!(
        !by_id("known").fails(),
        "a known non-reproduction is no news"
    );
    assert_eq!(by_id("known").conclusion(), "not reproduced");
    assert!(by_id("moved").fails());
    assert!(by_id("flipped").fails());
    assert_eq!(by_id("flipped").conclusion(), "differs from reference");
    assert!(!by_id("wide").fails(), "the claim's own tolerance applies");
    assert!(
        by_id("new").fails(),
        "with no reference, a failed claim fails"
    );
}

#[test]
fn a_reference_update_keeps_tables_claims_and_manifest_and_reports_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let run = results.join("e").join("r1");
    let tables = run.join("tables");
    Table::new("t", &["k"])
        .i64("k", vec![1])
        .f64("x", vec![0.5])
        .describe(TEST_COLUMNS)
        .write(&tables)
        .unwrap();
    let mut record = record(&[("a", Some(0.5), Verdict::Reproduced)]);
    crate::fsutil::write_json(&run.join(CLAIMS_FILE), &record).unwrap();
    let manifest = |status: &str, id: &str| {
        serde_json::json!({
            "status": status, "experiment": "e", "kind": "k", "run_id": id, "spec": {},
            "seed": 1, "parameters": {}, "started": "s", "finished": null,
            "git": {"commit": "c", "dirty": false, "describe": "c"}, "versions": {}, "host": {},
            "command": [], "inputs": {}, "stages": [], "artefacts": []
        })
        .to_string()
    };
    std::fs::write(run.join("manifest.json"), manifest("running", "r1")).unwrap();
    let err = reference::update(&results, &run, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("did not complete"), "{err}");
    std::fs::write(run.join("manifest.json"), manifest("complete", "r1")).unwrap();
    let first = reference::update(&results, &run, None).unwrap();
    assert_eq!(first.tables_added, ["tables/t.csv", "tables/t.parquet"]);
    let kept = reference::reference_dir(&results, "e");
    for file in [
        "claims.json",
        "manifest.json",
        "tables/t.csv",
        "tables/t.parquet",
    ] {
        assert!(kept.join(file).is_file(), "{file}");
    }
    // A second run whose table and claim moved.
    Table::new("t", &["k"])
        .i64("k", vec![1])
        .f64("x", vec![0.75])
        .describe(TEST_COLUMNS)
        .write(&tables)
        .unwrap();
    record.run_id = "r2".into();
    record.claims[0].value = Some(0.75);
    crate::fsutil::write_json(&run.join(CLAIMS_FILE), &record).unwrap();
    let second = reference::update(&results, &run, None).unwrap();
    assert_eq!(second.tables_changed, ["tables/t.csv", "tables/t.parquet"]);
    assert_eq!(second.previous_run_id.as_deref(), Some("r1"));
    assert!(second.claims_changed["a"].contains("0.5 (reproduced) → 0.75"));
    let loaded = reference::load(&results, "e").unwrap().unwrap();
    assert_eq!(loaded.claims[0].value, Some(0.75));
    // No staging or retired folder is left beside it.
    let left: Vec<_> = std::fs::read_dir(results.join("reference"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["e"]);
    // And the reference is not a run of an experiment called "reference".
    assert!(crate::pipeline::run_folder::runs_of(&results, "reference").is_empty());
}

#[test]
fn numbers_print_short_but_tell_a_near_miss_from_the_target() {
    assert_eq!(number(0.9999958), "0.999996");
    assert_eq!(number(1.0), "1");
    assert_eq!(number(3.6739), "3.6739");
    assert_eq!(number(12345.678), "12345.7");
    assert_eq!(number(1e-8), "1e-8");
    assert_eq!(number(-3.557e-8), "-3.557e-8");
    assert_eq!(number(0.0), "0");
}

#[test]
fn a_reference_keeps_long_tables_as_parquet_alone() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let run = results.join("e").join("r1");
    let rows = 20_000;
    Table::new("flow", &["k"])
        .i64("k", (0..rows).collect())
        .f64("x", (0..rows).map(|i| (i as f64).sqrt()).collect())
        .describe(TEST_COLUMNS)
        .write(&run.join("tables"))
        .unwrap();
    assert!(
        std::fs::metadata(run.join("tables/flow.csv"))
            .unwrap()
            .len()
            > reference::MAX_KEPT_CSV_BYTES
    );
    let manifest = serde_json::json!({
        "status": "complete", "experiment": "e", "kind": "k", "run_id": "r1", "spec": {},
        "seed": 1, "parameters": {}, "started": "s", "finished": null,
        "git": {"commit": "c", "dirty": false}, "versions": {}, "host": {},
        "command": [], "inputs": {}, "stages": [], "artefacts": []
    });
    std::fs::write(run.join("manifest.json"), manifest.to_string()).unwrap();
    let report = reference::update(&results, &run, None).unwrap();
    assert_eq!(report.tables_added, ["tables/flow.parquet"]);
    let kept = reference::reference_dir(&results, "e");
    assert!(kept.join("tables/flow.parquet").is_file() && !kept.join("tables/flow.csv").exists());
}

/// Every default experiment (those `make reproduce` runs) has reference results in git, and its
/// claims file, evaluated on the reference tables, gives the verdicts and values the reference
/// recorded: a claim edited without refreshing the reference fails here, not in a user's check.
#[test]
fn every_default_experiment_has_a_reference_its_claims_agree_with() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let results = root.join("results");
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("experiments"))
        .unwrap()
        .flatten()
    {
        let path = entry.path();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let named_only = ["-smoke", "-paper", "-sweep"]
            .iter()
            .any(|s| stem.ends_with(s))
            || stem == "dwe-googlebooks";
        if path.extension().is_none_or(|e| e != "toml") || named_only {
            continue;
        }
        let name = crate::spec::SpecDocument::load(&path)
            .unwrap()
            .header()
            .unwrap()
            .name;
        let kept = reference::reference_dir(&results, &name);
        assert!(
            kept.join("manifest.json").is_file(),
            "{name}: no reference results (symbreak run {stem} && symbreak reference update {stem})"
        );
        let claims_path = claims_file_for(&path);
        if !claims_path.is_file() {
            continue;
        }
        let file = ClaimsFile::load(&claims_path).unwrap();
        let record = evaluate_all(
            &file,
            &claims_path,
            &kept.join("tables"),
            &name,
            "reference",
        )
        .unwrap();
        let stored = reference::load(&results, &name).unwrap().unwrap();
        for judged in reference::judge(&file, &record, Some(&stored)) {
            assert!(
                !judged.fails(),
                "{name}: claim {} on the reference tables: {:?} (refresh with `symbreak \
                 reference update {stem}`)",
                judged.outcome.id,
                judged.agreement
            );
        }
        checked += 1;
    }
    assert!(checked >= 7, "{checked} experiments with claims checked");
}
