//! `--executor slurm` against a real Slurm cluster: `.ci/run` starts a single-node one and sets
//! `SYMBREAK_SLURM_TESTS=1`. Without both the variable and `sbatch` on PATH, each test says
//! that it skipped and passes.

use std::path::Path;
use std::process::Command;

use crate::util::{Run, Workspace};

/// Whether the live cluster tests run here; says so when they do not.
pub fn cluster(test: &str) -> bool {
    let enabled = std::env::var("SYMBREAK_SLURM_TESTS").is_ok_and(|v| v == "1");
    let sbatch = Command::new("sbatch").arg("--version").output().is_ok();
    if !(enabled && sbatch) {
        eprintln!(
            "{test}: skipped (no Slurm cluster: set SYMBREAK_SLURM_TESTS=1 where `sbatch` reaches one)"
        );
    }
    enabled && sbatch
}

/// `symbreak args` with the driver's polling shortened for tests.
pub fn slurm_run(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = ws.command(args);
    cmd.env("SYMBREAK_SLURM_QUEUE_INTERVAL", "1")
        .env("SYMBREAK_SLURM_GRACE", "5");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().expect("running symbreak");
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        output,
    }
}

/// The files of every cache entry (without its `meta.json`, which records times), by
/// `kind/key/file`.
fn entry_files(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let cache = root.join(".symbreak/cache");
    for kind in std::fs::read_dir(&cache).unwrap().flatten() {
        for entry in std::fs::read_dir(kind.path()).unwrap().flatten() {
            let mut stack = vec![entry.path()];
            while let Some(dir) = stack.pop() {
                for file in std::fs::read_dir(&dir).unwrap().flatten() {
                    let path = file.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.file_name().unwrap() != "meta.json" {
                        let rel = path.strip_prefix(&cache).unwrap().display().to_string();
                        out.insert(rel, std::fs::read(&path).unwrap());
                    }
                }
            }
        }
    }
    out
}

/// The cluster's `MaxArraySize`.
fn max_array_size() -> usize {
    let out = Command::new("scontrol")
        .args(["show", "config"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "MaxArraySize").then(|| v.trim().parse().ok())?
        })
        .unwrap()
}

/// Arrays of the run named `name` that the cluster still knows: (comment, array job id).
fn queued_arrays(name: &str) -> Vec<(String, String)> {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%j|%k|%F|%K"])
        .output()
        .unwrap();
    let mut arrays: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split('|').next() == Some(name))
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (format!("{}:{}", f[0], f[1]), f[2].to_string())
        })
        .collect();
    arrays.sort();
    arrays.dedup();
    arrays
}

