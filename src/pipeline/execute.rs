//! Executing a [`Plan`]: decide what is cached and why the rest must run, run it (independent
//! instances in parallel on a pool of `jobs` threads), and assemble the run folder.
//!
//! Forcing follows the usual build-tool vocabulary: `--force` reruns everything, `--stage s`
//! reruns the instances of stage `s` (upstream comes from the cache, or runs if missing),
//! `--from s` reruns `s` and every stage after it. Because keys are input-addressed, a forced
//! rerun of deterministic code replaces its entry with identical content.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use indicatif::MultiProgress;
use serde::Serialize;

use super::cache::{Cache, EntryCheck, EntryMeta, KeyRecord, change_reasons, key_record};
use super::progress::RunLog;
use super::run_folder::{GitInfo, Manifest, RunFolder, StageRecord, host_info};
use super::{Plan, Progress, StageContext, StageKind};
use crate::error::{Error, Result};

/// Which instances to rerun even when cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Force {
    None,
    All,
    Stage(StageKind),
    From(StageKind),
}

impl Force {
    fn applies(self, kind: StageKind) -> Option<String> {
        match self {
            Force::None => None,
            Force::All => Some("forced (--force)".into()),
            Force::Stage(k) if k == kind => Some(format!("forced (--stage {})", k.name())),
            Force::From(k) if kind >= k => Some(format!("forced (--from {})", k.name())),
            _ => None,
        }
    }
}

/// Writes the page of a finished run into its folder, before the manifest says `complete`
/// (the pipeline core knows the manifest, not how it is shown).
pub type ReportWriter = fn(&std::path::Path, &Manifest) -> Result<()>;

/// Where the instances of a run execute.
#[derive(Clone, Debug, Default)]
pub enum Executor {
    /// In this process, `jobs` at a time.
    #[default]
    Local,
    /// As Slurm job arrays (see [`super::slurm`]).
    Slurm(Box<SlurmExecutor>),
}

/// How a run goes to Slurm: the spec's `[slurm]` table, the command line's options and the
/// cluster's commands.
#[derive(Clone, Debug)]
pub struct SlurmExecutor {
    pub settings: super::slurm::driver::SlurmSettings,
    pub options: super::slurm::driver::SlurmOptions,
    pub scheduler: super::slurm::scheduler::Scheduler,
}

/// Options of one `run`.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub executor: Executor,
    pub force: Force,
    pub dry_run: bool,
    pub jobs: usize,
    pub quiet: bool,
    pub progress_bars: bool,
    pub command: Vec<String>,
    pub report: ReportWriter,
}

/// The project folder a run works in: `results/` and `.symbreak/` live here.
#[derive(Clone, Debug)]
pub struct Workspace {
    pub root: PathBuf,
}

impl Workspace {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn results(&self) -> PathBuf {
        self.root.join("results")
    }
    pub fn cache(&self) -> Cache {
        Cache::new(self.root.join(".symbreak"))
    }
}

/// What will happen to one instance, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    pub id: String,
    pub kind: StageKind,
    pub key: String,
    pub cached: bool,
    pub run: bool,
    /// Rerun on request although cached: its entry replaces the cached one.
    pub forced: bool,
    pub reasons: Vec<String>,
    #[serde(skip)]
    pub record: KeyRecord,
}

