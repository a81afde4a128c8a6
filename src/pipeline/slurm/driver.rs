//! The driver side of a Slurm run: pack the instances that must run into job arrays, submit
//! the whole graph up front, and follow it to the end through the filesystem (every few
//! seconds) and one `squeue` per run (at most every 30 s, backing off while nothing changes).
//!
//! Packing: instances of one stage kind at one depth of the uncached graph form a group; a
//! group is cut into array tasks of `chunk` instances (a Slurm job costs about a second of
//! launch, and most instances here run for seconds), and into several arrays where it would
//! pass the cluster's `MaxArraySize`. An array waits (`afterany`) for the arrays that hold its
//! instances' upstreams — only ones submitted in this run or seen live in the queue, since Slurm
//! treats an unknown job id as satisfied — and each instance checks its own upstream entries,
//! so one failure skips exactly its dependants.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::journal::{self, Event};
use super::scheduler::{QueueRow, Resources, Scheduler, Submission};
use super::worker::log_path;
use super::{
    ArrayPlan, Outcome, OutcomeState, PLAN_FORMAT, PlanFile, PlannedInstance, RunDir,
    build_fingerprint,
};
use crate::error::{Error, Result};
use crate::pipeline::cache::Cache;
use crate::pipeline::execute::{Decision, now_rfc3339};
use crate::pipeline::progress::RunLog;
use crate::pipeline::{Plan, StageKind};
use crate::spec::SpecDocument;

/// The `[slurm]` table of a spec: resources and packing per stage kind, with defaults. It
/// shapes no result and enters no key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlurmSettings {
    pub default: KindSettings,
    pub kinds: BTreeMap<StageKind, KindSettings>,
}

/// Resources and packing of one stage kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KindSettings {
    pub resources: Resources,
    /// Instances per array task.
    pub chunk: usize,
    /// At most this many tasks of one array at once.
    pub throttle: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKind {
    cpus: Option<u32>,
    mem: Option<String>,
    time: Option<String>,
    partition: Option<String>,
    account: Option<String>,
    chunk: Option<usize>,
    throttle: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlurm {
    cpus: Option<u32>,
    mem: Option<String>,
    time: Option<String>,
    partition: Option<String>,
    account: Option<String>,
    chunk: Option<usize>,
    throttle: Option<usize>,
    fetch: Option<RawKind>,
    preprocess: Option<RawKind>,
    fit: Option<RawKind>,
    evaluate: Option<RawKind>,
    emit: Option<RawKind>,
}

/// A spec as far as its `[slurm]` table goes (the family reads the rest).
#[derive(Deserialize)]
struct SlurmOnly {
    #[serde(default)]
    slurm: Option<RawSlurm>,
}

impl SlurmSettings {
    /// The `[slurm]` table of `doc` (defaults where absent); errors name the key and line.
    pub fn from_spec(doc: &SpecDocument) -> Result<Self> {
        let only: SlurmOnly = doc.deserialize_with_executor_tables()?;
        let raw = only.slurm.unwrap_or_default();
        let base = RawKind {
            cpus: raw.cpus,
            mem: raw.mem.clone(),
            time: raw.time.clone(),
            partition: raw.partition.clone(),
            account: raw.account.clone(),
            chunk: raw.chunk,
            throttle: raw.throttle,
        };
        let resolve = |kind: Option<StageKind>, own: Option<&RawKind>| -> Result<KindSettings> {
            let own = own.cloned().unwrap_or_default();
            // A value names the table it was set in: the kind's own, else `[slurm]`.
            let table = |own_set: bool| match kind {
                Some(k) if own_set => format!("slurm.{}", k.name()),
                _ => "slurm".to_string(),
            };
            let chunk = own
                .chunk
                .or(base.chunk)
                .unwrap_or_else(|| kind.map_or(1, default_chunk));
            if chunk == 0 {
                let at = table(own.chunk.is_some());
                return Err(doc.error(&format!("{at}.chunk"), "must be at least 1"));
            }
            let cpus = own.cpus.or(base.cpus).unwrap_or(1);
            if cpus == 0 {
                let at = table(own.cpus.is_some());
                return Err(doc.error(&format!("{at}.cpus"), "must be at least 1"));
            }
            Ok(KindSettings {
                resources: Resources {
                    cpus,
                    mem: own.mem.or(base.mem.clone()),
                    time: own.time.or(base.time.clone()),
                    partition: own.partition.or(base.partition.clone()),
                    account: own.account.or(base.account.clone()),
                },
                chunk,
                throttle: own.throttle.or(base.throttle),
            })
        };
        let mut kinds = BTreeMap::new();
        for (kind, own) in [
            (StageKind::Fetch, &raw.fetch),
            (StageKind::Preprocess, &raw.preprocess),
            (StageKind::Fit, &raw.fit),
            (StageKind::Evaluate, &raw.evaluate),
            (StageKind::Emit, &raw.emit),
        ] {
            kinds.insert(kind, resolve(Some(kind), own.as_ref())?);
        }
        Ok(Self {
            default: resolve(None, None)?,
            kinds,
        })
    }

    pub fn of(&self, kind: StageKind) -> &KindSettings {
        self.kinds.get(&kind).unwrap_or(&self.default)
    }
}

/// Instances per array task when the spec does not say: downloads and reductions are short
/// and many, fits and the emit long and few.
fn default_chunk(kind: StageKind) -> usize {
    match kind {
        StageKind::Fetch => 8,
        StageKind::Preprocess | StageKind::Evaluate => 4,
        StageKind::Fit | StageKind::Emit => 1,
    }
}

/// What the command line adds to the spec's `[slurm]` table.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    /// Instances per array task, for every kind (overrides the spec).
    pub chunk: Option<usize>,
    /// Tasks of one array at once (overrides the spec).
    pub throttle: Option<usize>,
    /// Return after submitting; `status` and `run` pick the run up later.
    pub detach: bool,
}

