//! The job side: `symbreak slurm-worker --plan <plan-file> --array <a>` runs the instances of
//! task `$SLURM_ARRAY_TASK_ID` of array `a`. It never plans or hashes inputs: it decodes each
//! task from the plan file (refusing a plan of another build), takes its key and its upstream
//! entries from there, skips an instance whose entry already exists, and publishes the rest by
//! rename from a scratch folder on the cache's filesystem. Every instance ends with an outcome
//! record; the exit code is non-zero when one failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Outcome, OutcomeState, PlanFile, PlannedInstance, RunDir, build_fingerprint};
use crate::error::{Error, Result};
use crate::pipeline::cache::{Cache, EntryCheck, HashMemo, local_host};
use crate::pipeline::execute::{build_entry, now_rfc3339, with_causes};
use crate::pipeline::plan::TaskRegistry;
use crate::pipeline::progress::RunLog;
use crate::pipeline::{Progress, StageKind};

/// How long an upstream entry that a finished job should have published may stay invisible
/// (attribute caching of a shared filesystem) before its dependants are skipped.
pub fn visibility_grace() -> Duration {
    std::env::var("SYMBREAK_SLURM_GRACE")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs_f64)
}

/// The log file of task `task` of Slurm array job `job`, array `array` of `round`.
pub fn log_path(run: &RunDir, round: usize, array: usize, job: &str, task: usize) -> PathBuf {
    run.logs().join(format!("{round}-{array}-{job}_{task}.out"))
}

/// Runs task `task` (default `$SLURM_ARRAY_TASK_ID`) of array `array` of the plan file at
/// `plan_path`; `Ok(false)` when an instance failed.
pub fn run(
    plan_path: &Path,
    array: usize,
    task: Option<usize>,
    registry: &TaskRegistry,
) -> Result<bool> {
    let plan = PlanFile::load(plan_path)?;
    let run_dir = RunDir {
        dir: plan_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };
    let env = |name: &str| std::env::var(name).ok();
    let task = match task {
        Some(t) => t,
        None => env("SLURM_ARRAY_TASK_ID")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                Error::Other("no --task and no SLURM_ARRAY_TASK_ID: not an array task".into())
            })?,
    };
    let job = env("SLURM_ARRAY_JOB_ID").unwrap_or_else(|| "local".into());
    if let Some(cpus) = env("SLURM_CPUS_PER_TASK").and_then(|c| c.parse::<usize>().ok()) {
        // Only the first pool built in a process counts; a worker builds none before this.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(cpus.max(1))
            .build_global();
    }
    let indices = plan
        .arrays
        .get(array)
        .and_then(|a| a.tasks.get(task))
        .ok_or_else(|| {
            Error::Other(format!(
                "{}: no task {task} in array {array}",
                plan_path.display()
            ))
        })?;
    let log = RunLog::new(None, true, None);
    let context = Context {
        run_dir: &run_dir,
        cache: Cache::new(&plan.cache_root),
        job: format!("{job}_{task}"),
        node: local_host(),
        log_file: log_path(&run_dir, plan.round, array, &job, task)
            .display()
            .to_string(),
        log: &log,
    };
    log.line(&format!(
        "{} task {task} of array {array} (round {}) on {}: {} instance(s)",
        plan.experiment,
        plan.round,
        context.node,
        indices.len()
    ));
    let same_build = plan.build == build_fingerprint();
    let mut all_ok = true;
    for &i in indices {
        let instance = plan
            .instances
            .get(i)
            .ok_or_else(|| Error::Other(format!("plan has no instance {i}")))?;
        let clock = Instant::now();
        let (state, error) = if same_build {
            context.run_one(instance, registry)
        } else {
            (
                OutcomeState::Failed,
                Some(format!(
                    "refused: this binary (build {}) is not the build that wrote the plan ({})",
                    build_fingerprint(),
                    plan.build
                )),
            )
        };
        all_ok &= state != OutcomeState::Failed;
        log.line(&format!(
            "{}: {}{}",
            instance.id,
            match state {
                OutcomeState::Done => "done",
                OutcomeState::Cached => "cached (published by another job or run)",
                OutcomeState::Failed => "FAILED",
                OutcomeState::Skipped => "skipped",
            },
            error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
        ));
        run_dir.write_outcome(&Outcome {
            id: instance.id.clone(),
            kind: instance.kind,
            key: instance.key.clone(),
            state,
            error,
            job: context.job.clone(),
            node: context.node.clone(),
            log: context.log_file.clone(),
            seconds: clock.elapsed().as_secs_f64(),
            finished: now_rfc3339(),
        })?;
    }
    if let Err(e) = context.cache.remember_published() {
        log.line(&format!(
            "could not record the hashes of the new entries (the next run re-reads them): {e}"
        ));
    }
    Ok(all_ok)
}

