//! Cache behaviour: hits on rerun, exact invalidation on a parameter change, forced stages and
//! their reasons, and recovery from a run killed mid-stage.

use std::time::Duration;

use crate::util::Workspace;

const EXP: &str = "rbm-scalar-smoke";

fn stages(json: &serde_json::Value) -> Vec<(String, bool, Vec<String>)> {
    json["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["run"].as_bool().unwrap(),
                s["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn rerun_hits_the_cache_for_every_stage() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let first = ws.latest(EXP);
    let again = ws.run(&["run", EXP, "--json"]);
    again.expect_code(0);
    let doc = again.json();
    let ran: Vec<String> = stages(&doc)
        .into_iter()
        .filter(|(_, run, _)| *run)
        .map(|(id, _, _)| id)
        .collect();
    assert!(ran.is_empty(), "reran: {ran:?}");
    assert_eq!(doc["status"], "complete");
    let second = ws.latest(EXP);
    assert_ne!(first, second, "each run gets its own folder");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(second.join("manifest.json")).unwrap())
            .unwrap();
    assert!(
        manifest["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["cached"] == true)
    );
}

#[test]
fn changing_one_parameter_reruns_exactly_the_affected_instances() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    ws.edit_spec(EXP, |t| {
        t.replace("learning_rate = [0.1, 0.2]", "learning_rate = [0.1, 0.25]")
    });
    let dry = ws.run(&["run", EXP, "--dry-run", "--json"]);
    dry.expect_code(0);
    let doc = dry.json();
    let ran: Vec<(String, Vec<String>)> = stages(&doc)
        .into_iter()
        .filter(|(_, run, _)| *run)
        .map(|(id, _, r)| (id, r))
        .collect();
    let ids: Vec<&str> = ran.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "fit[relaxation,learning_rate=0.25]",
            "evaluate[relaxation,learning_rate=0.25]",
            "emit"
        ],
        "{ran:?}"
    );
    // A new sweep point has never run; the emit stage sees its parameter list change.
    assert_eq!(ran[0].1, ["never run"]);
    assert!(
        ran[2].1[0].starts_with("params changed: fits"),
        "{:?}",
        ran[2].1
    );
    // The human-readable dry run says the same.
    let text = ws.run(&["run", EXP, "--dry-run"]);
    assert!(
        text.stdout()
            .contains("fit[relaxation,learning_rate=0.1]: cached")
    );
    assert!(
        text.stdout()
            .contains("fit[relaxation,learning_rate=0.25]: would run (never run)")
    );
}

#[test]
fn a_changed_value_is_named_with_old_and_new() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    ws.edit_spec(EXP, |t| t.replace("samples = 2000", "samples = 1500"));
    let dry = ws.run(&["run", EXP, "--dry-run"]);
    dry.expect_code(0);
    let out = dry.stdout();
    assert!(
        out.contains(
            "evaluate[flow,mode=exact]: would run (params changed: evaluate.samples 2000 -> 1500)"
        ),
        "{out}"
    );
    assert!(out.contains("fit[flow,mode=exact]: cached"), "{out}");
    assert!(
        out.contains("emit: would run (upstream changed: evaluate["),
        "{out}"
    );
}

#[test]
fn stage_and_from_force_with_reasons() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let doc = ws
        .run(&["run", EXP, "--stage", "fit", "--dry-run", "--json"])
        .json();
    for (id, run, reasons) in stages(&doc) {
        assert_eq!(run, id.starts_with("fit["), "{id}");
        if run {
            assert_eq!(reasons, ["forced (--stage fit)"]);
        }
    }
    let doc = ws
        .run(&["run", EXP, "--from", "evaluate", "--dry-run", "--json"])
        .json();
    for (id, run, _) in stages(&doc) {
        assert_eq!(run, id.starts_with("evaluate[") || id == "emit", "{id}");
    }
    // Forcing a stage really reruns it, and deterministic code reproduces its tables.
    let before = std::fs::read(ws.latest(EXP).join("tables/cutoff_mass.csv")).unwrap();
    ws.run(&["run", EXP, "--stage", "fit", "--quiet"])
        .expect_code(0);
    let after = std::fs::read(ws.latest(EXP).join("tables/cutoff_mass.csv")).unwrap();
    assert!(before == after);
    let bad = ws.run(&["run", EXP, "--stage", "fitt"]);
    bad.expect_code(2);
    assert!(
        bad.stderr().contains("unknown stage \"fitt\""),
        "{}",
        bad.stderr()
    );
}

