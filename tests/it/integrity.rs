//! Fault injection: results stay trustworthy when run folders or cache entries are edited,
//! when entries disappear mid-run, when `.symbreak/` holds symbolic links, when two runs meet,
//! and when a run dies or fails at chosen instants. Each test is named after the defect it
//! guards against. Runs are held at an instant through the `SYMBREAK_PAUSE_AT` hook.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Workspace, git};

const EXP: &str = "goldstone-synthetic-smoke";

fn manifest(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("manifest.json")).unwrap()).unwrap()
}

/// Every run folder of `EXP` (not `latest`).
fn run_dirs(ws: &Workspace) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(ws.path().join("results").join(EXP))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// The cache entry folders of one stage kind.
fn entries(ws: &Workspace, kind: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(ws.path().join(".symbreak/cache").join(kind))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Appends to a file whatever its permission bits say (tests may run as root or not).
fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// Starts a run that holds at `point` until the returned marker file is removed.
fn run_paused_at(ws: &Workspace, point: &str) -> (Child, PathBuf) {
    let marker = ws.path().join(format!("paused-{point}"));
    let child = ws
        .command(&["run", EXP, "--quiet"])
        .env("SYMBREAK_PAUSE_AT", point)
        .env("SYMBREAK_PAUSE_FILE", &marker)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the run never reached {point}");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, marker)
}

/// The invariants no interruption may break: a complete manifest's artefacts are all there
/// with their hashes, `latest` names a complete run, and every cache entry passes verification.
fn assert_consistent(ws: &Workspace) {
    for dir in run_dirs(ws) {
        let m = manifest(&dir);
        if m["status"] != "complete" {
            continue;
        }
        for artefact in m["artefacts"].as_array().unwrap() {
            let path = dir.join(artefact["path"].as_str().unwrap());
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("complete run lacks {}: {e}", path.display()));
            assert_eq!(
                blake3::hash(&bytes).to_hex().to_string(),
                artefact["blake3"].as_str().unwrap(),
                "{} differs from its manifest",
                path.display()
            );
        }
    }
    let latest = ws.path().join("results").join(EXP).join("latest");
    if latest.exists() {
        assert_eq!(manifest(&ws.latest(EXP))["status"], "complete");
    }
    ws.run(&["verify", "--cache"]).expect_code(0);
}

#[test]
fn a_result_file_edited_in_a_run_folder_leaves_the_cache_alone() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let table = ws.latest(EXP).join("tables/speedup.csv");
    let original = std::fs::read(&table).unwrap();
    // Published entries are read-only (root writes anyway, hence the copy below).
    for entry in entries(&ws, "emit") {
        let meta = std::fs::metadata(entry.join("tables/speedup.csv")).unwrap();
        assert!(meta.permissions().readonly(), "a cache file is writable");
    }
    append(&table, b"edited\n");
    let again = ws.run(&["run", EXP, "--json"]);
    again.expect_code(0);
    for stage in again.json()["stages"].as_array().unwrap() {
        assert_eq!(stage["run"], false, "{} reran", stage["id"]);
    }
    assert_eq!(
        std::fs::read(ws.latest(EXP).join("tables/speedup.csv")).unwrap(),
        original,
        "the edit reached the next run"
    );
}

#[test]
fn a_byte_flipped_in_a_cache_entry_is_recomputed_with_a_warning() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let before = std::fs::read(ws.latest(EXP).join("tables/speedup.csv")).unwrap();
    let file = entries(&ws, "evaluate")
        .into_iter()
        .map(|e| e.join("speedup.json"))
        .find(|f| f.exists())
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    append(&file, b"");
    std::fs::write(&file, &bytes).unwrap();
    let verify = ws.run(&["verify", "--cache"]);
    verify.expect_code(2);
    assert!(
        verify
            .stdout()
            .contains("speedup.json changed since it was published")
    );
    let rerun = ws.run(&["run", EXP]);
    rerun.expect_code(0);
    assert!(
        rerun
            .stdout()
            .contains("WARNING: cache entry failed verification"),
        "{}",
        rerun.stdout()
    );
    assert_eq!(
        std::fs::read(ws.latest(EXP).join("tables/speedup.csv")).unwrap(),
        before
    );
    ws.run(&["verify", "--cache"]).expect_code(0);
}