/// One array of a round as it is packed: its kind, and per task the instance indices into the
/// round's instances.
#[derive(Clone, Debug, PartialEq)]
pub struct Packed {
    pub kind: StageKind,
    pub tasks: Vec<Vec<usize>>,
}

/// Packs `instances` (indices into `deps`, in dependency order; `deps[i]` are the indices of
/// i's upstreams that run too) into arrays: a group per (depth, kind), cut into tasks of `chunk`
/// instances and arrays of at most `max_array` tasks.
pub fn pack(
    kinds: &[StageKind],
    deps: &[Vec<usize>],
    chunk: impl Fn(StageKind) -> usize,
    max_array: usize,
) -> Vec<Packed> {
    let mut depth = vec![0usize; kinds.len()];
    for i in 0..kinds.len() {
        depth[i] = deps[i].iter().map(|&d| depth[d] + 1).max().unwrap_or(0);
    }
    let mut groups: BTreeMap<(usize, StageKind), Vec<usize>> = BTreeMap::new();
    for (i, kind) in kinds.iter().enumerate() {
        groups.entry((depth[i], *kind)).or_default().push(i);
    }
    let mut arrays = Vec::new();
    for ((_, kind), members) in groups {
        let tasks: Vec<Vec<usize>> = members
            .chunks(chunk(kind).max(1))
            .map(<[usize]>::to_vec)
            .collect();
        for part in tasks.chunks(max_array.max(1)) {
            arrays.push(Packed {
                kind,
                tasks: part.to_vec(),
            });
        }
    }
    arrays
}

/// Where one instance of a round runs: array and task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    round: usize,
    array: usize,
    task: usize,
}

/// The state of one instance of a Slurm run, as [`survey`] rebuilds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum InstanceState {
    /// Its entry is in the cache.
    Done {
        job: Option<String>,
        node: Option<String>,
    },
    Running {
        job: String,
        node: String,
    },
    Queued {
        job: String,
        reason: String,
    },
    Failed {
        job: String,
        error: String,
        log: String,
    },
    /// Not run because an upstream failed or left no entry.
    Skipped {
        job: String,
        why: String,
    },
    /// Submitted, but neither in the queue nor finished with a record (a job killed from
    /// outside, a node lost, or purged from the queue after it ended without a record).
    Lost {
        job: String,
        log: String,
    },
    /// In no round's plan (not submitted yet).
    Unsubmitted,
}

impl InstanceState {
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            InstanceState::Done { .. }
                | InstanceState::Failed { .. }
                | InstanceState::Skipped { .. }
                | InstanceState::Lost { .. }
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            InstanceState::Done { .. } => "done",
            InstanceState::Running { .. } => "running",
            InstanceState::Queued { .. } => "queued",
            InstanceState::Failed { .. } => "failed",
            InstanceState::Skipped { .. } => "skipped",
            InstanceState::Lost { .. } => "lost",
            InstanceState::Unsubmitted => "not submitted",
        }
    }
}

/// Everything a Slurm run's folder says: its plan rounds and journal.
pub struct RunRecord {
    pub dir: RunDir,
    pub plans: Vec<PlanFile>,
    pub events: Vec<Event>,
}

impl RunRecord {
    pub fn load(dir: RunDir) -> Result<Self> {
        let mut plans = Vec::new();
        for round in 0.. {
            let path = dir.plan(round);
            if !path.exists() {
                break;
            }
            plans.push(PlanFile::load(&path)?);
        }
        let events = journal::load(&dir.journal())?;
        Ok(Self { dir, plans, events })
    }

    /// The job name every array of the run carries.
    pub fn job_name(&self) -> String {
        job_name(
            self.plans.first().map_or("", |p| p.experiment.as_str()),
            &self.dir,
        )
    }

    pub fn finished(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::Finished { .. }))
    }

    /// Array job id of (round, array): from the journal, else — for an array whose `sbatch`
    /// the driver did not live to record — from the queue, by the array's comment.
    fn array_job(&self, round: usize, array: usize, queue: &[QueueRow]) -> Option<String> {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Submitted {
                    round: r,
                    array: a,
                    job,
                    ..
                } if (*r, *a) == (round, array) => Some(job.clone()),
                _ => None,
            })
            .or_else(|| {
                let comment = format!("{round}:{array}");
                queue
                    .iter()
                    .find(|row| row.comment == comment)
                    .map(|row| row.array_job.clone())
            })
    }

    /// Arrays whose `submitting` line has no `submitted` line and that the queue does not
    /// know: never accepted, so their instances can be submitted again.
    fn unsubmitted(&self, round: usize, array: usize, queue: &[QueueRow]) -> bool {
        self.array_job(round, array, queue).is_none()
    }

    /// The latest slot of every key planned in the run.
    fn slots(&self) -> BTreeMap<String, (Slot, &PlannedInstance)> {
        let mut out = BTreeMap::new();
        for plan in &self.plans {
            for (a, array) in plan.arrays.iter().enumerate() {
                for (t, task) in array.tasks.iter().enumerate() {
                    for &i in task {
                        let instance = &plan.instances[i];
                        out.insert(
                            instance.key.clone(),
                            (
                                Slot {
                                    round: plan.round,
                                    array: a,
                                    task: t,
                                },
                                instance,
                            ),
                        );
                    }
                }
            }
        }
        out
    }
}