/// Keys every instance and decides whether it runs.
pub fn decide(plan: &Plan, workspace: &Workspace, force: Force) -> Result<Vec<Decision>> {
    let cache = workspace.cache();
    cache.check_layout()?;
    let state = cache.load_state(&plan.experiment);
    let mut memo = cache.hash_memo();
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    let mut decisions = Vec::with_capacity(plan.instances.len());
    for instance in &plan.instances {
        let id = instance.id();
        let mut deps = BTreeMap::new();
        for dep in &instance.deps {
            let key = keys.get(dep).ok_or_else(|| {
                Error::Other(format!(
                    "{id} depends on {dep}, which is not planned before it"
                ))
            })?;
            deps.insert(dep.clone(), key.clone());
        }
        if let Some(missing) = instance.inputs.iter().find(|p| !p.exists()) {
            return Err(Error::Other(format!(
                "{id} reads {}, which is missing: `symbreak verify` says how to supply it \
                 (`symbreak fetch {}` downloads the files that have mirrors; the others are \
                 rebuilt as their `source` in data/registry.toml says)",
                missing.display(),
                plan.experiment
            )));
        }
        let mut inputs = cache.hash_inputs(&instance.inputs, &mut memo)?;
        for path in &instance.fetched_inputs {
            let hash = if path.exists() {
                memo.hash(path)?.blake3
            } else {
                "absent (an upstream fetch provides it)".to_string()
            };
            inputs.insert(path.to_string_lossy().to_string(), hash);
        }
        let record = key_record(instance, deps, inputs);
        let check = cache.check_entry(instance.kind.name(), &record.key, &mut memo);
        let cached = matches!(check, EntryCheck::Valid);
        let mut reasons = Vec::new();
        let forced = force.applies(instance.kind);
        if let Some(forced) = &forced {
            reasons.push(forced.clone());
        }
        if let EntryCheck::Corrupt(why) = &check {
            reasons.push(format!(
                "WARNING: cache entry failed verification ({why}); recomputing it"
            ));
        } else if !cached {
            let previous = state.get(&id);
            if previous.is_some_and(|p| p.key == record.key) {
                reasons.push("cache entry missing".into());
            } else {
                reasons.extend(change_reasons(previous, &record));
            }
        }
        keys.insert(id.clone(), record.key.clone());
        decisions.push(Decision {
            id,
            kind: instance.kind,
            key: record.key.clone(),
            cached,
            run: !reasons.is_empty(),
            forced: forced.is_some(),
            reasons,
            record,
        });
    }
    memo.save()?;
    Ok(decisions)
}