#[test]
fn gc_removes_only_what_nothing_refers_to() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let orphan = ws
        .path()
        .join(".symbreak/cache/fit/0123456789abcdef0123456789abcdef");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("meta.json"), b"{}").unwrap();
    let dry = ws.run(&["gc", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout().contains("would remove 1 cache entries"),
        "{}",
        dry.stdout()
    );
    assert!(orphan.exists());
    ws.run(&["gc"]).expect_code(0);
    assert!(!orphan.exists());
    let again = ws.run(&["run", EXP, "--json"]);
    again.expect_code(0);
    for stage in again.json()["stages"].as_array().unwrap() {
        assert_eq!(
            stage["run"], false,
            "gc removed the entry of {}",
            stage["id"]
        );
    }
}

#[test]
fn a_run_missing_an_artefact_is_not_marked_complete() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let complete = ws.latest(EXP);
    let (child, marker) = run_paused_at(&ws, "artefacts-collecting");
    let figure = entries(&ws, "emit")[0].join("figures/dispersion.png");
    std::fs::remove_file(&figure).unwrap();
    std::fs::remove_file(&marker).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        ws.latest(EXP),
        complete,
        "latest moved to an incomplete run"
    );
    let failed = run_dirs(&ws).into_iter().last().unwrap();
    let m = manifest(&failed);
    assert_eq!(m["status"], "failed");
    assert!(
        m["error"].as_str().unwrap().contains("dispersion.png"),
        "{m}"
    );
    // The entry now fails verification, so the next run rebuilds it.
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    assert_consistent(&ws);
}

#[test]
fn a_symlinked_scratch_folder_is_refused_and_nothing_outside_is_deleted() {
    let ws = Workspace::with_spec(EXP);
    let outside = tempfile::tempdir().unwrap();
    let foreign = outside.path().join("999999999-precious");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("keep.txt"), b"mine").unwrap();
    std::fs::create_dir_all(ws.path().join(".symbreak")).unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.path().join(".symbreak/tmp")).unwrap();
    let run = ws.run(&["run", EXP, "--quiet"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("is a symbolic link"),
        "{}",
        run.stderr()
    );
    assert!(
        foreign.join("keep.txt").exists(),
        "a foreign folder was deleted"
    );
}

#[test]
fn a_symlink_in_a_cache_entry_is_not_served() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let secret = ws.path().join("secret.txt");
    std::fs::write(&secret, b"not a result").unwrap();
    let emit = &entries(&ws, "emit")[0];
    std::os::unix::fs::symlink(&secret, emit.join("tables/leak.csv")).unwrap();
    let rerun = ws.run(&["run", EXP]);
    rerun.expect_code(0);
    assert!(
        rerun.stdout().contains("leak.csv is a symbolic link"),
        "{}",
        rerun.stdout()
    );
    assert!(!ws.latest(EXP).join("tables/leak.csv").exists());
    let report = std::fs::read_to_string(ws.latest(EXP).join("report.html")).unwrap();
    // The warning names the link; its target's content and a link to it stay out.
    assert!(!report.contains("href=\"tables/leak.csv") && !report.contains("not a result"));
}

