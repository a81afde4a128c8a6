//! `symbreak diff` across runs and revisions, and the report page of every run.

use std::path::{Path, PathBuf};

use symbreak::emit::table;

use crate::util::{Table, Workspace, git};

const EXP: &str = "rbm-scalar-smoke";

/// The run folders of `EXP` in the workspace, oldest first.
fn runs(ws: &Workspace) -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(ws.path().join("results").join(EXP))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "latest")
        .map(|e| e.path())
        .collect();
    runs.sort();
    runs
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// What differs in table `name` between two runs, read independently from the CSV files: rows
/// joined on `key`; "<key> <column>" for each value that differs by more than `rel` of the
/// larger magnitude, "<key> *" for each row that only the old run has.
fn changed_cells(a: &Path, b: &Path, name: &str, key: &str, rel: f64) -> Vec<String> {
    let read = |dir: &Path| Table::read(&dir.join("tables").join(format!("{name}.csv")));
    let (ta, tb) = (read(a), read(b));
    assert_eq!(ta.header, tb.header);
    let mut out = Vec::new();
    for ra in &ta.rows {
        let id = ta.str(ra, key);
        let Some(rb) = tb.rows.iter().find(|rb| tb.str(rb, key) == id) else {
            out.push(format!("{key}={id} *"));
            continue;
        };
        for column in ta.header.iter().filter(|c| *c != key) {
            let (x, y) = (ta.f64(ra, column), tb.f64(rb, column));
            if (x - y).abs() > rel * x.abs().max(y.abs()) {
                out.push(format!("{key}={id} {column}"));
            }
        }
    }
    assert!(
        tb.rows
            .iter()
            .all(|rb| ta.rows.iter().any(|ra| ta.str(ra, key) == tb.str(rb, key)))
    );
    out.sort();
    out
}

#[test]
fn a_changed_parameter_shows_as_exactly_its_changed_rows() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    // The toy rotation's step size feeds only the toy stage and its table.
    ws.edit_spec(EXP, |s| {
        s.replace("learning_rate = 1e-3", "learning_rate = 2e-3")
    });
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let [a, b] = <[PathBuf; 2]>::try_from(runs(&ws)).unwrap();

    let json = ws.run(&["diff", arg(&a), arg(&b), "--format", "json"]);
    json.expect_code(1);
    let doc = json.json();
    let experiment = &doc["experiments"][0];
    let parameters = experiment["parameters"].as_array().unwrap();
    // The step size, and the number of updates it implies for the same flow time.
    let names: Vec<&str> = parameters
        .iter()
        .map(|p| p["parameter"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["toy.learning_rate", "toy.updates"]);
    assert_eq!(parameters[0]["old"], "0.001");
    assert_eq!(parameters[0]["new"], "0.002");
    let differences = experiment["differences"].as_array().unwrap();
    // The toy's records are an array too: half as many rows, so its shape differs.
    let (arrays, differences): (Vec<_>, Vec<_>) = differences
        .iter()
        .partition(|d| d["table"].as_str().unwrap().starts_with("arrays/"));
    assert_eq!(arrays.len(), 1, "{arrays:?}");
    assert_eq!(arrays[0]["table"], "arrays/toy.angle.npy");
    assert_eq!(arrays[0]["column"], "shape");
    assert_eq!(arrays[0]["old"], "[201, 5]");
    assert_eq!(arrays[0]["new"], "[101, 5]");
    let mut reported: Vec<String> = differences
        .iter()
        .map(|d| {
            assert_eq!(d["table"], "toy_angle", "{d}");
            let status = if d["column"] == "*" {
                "removed"
            } else {
                "changed"
            };
            assert_eq!(d["status"], status, "{d}");
            format!(
                "{} {}",
                d["key"].as_str().unwrap(),
                d["column"].as_str().unwrap()
            )
        })
        .collect();
    reported.sort();
    // Half the updates for the same flow time: the second half of the rows goes.
    let expected = changed_cells(&a, &b, "toy_angle", "update", 1e-6);
    assert!(!expected.is_empty());
    assert_eq!(reported, expected);

    // Text: vertical rows, parameter first, one summary line.
    let text = ws.run(&["diff", arg(&a), arg(&b)]);
    text.expect_code(1);
    let stdout = text.stdout();
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(lines[0].starts_with("table"), "{stdout}");
    assert!(lines[1].starts_with(&format!("{EXP}/params")), "{stdout}");
    assert!(lines[1].contains("toy.learning_rate"), "{stdout}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("{EXP}/toy_angle")))
            .count(),
        expected.len()
    );
    assert!(
        lines.last().unwrap().contains("2 parameters and"),
        "{stdout}"
    );

    // Markdown pastes as a table; CSV parses with the same rows.
    let md = ws.run(&["diff", arg(&a), arg(&b), "--format", "md"]);
    md.expect_code(1);
    assert!(
        md.stdout()
            .contains("| table | key | column | old | new | delta | rel |")
    );
    let csv = ws.run(&["diff", arg(&a), arg(&b), "--format", "csv"]);
    assert_eq!(csv.stdout().lines().count(), 1 + 2 + expected.len() + 1);

    // --all lists the equal cells of every table too.
    let all = ws.run(&["diff", arg(&a), arg(&b), "--all", "--format", "json"]);
    let same = all.json()["experiments"][0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "same")
        .count();
    assert!(same > 100, "{same} equal cells listed");

    // Figures side by side, named by both sides; and the comparison page.
    let figures = ws.path().join("compare");
    let page = ws.path().join("compare/diff.html");
    ws.run(&[
        "diff",
        arg(&a),
        arg(&b),
        "--figures",
        arg(&figures),
        "--html",
        arg(&page),
    ])
    .expect_code(1);
    let (ida, idb) = (
        a.file_name().unwrap().to_str().unwrap(),
        b.file_name().unwrap().to_str().unwrap(),
    );
    let toy = figures
        .join(EXP)
        .join(format!("toy_angle__{ida}__vs__{idb}.png"));
    assert!(toy.is_file(), "{} missing", toy.display());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("toy.learning_rate") && html.contains("toy_angle__"));
}

