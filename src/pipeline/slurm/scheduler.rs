//! The Slurm commands a driver uses — `sbatch`, `squeue`, `scancel`, `scontrol`, `sacct` — run as
//! programs (no libslurm: its C ABI changes with every release) and their output parsed here.
//! Queries are per run, never per job: one `squeue` filtered by the run's job name answers for
//! every array task of the run.

#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};

/// Resources one array task asks for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    pub cpus: u32,
    /// `--mem`, e.g. `2G`; the cluster's default per CPU when absent.
    pub mem: Option<String>,
    /// `--time`, e.g. `1:00:00`; the partition's default when absent.
    pub time: Option<String>,
    pub partition: Option<String>,
    pub account: Option<String>,
}

/// One `sbatch` of a job array.
#[derive(Clone, Debug)]
pub struct Submission {
    pub script: PathBuf,
    /// The run's job name, shared by all its arrays (what `squeue --name` filters on).
    pub name: String,
    /// `round:array`, which ties a job found in the queue to its journal line.
    pub comment: String,
    pub tasks: usize,
    /// At most this many tasks of the array at once (`%N`).
    pub throttle: Option<usize>,
    /// Log file pattern (`%A`, `%a` expanded by Slurm); its folder must exist.
    pub output: PathBuf,
    pub chdir: PathBuf,
    pub resources: Resources,
    /// Jobs (known to be live) whose end the array waits for.
    pub after: Vec<String>,
}

impl Submission {
    /// The `sbatch` arguments.
    pub fn arguments(&self) -> Vec<String> {
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name={}", self.name),
            format!("--comment={}", self.comment),
            format!(
                "--array=0-{}{}",
                self.tasks.saturating_sub(1),
                self.throttle.map(|n| format!("%{n}")).unwrap_or_default()
            ),
            format!("--output={}", self.output.display()),
            format!("--chdir={}", self.chdir.display()),
            format!("--cpus-per-task={}", self.resources.cpus),
            "--kill-on-invalid-dep=yes".to_string(),
        ];
        if let Some(mem) = &self.resources.mem {
            args.push(format!("--mem={mem}"));
        }
        if let Some(time) = &self.resources.time {
            args.push(format!("--time={time}"));
        }
        if let Some(partition) = &self.resources.partition {
            args.push(format!("--partition={partition}"));
        }
        if let Some(account) = &self.resources.account {
            args.push(format!("--account={account}"));
        }
        if !self.after.is_empty() {
            // afterany, not afterok: a packed task holds several instances, and one failed
            // upstream must skip only its own dependants (the worker checks each instance's
            // upstream entries), not every instance packed beside them.
            args.push(format!("--dependency=afterany:{}", self.after.join(":")));
        }
        args.push(self.script.display().to_string());
        args
    }
}

/// The array-task set `%K` prints for a row: one task, or the pending ones still folded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tasks {
    /// Not an array job.
    None,
    One(usize),
    /// Pending tasks, as inclusive ranges (`[0-3,7%2]`).
    Pending(Vec<(usize, usize)>),
}

impl Tasks {
    pub fn contains(&self, task: usize) -> bool {
        match self {
            Tasks::None => false,
            Tasks::One(t) => *t == task,
            Tasks::Pending(ranges) => ranges.iter().any(|(a, b)| (*a..=*b).contains(&task)),
        }
    }
}

/// One row of `squeue -o '%F|%K|%T|%r|%N|%k'` (array job id, task ids, state, reason, nodes,
/// comment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRow {
    /// The array's job id (the first job id of the array).
    pub array_job: String,
    pub tasks: Tasks,
    /// PENDING, RUNNING, COMPLETED, FAILED, OUT_OF_MEMORY, TIMEOUT, CANCELLED, …
    pub state: String,
    pub reason: String,
    pub nodes: String,
    pub comment: String,
}