/// The job name of a run: `squeue --name` finds all its arrays with it. Run ids are only
/// unique within one project (two clones, or two users, start runs of the same experiment in
/// the same second at the same commit), so the name also carries a hash of the run's folder.
pub fn job_name(experiment: &str, run: &RunDir) -> String {
    let folder = std::path::absolute(&run.dir).unwrap_or_else(|_| run.dir.clone());
    let tag = blake3::hash(folder.to_string_lossy().as_bytes()).to_hex();
    format!("sb.{experiment}.{}.{}", run.run_id(), &tag[..8])
}

/// The state of every instance planned in `record`, keyed by cache key, from the cache, the
/// outcome records, the journal and `queue` (the rows of one `squeue` for the run).
/// `vanished_since` holds when a task was first seen neither live nor recorded; it turns lost
/// after `grace`.
pub fn survey(
    record: &RunRecord,
    cache: &Cache,
    queue: &[QueueRow],
    vanished_since: &mut BTreeMap<String, Instant>,
    grace: Duration,
) -> BTreeMap<String, InstanceState> {
    let mut out = BTreeMap::new();
    for (key, (slot, instance)) in record.slots() {
        let outcome = record.dir.read_outcome(instance.kind, &key);
        let job = record.array_job(slot.round, slot.array, queue);
        let task_job = job.as_ref().map_or("(not submitted)".to_string(), |j| {
            format!("{j}_{}", slot.task)
        });
        let log = job.as_ref().map_or(String::new(), |j| {
            log_path(&record.dir, slot.round, slot.array, j, slot.task)
                .display()
                .to_string()
        });
        let row = job.as_ref().and_then(|j| {
            queue
                .iter()
                .find(|r| &r.array_job == j && r.tasks.contains(slot.task))
        });
        let entry = cache.entry_meta(instance.kind.name(), &key).is_some();
        let state = match (&outcome, entry) {
            (Some(o), true) if matches!(o.state, OutcomeState::Done | OutcomeState::Cached) => {
                InstanceState::Done {
                    job: Some(o.job.clone()),
                    node: Some(o.node.clone()),
                }
            }
            (Some(o), _) if o.state == OutcomeState::Failed => InstanceState::Failed {
                job: o.job.clone(),
                error: o.error.clone().unwrap_or_default(),
                log: o.log.clone(),
            },
            (Some(o), _) if o.state == OutcomeState::Skipped => InstanceState::Skipped {
                job: o.job.clone(),
                why: o.error.clone().unwrap_or_default(),
            },
            _ => match row {
                Some(row) if row.is_live() => {
                    if row.state == "PENDING" {
                        InstanceState::Queued {
                            job: task_job,
                            reason: row.reason.clone(),
                        }
                    } else {
                        InstanceState::Running {
                            job: task_job,
                            node: row.nodes.clone(),
                        }
                    }
                }
                _ if job.is_none() && record.unsubmitted(slot.round, slot.array, queue) => {
                    InstanceState::Unsubmitted
                }
                ended => {
                    // Ended (or gone from the queue) with no record yet: the record may still
                    // be on its way through a shared filesystem.
                    let since = *vanished_since
                        .entry(key.clone())
                        .or_insert_with(Instant::now);
                    if since.elapsed() < grace {
                        match ended {
                            // Submitted, and not in the queue's answer yet.
                            None => InstanceState::Queued {
                                job: task_job,
                                reason: "submitted".into(),
                            },
                            Some(row) => InstanceState::Running {
                                job: task_job,
                                node: row.nodes.clone(),
                            },
                        }
                    } else {
                        match ended {
                            Some(row) if row.state != "COMPLETED" => InstanceState::Failed {
                                job: task_job,
                                error: format!(
                                    "the job ended {}{} without a record (killed before the \
                                     worker could write one)",
                                    row.state,
                                    match row.state.as_str() {
                                        "OUT_OF_MEMORY" => {
                                            " — over its memory limit; raise `mem` in the \
                                             spec's [slurm] table"
                                        }
                                        "TIMEOUT" => {
                                            " — over its time limit; raise `time` in the \
                                             spec's [slurm] table"
                                        }
                                        _ => "",
                                    }
                                ),
                                log,
                            },
                            _ => InstanceState::Lost { job: task_job, log },
                        }
                    }
                }
            },
        };
        if entry && !matches!(state, InstanceState::Done { .. }) && outcome.is_none() {
            // Published by another run or job; this run's job has not said so yet.
            if !matches!(
                state,
                InstanceState::Running { .. } | InstanceState::Queued { .. }
            ) {
                out.insert(
                    key,
                    InstanceState::Done {
                        job: None,
                        node: None,
                    },
                );
                continue;
            }
        }
        out.insert(key, state);
    }
    out
}