/// A sweep of 21 instances run as Slurm arrays (split at the cluster's `MaxArraySize`) gives
/// the cache entries and tables of a local run, byte for byte; the manifest names the job and
/// node of every instance.
#[test]
fn a_slurm_run_matches_a_local_run_byte_for_byte() {
    if !cluster("a_slurm_run_matches_a_local_run_byte_for_byte") {
        return;
    }
    let on_slurm = Workspace::with_spec("rbm-scalar-smoke");
    let local = Workspace::with_spec("rbm-scalar-smoke");
    let run = slurm_run(
        &on_slurm,
        &[
            "run",
            "rbm-scalar-smoke",
            "--executor",
            "slurm",
            "--chunk",
            "1",
        ],
        &[],
    );
    run.expect_code(0);
    let said = run.stdout();
    assert!(
        said.contains("21 instance(s) as 21 array task(s)"),
        "{said}"
    );
    // Ten fits, one per task: the toy fit reads nothing, the nine others read the target, so
    // they are two groups; the nine split into several arrays where MaxArraySize is lower.
    let max_array = max_array_size();
    let fit_arrays: Vec<usize> = said
        .lines()
        .filter(|l| l.contains(" task(s) of fit"))
        .map(|l| {
            let before = l.split(" task(s) of fit").next().unwrap();
            before.rsplit(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(fit_arrays.iter().sum::<usize>(), 10, "{said}");
    assert!(fit_arrays.iter().all(|&n| n <= max_array), "{said}");
    if max_array < 9 {
        assert_eq!(fit_arrays.len(), 1 + 9usize.div_ceil(max_array), "{said}");
    } else {
        eprintln!("array split not exercised: this cluster's MaxArraySize is {max_array}");
    }
    local.run(&["run", "rbm-scalar-smoke", "-q"]).expect_code(0);
    let (a, b) = (entry_files(on_slurm.path()), entry_files(local.path()));
    assert_eq!(a.len(), b.len());
    for (name, bytes) in &a {
        assert!(
            b.get(name) == Some(bytes),
            "{name} differs from the local run's"
        );
    }
    let (run_a, run_b) = (
        on_slurm.latest("rbm-scalar-smoke"),
        local.latest("rbm-scalar-smoke"),
    );
    local
        .run(&[
            "diff",
            run_a.to_str().unwrap(),
            run_b.to_str().unwrap(),
            "--rel-tol",
            "0",
            "--abs-tol",
            "0",
        ])
        .expect_code(0);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_a.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["executor"], "slurm");
    for stage in manifest["stages"].as_array().unwrap() {
        let job = &stage["job"];
        assert_eq!(job["state"], "done", "{stage}");
        let log = job["log"].as_str().unwrap();
        assert!(run_a.join(log).is_file(), "{log} was not copied");
    }
}

/// One failing fit: exactly it fails, with its error and log; the instances that read it are
/// skipped and everything else is done. A second run resubmits only those.
#[test]
fn a_failing_instance_skips_exactly_its_dependants() {
    if !cluster("a_failing_instance_skips_exactly_its_dependants") {
        return;
    }
    let ws = Workspace::with_spec("goldstone-synthetic-smoke");
    let failing = "fit[variant=paper,init_scale=0.1]";
    let run = slurm_run(
        &ws,
        &[
            "run",
            "goldstone-synthetic-smoke",
            "--executor",
            "slurm",
            "--chunk",
            "1",
        ],
        &[("SYMBREAK_FAIL_STAGE", failing)],
    );
    run.expect_code(2);
    let said = format!("{}{}", run.stdout(), run.stderr());
    let line = |id: &str| {
        said.lines()
            .rev()
            .find(|l| l.trim_start().starts_with(&format!("{id}: ")))
            .unwrap_or_else(|| panic!("no line for {id} in\n{said}"))
            .to_string()
    };
    let failed = line(failing);
    assert!(
        failed.contains("FAILED") && failed.contains("failing on request"),
        "{failed}"
    );
    assert!(failed.contains(".out"), "no log path: {failed}");
    for skipped in ["evaluate[speedup]", "emit"] {
        assert!(line(skipped).contains("skipped"), "{said}");
    }
    for done in [
        "preprocess",
        "fit[variant=baseline,init_scale=0.1]",
        "fit[variant=exp-clip,init_scale=0.1]",
        "evaluate[dispersion]",
    ] {
        assert!(line(done).contains("done"), "{done}: {said}");
    }
    let again = slurm_run(
        &ws,
        &["run", "goldstone-synthetic-smoke", "--executor", "slurm"],
        &[],
    );
    again.expect_code(0);
    assert!(
        again.stdout().contains("submitting 3 instance(s)"),
        "{}",
        again.stdout()
    );
}

/// The driver is killed (`kill -9`) right after `sbatch` accepted its first array and before it
/// journalled it; `status` shows the run, and `run` again adopts the live job (found by its
/// comment), submits the rest once, and completes the same run.
#[test]
fn a_killed_driver_loses_nothing_and_nothing_is_submitted_twice() {
    if !cluster("a_killed_driver_loses_nothing_and_nothing_is_submitted_twice") {
        return;
    }
    let ws = Workspace::with_spec("goldstone-synthetic-smoke");
    let pause = ws.path().join("paused");
    let mut driver = ws
        .command(&["run", "goldstone-synthetic-smoke", "--executor", "slurm"])
        .env("SYMBREAK_PAUSE_AT", "slurm-submitted")
        .env("SYMBREAK_PAUSE_FILE", &pause)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !pause.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the driver never paused"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    driver.kill().unwrap();
    driver.wait().unwrap();
    let status = slurm_run(&ws, &["status", "goldstone-synthetic-smoke"], &[]);
    status.expect_code(0);
    assert!(
        status.stdout().contains("unfinished"),
        "{}",
        status.stdout()
    );
    let run = slurm_run(
        &ws,
        &["run", "goldstone-synthetic-smoke", "--executor", "slurm"],
        &[],
    );
    run.expect_code(0);
    assert!(run.stdout().contains("resuming run"), "{}", run.stdout());
    // Seven instances; the first array (preprocess) was accepted before the kill and is
    // adopted, not submitted again.
    assert!(
        run.stdout().contains("submitting 6 instance(s)"),
        "{}",
        run.stdout()
    );
    let name = run
        .stdout()
        .split("job name ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .to_string();
    let arrays = queued_arrays(&name);
    let comments: Vec<&String> = arrays.iter().map(|(c, _)| c).collect();
    let mut unique = comments.clone();
    unique.dedup();
    assert_eq!(comments, unique, "an array was submitted twice: {arrays:?}");
    let status = slurm_run(&ws, &["status", "goldstone-synthetic-smoke"], &[]);
    assert!(
        !status.stdout().contains("unfinished"),
        "{}",
        status.stdout()
    );
}

/// `--detach` returns once the arrays are submitted; `status` follows the run; the next `run`
/// adopts every live job (submits nothing) and completes the same run folder.
#[test]
fn a_detached_run_is_followed_by_status_and_completed_by_the_next_run() {
    if !cluster("a_detached_run_is_followed_by_status_and_completed_by_the_next_run") {
        return;
    }
    let ws = Workspace::with_spec("goldstone-synthetic-smoke");
    let detached = slurm_run(
        &ws,
        &[
            "run",
            "goldstone-synthetic-smoke",
            "--executor",
            "slurm",
            "--detach",
        ],
        &[],
    );
    detached.expect_code(0);
    assert!(
        detached.stdout().contains("submitted as Slurm run"),
        "{}",
        detached.stdout()
    );
    let status = slurm_run(&ws, &["--json", "status", "goldstone-synthetic-smoke"], &[]);
    status.expect_code(0);
    let doc = status.json();
    let instances = doc["slurm"]["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 7, "{doc}");
    let run = slurm_run(
        &ws,
        &["run", "goldstone-synthetic-smoke", "--executor", "slurm"],
        &[],
    );
    run.expect_code(0);
    let said = run.stdout();
    assert!(said.contains("resuming run"), "{said}");
    assert!(!said.contains("submitting"), "{said}");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ws.latest("goldstone-synthetic-smoke").join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["status"], "complete");
}

/// A job over its memory limit (`[slurm.fit] mem`) is killed by the cluster before its worker
/// can say anything: the driver reports the instance failed as OUT_OF_MEMORY, with the hint.
#[test]
fn a_job_over_its_memory_limit_is_reported_as_such() {
    if !cluster("a_job_over_its_memory_limit_is_reported_as_such") {
        return;
    }
    let memory_limits = Command::new("scontrol")
        .args(["show", "config"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("task/cgroup"))
        .unwrap_or(false);
    if !memory_limits {
        eprintln!(
            "a_job_over_its_memory_limit_is_reported_as_such: skipped (no cgroup memory limits)"
        );
        return;
    }
    let ws = Workspace::with_spec("goldstone-synthetic-smoke");
    ws.edit_spec("goldstone-synthetic-smoke", |t| {
        format!("{t}\n[slurm.fit]\nmem = \"200M\"\n")
    });
    let hog = "fit[variant=baseline,init_scale=0.1]";
    let run = slurm_run(
        &ws,
        &["run", "goldstone-synthetic-smoke", "--executor", "slurm"],
        &[("SYMBREAK_HOG_STAGE", hog)],
    );
    run.expect_code(2);
    let said = run.stderr();
    let line = said
        .lines()
        .find(|l| l.trim_start().starts_with(hog))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        line.contains("OUT_OF_MEMORY") && line.contains("raise `mem`"),
        "{line}"
    );
}

/// Writes executable fake Slurm programs into `dir`.
fn fake_slurm(dir: &Path, programs: &[(&str, &str)]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    for (name, body) in programs {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// No cluster needed: with `sbatch` faked (it accepts and runs nothing), the plan file that a
/// detached run leaves is run by hand with the worker verb. A job of this build publishes its
/// instance; a plan written by another build is refused, with a failure record, and exits 1.
#[test]
fn a_worker_of_another_build_refuses_the_plan() {
    let ws = Workspace::with_spec("goldstone-synthetic-smoke");
    let bin = ws.path().join("fake-slurm");
    fake_slurm(
        &bin,
        &[
            ("sbatch", "echo $$"),
            ("squeue", "exit 0"),
            ("scontrol", "echo 'MaxArraySize = 1001'"),
        ],
    );
    let detached = slurm_run(
        &ws,
        &[
            "run",
            "goldstone-synthetic-smoke",
            "--executor",
            "slurm",
            "--detach",
        ],
        &[("SYMBREAK_SLURM_BIN", bin.to_str().unwrap())],
    );
    detached.expect_code(0);
    let runs = ws.path().join(".symbreak/slurm/goldstone-synthetic-smoke");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let plan_path = run_dir.join("plan-0.json");
    let mut plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plan_path).unwrap()).unwrap();
    assert_eq!(plan["arrays"][0]["kind"], "preprocess");
    let worker = |plan: &Path, array: &str| {
        ws.run(&[
            "slurm-worker",
            "--plan",
            plan.to_str().unwrap(),
            "--array",
            array,
            "--task",
            "0",
        ])
    };
    worker(&plan_path, "0").expect_code(0);
    let outcomes = run_dir.join("outcomes");
    let outcome = |kind: &str| -> serde_json::Value {
        let file = std::fs::read_dir(&outcomes)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} outcome"));
        serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap()
    };
    assert_eq!(outcome("preprocess")["state"], "done");
    plan["build"] = "another build".into();
    let other = run_dir.join("plan-other.json");
    std::fs::write(&other, serde_json::to_vec(&plan).unwrap()).unwrap();
    let refused = worker(&other, "1");
    refused.expect_code(1);
    let fit = outcome("fit");
    assert_eq!(fit["state"], "failed");
    assert!(fit["error"].as_str().unwrap().contains("refused"), "{fit}");

    // While the run is unfinished, `gc` keeps the entry its job published (no state file names
    // it yet) and the staged binary; once the run is over, it removes them and the run's folder.
    let entries = |kind: &str| {
        std::fs::read_dir(ws.path().join(".symbreak/cache").join(kind))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let binaries = ws.path().join(".symbreak/slurm/bin");
    ws.run(&["gc"]).expect_code(0);
    assert_eq!(entries("preprocess"), 1);
    assert_eq!(std::fs::read_dir(&binaries).unwrap().count(), 1);
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(run_dir.join("journal.jsonl"))
        .unwrap();
    std::io::Write::write_all(
        &mut journal,
        b"{\"event\":\"finished\",\"time\":\"t\",\"status\":\"failed\"}\n",
    )
    .unwrap();
    let gc = ws.run(&["gc"]);
    gc.expect_code(0);
    assert_eq!(entries("preprocess"), 0, "{}", gc.stdout());
    assert!(!run_dir.exists(), "{}", gc.stdout());
    assert_eq!(std::fs::read_dir(&binaries).unwrap().count(), 0);
}

/// `cancel` takes a detached run's jobs back (one `scancel` by the run's name) and says so; the
/// next `run` resubmits what the cancel stopped and completes.
#[test]
fn a_cancelled_run_is_completed_by_the_next_run() {
    if !cluster("a_cancelled_run_is_completed_by_the_next_run") {
        return;
    }
    let ws = Workspace::with_spec("goldstone-synthetic-smoke");
    slurm_run(
        &ws,
        &[
            "run",
            "goldstone-synthetic-smoke",
            "--executor",
            "slurm",
            "--detach",
        ],
        &[],
    )
    .expect_code(0);
    let cancel = slurm_run(&ws, &["cancel", "goldstone-synthetic-smoke"], &[]);
    cancel.expect_code(0);
    assert!(
        cancel.stdout().contains("cancelled the Slurm jobs of run"),
        "{}",
        cancel.stdout()
    );
    let run = slurm_run(
        &ws,
        &["run", "goldstone-synthetic-smoke", "--executor", "slurm"],
        &[],
    );
    run.expect_code(0);
    assert!(run.stdout().contains("resuming run"), "{}", run.stdout());
}

/// Found while trying it: a run whose `sbatch` was refused (a partition the cluster does not
/// have) failed with sbatch's words, but `status` went on calling its Slurm run unfinished.
#[test]
fn a_refused_submission_ends_the_run_with_the_schedulers_words() {
    if !cluster("a_refused_submission_ends_the_run_with_the_schedulers_words") {
        return;
    }
    let ws = Workspace::with_spec("goldstone-synthetic-smoke");
    ws.edit_spec("goldstone-synthetic-smoke", |t| {
        format!("{t}\n[slurm]\npartition = \"no-such-partition\"\n")
    });
    let run = slurm_run(
        &ws,
        &["run", "goldstone-synthetic-smoke", "--executor", "slurm"],
        &[],
    );
    run.expect_code(2);
    assert!(
        run.stderr().contains("sbatch refused") && run.stderr().contains("partition"),
        "{}",
        run.stderr()
    );
    let status = slurm_run(&ws, &["status", "goldstone-synthetic-smoke"], &[]);
    assert!(
        !status.stdout().contains("unfinished"),
        "{}",
        status.stdout()
    );
}