#[test]
fn status_reports_cached_and_stale() {
    let ws = Workspace::with_spec(EXP);
    let before = ws.run(&["status", EXP]);
    before.expect_code(0);
    assert!(before.stdout().contains("latest complete run: none"));
    assert!(before.stdout().contains("preprocess: stale (never run)"));
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let after = ws.run(&["status", EXP]);
    assert!(
        after.stdout().contains("preprocess: cached"),
        "{}",
        after.stdout()
    );
    assert!(!after.stdout().contains("stale"));
}

/// Regression: `symbreak status <exp> | head -1` panicked with "failed printing to stdout:
/// Broken pipe". A reader that goes away ends the command quietly.
#[test]
fn status_into_a_closed_pipe_ends_quietly() {
    let ws = Workspace::with_spec(EXP);
    let mut child = ws
        .command(&["status", EXP])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closing the read end before the command has planned makes every line hit a closed pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// Regression guard for interrupted runs: a run killed mid-stage leaves no folder that claims
/// to be complete, `latest` keeps pointing at the last complete run, and the next run works.
#[test]
fn a_killed_run_never_looks_complete() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let complete = ws.latest(EXP);
    // Make one fit slow, then kill the run while it is inside that stage.
    ws.edit_spec(EXP, |t| {
        t.replace("flow_time = 1000.0", "flow_time = 200000.0")
    });
    let mut child = ws
        .command(&["run", EXP, "--quiet", "-j", "1"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(ws.latest(EXP), complete, "latest moved to a killed run");
    let runs = ws.path().join("results").join(EXP);
    for entry in std::fs::read_dir(&runs).unwrap().flatten() {
        let manifest = entry.path().join("manifest.json");
        if entry.path() == complete || entry.file_name() == "latest" || !manifest.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(
            !text.contains("\"complete\""),
            "killed run claims completion"
        );
    }
    ws.edit_spec(EXP, |t| {
        t.replace("flow_time = 200000.0", "flow_time = 1000.0")
    });
    let next = ws.run(&["run", EXP, "--json"]);
    next.expect_code(0);
    assert_eq!(next.json()["status"], "complete");
}

/// Regression: from a subfolder of a project, `symbreak run ../experiments/x.toml` took the
/// subfolder for the project, made a second workspace (cache, results) there and looked for the
/// vendored data under it. The project is now found upwards, as git finds its repository, and
/// outside any project the command is refused with a hint.
#[test]
fn a_command_from_a_subfolder_uses_the_project_above_it() {
    const SPEC: &str = "goldstone-modes-smoke";
    let ws = Workspace::with_spec(SPEC);
    let sub = ws.path().join("src").join("deeper");
    std::fs::create_dir_all(&sub).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_symbreak"))
        .current_dir(&sub)
        .args(["run", &format!("../../experiments/{SPEC}.toml"), "--quiet"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(ws.latest(SPEC).join("tables").is_dir());
    for stray in [".symbreak", "results"] {
        assert!(!sub.join(stray).exists(), "{stray} made in the subfolder");
        assert!(
            !ws.path().join("src").join(stray).exists(),
            "{stray} in src/"
        );
    }

    let outside = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_symbreak"))
        .current_dir(outside.path())
        .args(["list"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("no symbreak project here"), "{err}");
    assert!(err.contains("--root"), "{err}");
}