/// Outcome of a run, as printed with `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub experiment: String,
    pub run_id: Option<String>,
    pub run_dir: Option<PathBuf>,
    pub status: String,
    pub seconds: f64,
    pub stages: Vec<Decision>,
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs `plan` in `workspace`.
pub fn execute(plan: &Plan, workspace: &Workspace, options: &RunOptions) -> Result<RunSummary> {
    let clock = Instant::now();
    let cache = workspace.cache();
    let echo = !options.quiet;
    // Held until the run ends: a second run of the experiment decides only after this one has
    // published, so it reuses instead of recomputing.
    let _lock = if options.dry_run {
        None
    } else {
        Some(cache.lock_experiment(&plan.experiment, |message| {
            if echo {
                eprintln!("{message}");
            }
        })?)
    };
    let decisions = decide(plan, workspace, options.force)?;
    if options.dry_run {
        let log = RunLog::new(None, echo, None);
        for d in &decisions {
            log.line(&describe(d, true));
        }
        return Ok(RunSummary {
            experiment: plan.experiment.clone(),
            run_id: None,
            run_dir: None,
            status: "dry-run".into(),
            seconds: clock.elapsed().as_secs_f64(),
            stages: decisions,
        });
    }
    cache.sweep_stale_scratch()?;
    let git = GitInfo::probe(&workspace.root);
    let resumed = match &options.executor {
        Executor::Slurm(_) => resumable_slurm_run(plan, workspace),
        Executor::Local => None,
    };
    let mut folder = match &resumed {
        Some(run_id) => RunFolder::reopen(&workspace.results(), &plan.experiment, run_id)?,
        None => RunFolder::create(&workspace.results(), &plan.experiment, &git)?,
    };
    let log_path = folder.dir.join("log.txt");
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Error::io("creating", &log_path, e))?;
    let multi = options.progress_bars.then(MultiProgress::new);
    let log = RunLog::new(Some(log_file), echo, multi.clone());
    log.line(&format!(
        "{} {} of {} ({} stage instances{})",
        if resumed.is_some() {
            "resuming run"
        } else {
            "run"
        },
        folder.run_id,
        plan.experiment,
        decisions.len(),
        match &options.executor {
            Executor::Slurm(_) => ", on Slurm",
            Executor::Local => "",
        }
    ));
    if !git.binary_differs.is_empty() {
        let shown: Vec<&str> = git
            .binary_differs
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        let warning = format!(
            "WARNING: this binary was built from other sources than the checkout ({}{}); the \
             run is the binary's code, marked -dirty. Rebuild (`cargo build --release`) to run \
             the checkout's code.",
            shown.join(", "),
            if git.binary_differs.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        );
        log.line(&warning);
        if !echo {
            eprintln!("{warning}");
        }
    }

    let mut inputs = BTreeMap::new();
    for d in &decisions {
        inputs.extend(d.record.inputs.clone());
    }
    let mut manifest = Manifest {
        status: "running".into(),
        experiment: plan.experiment.clone(),
        kind: plan.kind.clone(),
        run_id: folder.run_id.clone(),
        spec: spec_record(plan)?,
        seed: plan.seed,
        parameters: plan.resolved.clone(),
        started: now_rfc3339(),
        finished: None,
        git,
        versions: BTreeMap::from([
            (
                "symbreak".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            (
                "rustc".to_string(),
                env!("SYMBREAK_RUSTC_VERSION").to_string(),
            ),
        ]),
        host: host_info(),
        command: options.command.clone(),
        inputs,
        stages: Vec::new(),
        artefacts: Vec::new(),
        pid: std::process::id(),
        error: None,
        executor: match &options.executor {
            Executor::Slurm(_) => Some("slurm".into()),
            Executor::Local => None,
        },
    };
    folder.write_manifest(&manifest)?;
    // From here on the folder exists and says `running`: whatever fails, it must say `failed`.
    let outcome = run_and_assemble(
        plan,
        &cache,
        options,
        &decisions,
        &mut folder,
        &mut manifest,
        &log,
        multi,
    );
    match outcome {
        Ok(complete) => {
            let seconds = clock.elapsed().as_secs_f64();
            if complete {
                log.line(&format!(
                    "complete in {seconds:.2} s: {}",
                    folder.dir.display()
                ));
            }
            Ok(RunSummary {
                experiment: plan.experiment.clone(),
                run_id: Some(folder.run_id.clone()),
                run_dir: Some(folder.dir.clone()),
                status: if complete { "complete" } else { "submitted" }.into(),
                seconds,
                stages: decisions,
            })
        }
        Err(e) => {
            manifest.status = "failed".into();
            manifest.error = Some(with_causes(&e));
            manifest.finished = Some(now_rfc3339());
            if let Err(also) = folder.write_manifest(&manifest) {
                log.line(&format!("could not mark the run failed: {also}"));
            }
            Err(e)
        }
    }
}

/// The manifest's `spec` record: the spec's path and blake3, and its claims file's.
fn spec_record(plan: &Plan) -> Result<BTreeMap<String, String>> {
    let mut record = BTreeMap::from([
        ("path".to_string(), plan.spec_path.display().to_string()),
        ("blake3".to_string(), plan.spec_hash.clone()),
    ]);
    if let Some(claims) = &plan.claims_path {
        record.insert("claims".into(), claims.display().to_string());
        record.insert("claims_blake3".into(), crate::fsutil::hash_file(claims)?);
    }
    Ok(record)
}