impl QueueRow {
    /// Still to run or running: not yet a final state.
    pub fn is_live(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "REQUEUED"
                | "RESIZING"
                | "SUSPENDED"
                | "STAGE_OUT"
                | "SIGNALING"
                | "REQUEUE_FED"
                | "REQUEUE_HOLD"
                | "SPECIAL_EXIT"
                | "STOPPED"
        )
    }
}

/// One row of `sacct -X -P --format=JobID,State,ExitCode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRow {
    pub array_job: String,
    pub task: Option<usize>,
    pub state: String,
    pub exit_code: String,
}

/// The command-line client of a Slurm cluster.
#[derive(Clone, Debug, Default)]
pub struct Scheduler {
    /// Folder of the Slurm programs; `PATH` when absent.
    pub bin_dir: Option<PathBuf>,
    /// Waits between `sbatch` attempts refused for a transient reason.
    pub retry_waits: Vec<Duration>,
}

/// `sbatch` messages that mean "try again later", not "this request is wrong".
const TRANSIENT: &[&str] = &[
    "Socket timed out",
    "Unable to contact slurm controller",
    "Resource temporarily unavailable",
    "temporarily unable to accept job",
    "Transport endpoint is not connected",
    "Connection refused",
    "MaxSubmitJob",
    "MaxSubmit",
    "submit limit",
    "Job violates accounting/QOS policy (job submit limit",
];

impl Scheduler {
    /// The programs on `PATH` (or in `SYMBREAK_SLURM_BIN`), with retries after 1, 2, 4, 8 and
    /// 16 s.
    pub fn from_env() -> Self {
        Self {
            bin_dir: std::env::var_os("SYMBREAK_SLURM_BIN").map(PathBuf::from),
            retry_waits: [1, 2, 4, 8, 16]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        }
    }

    fn program(&self, name: &str) -> PathBuf {
        match &self.bin_dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }

    /// Whether `sbatch` can be found.
    pub fn available(&self) -> bool {
        match &self.bin_dir {
            Some(dir) => dir.join("sbatch").is_file(),
            None => std::env::var_os("PATH").is_some_and(|paths| {
                std::env::split_paths(&paths).any(|dir| dir.join("sbatch").is_file())
            }),
        }
    }

    /// Runs `program args`, returning (success, stdout, stderr).
    fn output(&self, program: &str, args: &[String]) -> Result<(bool, String, String)> {
        let out = Command::new(self.program(program))
            .args(args)
            .output()
            .map_err(|e| {
                Error::Other(format!(
                    "running {program}: {e} (is Slurm installed and on PATH?)"
                ))
            })?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        ))
    }

    /// Submits `submission`, retrying transient refusals; returns the array's job id.
    pub fn submit(&self, submission: &Submission) -> Result<String> {
        let args = submission.arguments();
        let mut attempt = 0;
        loop {
            let (ok, stdout, stderr) = self.output("sbatch", &args)?;
            if ok {
                return parse_job_id(&stdout).ok_or_else(|| {
                    Error::Other(format!("sbatch printed no job id: {:?}", stdout.trim()))
                });
            }
            let transient = TRANSIENT.iter().any(|t| stderr.contains(t));
            match self.retry_waits.get(attempt) {
                Some(wait) if transient => {
                    std::thread::sleep(*wait);
                    attempt += 1;
                }
                _ => {
                    let how = if transient {
                        format!("still refused after {attempt} retries")
                    } else {
                        "not a transient error".to_string()
                    };
                    return Err(Error::Other(format!(
                        "sbatch refused job array {} (round:array; {how}): {}",
                        submission.comment,
                        stderr.trim()
                    )));
                }
            }
        }
    }

    /// Every job of the run named `name`, finished ones too (for as long as the controller keeps
    /// them, `MinJobAge`).
    pub fn queue(&self, name: &str) -> Result<Vec<QueueRow>> {
        let args = [
            "-h".to_string(),
            "-t".to_string(),
            "all".to_string(),
            format!("--name={name}"),
            "-o".to_string(),
            "%F|%K|%T|%r|%N|%k".to_string(),
        ];
        let (ok, stdout, stderr) = self.output("squeue", &args)?;
        if !ok {
            return Err(Error::Other(format!("squeue failed: {}", stderr.trim())));
        }
        Ok(parse_queue(&stdout))
    }

    /// Cancels every job of the run named `name`.
    pub fn cancel(&self, name: &str) -> Result<()> {
        let (ok, _, stderr) = self.output("scancel", &[format!("--name={name}")])?;
        if ok {
            Ok(())
        } else {
            Err(Error::Other(format!("scancel failed: {}", stderr.trim())))
        }
    }

    /// The cluster's `MaxArraySize`: an array's task ids must stay below it.
    pub fn max_array_size(&self) -> Result<usize> {
        let (ok, stdout, stderr) =
            self.output("scontrol", &["show".to_string(), "config".to_string()])?;
        if !ok {
            return Err(Error::Other(format!(
                "scontrol show config failed: {}",
                stderr.trim()
            )));
        }
        parse_max_array_size(&stdout)
            .ok_or_else(|| Error::Other("scontrol show config printed no MaxArraySize".to_string()))
    }

    /// Final states from accounting, or `None` where the cluster keeps none (no slurmdbd).
    pub fn accounting(&self, jobs: &[String]) -> Result<Option<Vec<AccountRow>>> {
        if jobs.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let args = [
            "-n".to_string(),
            "-X".to_string(),
            "-P".to_string(),
            "-j".to_string(),
            jobs.join(","),
            "--format=JobID,State,ExitCode".to_string(),
        ];
        let (ok, stdout, stderr) = self.output("sacct", &args)?;
        if accounting_disabled(&stdout, &stderr) {
            return Ok(None);
        }
        if !ok {
            return Err(Error::Other(format!("sacct failed: {}", stderr.trim())));
        }
        Ok(Some(parse_accounting(&stdout)))
    }
}