/// Copies the running binary to `.symbreak/slurm/bin/symbreak-<blake3>` once per build: jobs
/// waiting in the queue keep their code however often the project is rebuilt meanwhile.
pub fn stage_binary(cache_root: &Path) -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| Error::Other(format!("own binary: {e}")))?;
    let hash = crate::fsutil::hash_file(&exe)?;
    let dir = cache_root.join("slurm").join("bin");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating folder", &dir, e))?;
    let dest = dir.join(format!("symbreak-{}", &hash[..24]));
    if dest.is_file() {
        return Ok(dest);
    }
    let tmp = dir.join(format!(".partial-{}", std::process::id()));
    std::fs::copy(&exe, &tmp).map_err(|e| Error::io("copying binary to", &tmp, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))
            .map_err(|e| Error::io("making executable", &tmp, e))?;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io("placing binary", &dest, e))?;
    Ok(dest)
}

/// How often the driver asks the scheduler, at the least: every 30 s (tests set
/// `SYMBREAK_SLURM_QUEUE_INTERVAL`).
fn queue_interval() -> Duration {
    std::env::var("SYMBREAK_SLURM_QUEUE_INTERVAL")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(30), Duration::from_secs_f64)
}

/// One instance of a Slurm run as the driver reports it to the run folder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobRecord {
    /// `<array job id>_<task id>`.
    pub job: String,
    pub node: String,
    pub state: String,
    /// The job's log, as copied into the run folder (`slurm-logs/…`).
    pub log: String,
}

/// The end of a driver's part in a run.
pub enum Finish {
    /// Every instance has its entry; per id, the job that ran it (none: cached before).
    Complete(BTreeMap<String, Option<JobRecord>>),
    /// Some failed or were lost; the message lists them with their errors and logs.
    Failed(String, BTreeMap<String, Option<JobRecord>>),
    /// `--detach`: submitted, not followed.
    Detached,
}

/// Submits what must run of `plan` (decided as `decisions`) to Slurm as run `run_id` — adopting
/// the live jobs of an earlier round of the same run — and, unless detached, follows it to the
/// end. `run_folder` receives the job logs.
#[allow(clippy::too_many_arguments)]
pub fn drive(
    plan: &Plan,
    decisions: &[Decision],
    cache: &Cache,
    project_root: &Path,
    run_id: &str,
    settings: &SlurmSettings,
    options: &SlurmOptions,
    scheduler: &Scheduler,
    run_folder: &Path,
    log: &RunLog,
) -> Result<Finish> {
    let dir = RunDir::new(cache.root(), &plan.experiment, run_id);
    for sub in [dir.logs(), dir.scripts(), dir.outcomes()] {
        std::fs::create_dir_all(&sub).map_err(|e| Error::io("creating folder", &sub, e))?;
    }
    let mut record = RunRecord::load(dir.clone())?;
    let name = job_name(&plan.experiment, &dir);
    let queue = if record.plans.is_empty() {
        Vec::new()
    } else {
        scheduler.queue(&name)?
    };
    let mut vanished = BTreeMap::new();
    // An earlier round's state: what is done or still live is not submitted again.
    let before = survey(&record, cache, &queue, &mut vanished, Duration::ZERO);
    let live_job_of_key: BTreeMap<String, String> = record
        .slots()
        .into_iter()
        .filter(|(key, _)| {
            matches!(
                before.get(key),
                Some(InstanceState::Running { .. } | InstanceState::Queued { .. })
            )
        })
        .filter_map(|(key, (slot, _))| {
            record
                .array_job(slot.round, slot.array, &queue)
                .map(|job| (key, job))
        })
        .collect();
    let wanted: Vec<usize> = (0..decisions.len())
        .filter(|&i| decisions[i].run)
        .filter(|&i| {
            let key = &decisions[i].key;
            let done_before =
                matches!(before.get(key), Some(InstanceState::Done { .. })) && !decisions[i].forced;
            !done_before && !live_job_of_key.contains_key(key)
        })
        .collect();
    let adopted = live_job_of_key.len();
    if adopted > 0 {
        log.line(&format!(
            "adopting {adopted} instance(s) still queued or running in earlier submissions of {run_id}"
        ));
    }
    if !wanted.is_empty() {
        submit_round(
            plan,
            decisions,
            &wanted,
            &live_job_of_key,
            &mut record,
            cache.root(),
            project_root,
            settings,
            options,
            scheduler,
            log,
        )?;
    }
    if options.detach {
        log.line(&format!(
            "submitted; `symbreak status {}` follows it, `symbreak run {} --executor slurm` \
             resumes and assembles it",
            plan.experiment, plan.experiment
        ));
        return Ok(Finish::Detached);
    }
    follow(decisions, &record, cache, scheduler, run_folder, log)
}