/// What every instance of one task shares.
struct Context<'a> {
    run_dir: &'a RunDir,
    cache: Cache,
    job: String,
    node: String,
    log_file: String,
    log: &'a RunLog,
}

impl Context<'_> {
    fn run_one(
        &self,
        instance: &PlannedInstance,
        registry: &TaskRegistry,
    ) -> (OutcomeState, Option<String>) {
        match self.try_run_one(instance, registry) {
            Ok(state) => state,
            Err(e) => (OutcomeState::Failed, Some(with_causes(&e))),
        }
    }

    fn try_run_one(
        &self,
        instance: &PlannedInstance,
        registry: &TaskRegistry,
    ) -> Result<(OutcomeState, Option<String>)> {
        let kind = instance.kind.name();
        if !instance.forced
            && matches!(
                self.cache
                    .check_entry(kind, &instance.key, &mut HashMemo::fresh()),
                EntryCheck::Valid
            )
        {
            return Ok((OutcomeState::Cached, None));
        }
        let code = registry.code(&instance.task_type).ok_or_else(|| {
            Error::Other(format!(
                "this build has no stage type {}",
                instance.task_type
            ))
        })?;
        if code.hash() != instance.code {
            return Err(Error::Other(format!(
                "refused: the code of {} differs from the plan's",
                instance.code_group
            )));
        }
        let mut upstream = BTreeMap::new();
        for (dep, (dep_kind, dep_key)) in &instance.upstream {
            match self.await_upstream(dep, *dep_kind, dep_key) {
                Ok(dir) => {
                    upstream.insert(dep.clone(), dir);
                }
                Err(why) => return Ok((OutcomeState::Skipped, Some(why))),
            }
        }
        let task = registry.decode(&instance.task_type, instance.kind, &instance.task)?;
        let progress = Progress::new(instance.id.clone(), None, Some(self.log.clone()));
        build_entry(
            task.as_ref(),
            &instance.id,
            instance.kind,
            &instance.key,
            &upstream,
            &self.cache,
            &progress,
            instance.forced,
        )?;
        Ok((OutcomeState::Done, None))
    }

    /// The entry folder of upstream `dep`, once its record can be opened; `Err(why)` when its
    /// job recorded a failure or skip, or it stays invisible for the grace period.
    fn await_upstream(
        &self,
        dep: &str,
        kind: StageKind,
        key: &str,
    ) -> std::result::Result<PathBuf, String> {
        let deadline = Instant::now() + visibility_grace();
        loop {
            // Opening the record, not `stat`ing the folder: a shared filesystem may show the
            // folder before its files.
            if self.cache.entry_meta(kind.name(), key).is_some() {
                return Ok(self.cache.entry_dir(kind.name(), key));
            }
            if let Some(outcome) = self.run_dir.read_outcome(kind, key)
                && matches!(outcome.state, OutcomeState::Failed | OutcomeState::Skipped)
            {
                return Err(format!(
                    "upstream {dep} {} (job {}, log {})",
                    if outcome.state == OutcomeState::Failed {
                        "failed"
                    } else {
                        "was skipped"
                    },
                    outcome.job,
                    outcome.log
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "upstream {dep} left no entry within {:.0} s of its job's end",
                    visibility_grace().as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