#[test]
fn identical_runs_have_no_differences_and_tolerances_have_sharp_edges() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    ws.run(&["run", EXP, "--quiet", "--force"]).expect_code(0);
    let [a, b] = <[PathBuf; 2]>::try_from(runs(&ws)).unwrap();
    let same = ws.run(&["diff", arg(&a), arg(&b)]);
    same.expect_code(0);
    assert!(
        same.stdout().contains("no differences"),
        "{}",
        same.stdout()
    );
    // One argument: against the newest run (b), which equals a.
    ws.run(&["diff", arg(&a)]).expect_code(0);

    // A probe table whose one value differs by 1e-4 relative (1e-4 / 1.0001 of the larger).
    for (dir, value) in [(&a, 1.0), (&b, 1.0001)] {
        symbreak::emit::table::Table::new("probe", &["name"])
            .str("name", vec!["x".into(), "y".into()])
            .f64("value", vec![value, 5.0])
            .describe(&[
                table::col("name", table::Unit::Label, "probe name"),
                table::col("value", table::Unit::One, "probe value"),
            ])
            .write(&dir.join("tables"))
            .unwrap();
    }
    let run = |tolerance: &[&str]| {
        let mut args = vec!["diff", arg(&a), arg(&b), "--format", "json"];
        args.extend_from_slice(tolerance);
        ws.run(&args)
    };
    let over = run(&["--rel-tol", "0.99e-4"]);
    over.expect_code(1);
    let differences = over.json()["experiments"][0]["differences"].clone();
    assert_eq!(differences.as_array().unwrap().len(), 1, "{differences}");
    assert_eq!(differences[0]["key"], "name=x");
    run(&["--rel-tol", "1.01e-4"]).expect_code(0);
    run(&["--rel-tol", "0", "--abs-tol", "1.01e-4"]).expect_code(0);
    run(&["--rel-tol", "0", "--abs-tol", "0.99e-4"]).expect_code(1);
}