/// The job id `sbatch --parsable` printed: `123` or `123;cluster`.
pub fn parse_job_id(stdout: &str) -> Option<String> {
    let line = stdout.lines().map(str::trim).find(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// Task ids as `%K` prints them: `4`, `N/A`, or pending ones folded, `0-3,7%2` (`[0-3]` in
/// some versions).
pub fn parse_tasks(text: &str) -> Option<Tasks> {
    let text = text.trim();
    if text == "N/A" || text.is_empty() {
        return Some(Tasks::None);
    }
    if let Ok(task) = text.parse() {
        return Some(Tasks::One(task));
    }
    let inner = text.trim_start_matches('[').trim_end_matches(']');
    let inner = inner.split('%').next()?;
    let mut ranges = Vec::new();
    for part in inner.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let t = part.parse().ok()?;
                (t, t)
            }
        };
        ranges.push((a, b));
    }
    Some(Tasks::Pending(ranges))
}

/// Rows of `squeue -h -o '%F|%K|%T|%r|%N|%k'`; lines that do not parse are dropped.
pub fn parse_queue(stdout: &str) -> Vec<QueueRow> {
    stdout
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim().splitn(6, '|').collect();
            let [array_job, tasks, state, reason, nodes, comment] = fields.as_slice() else {
                return None;
            };
            Some(QueueRow {
                array_job: array_job.trim().to_string(),
                tasks: parse_tasks(tasks)?,
                state: state.trim().to_string(),
                reason: reason.trim().to_string(),
                nodes: nodes.trim().to_string(),
                comment: comment.trim().to_string(),
            })
        })
        .collect()
}

/// `MaxArraySize = N` of `scontrol show config`.
pub fn parse_max_array_size(stdout: &str) -> Option<usize> {
    stdout.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "MaxArraySize")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// Whether `sacct` said the cluster keeps no accounting.
pub fn accounting_disabled(stdout: &str, stderr: &str) -> bool {
    let said = format!("{stdout}\n{stderr}").to_lowercase();
    said.contains("accounting storage is disabled")
        || said.contains("not running a supported accounting_storage plugin")
}