/// Writes round `record.plans.len()` with the instances `wanted` and submits its arrays.
#[allow(clippy::too_many_arguments)]
fn submit_round(
    plan: &Plan,
    decisions: &[Decision],
    wanted: &[usize],
    live_job_of_key: &BTreeMap<String, String>,
    record: &mut RunRecord,
    cache_root: &Path,
    project_root: &Path,
    settings: &SlurmSettings,
    options: &SlurmOptions,
    scheduler: &Scheduler,
    log: &RunLog,
) -> Result<()> {
    let round = record.plans.len();
    let position: BTreeMap<&str, usize> = wanted
        .iter()
        .enumerate()
        .map(|(n, &i)| (decisions[i].id.as_str(), n))
        .collect();
    let kinds: Vec<StageKind> = wanted.iter().map(|&i| decisions[i].kind).collect();
    let deps: Vec<Vec<usize>> = wanted
        .iter()
        .map(|&i| {
            plan.instances[i]
                .deps
                .iter()
                .filter_map(|d| position.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    let chunk = |kind| options.chunk.unwrap_or(settings.of(kind).chunk);
    // MaxArraySize bounds the task ids (0 ≤ id < MaxArraySize), so it is also the count.
    let max_array = scheduler.max_array_size()?.max(1);
    let packed = pack(&kinds, &deps, chunk, max_array);
    let by_id: BTreeMap<&str, &Decision> = decisions.iter().map(|d| (d.id.as_str(), d)).collect();
    let instances: Vec<PlannedInstance> = wanted
        .iter()
        .map(|&i| {
            let (inst, d) = (&plan.instances[i], &decisions[i]);
            PlannedInstance {
                id: d.id.clone(),
                kind: d.kind,
                key: d.key.clone(),
                task_type: inst.task_type.to_string(),
                code_group: inst.code.name.to_string(),
                code: inst.code.hash().to_string(),
                task: inst.task_json.clone(),
                upstream: inst
                    .deps
                    .iter()
                    .filter_map(|dep| by_id.get(dep.as_str()))
                    .map(|u| (u.id.clone(), (u.kind, u.key.clone())))
                    .collect(),
                forced: d.forced,
            }
        })
        .collect();
    let plan_file = PlanFile {
        format: PLAN_FORMAT,
        experiment: plan.experiment.clone(),
        run_id: record.dir.run_id(),
        round,
        build: build_fingerprint(),
        cache_root: absolute(cache_root)?,
        instances,
        arrays: packed
            .iter()
            .map(|p| ArrayPlan {
                kind: p.kind,
                tasks: p.tasks.clone(),
            })
            .collect(),
    };
    let plan_path = record.dir.plan(round);
    crate::fsutil::write_json(&plan_path, &plan_file)?;
    let binary = stage_binary(cache_root)?;
    let name = job_name(&plan.experiment, &record.dir);
    let tasks: usize = packed.iter().map(|p| p.tasks.len()).sum();
    log.line(&format!(
        "submitting {} instance(s) as {tasks} array task(s) in {} array(s) (round {round}, job \
         name {name})",
        wanted.len(),
        packed.len()
    ));
    // Which array holds each instance of this round.
    let mut array_of: Vec<usize> = vec![0; wanted.len()];
    for (a, p) in packed.iter().enumerate() {
        for task in &p.tasks {
            for &n in task {
                array_of[n] = a;
            }
        }
    }
    let mut jobs: Vec<String> = Vec::with_capacity(packed.len());
    for (a, p) in packed.iter().enumerate() {
        let script = record.dir.scripts().join(format!("{round}-{a}.sh"));
        crate::fsutil::write_atomic(
            &script,
            format!(
                "#!/bin/sh\n# {} round {round} array {a}: {} {} task(s)\nexec {} slurm-worker --plan {} --array {a}\n",
                plan.experiment,
                p.tasks.len(),
                p.kind.name(),
                shell_quote(&binary),
                shell_quote(&absolute(&plan_path)?)
            )
            .as_bytes(),
        )?;
        let mut after: BTreeSet<String> = BTreeSet::new();
        for task in &p.tasks {
            for &n in task {
                for &d in &deps[n] {
                    after.insert(jobs[array_of[d]].clone());
                }
                let inst = &plan.instances[wanted[n]];
                for dep in &inst.deps {
                    if let Some(job) = by_id
                        .get(dep.as_str())
                        .and_then(|u| live_job_of_key.get(&u.key))
                    {
                        after.insert(job.clone());
                    }
                }
            }
        }
        let kind_settings = settings.of(p.kind);
        let submission = Submission {
            script: absolute(&script)?,
            name: name.clone(),
            comment: format!("{round}:{a}"),
            tasks: p.tasks.len(),
            throttle: options.throttle.or(kind_settings.throttle),
            output: absolute(&record.dir.logs())?.join(format!("{round}-{a}-%A_%a.out")),
            chdir: absolute(project_root)?,
            resources: kind_settings.resources.clone(),
            after: after.into_iter().collect(),
        };
        journal::append(
            &record.dir.journal(),
            &Event::Submitting {
                time: now_rfc3339(),
                round,
                array: a,
                tasks: p.tasks.len(),
            },
        )?;
        crate::pipeline::execute::pause_point("slurm-submitting");
        match scheduler.submit(&submission) {
            Ok(job) => {
                crate::pipeline::execute::pause_point("slurm-submitted");
                journal::append(
                    &record.dir.journal(),
                    &Event::Submitted {
                        time: now_rfc3339(),
                        round,
                        array: a,
                        job: job.clone(),
                    },
                )?;
                log.line(&format!(
                    "  array {job}: {} task(s) of {} ({} instance(s)){}",
                    p.tasks.len(),
                    p.kind.name(),
                    p.tasks.iter().map(Vec::len).sum::<usize>(),
                    if submission.after.is_empty() {
                        String::new()
                    } else {
                        format!(", after {}", submission.after.join(", "))
                    }
                ));
                jobs.push(job);
            }
            Err(e) => {
                journal::append(
                    &record.dir.journal(),
                    &Event::Refused {
                        time: now_rfc3339(),
                        round,
                        array: a,
                        error: e.to_string(),
                    },
                )?;
                // What was submitted would wait for arrays that never come: take it back, and
                // end the run (a later `run` starts afresh).
                let _ = scheduler.cancel(&name);
                journal::append(
                    &record.dir.journal(),
                    &Event::Finished {
                        time: now_rfc3339(),
                        status: "refused".into(),
                    },
                )?;
                return Err(e);
            }
        }
    }
    *record = RunRecord::load(record.dir.clone())?;
    Ok(())
}

/// Follows the run until every instance is final, then says how it ended.
fn follow(
    decisions: &[Decision],
    record: &RunRecord,
    cache: &Cache,
    scheduler: &Scheduler,
    run_folder: &Path,
    log: &RunLog,
) -> Result<Finish> {
    let name = record.job_name();
    let base = queue_interval();
    let mut interval = base;
    let mut next_queue = Instant::now() + Duration::from_secs(2).min(base);
    let mut queue: Vec<QueueRow> = Vec::new();
    let mut vanished = BTreeMap::new();
    let grace = super::worker::visibility_grace();
    let mut last: BTreeMap<String, InstanceState> = BTreeMap::new();
    let keys: BTreeSet<&str> = decisions.iter().map(|d| d.key.as_str()).collect();
    let id_of: BTreeMap<&str, &str> = decisions
        .iter()
        .map(|d| (d.key.as_str(), d.id.as_str()))
        .collect();
    // Final states from accounting of tasks that left the queue without a record (where the
    // cluster keeps accounting at all).
    let mut accounted: BTreeMap<String, String> = BTreeMap::new();
    let mut accounting_off = false;
    // The whole run's bar (on a terminal): instances over, and how many run and wait.
    let bar = log.bars().map(|m| {
        let bar = m.add(indicatif::ProgressBar::new(decisions.len() as u64));
        bar.set_style(crate::pipeline::progress::bar_style(
            "{prefix:>32} [{bar:30}] {pos}/{len} stage instances, {elapsed} {msg}",
        ));
        bar.set_prefix(name.clone());
        bar
    });
    loop {
        if Instant::now() >= next_queue {
            let lost: Vec<String> = last
                .values()
                .filter_map(|s| match s {
                    InstanceState::Lost { job, .. } if !accounted.contains_key(job) => {
                        Some(job.clone())
                    }
                    _ => None,
                })
                .collect();
            if !lost.is_empty() && !accounting_off {
                match scheduler.accounting(&lost)? {
                    Some(rows) => {
                        for row in rows {
                            if let Some(task) = row.task {
                                accounted.insert(format!("{}_{task}", row.array_job), row.state);
                            }
                        }
                    }
                    None => accounting_off = true,
                }
            }
            match scheduler.queue(&name) {
                Ok(rows) => {
                    let changed = rows != queue;
                    queue = rows;
                    interval = if changed {
                        base
                    } else {
                        (interval.mul_f64(1.5)).min(base * 4)
                    };
                }
                // A controller that does not answer for a while (restart, overload) must not
                // end the run: the jobs go on; ask again later, keeping what it said last.
                Err(e) => {
                    log.line(&format!("warning: {e}; asking again later"));
                    interval = (interval * 2).min(base * 4);
                }
            }
            next_queue = Instant::now() + interval;
        }
        let states: BTreeMap<String, InstanceState> =
            survey(record, cache, &queue, &mut vanished, grace)
                .into_iter()
                .filter(|(k, _)| keys.contains(k.as_str()))
                .map(|(k, state)| match state {
                    InstanceState::Lost { job, log } => match accounted.get(&job) {
                        Some(ended) if ended != "COMPLETED" => (
                            k,
                            InstanceState::Failed {
                                error: format!(
                                    "the job ended {ended} (from accounting) without a record"
                                ),
                                job,
                                log,
                            },
                        ),
                        _ => (k, InstanceState::Lost { job, log }),
                    },
                    other => (k, other),
                })
                .collect();
        for (key, state) in &states {
            if last.get(key).map(InstanceState::name) != Some(state.name()) {
                let id = id_of.get(key.as_str()).copied().unwrap_or(key);
                log.line(&format!("{id}: {}", describe_state(state)));
            }
        }
        if let Some(bar) = &bar {
            let count = |name: &str| states.values().filter(|s| s.name() == name).count();
            let over = decisions.len() - states.values().filter(|s| !s.is_final()).count();
            // The message first: setting the position draws the bar.
            bar.set_message(format!(
                "({} running, {} queued, {} failed)",
                count("running"),
                count("queued"),
                count("failed")
            ));
            bar.set_position(over as u64);
        }
        let finished = states.values().all(InstanceState::is_final)
            && decisions.iter().all(|d| {
                states.contains_key(&d.key) || cache.entry_meta(d.kind.name(), &d.key).is_some()
            });
        last = states;
        if finished {
            break;
        }
        std::thread::sleep(Duration::from_secs(2).min(interval));
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let jobs = copy_logs(record, &last, run_folder)?;
    let by_key: BTreeMap<&str, &Decision> = decisions.iter().map(|d| (d.key.as_str(), d)).collect();
    let failed: Vec<String> = last
        .iter()
        .filter(|(_, s)| !matches!(s, InstanceState::Done { .. }))
        .map(|(key, s)| {
            format!(
                "{}: {}",
                by_key
                    .get(key.as_str())
                    .map_or(key.as_str(), |d| d.id.as_str()),
                describe_state(s)
            )
        })
        .collect();
    let mut records = BTreeMap::new();
    for d in decisions {
        records.insert(d.id.clone(), jobs.get(&d.key).cloned());
    }
    if failed.is_empty() {
        Ok(Finish::Complete(records))
    } else {
        Ok(Finish::Failed(
            format!(
                "{} of {} submitted instance(s) did not finish:\n  {}",
                failed.len(),
                last.len(),
                failed.join("\n  ")
            ),
            records,
        ))
    }
}

/// What `gc` needs to know of `.symbreak/slurm/`.
#[derive(Debug, Default)]
pub struct SlurmFolders {
    /// Every key an unfinished run plans or reads: its jobs may still publish or read them
    /// before any state file or run folder names them.
    pub keys_in_flight: BTreeSet<String>,
    /// Folders of runs that are over (their logs are in their run folders).
    pub finished_runs: Vec<PathBuf>,
    /// Staged binaries, when no unfinished run may still start a job with one.
    pub idle_binaries: Vec<PathBuf>,
}

/// Reads every Slurm run under `cache_root`. A run whose record cannot be read counts as
/// unfinished and is kept whole: better a kept entry than a removed one a job is about to read.
pub fn slurm_folders(cache_root: &Path) -> SlurmFolders {
    let mut out = SlurmFolders::default();
    let mut unfinished = false;
    let experiments = std::fs::read_dir(cache_root.join("slurm"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) && e.file_name() != "bin");
    for experiment in experiments {
        let name = experiment.file_name().to_string_lossy().to_string();
        for dir in RunDir::all_of(cache_root, &name) {
            let path = dir.dir.clone();
            match RunRecord::load(dir) {
                Ok(record) if record.finished() => out.finished_runs.push(path),
                Ok(record) => {
                    unfinished = true;
                    for plan in &record.plans {
                        for instance in &plan.instances {
                            out.keys_in_flight.insert(instance.key.clone());
                            out.keys_in_flight
                                .extend(instance.upstream.values().map(|(_, k)| k.clone()));
                        }
                    }
                }
                Err(_) => unfinished = true,
            }
        }
    }
    if !unfinished {
        out.idle_binaries = std::fs::read_dir(cache_root.join("slurm").join("bin"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        out.idle_binaries.sort();
    }
    out
}

/// The latest Slurm run of `experiment`, if it submitted something and is not over.
pub fn unfinished_run(cache_root: &Path, experiment: &str) -> Result<Option<RunRecord>> {
    let Some(dir) = RunDir::all_of(cache_root, experiment).pop() else {
        return Ok(None);
    };
    let record = RunRecord::load(dir)?;
    Ok((!record.finished() && !record.plans.is_empty()).then_some(record))
}

/// An unfinished Slurm run as `status` shows it.
pub struct SlurmStatus {
    pub run_id: String,
    /// Instance id and state, sorted by id.
    pub states: Vec<(String, InstanceState)>,
}

/// The latest Slurm run of `experiment` if its jobs are not over: its run id and the state of
/// each instance (by id), from one `squeue` call.
pub fn status(
    cache_root: &Path,
    experiment: &str,
    scheduler: &Scheduler,
) -> Result<Option<SlurmStatus>> {
    let Some(record) = unfinished_run(cache_root, experiment)? else {
        return Ok(None);
    };
    let queue = if scheduler.available() {
        scheduler.queue(&record.job_name())?
    } else {
        Vec::new()
    };
    let cache = Cache::new(cache_root);
    let states = survey(
        &record,
        &cache,
        &queue,
        &mut BTreeMap::new(),
        Duration::ZERO,
    );
    let slots = record.slots();
    let mut out: Vec<(String, InstanceState)> = states
        .into_iter()
        .map(|(key, state)| {
            let id = slots.get(&key).map_or(key.clone(), |(_, i)| i.id.clone());
            (id, state)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Some(SlurmStatus {
        run_id: record.dir.run_id(),
        states: out,
    }))
}

/// Cancels the jobs of the latest unfinished Slurm run of `experiment` (one `scancel` by the
/// run's job name) and journals it; its run id, or `None` when there is no such run.
pub fn cancel(
    cache_root: &Path,
    experiment: &str,
    scheduler: &Scheduler,
) -> Result<Option<String>> {
    let Some(record) = unfinished_run(cache_root, experiment)? else {
        return Ok(None);
    };
    scheduler.cancel(&record.job_name())?;
    journal::append(
        &record.dir.journal(),
        &Event::Cancelled {
            time: now_rfc3339(),
        },
    )?;
    Ok(Some(record.dir.run_id()))
}

/// One line for an instance's state.
pub fn describe_state(state: &InstanceState) -> String {
    match state {
        InstanceState::Done {
            job: Some(job),
            node,
        } => format!(
            "done (job {job}{})",
            node.as_ref()
                .map(|n| format!(" on {n}"))
                .unwrap_or_default()
        ),
        InstanceState::Done { job: None, .. } => "done (already in the cache)".into(),
        InstanceState::Running { job, node } if node.is_empty() => format!("running (job {job})"),
        InstanceState::Running { job, node } => format!("running (job {job} on {node})"),
        // Slurm says `None` for a pending job it is about to schedule.
        InstanceState::Queued { job, reason } if reason.is_empty() || reason == "None" => {
            format!("queued (job {job})")
        }
        InstanceState::Queued { job, reason } => format!("queued (job {job}: {reason})"),
        InstanceState::Failed { job, error, log } => {
            format!("FAILED (job {job}): {error}; log {log}")
        }
        InstanceState::Skipped { job, why } => format!("skipped (job {job}): {why}"),
        InstanceState::Lost { job, log } => format!(
            "LOST (job {job} left the queue without a record; log {})",
            if log.is_empty() { "none" } else { log }
        ),
        InstanceState::Unsubmitted => "not submitted".into(),
    }
}

/// Copies each job log into `run_folder/slurm-logs/` and returns per key the job that ran it.
fn copy_logs(
    record: &RunRecord,
    states: &BTreeMap<String, InstanceState>,
    run_folder: &Path,
) -> Result<BTreeMap<String, JobRecord>> {
    let target = run_folder.join("slurm-logs");
    let mut out = BTreeMap::new();
    let slots = record.slots();
    for (key, state) in states {
        let Some((_, instance)) = slots.get(key) else {
            continue;
        };
        let outcome: Option<Outcome> = record.dir.read_outcome(instance.kind, key);
        let (job, node, log) = match &outcome {
            Some(o) => (o.job.clone(), o.node.clone(), PathBuf::from(&o.log)),
            None => match state {
                InstanceState::Lost { job, log } | InstanceState::Failed { job, log, .. } => {
                    (job.clone(), String::new(), PathBuf::from(log))
                }
                _ => continue,
            },
        };
        let mut copied = String::new();
        if let Some(file) = log.file_name().filter(|_| log.is_file()) {
            std::fs::create_dir_all(&target)
                .map_err(|e| Error::io("creating folder", &target, e))?;
            let dest = target.join(file);
            if !dest.exists() {
                std::fs::copy(&log, &dest).map_err(|e| Error::io("copying job log", &log, e))?;
            }
            copied = format!("slurm-logs/{}", file.to_string_lossy());
        }
        out.insert(
            key.clone(),
            JobRecord {
                job,
                node,
                state: state.name().to_string(),
                log: copied,
            },
        );
    }
    Ok(out)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io("resolving", path, e))
}

/// `path` single-quoted for `sh`.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain fit → evaluate per point, and one emit over all: each (depth, kind) is one group,
    /// cut into tasks of `chunk` and arrays of at most `max_array` tasks.
    #[test]
    fn packing_groups_by_depth_and_kind_and_splits_at_the_array_limit() {
        use StageKind::*;
        // 0..5 fits, 5..10 evaluates (i+5 reads fit i), 10 emit reads every evaluate.
        let mut kinds = vec![Fit; 5];
        kinds.extend([Evaluate; 5]);
        kinds.push(Emit);
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); 5];
        deps.extend((0..5).map(|i| vec![i]));
        deps.push((5..10).collect());
        let chunk = |k| if k == Fit { 2 } else { 4 };
        let arrays = pack(&kinds, &deps, chunk, 100);
        assert_eq!(
            arrays,
            [
                Packed {
                    kind: Fit,
                    tasks: vec![vec![0, 1], vec![2, 3], vec![4]]
                },
                Packed {
                    kind: Evaluate,
                    tasks: vec![vec![5, 6, 7, 8], vec![9]]
                },
                Packed {
                    kind: Emit,
                    tasks: vec![vec![10]]
                },
            ]
        );
        let split = pack(&kinds, &deps, |_| 1, 2);
        let fit_arrays: Vec<usize> = split
            .iter()
            .filter(|p| p.kind == Fit)
            .map(|p| p.tasks.len())
            .collect();
        assert_eq!(fit_arrays, [2, 2, 1]);
        assert_eq!(split.iter().map(|p| p.tasks.len()).sum::<usize>(), 11);
    }

    #[test]
    fn the_slurm_table_of_a_spec_with_per_kind_settings_and_errors_by_line() {
        let doc = SpecDocument::parse(
            Path::new("x.toml"),
            "[experiment]\nname = \"x\"\n\n[slurm]\nmem = \"2G\"\nchunk = 3\n\n[slurm.fit]\ncpus = 4\ntime = \"2:00:00\"\nchunk = 1\n".into(),
        )
        .unwrap();
        let settings = SlurmSettings::from_spec(&doc).unwrap();
        let fit = settings.of(StageKind::Fit);
        assert_eq!(fit.resources.cpus, 4);
        assert_eq!(fit.resources.mem.as_deref(), Some("2G"));
        assert_eq!(fit.resources.time.as_deref(), Some("2:00:00"));
        assert_eq!(fit.chunk, 1);
        assert_eq!(settings.of(StageKind::Emit).chunk, 3);
        assert_eq!(settings.of(StageKind::Emit).resources.cpus, 1);
        let none = SpecDocument::parse(Path::new("y.toml"), "[experiment]\nname = \"y\"\n".into())
            .unwrap();
        let defaults = SlurmSettings::from_spec(&none).unwrap();
        assert_eq!(defaults.of(StageKind::Fetch).chunk, 8);
        assert_eq!(defaults.of(StageKind::Fit).chunk, 1);
        let bad = SpecDocument::parse(
            Path::new("z.toml"),
            "[experiment]\nname = \"z\"\n\n[slurm.fit]\ncpu = 2\n".into(),
        )
        .unwrap();
        let err = SlurmSettings::from_spec(&bad).unwrap_err().to_string();
        assert!(err.contains("z.toml") && err.contains("cpu"), "{err}");
        // Found while trying it: `chunk = 0` in [slurm] was reported as slurm.fetch.chunk.
        let zero = SpecDocument::parse(
            Path::new("w.toml"),
            "[experiment]\nname = \"w\"\n\n[slurm]\nchunk = 0\n".into(),
        )
        .unwrap();
        let err = SlurmSettings::from_spec(&zero).unwrap_err().to_string();
        assert!(
            err.contains("w.toml:5: slurm.chunk: must be at least 1"),
            "{err}"
        );
    }
}