/// The Slurm run of `plan`'s experiment that a new driver should continue: the latest one
/// whose jobs are not over, whose run folder is still there, and that was planned by this build
/// from the same spec.
fn resumable_slurm_run(plan: &Plan, workspace: &Workspace) -> Option<String> {
    let record = super::slurm::driver::unfinished_run(workspace.cache().root(), &plan.experiment)
        .ok()
        .flatten()?;
    if record.plans.first()?.build != super::slurm::build_fingerprint() {
        return None;
    }
    let run_id = record.dir.run_id();
    let manifest: Manifest = crate::fsutil::read_json(
        &workspace
            .results()
            .join(&plan.experiment)
            .join(&run_id)
            .join("manifest.json"),
    )
    .ok()?;
    (manifest.spec.get("blake3") == Some(&plan.spec_hash) && manifest.status != "complete")
        .then_some(run_id)
}

/// Runs the instances that must run, then assembles and completes the run folder; `Ok(false)`
/// when the run was submitted to Slurm and left to run (`--detach`).
#[allow(clippy::too_many_arguments)]
fn run_and_assemble(
    plan: &Plan,
    cache: &Cache,
    options: &RunOptions,
    decisions: &[Decision],
    folder: &mut RunFolder,
    manifest: &mut Manifest,
    log: &RunLog,
    multi: Option<MultiProgress>,
) -> Result<bool> {
    if let Executor::Slurm(slurm) = &options.executor {
        return run_on_slurm(
            plan, cache, decisions, folder, manifest, log, slurm, options,
        );
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs.max(1))
        .build()
        .map_err(|e| Error::Other(format!("starting {} worker threads: {e}", options.jobs)))?;
    let mut state = cache.load_state(&plan.experiment);
    let mut records: BTreeMap<String, StageRecord> = BTreeMap::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut failure: Option<Error> = None;

    // Each instance starts as soon as its upstream instances are done and a worker is free, so
    // a long stage never holds back the unrelated work behind it.
    let (sender, receiver) = std::sync::mpsc::channel::<(usize, Result<StageRecord>)>();
    let mut started: BTreeSet<usize> = BTreeSet::new();
    let mut running = 0usize;
    // The whole run's bar, above the bars of the instances running.
    let overall = multi.as_ref().map(|m| {
        let bar = m.add(indicatif::ProgressBar::new(plan.instances.len() as u64));
        bar.set_style(super::progress::bar_style(
            "{prefix:>32} [{bar:30}] {pos}/{len} stage instances, {elapsed}",
        ));
        bar.set_prefix(plan.experiment.clone());
        bar
    });
    pool.in_place_scope(|scope| -> Result<()> {
        loop {
            if failure.is_none() {
                for (i, inst) in plan.instances.iter().enumerate() {
                    if started.contains(&i) || !inst.deps.iter().all(|d| done.contains(d)) {
                        continue;
                    }
                    started.insert(i);
                    running += 1;
                    let sender = sender.clone();
                    let multi = multi.clone();
                    let (decisions, cache, log) = (decisions, cache, log);
                    scope.spawn(move |_| {
                        let outcome =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                run_instance(plan, decisions, i, cache, multi, log)
                            }))
                            .unwrap_or_else(|_| {
                                Err(Error::Other(format!("stage {} panicked", decisions[i].id)))
                            });
                        // The receiver outlives every job of the scope.
                        let _ = sender.send((i, outcome));
                    });
                }
            }
            if running == 0 {
                return Ok(());
            }
            let (i, outcome) = receiver
                .recv()
                .map_err(|e| Error::Other(format!("stage results channel: {e}")))?;
            running -= 1;
            if let Some(bar) = &overall {
                bar.inc(1);
            }
            let d = &decisions[i];
            match outcome {
                Ok(record) => {
                    // Saved as each instance finishes (a killed run keeps what it learnt), but
                    // only when it changed: a cached instance changes nothing, and rewriting
                    // the whole state per instance made a no-change rerun quadratic.
                    if state.get(&d.id) != Some(&d.record) {
                        state.insert(d.id.clone(), d.record.clone());
                        cache.save_state(&plan.experiment, &state)?;
                    }
                    records.insert(d.id.clone(), record);
                    done.insert(d.id.clone());
                }
                Err(e) => {
                    log.line(&format!("{}: FAILED: {}", d.id, with_causes(&e)));
                    failure.get_or_insert(e);
                    done.insert(d.id.clone());
                }
            }
        }
    })?;
    if let Some(bar) = overall {
        bar.finish_and_clear();
    }
    if let Err(e) = cache.remember_published() {
        log.line(&format!(
            "could not record the hashes of the new entries (the next run re-reads them): {e}"
        ));
    }
    if failure.is_none() && done.len() < plan.instances.len() {
        return Err(Error::Other("stage graph has a cycle".into()));
    }

    manifest.stages = decisions
        .iter()
        .filter_map(|d| records.get(&d.id).cloned())
        .collect();
    if let Some(e) = failure {
        return Err(e);
    }
    assemble(cache, options, decisions, folder, manifest)?;
    Ok(true)
}