/// Rows of `sacct -n -X -P --format=JobID,State,ExitCode` (`123_4|FAILED|3:0`,
/// `123_[5-9]|PENDING|0:0`, `124|CANCELLED by 0|0:0`); folded pending rows are dropped.
pub fn parse_accounting(stdout: &str) -> Vec<AccountRow> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim().split('|');
            let (id, state, exit_code) = (fields.next()?, fields.next()?, fields.next()?);
            let (array_job, task) = match id.split_once('_') {
                Some((job, task)) => (job, Some(task.parse().ok()?)),
                None => (id, None),
            };
            Some(AccountRow {
                array_job: array_job.split(';').next()?.to_string(),
                task,
                state: state.split_whitespace().next()?.to_string(),
                exit_code: exit_code.to_string(),
            })
        })
        .collect()
}

/// A file named `name` in `dir` that runs `body` (a fake Slurm program, for tests).
#[cfg(test)]
pub(crate) fn fake_program(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_with_a_cluster_name_and_junk() {
        assert_eq!(parse_job_id("123\n").as_deref(), Some("123"));
        assert_eq!(parse_job_id("4567;ci\n").as_deref(), Some("4567"));
        assert_eq!(parse_job_id("\n 89 \n").as_deref(), Some("89"));
        assert_eq!(parse_job_id("Submitted batch job 12"), None);
        assert_eq!(parse_job_id(""), None);
    }

    #[test]
    fn queue_rows_of_array_tasks_pending_ranges_and_plain_jobs() {
        let out = "\
101|0|RUNNING|None|vm|0:0
101|1-3,7%2|PENDING|JobArrayTaskLimit||0:0
102|N/A|PENDING|Dependency||0:1
103|4|OUT_OF_MEMORY|OutOfMemory|vm|1:2
104|[5-6]|PENDING|Priority||0:3
garbage line
";
        let rows = parse_queue(out);
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[4].tasks, Tasks::Pending(vec![(5, 6)]));
        assert_eq!(rows[0].tasks, Tasks::One(0));
        assert_eq!(rows[0].nodes, "vm");
        assert!(rows[0].is_live());
        assert_eq!(rows[1].tasks, Tasks::Pending(vec![(1, 3), (7, 7)]));
        assert!(rows[1].tasks.contains(2) && rows[1].tasks.contains(7));
        assert!(!rows[1].tasks.contains(4));
        assert_eq!(rows[2].tasks, Tasks::None);
        assert_eq!(rows[2].comment, "0:1");
        assert_eq!(rows[3].state, "OUT_OF_MEMORY");
        assert!(!rows[3].is_live());
        assert_eq!(parse_tasks("x-y"), None);
    }

    #[test]
    fn max_array_size_from_the_configuration() {
        let config = "Configuration data as of 2026-12-07T20:00:00\nMaxArraySize            = 1001\nMaxJobCount = 10000\n";
        assert_eq!(parse_max_array_size(config), Some(1001));
        assert_eq!(parse_max_array_size("MaxJobCount = 3"), None);
    }

    #[test]
    fn accounting_rows_and_a_cluster_without_accounting() {
        let rows = parse_accounting(
            "55_0|COMPLETED|0:0\n55_1|FAILED|3:0\n56|CANCELLED by 0|0:0\n55_[2-4]|PENDING|0:0\n",
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].task, Some(1));
        assert_eq!(rows[1].exit_code, "3:0");
        assert_eq!(rows[2].state, "CANCELLED");
        assert!(accounting_disabled(
            "",
            "sacct: error: Slurm accounting storage is disabled\n"
        ));
        assert!(!accounting_disabled("55_0|COMPLETED|0:0", ""));
    }

    fn submission(dir: &Path) -> Submission {
        Submission {
            script: dir.join("array.sh"),
            name: "sb.exp.run".into(),
            comment: "0:1".into(),
            tasks: 5,
            throttle: Some(2),
            output: dir.join("logs/%A_%a.out"),
            chdir: dir.to_path_buf(),
            resources: Resources {
                cpus: 2,
                mem: Some("1G".into()),
                time: None,
                partition: None,
                account: None,
            },
            after: vec!["77".into(), "78".into()],
        }
    }

    /// The fake `sbatch` records its arguments: the array, throttle, dependency and resources
    /// reach the command line; a transient refusal is retried and the id with a cluster name
    /// parsed.
    #[test]
    fn sbatch_gets_the_array_and_is_retried_after_a_transient_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path();
        let count = bin.join("count");
        fake_program(
            bin,
            "sbatch",
            &format!(
                "echo \"$@\" > {args}\nn=$(cat {count} 2>/dev/null || echo 0); echo $((n+1)) > {count}\n\
                 if [ $n -lt 2 ]; then echo 'sbatch: error: Batch job submission failed: Socket timed out on send/recv operation' >&2; exit 1; fi\n\
                 echo '4242;ci'",
                args = bin.join("args").display(),
                count = count.display()
            ),
        );
        let scheduler = Scheduler {
            bin_dir: Some(bin.to_path_buf()),
            retry_waits: vec![Duration::from_millis(1); 3],
        };
        let id = scheduler.submit(&submission(bin)).unwrap();
        assert_eq!(id, "4242");
        assert_eq!(std::fs::read_to_string(&count).unwrap().trim(), "3");
        let args = std::fs::read_to_string(bin.join("args")).unwrap();
        for want in [
            "--array=0-4%2",
            "--dependency=afterany:77:78",
            "--kill-on-invalid-dep=yes",
            "--cpus-per-task=2",
            "--mem=1G",
            "--comment=0:1",
            "--job-name=sb.exp.run",
        ] {
            assert!(args.contains(want), "{want} not in {args}");
        }
    }

    #[test]
    fn a_permanent_refusal_is_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path();
        fake_program(
            bin,
            "sbatch",
            &format!(
                "echo x >> {}\necho 'sbatch: error: invalid partition specified: gpu' >&2; exit 1",
                bin.join("calls").display()
            ),
        );
        let scheduler = Scheduler {
            bin_dir: Some(bin.to_path_buf()),
            retry_waits: vec![Duration::from_millis(1); 3],
        };
        let err = scheduler.submit(&submission(bin)).unwrap_err().to_string();
        assert!(err.contains("invalid partition"), "{err}");
        assert!(err.contains("not a transient error"), "{err}");
        assert_eq!(
            std::fs::read_to_string(bin.join("calls"))
                .unwrap()
                .lines()
                .count(),
            1
        );
    }

    /// `squeue` is asked once for the whole run, by name, finished jobs included; an unknown
    /// name gives no rows; `sacct` without slurmdbd means "no accounting", not an error.
    #[test]
    fn one_queue_call_per_run_and_accounting_that_is_off() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path();
        fake_program(
            bin,
            "squeue",
            &format!(
                "echo \"$@\" >> {}\ncase \"$*\" in *--name=sb.known*) echo '9|0|COMPLETED|None|vm|0:0'; echo '9|1-2|PENDING|Priority||0:0';; esac",
                bin.join("calls").display()
            ),
        );
        fake_program(
            bin,
            "sacct",
            "echo 'sacct: error: Slurm accounting storage is disabled' >&2; exit 1",
        );
        fake_program(bin, "scontrol", "echo 'MaxArraySize = 5'");
        fake_program(bin, "sbatch", "exit 0");
        let scheduler = Scheduler {
            bin_dir: Some(bin.to_path_buf()),
            retry_waits: Vec::new(),
        };
        let rows = scheduler.queue("sb.known").unwrap();
        assert_eq!(rows.len(), 2);
        assert!(scheduler.queue("sb.unknown").unwrap().is_empty());
        let calls = std::fs::read_to_string(bin.join("calls")).unwrap();
        assert_eq!(calls.lines().count(), 2);
        assert!(calls.contains("-t all"), "{calls}");
        assert_eq!(scheduler.accounting(&["9".into()]).unwrap(), None);
        assert_eq!(scheduler.max_array_size().unwrap(), 5);
        assert!(scheduler.available());
    }
}