#[test]
fn two_runs_of_one_experiment_both_succeed_and_compute_once() {
    for _ in 0..20 {
        let ws = Workspace::with_spec(EXP);
        let children: Vec<Child> = (0..2)
            .map(|_| {
                ws.command(&["run", EXP, "--json"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut computed = 0;
        let mut instances = 0;
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert_eq!(
                output.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            let stages = summary["stages"].as_array().unwrap();
            instances = stages.len();
            computed += stages.iter().filter(|s| s["run"] == true).count();
        }
        assert_eq!(computed, instances, "an instance was computed twice");
        assert_consistent(&ws);
    }
}

#[test]
fn a_failure_after_the_stages_marks_the_run_failed() {
    let ws = Workspace::with_spec(EXP);
    // `latest` cannot be switched over a folder: the run fails after everything else.
    let latest = ws.path().join("results").join(EXP).join("latest");
    std::fs::create_dir_all(latest.join("blocker")).unwrap();
    let run = ws.run(&["run", EXP, "--quiet"]);
    run.expect_code(2);
    let dir = run_dirs(&ws)
        .into_iter()
        .find(|d| d.file_name().unwrap() != "latest")
        .unwrap();
    let m = manifest(&dir);
    assert_eq!(m["status"], "failed");
    assert!(m["error"].as_str().unwrap().contains("latest"), "{m}");
}

#[test]
fn a_run_killed_at_any_instant_leaves_consistent_state_and_shows_interrupted() {
    for point in [
        "entry-published",
        "artefacts-collecting",
        "report-written",
        "manifest-complete",
    ] {
        let ws = Workspace::with_spec(EXP);
        let (mut child, _marker) = run_paused_at(&ws, point);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_consistent(&ws);
        let killed = run_dirs(&ws).into_iter().last().unwrap();
        let status = ws.run(&["status", EXP]);
        status.expect_code(0);
        if point == "manifest-complete" {
            // The manifest said complete before the kill: the run is whole, only `latest` lags.
            assert_eq!(manifest(&killed)["status"], "complete");
        } else {
            assert!(
                status.stdout().contains("interrupted"),
                "{point}: {}",
                status.stdout()
            );
            ws.run(&["gc"]).expect_code(0);
            assert!(!killed.exists(), "{point}: gc kept the interrupted run");
        }
        let recovery = ws.run(&["run", EXP, "--json"]);
        recovery.expect_code(0);
        assert_eq!(recovery.json()["status"], "complete");
        assert_consistent(&ws);
    }
}

/// Regression: a read error was labelled "writing …" (here a parquet table `diff` reads).
#[test]
fn a_file_that_cannot_be_read_says_reading() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    ws.run(&["run", EXP, "--quiet", "--from", "emit"])
        .expect_code(0);
    let runs = run_dirs(&ws);
    let table = runs[0].join("tables/speedup.parquet");
    append(&table, b"");
    std::fs::write(&table, b"not parquet").unwrap();
    let diff = ws.run(&["diff", runs[0].to_str().unwrap(), runs[1].to_str().unwrap()]);
    diff.expect_code(2);
    assert!(
        diff.stderr().contains("reading parquet table"),
        "{}",
        diff.stderr()
    );
}

/// Regression: a missing registered input failed with a bare I/O error; it now says how to
/// supply the file.
#[test]
fn a_missing_registered_input_says_how_to_supply_it() {
    let ws = Workspace::with_data("rbm-mnist-smoke", &["mnist/t10k-images-idx3-ubyte.gz"]);
    let run = ws.run(&["run", "rbm-mnist-smoke", "--quiet"]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("train-images-idx3-ubyte.gz, which is missing")
            && run
                .stderr()
                .contains("`symbreak verify` says how to supply it"),
        "{}",
        run.stderr()
    );
}

/// Regression: a run from a checkout whose sources were edited after the last build was named
/// after the checkout's commit, clean, though its results came from the older binary. The run
/// is marked dirty, lists the differing files and warns; a workspace that is another
/// repository (specs and results only) is unaffected.
#[test]
fn a_binary_built_from_other_sources_than_the_checkout_marks_the_run_dirty() {
    let ws = Workspace::with_spec(EXP);
    std::fs::write(ws.path().join(".gitignore"), "results/\n.symbreak/\n").unwrap();
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "."]);
    git(ws.path(), &["commit", "-qm", "specs only"]);
    let run = ws.run(&["run", EXP, "--quiet"]);
    run.expect_code(0);
    let clean = manifest(&ws.latest(EXP));
    assert_eq!(clean["git"]["dirty"], false, "{clean}");
    assert!(clean["git"].get("binary_differs").is_none(), "{clean}");

    std::fs::write(
        ws.path().join("Cargo.toml"),
        "[package]\nname = \"symbreak\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(ws.path().join("src")).unwrap();
    std::fs::write(
        ws.path().join("src/lib.rs"),
        "//! Edited after the build.\n",
    )
    .unwrap();
    git(ws.path(), &["add", "."]);
    git(ws.path(), &["commit", "-qm", "edited sources"]);
    let run = ws.run(&["run", EXP, "--quiet"]);
    run.expect_code(0);
    assert!(
        run.stderr()
            .contains("WARNING: this binary was built from other sources"),
        "{}",
        run.stderr()
    );
    let latest = ws.latest(EXP);
    let stale = manifest(&latest);
    assert_eq!(stale["git"]["dirty"], true, "{stale}");
    let differs = stale["git"]["binary_differs"].as_array().unwrap();
    assert!(differs.iter().any(|f| f == "lib.rs"), "{stale}");
    assert!(differs.iter().any(|f| f == "cli.rs"), "{stale}");
    assert!(latest.to_string_lossy().ends_with("-dirty"), "{latest:?}");
}