/// Collects the artefacts of every instance (all in the cache by now) into the run folder,
/// writes the report and marks the run complete.
fn assemble(
    cache: &Cache,
    options: &RunOptions,
    decisions: &[Decision],
    folder: &mut RunFolder,
    manifest: &mut Manifest,
) -> Result<()> {
    pause_point("artefacts-collecting");
    for d in decisions {
        let entry = cache.entry_dir(d.kind.name(), &d.key);
        let meta = cache.entry_meta(d.kind.name(), &d.key).ok_or_else(|| {
            Error::Other(format!(
                "{}: cache entry {} vanished during the run",
                d.id,
                entry.display()
            ))
        })?;
        folder.collect_artefacts(&d.id, &entry, &meta)?;
    }
    folder.copy_collected()?;
    manifest.artefacts = folder.artefact_records()?;
    manifest.finished = Some(now_rfc3339());
    manifest.status = "complete".into();
    // The page describes the finished run; the manifest says "complete" only once it exists.
    (options.report)(&folder.dir, manifest)?;
    pause_point("report-written");
    folder.write_manifest(manifest)?;
    pause_point("manifest-complete");
    folder.mark_latest()
}

/// The Slurm branch of [`run_and_assemble`]: submit, follow (unless detached), record each
/// instance's job in the manifest, assemble.
#[allow(clippy::too_many_arguments)]
fn run_on_slurm(
    plan: &Plan,
    cache: &Cache,
    decisions: &[Decision],
    folder: &mut RunFolder,
    manifest: &mut Manifest,
    log: &RunLog,
    slurm: &SlurmExecutor,
    options: &RunOptions,
) -> Result<bool> {
    use super::slurm::driver::{Finish, drive};
    use super::slurm::journal::{self, Event};
    let project_root = cache
        .root()
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let finish = drive(
        plan,
        decisions,
        cache,
        &project_root,
        &folder.run_id,
        &slurm.settings,
        &slurm.options,
        &slurm.scheduler,
        &folder.dir,
        log,
    )?;
    let run_dir = super::slurm::RunDir::new(cache.root(), &plan.experiment, &folder.run_id);
    let (jobs, failure) = match finish {
        Finish::Detached => return Ok(false),
        Finish::Complete(jobs) => (jobs, None),
        Finish::Failed(message, jobs) => (jobs, Some(message)),
    };
    let mut state = cache.load_state(&plan.experiment);
    manifest.stages.clear();
    // Decisions are made in plan order, one per instance.
    for (d, instance) in decisions.iter().zip(&plan.instances) {
        let Some(meta) = cache.entry_meta(d.kind.name(), &d.key) else {
            continue;
        };
        state.insert(d.id.clone(), d.record.clone());
        manifest.stages.push(StageRecord {
            job: jobs.get(&d.id).cloned().flatten(),
            ..stage_record(d, instance, !d.run, &meta)
        });
    }
    cache.save_state(&plan.experiment, &state)?;
    // The driver's part is over: a later `run` starts a new run rather than resuming this one.
    let finished = |status: &str| {
        journal::append(
            &run_dir.journal(),
            &Event::Finished {
                time: now_rfc3339(),
                status: status.into(),
            },
        )
    };
    if let Some(message) = failure {
        finished("failed")?;
        return Err(Error::Other(message));
    }
    assemble(cache, options, decisions, folder, manifest)?;
    finished("complete")?;
    Ok(true)
}