#[test]
fn revisions_resolve_to_their_runs_or_say_how_to_make_one() {
    let ws = Workspace::with_spec(EXP);
    git(ws.path(), &["init", "-q"]);
    std::fs::write(ws.path().join(".gitignore"), "results/\n.symbreak/\n").unwrap();
    git(ws.path(), &["add", "."]);
    git(ws.path(), &["commit", "-qm", "first"]);
    let missing = ws.run(&["diff", "HEAD"]);
    missing.expect_code(2);
    let message = missing.stderr();
    assert!(message.contains("no complete run"), "{message}");
    assert!(message.contains("git checkout"), "{message}");
    assert!(message.contains("make reproduce"), "{message}");

    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    ws.edit_spec(EXP, |s| s.replace("samples = 2000", "samples = 1000"));
    git(ws.path(), &["commit", "-qam", "fewer samples"]);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let diff = ws.run(&["diff", "HEAD~1", "HEAD", "--experiment", EXP]);
    diff.expect_code(1);
    assert!(
        diff.stdout().contains("evaluate.samples"),
        "{}",
        diff.stdout()
    );
    // The newest run is HEAD's: comparing it with itself would say nothing.
    let itself = ws.run(&["diff", "HEAD"]);
    itself.expect_code(2);
    assert!(itself.stderr().contains("same run"), "{}", itself.stderr());
}

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    let ws = Workspace::with_spec(EXP);
    for (args, says) in [
        (vec!["diff"], "<OLD>"),
        (vec!["diff", "no-such-thing"], "neither a run folder"),
        (vec!["diff", ".", ".", "--rel-tol", "-1"], "--rel-tol"),
        (vec!["diff", ".", ".", "--format", "xml"], "xml"),
        (
            vec!["diff", ".", ".", "--html", "no/such/dir/x.html"],
            "does not exist",
        ),
    ] {
        let run = ws.run(&args);
        run.expect_code(2);
        assert!(run.stderr().contains(says), "{args:?}: {}", run.stderr());
    }
    // Regression: a mistyped --html path created its folders.
    assert!(!ws.path().join("no").exists());
}

/// Every run writes report.html: provenance, parameters, each table and figure of the run.
#[test]
fn every_run_has_a_report_listing_its_tables_and_figures() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let run = ws.latest(EXP);
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert!(html.contains(manifest["git"]["commit"].as_str().unwrap()));
    assert!(html.contains("toy.learning_rate"));
    for artefact in manifest["artefacts"].as_array().unwrap() {
        let path = artefact["path"].as_str().unwrap();
        assert!(artefact["stage"].is_string(), "{artefact}");
        if path.ends_with(".png") || path.ends_with(".csv") {
            assert!(
                html.contains(&format!("\"{path}\"")),
                "{path} not in the report"
            );
        }
    }
    assert!(!html.contains("<script"));
    crate::util::assert_renders(&run.join("report.html"), ws.path());
}

/// A rerun with another seed differs in every sampled value; `--sigma 3` judges the values with
/// standard errors by them and summarises the rest per table.
#[test]
fn a_seed_change_reads_all_within_three_sigma_under_sigma() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let first = ws.latest(EXP);
    ws.edit_spec(EXP, |text| {
        text.lines()
            .map(|l| {
                if l.starts_with("seed = ") {
                    "seed = 4242".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let first = first.to_string_lossy().to_string();
    ws.run(&["diff", &first, "--experiment", EXP])
        .expect_code(1);
    let sigma = ws.run(&["diff", &first, "--experiment", EXP, "--sigma", "3"]);
    sigma.expect_code(0);
    let text = sigma.stdout();
    assert!(
        text.contains("values with standard errors within 3σ"),
        "{text}"
    );
    assert!(
        text.contains("action_density: ") && text.contains("max pull"),
        "{text}"
    );
    // Far fewer lines than a plain diff: one per table, no per-value listing of the flows.
    assert!(text.lines().count() < 60, "{text}");
    ws.run(&["diff", &first, "--sigma", "0"]).expect_code(2);
}