/// Runs only the fetch instances of `plan` (those without upstream), `jobs` at a time, into the
/// cache — no run folder: `symbreak fetch` downloads what a later run will read. Returns each
/// instance's id, whether it was cached already, and its cache folder.
pub fn execute_fetch(
    plan: &Plan,
    workspace: &Workspace,
    jobs: usize,
    echo: bool,
    multi: Option<MultiProgress>,
) -> Result<Vec<(String, bool, PathBuf)>> {
    let cache = workspace.cache();
    let decisions = decide(plan, workspace, Force::None)?;
    let log = RunLog::new(None, echo, multi.clone());
    let wanted: Vec<usize> = (0..plan.instances.len())
        .filter(|&i| {
            plan.instances[i].kind == StageKind::Fetch && plan.instances[i].deps.is_empty()
        })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| Error::Other(format!("starting {jobs} worker threads: {e}")))?;
    let outcomes: Vec<Result<StageRecord>> = pool.install(|| {
        use rayon::prelude::*;
        wanted
            .par_iter()
            .map(|&i| run_instance(plan, &decisions, i, &cache, multi.clone(), &log))
            .collect()
    });
    let mut state = cache.load_state(&plan.experiment);
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for (&i, outcome) in wanted.iter().zip(outcomes) {
        let d = &decisions[i];
        match outcome {
            Ok(record) => {
                state.insert(d.id.clone(), d.record.clone());
                out.push((
                    d.id.clone(),
                    record.cached,
                    cache.entry_dir(d.kind.name(), &d.key),
                ));
            }
            Err(e) => failures.push(with_causes(&e)),
        }
    }
    cache.save_state(&plan.experiment, &state)?;
    if !failures.is_empty() {
        return Err(Error::Other(format!(
            "{} of {} downloads failed:\n{}",
            failures.len(),
            wanted.len(),
            failures.join("\n")
        )));
    }
    Ok(out)
}

/// Runs `task` (instance `id` of `kind`, keyed `key`) into a scratch folder on the cache's
/// filesystem and publishes it as its entry; `replace` (a forced rerun) replaces an entry that is
/// already there. The one way an entry is made, locally and in a cluster job.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_entry(
    task: &dyn super::plan::RunStage,
    id: &str,
    kind: StageKind,
    key: &str,
    upstream: &BTreeMap<String, PathBuf>,
    cache: &Cache,
    progress: &Progress,
    replace: bool,
) -> Result<EntryMeta> {
    let scratch = cache.scratch_dir()?;
    let started = now_rfc3339();
    let clock = Instant::now();
    let ctx = StageContext {
        out_dir: scratch.path(),
        upstream,
        progress,
    };
    let result = match std::env::var("SYMBREAK_FAIL_STAGE") {
        // Fault injection for tests of failure handling (local and in cluster jobs).
        Ok(failing) if failing == id => Err(Error::Other(format!(
            "failing on request (SYMBREAK_FAIL_STAGE={failing})"
        ))),
        _ if std::env::var("SYMBREAK_HOG_STAGE").is_ok_and(|hog| hog == id) => {
            hog_memory();
            task.run(&ctx)
        }
        _ => task.run(&ctx),
    };
    progress.finish();
    result.map_err(|e| Error::Stage {
        stage: id.to_string(),
        source: Box::new(e),
    })?;
    let meta = EntryMeta {
        id: id.to_string(),
        key: key.to_string(),
        started,
        finished: now_rfc3339(),
        seconds: clock.elapsed().as_secs_f64(),
        files: None,
    };
    cache.publish(scratch, kind.name(), &meta, replace)?;
    Ok(meta)
}

/// Fault injection for the test of a job over its memory limit: touches 64 MiB blocks, up to
/// 8 GiB, so that a memory limit far below that kills the process.
fn hog_memory() {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for n in 0..128u8 {
        blocks.push(vec![n.wrapping_add(1); 64 << 20]);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::hint::black_box(&blocks);
}

/// Where a run can be held for fault-injection tests: with `SYMBREAK_PAUSE_AT=<point>` and
/// `SYMBREAK_PAUSE_FILE=<path>` set, the first time the run reaches `point` it creates the file
/// and waits while the file exists (at most a minute), so a test can kill or disturb the run at
/// that instant. Without both variables it does nothing.
pub(crate) fn pause_point(point: &str) {
    static PAUSED: std::sync::Once = std::sync::Once::new();
    let (Ok(at), Ok(file)) = (
        std::env::var("SYMBREAK_PAUSE_AT"),
        std::env::var("SYMBREAK_PAUSE_FILE"),
    ) else {
        return;
    };
    if at != point {
        return;
    }
    PAUSED.call_once(|| {
        let file = PathBuf::from(file);
        if std::fs::write(&file, point).is_err() {
            return;
        }
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        while file.exists() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
}

/// An error's message followed by those of its causes.
pub(crate) fn with_causes(e: &Error) -> String {
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message.push_str(&format!(": {c}"));
        cause = c.source();
    }
    message
}

fn describe(d: &Decision, dry: bool) -> String {
    match (d.run, dry) {
        (false, _) => format!("{}: cached", d.id),
        (true, true) => format!("{}: would run ({})", d.id, d.reasons.join("; ")),
        (true, false) => format!("{}: running ({})", d.id, d.reasons.join("; ")),
    }
}

/// The manifest's record of instance `instance`, decided as `d`, whose entry has `meta`.
fn stage_record(
    d: &Decision,
    instance: &super::StageInstance,
    cached: bool,
    meta: &EntryMeta,
) -> StageRecord {
    StageRecord {
        id: d.id.clone(),
        kind: d.kind.name().into(),
        key: d.key.clone(),
        cached,
        reason: d.reasons.join("; "),
        started: meta.started.clone(),
        finished: meta.finished.clone(),
        seconds: meta.seconds,
        code_group: instance.code.name.into(),
        job: None,
    }
}

fn run_instance(
    plan: &Plan,
    decisions: &[Decision],
    index: usize,
    cache: &Cache,
    multi: Option<MultiProgress>,
    log: &RunLog,
) -> Result<StageRecord> {
    let instance = &plan.instances[index];
    let d = &decisions[index];
    let record = |cached: bool, meta: &EntryMeta| stage_record(d, instance, cached, meta);
    if !d.run
        && let Some(meta) = cache.entry_meta(d.kind.name(), &d.key)
    {
        log.line(&describe(d, false));
        return Ok(record(true, &meta));
    }
    log.line(&describe(d, false));
    let upstream: BTreeMap<String, PathBuf> = instance
        .deps
        .iter()
        .filter_map(|dep| {
            decisions
                .iter()
                .find(|x| &x.id == dep)
                .map(|x| (dep.clone(), cache.entry_dir(x.kind.name(), &x.key)))
        })
        .collect();
    let progress = Progress::new(d.id.clone(), multi, Some(log.clone()));
    let meta = build_entry(
        instance.task.as_ref(),
        &d.id,
        d.kind,
        &d.key,
        &upstream,
        cache,
        &progress,
        d.forced,
    )?;
    pause_point("entry-published");
    log.line(&format!("{}: done in {:.2} s", d.id, meta.seconds));
    Ok(record(false, &meta))
}
