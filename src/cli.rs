//! Command-line interface: clap definitions turned into validated commands, and their output.
//!
//! Verbs: `list`, `verify`, `fetch <exp>`, `bench`, `run <exp>` (with `--stage`, `--from`,
//! `--force`, `--dry-run`, `-j`), `status <exp>` and `diff <A> [<B>]`. `<exp>` is a spec name in
//! `experiments/` or a path to a spec file. `--quiet` silences progress lines, `--json` prints
//! one machine-readable document instead. Exit codes: 0 success (for `diff`: no differences),
//! 1 differences found by `diff`, 2 error.

/// Prints a line to stdout, returning the write error (a closed pipe, as in `symbreak status |
/// head`, ends the command quietly in `main` instead of panicking as `println!` does).
macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout(), $($arg)*)?
    };
}

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::experiments;
use crate::pipeline::execute::{
    Executor, Force, RunOptions, SlurmExecutor, Workspace, decide, execute,
};
use crate::pipeline::run_folder::{RunStatus, latest_run, runs_of};
use crate::pipeline::slurm::driver::{SlurmOptions, SlurmSettings};
use crate::pipeline::slurm::scheduler::Scheduler;
use crate::pipeline::{Plan, StageKind};
use crate::spec::SpecDocument;

#[derive(Parser, Debug)]
#[command(
    name = "symbreak",
    version,
    about = "Reproduce physics-of-learning experiments from specs"
)]
struct Cli {
    /// Project folder holding experiments/, results/ and the .symbreak/ cache [default: the
    /// nearest folder at or above the working directory that holds experiments/].
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Print only errors (and the final JSON with --json).
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Print a machine-readable JSON document.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the experiment specs in experiments/.
    List,
    /// Run an experiment (cached stages are skipped).
    Run {
        /// Spec name in experiments/ (without .toml) or path to a spec file.
        experiment: String,
        /// Rerun every instance of this stage (fetch, preprocess, fit, evaluate, emit); upstream from cache.
        #[arg(long, conflicts_with_all = ["from", "force"])]
        stage: Option<String>,
        /// Rerun this stage and every stage after it.
        #[arg(long, conflicts_with = "force")]
        from: Option<String>,
        /// Rerun everything.
        #[arg(long)]
        force: bool,
        /// Say what would run and why, run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Stage instances to run in parallel (default: number of cores).
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Where the instances run: here, or as Slurm job arrays (see the README's "Running on
        /// a cluster"; resources per stage kind from the spec's [slurm] table).
        #[arg(long, value_enum, default_value_t = ExecutorName::Local)]
        executor: ExecutorName,
        /// Instances per Slurm array task, for every stage kind (overrides the spec).
        #[arg(long)]
        chunk: Option<usize>,
        /// Tasks of one Slurm array at once (overrides the spec).
        #[arg(long)]
        throttle: Option<usize>,
        /// Return once the jobs are submitted; `status` follows them, `run` again resumes.
        #[arg(long)]
        detach: bool,
    },
    /// Cancel the Slurm jobs of an experiment's unfinished Slurm run.
    Cancel {
        /// Spec name in experiments/ or path to a spec file.
        experiment: String,
    },
    /// Runs one task of a Slurm job array (what a run's jobs call).
    #[command(hide = true)]
    SlurmWorker {
        /// The run's plan file.
        #[arg(long)]
        plan: PathBuf,
        /// Array of the plan.
        #[arg(long)]
        array: usize,
        /// Task of the array (default: $SLURM_ARRAY_TASK_ID).
        #[arg(long)]
        task: Option<usize>,
    },
    /// Measure the hot loops, each as a ratio against a limit of this machine measured in the
    /// same run (its best GEMM at the loop's shapes and its GEMM peak).
    Bench {
        /// Run only this group (rbm: Gibbs sweeps and updates; gauge: a Goldstone gauge phase;
        /// dwe: the dynamic skip-gram kernels; googlebooks: the n-gram reader against zcat).
        #[arg(long)]
        only: Option<String>,
    },
    /// Check size and sha256 of every file in data/registry.toml (with --cache: re-read every
    /// cache entry and check it against the hashes recorded when it was published).
    Verify {
        /// Check the stage cache under .symbreak/ instead of the raw data.
        #[arg(long)]
        cache: bool,
    },
    /// Remove cache entries that no experiment's state and no complete run refers to, scratch
    /// folders of dead processes and the folders of interrupted runs.
    Gc {
        /// Say what would be removed and how many bytes that frees; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Download the registered raw files an experiment reads (present, verified files are kept).
    Fetch {
        /// Spec name in experiments/ or path to a spec file.
        experiment: String,
        /// Seconds of silence before a download attempt is abandoned.
        #[arg(long, default_value_t = 30)]
        read_timeout: u64,
        /// Downloads in parallel (Google Books slices).
        #[arg(long, short, default_value_t = 4)]
        jobs: usize,
        /// Say what would be downloaded and how large it is (asking the server), download nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show, for each stage instance, whether it is cached or why it would run; without an
    /// experiment, every experiment's latest run and claims (as results/index.html does).
    Status {
        /// Spec name in experiments/ or path to a spec file.
        experiment: Option<String>,
    },
    /// Judge the latest complete run of each experiment by its claims: per claim the paper's
    /// value, the reference's, this run's and the verdict. Exit code 0: every claim as in the
    /// reference (a claim the reference does not reproduce may stay so); 1: a claim differs
    /// from the reference, cannot be evaluated, or (without a reference) is not reproduced.
    Check {
        /// Experiments (default: every spec with a claims file and a complete run).
        experiments: Vec<String>,
    },
    /// The reference results in results/reference/ (kept in git), which `check` and
    /// `diff reference` compare runs with.
    Reference {
        #[command(subcommand)]
        action: ReferenceAction,
    },
    /// Print a shell completion script (e.g. `symbreak completions bash > /etc/bash_completion.d/symbreak`).
    Completions {
        /// bash, elvish, fish, powershell or zsh.
        shell: clap_complete::Shell,
    },
    /// Compare two runs: spec parameters, every result table row by row, figures.
    ///
    /// A and B are run folders, experiment folders (their latest run), run ids, `reference`
    /// (the reference results), or git revisions (the newest complete run of each experiment
    /// that records the commit, else the reference results committed there). Without B, A is
    /// compared with the newest run of each experiment; `diff <experiment>` compares its
    /// previous run with its latest. Exit code 0: no differences
    /// beyond the tolerance; 1: differences; 2: error.
    Diff(DiffArgs),
}

/// Where a run's instances execute.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ExecutorName {
    Local,
    Slurm,
}

/// What `symbreak reference` does.
#[derive(Subcommand, Debug)]
enum ReferenceAction {
    /// Replace results/reference/<exp>/ with the tables, claims, metrics and manifest of the
    /// latest complete run of <exp>, and say what changed.
    Update {
        /// Spec name in experiments/ or path to a spec file.
        experiment: String,
        /// Accept a run made from a checkout with uncommitted changes (its commit does not
        /// describe its code).
        #[arg(long)]
        allow_dirty: bool,
    },
    /// Print what every column of every reference table means: unit and description, as the
    /// tables' parquet metadata records them (Markdown, as in docs/results-format.md).
    Columns,
}

/// Prints the reference tables' column descriptions (JSON: experiment → table → columns).
fn reference_columns(root: &Path, json: bool) -> anyhow::Result<()> {
    let reference = root
        .join("results")
        .join(crate::claims::reference::REFERENCE_DIR);
    if !reference.is_dir() {
        bail!(
            "{} holds no reference results yet (`symbreak reference update <exp>` makes them)",
            reference.display()
        );
    }
    if json {
        let columns = crate::report::columns::reference_columns(&reference)?;
        say!("{}", serde_json::to_string_pretty(&columns)?);
    } else {
        write!(
            std::io::stdout(),
            "{}",
            crate::report::columns::column_reference(&reference)?
        )?;
    }
    Ok(())
}

/// The arguments of `symbreak diff`.
#[derive(clap::Args, Debug)]
struct DiffArgs {
    /// Old side: run folder, run id, git revision, `reference`, or an experiment (then its
    /// previous complete run is compared with its latest).
    old: String,
    /// New side (default: the newest complete run of each experiment).
    new: Option<String>,
    /// Compare only this experiment.
    #[arg(long, short)]
    experiment: Option<String>,
    /// Numbers are equal when |new − old| ≤ rel-tol · max(|old|, |new|) …
    #[arg(long, default_value_t = 1e-6, allow_negative_numbers = true)]
    rel_tol: f64,
    /// … or when |new − old| ≤ abs-tol.
    #[arg(long, default_value_t = 1e-12, allow_negative_numbers = true)]
    abs_tol: f64,
    /// Output format (`--json` is `--format json`).
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,
    /// List equal values too, not only the differences.
    #[arg(long)]
    all: bool,
    /// Statistical comparison: a value with a standard-error column differs only beyond this
    /// many combined standard errors; values without one are summarised per table, not listed
    /// (a rerun with another seed should read "all within 3σ").
    #[arg(long, value_name = "K")]
    sigma: Option<f64>,
    /// Compare wall-clock columns too (seconds, overheads), which differ between identical
    /// computations and are left out by default.
    #[arg(long)]
    timings: bool,
    /// Write every figure of both runs side by side into this folder.
    #[arg(long, value_name = "DIR")]
    figures: Option<PathBuf>,
    /// Write the comparison as an HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum DiffFormat {
    Text,
    Md,
    Json,
    Csv,
}

fn stage_kind(name: &str) -> anyhow::Result<StageKind> {
    StageKind::parse(name).with_context(|| {
        format!("unknown stage {name:?}; stages are fetch, preprocess, fit, evaluate, emit")
    })
}

/// Resolves `<exp>`: an existing file path, or `experiments/<exp>.toml` under `root`.
fn spec_path(root: &Path, experiment: &str) -> anyhow::Result<PathBuf> {
    let direct = PathBuf::from(experiment);
    if direct.is_file() {
        return Ok(direct);
    }
    let named = root.join("experiments").join(format!("{experiment}.toml"));
    if named.is_file() {
        return Ok(named);
    }
    let known: Vec<String> = spec_files(root)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().to_string()))
        .collect();
    let closest = known
        .iter()
        .map(|name| (strsim::jaro_winkler(experiment, name), name))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| format!("; did you mean {name:?}?"))
        .unwrap_or_default();
    bail!(
        "no experiment {experiment:?}: neither a file nor {}{closest} (`symbreak list` lists them)",
        named.display()
    )
}

fn plan_for(root: &Path, experiment: &str) -> anyhow::Result<Plan> {
    let path = spec_path(root, experiment)?;
    Ok(experiments::plan(&path, root)?)
}

/// Parses the process arguments and runs the command; returns the exit code.
pub fn main() -> anyhow::Result<u8> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version are "errors" that print to stdout and succeed.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) if wants_json() => bail!("{}", e.render().to_string().trim()),
        Err(e) => e.exit(),
    };
    if let Command::Completions { .. } = cli.command {
        return run_command(cli.command, Path::new("."), cli.quiet, cli.json);
    }
    let root = match cli.root {
        Some(root) => root,
        None => project_root(&std::env::current_dir()?)?,
    };
    run_command(cli.command, &root, cli.quiet, cli.json)
}

/// Whether the command line asks for JSON output (read before parsing, so that a command line
/// clap refuses still gets its error as JSON).
pub fn wants_json() -> bool {
    std::env::args().skip(1).any(|a| a == "--json")
}

/// Whether `dir` is a project: it has a cache folder `.symbreak/`, or specs in `experiments/`
/// (a folder of that name alone is not enough: the source tree has `src/experiments/`).
fn is_project(dir: &Path) -> bool {
    dir.join(".symbreak").is_dir()
        || std::fs::read_dir(dir.join("experiments")).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "toml"))
        })
}

/// The nearest project folder at or above `start` ([`is_project`]), as a path relative to
/// `start` (`.`, `..`, …), found the way git finds its repository. Outside any project this is
/// an error: a run from a subfolder must not start a second workspace there.
fn project_root(start: &Path) -> anyhow::Result<PathBuf> {
    let mut relative = PathBuf::from(".");
    for dir in start.ancestors() {
        if is_project(dir) {
            return Ok(relative);
        }
        relative = if relative == Path::new(".") {
            PathBuf::from("..")
        } else {
            relative.join("..")
        };
    }
    anyhow::bail!(
        "no symbreak project here: no experiments/*.toml or .symbreak/ in {} or above it (run \
         inside a project, or name one with --root)",
        start.display()
    )
}

/// Runs one verb; every verb but `diff` (whose code says whether anything differs) exits 0.
fn run_command(command: Command, root: &Path, quiet: bool, json: bool) -> anyhow::Result<u8> {
    let workspace = Workspace::new(root);
    match command {
        Command::Diff(mut request) => {
            if json {
                request.format = DiffFormat::Json;
            }
            return diff(root, request);
        }
        Command::List => list(root, json),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "symbreak", &mut script);
            std::io::stdout().write_all(&script)?;
            Ok(())
        }
        Command::Check { experiments } => return check(root, &experiments, json),
        Command::Reference {
            action:
                ReferenceAction::Update {
                    experiment,
                    allow_dirty,
                },
        } => reference_update(root, &experiment, allow_dirty, json),
        Command::Reference {
            action: ReferenceAction::Columns,
        } => reference_columns(root, json),
        Command::Verify { cache: false } => verify(root, json),
        Command::Verify { cache: true } => verify_cache(&workspace, json),
        Command::Gc { dry_run } => gc(&workspace, dry_run, json),
        Command::Fetch {
            experiment,
            read_timeout,
            jobs,
            dry_run,
        } => fetch(
            root,
            &experiment,
            read_timeout,
            jobs,
            dry_run,
            quiet || json,
        ),
        Command::Bench { only } => {
            let results = crate::bench::run(only.as_deref())?;
            if json {
                say!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                say!("{}", crate::bench::format_table(&results));
            }
            Ok(())
        }
        Command::Run {
            experiment,
            stage,
            from,
            force,
            dry_run,
            jobs,
            executor,
            chunk,
            throttle,
            detach,
        } => {
            let force = match (stage, from, force) {
                (Some(s), _, _) => Force::Stage(stage_kind(&s)?),
                (None, Some(s), _) => Force::From(stage_kind(&s)?),
                (None, None, true) => Force::All,
                (None, None, false) => Force::None,
            };
            let plan = plan_for(root, &experiment)?;
            let missing = match force {
                Force::Stage(kind) => {
                    Some(kind).filter(|k| plan.instances.iter().all(|i| i.kind != *k))
                }
                Force::From(kind) => {
                    Some(kind).filter(|k| plan.instances.iter().all(|i| i.kind < *k))
                }
                Force::All | Force::None => None,
            };
            if let Some(kind) = missing {
                let kinds: std::collections::BTreeSet<StageKind> =
                    plan.instances.iter().map(|i| i.kind).collect();
                let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                bail!(
                    "{} has no {} stage; its stages are {}",
                    plan.experiment,
                    kind.name(),
                    names.join(", ")
                );
            }
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let executor = match executor {
                ExecutorName::Local if chunk.is_some() || throttle.is_some() || detach => {
                    bail!("--chunk, --throttle and --detach go with --executor slurm")
                }
                ExecutorName::Local => Executor::Local,
                ExecutorName::Slurm => {
                    let doc = crate::spec::SpecDocument::load(&plan.spec_path)?;
                    let scheduler = Scheduler::from_env();
                    if !scheduler.available() && !dry_run {
                        bail!(
                            "--executor slurm: no `sbatch` on PATH (run on a Slurm login node, or \
                             set SYMBREAK_SLURM_BIN to the folder of the Slurm commands)"
                        );
                    }
                    if chunk == Some(0) {
                        bail!("--chunk must be at least 1");
                    }
                    Executor::Slurm(Box::new(SlurmExecutor {
                        settings: SlurmSettings::from_spec(&doc)?,
                        options: SlurmOptions {
                            chunk,
                            throttle,
                            detach,
                        },
                        scheduler,
                    }))
                }
            };
            let options = RunOptions {
                executor,
                force,
                dry_run,
                jobs,
                quiet: quiet || json,
                progress_bars: !quiet && !json && std::io::stderr().is_terminal(),
                command: std::env::args().collect(),
                report: crate::report::write_run_report,
            };
            let summary = execute(&plan, &workspace, &options)?;
            if json {
                say!("{}", serde_json::to_string_pretty(&summary)?);
            } else if summary.status == "submitted" {
                if !quiet {
                    say!(
                        "submitted as Slurm run {} (result folder {} once it completes)",
                        summary.run_id.as_deref().unwrap_or(""),
                        summary
                            .run_dir
                            .as_ref()
                            .map_or(String::new(), |d| d.display().to_string())
                    );
                }
            } else if let Some(dir) = summary.run_dir.as_ref().filter(|_| !quiet) {
                if let Some(checked) = match &plan.claims_path {
                    Some(claims) => crate::claims::recorded(&workspace.results(), dir, claims)?,
                    None => None,
                } {
                    say!("claims: {}", checked.headline());
                    write!(
                        std::io::stdout(),
                        "{}",
                        crate::claims::summary_lines(&checked)
                    )?;
                }
                say!("report: {}", dir.join(crate::report::REPORT_FILE).display());
            }
            if summary.run_dir.is_some() {
                refresh_index(root)?;
            }
            Ok(())
        }
        Command::SlurmWorker { plan, array, task } => {
            let registry = crate::experiments::task_registry();
            let ok = crate::pipeline::slurm::worker::run(&plan, array, task, &registry)?;
            return Ok(if ok { 0 } else { 1 });
        }
        Command::Cancel { experiment } => {
            let plan = plan_for(root, &experiment)?;
            let cancelled = crate::pipeline::slurm::driver::cancel(
                &workspace.root.join(".symbreak"),
                &plan.experiment,
                &Scheduler::from_env(),
            )?;
            match cancelled {
                Some(run_id) => say!(
                    "cancelled the Slurm jobs of run {run_id} of {}",
                    plan.experiment
                ),
                None => say!("{} has no unfinished Slurm run", plan.experiment),
            }
            Ok(())
        }
        Command::Status { experiment: None } => {
            let summaries = crate::report::index::overview(root)?;
            if json {
                say!("{}", serde_json::to_string_pretty(&summaries)?);
            } else {
                write!(
                    std::io::stdout(),
                    "{}",
                    crate::report::index::overview_text(&summaries)
                )?;
            }
            Ok(())
        }
        Command::Status {
            experiment: Some(experiment),
        } => {
            let plan = plan_for(root, &experiment)?;
            let decisions = decide(&plan, &workspace, Force::None)?;
            let latest = latest_run(&workspace.results(), &plan.experiment);
            if json {
                let slurm = crate::pipeline::slurm::driver::status(
                    &workspace.root.join(".symbreak"),
                    &plan.experiment,
                    &Scheduler::from_env(),
                )?;
                let doc = serde_json::json!({
                    "experiment": plan.experiment,
                    "latest": latest,
                    "stages": decisions,
                    "slurm": slurm.map(|s| serde_json::json!({
                        "run_id": s.run_id,
                        "instances": s.states.iter().map(|(id, state)| {
                            serde_json::json!({"id": id, "status": state})
                        }).collect::<Vec<_>>(),
                    })),
                });
                say!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                say!(
                    "{} — latest complete run: {}",
                    plan.experiment,
                    latest.as_deref().unwrap_or("none")
                );
                for (run, status, manifest) in runs_of(&workspace.results(), &plan.experiment) {
                    match status {
                        RunStatus::Complete => {}
                        RunStatus::Interrupted => say!(
                            "  run {run}: interrupted ({}; `symbreak gc` removes it)",
                            // Manifests written before the pid was recorded say 0.
                            if manifest.pid == 0 {
                                "its manifest records no process".to_string()
                            } else {
                                format!("process {} is gone", manifest.pid)
                            }
                        ),
                        RunStatus::Running if manifest.executor.as_deref() == Some("slurm") => {
                            say!(
                                "  run {run}: on Slurm, not assembled yet (`symbreak run {} \
                                 --executor slurm` follows and assembles it)",
                                plan.experiment
                            )
                        }
                        RunStatus::Running => {
                            say!("  run {run}: running (pid {})", manifest.pid)
                        }
                        RunStatus::Failed => say!(
                            "  run {run}: failed: {}",
                            manifest.error.as_deref().unwrap_or("(no error recorded)")
                        ),
                    }
                }
                if let Some(crate::pipeline::slurm::driver::SlurmStatus { run_id, states }) =
                    crate::pipeline::slurm::driver::status(
                        &workspace.root.join(".symbreak"),
                        &plan.experiment,
                        &Scheduler::from_env(),
                    )?
                {
                    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
                    for (_, state) in &states {
                        *counts.entry(state.name()).or_default() += 1;
                    }
                    let counts: Vec<String> =
                        counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
                    say!(
                        "  Slurm run {run_id} (unfinished; `symbreak run {} --executor slurm` \
                         resumes it, `symbreak cancel {}` cancels it): {}",
                        plan.experiment,
                        plan.experiment,
                        counts.join(", ")
                    );
                    for (id, state) in &states {
                        say!(
                            "    {id}: {}",
                            crate::pipeline::slurm::driver::describe_state(state)
                        );
                    }
                }
                for d in &decisions {
                    if d.run {
                        say!("  {}: stale ({})", d.id, d.reasons.join("; "));
                    } else {
                        say!("  {}: cached ({})", d.id, &d.key[..12]);
                    }
                }
            }
            Ok(())
        }
    }
    .map(|()| 0)
}

/// `symbreak diff`: prints the comparison; 0 if nothing differs beyond the tolerance, else 1.
fn diff(root: &Path, request: DiffArgs) -> anyhow::Result<u8> {
    use crate::compare::{
        self, Format, resolve,
        tables::{Options, Tolerance},
    };
    if let Some(k) = request.sigma
        && !(k > 0.0 && k.is_finite())
    {
        bail!("--sigma must be a finite number > 0, not {k}");
    }
    for (name, value) in [
        ("--rel-tol", request.rel_tol),
        ("--abs-tol", request.abs_tol),
    ] {
        if !(value >= 0.0 && value.is_finite()) {
            bail!("{name} must be a finite number ≥ 0, not {value}");
        }
    }
    // The page goes into a folder that exists (or the --figures folder this command makes): a
    // mistyped path creates nothing.
    if let Some(page) = &request.html {
        let parent = page
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let beside_figures = request.figures.as_deref() == Some(parent);
        if !parent.is_dir() && !beside_figures {
            bail!(
                "--html {}: the folder {} does not exist",
                page.display(),
                parent.display()
            );
        }
    }
    let results = Workspace::new(root).results();
    let experiment = request.experiment.as_deref();
    let names_experiment = request.new.is_none()
        && request.old != crate::claims::reference::REFERENCE_DIR
        && !Path::new(&request.old).exists()
        && (root
            .join("experiments")
            .join(format!("{}.toml", request.old))
            .is_file()
            || results.join(&request.old).is_dir());
    let (old, mut new) = if names_experiment {
        resolve::previous_and_latest(&results, &request.old)?
    } else {
        let old = resolve::resolve(root, &results, &request.old, experiment)?;
        let new = match &request.new {
            Some(argument) => resolve::resolve(root, &results, argument, experiment)?,
            None => resolve::newest(&results, experiment)?,
        };
        (old, new)
    };
    // A run compared with itself says nothing (`diff HEAD` when the newest run is HEAD's).
    let same: Vec<String> = new
        .runs
        .iter()
        .filter(|(e, run)| old.runs.get(*e).is_some_and(|o| o.dir == run.dir))
        .map(|(e, _)| e.clone())
        .collect();
    if !same.is_empty() {
        for e in &same {
            new.runs.remove(e);
        }
        let what = same.join(", ");
        if new.runs.keys().all(|e| !old.runs.contains_key(e)) {
            bail!(
                "{} and {} name the same run of {what}: nothing to compare (name an older \
                 revision or run, `reference`, or the experiment for its previous run)",
                request.old,
                request.new.as_deref().unwrap_or("the newest run")
            );
        }
        eprintln!("{what}: both sides are the same run; left out");
    }
    let options = Options {
        tolerance: Tolerance {
            rel: request.rel_tol,
            abs: request.abs_tol,
        },
        all: request.all,
        wall_clock: request.timings,
        sigma: request.sigma,
    };
    let comparison = compare::compare(&old, &new, options)?;
    let format = match request.format {
        DiffFormat::Text => Format::Text,
        DiffFormat::Md => Format::Markdown,
        DiffFormat::Json => Format::Json,
        DiffFormat::Csv => Format::Csv,
    };
    // A reader that stops early (`| head`) is not an error.
    let rendered = compare::render(&comparison, format);
    if let Err(e) = std::io::Write::write_all(&mut std::io::stdout().lock(), rendered.as_bytes())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    let side_by_side = match &request.figures {
        Some(dir) => {
            let written = compare::figures::write_side_by_side(&comparison, dir)?;
            eprintln!(
                "{} side-by-side figures in {}",
                written.len(),
                dir.display()
            );
            written
        }
        None => Vec::new(),
    };
    if let Some(path) = &request.html {
        compare::write_html(&comparison, path, &side_by_side)?;
        eprintln!("comparison page: {}", path.display());
    }
    Ok(u8::from(comparison.differs()))
}

fn fetch(
    root: &Path,
    experiment: &str,
    read_timeout: u64,
    jobs: usize,
    dry_run: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    use crate::data::fetch::{FetchOptions, FetchOutcome, fetch};
    use crate::data::registry::{FileState, Registry};
    let plan = plan_for(root, experiment)?;
    let inputs: std::collections::BTreeSet<PathBuf> = plan
        .instances
        .iter()
        .flat_map(|i| i.inputs.iter().cloned())
        .collect();
    // A plan with registered inputs has a registry (planning read it); one without may not.
    let registry = match inputs.is_empty() {
        true => Registry::default(),
        false => Registry::load(&root.join("data"))?,
    };
    let wanted: Vec<_> = registry
        .files
        .iter()
        .filter(|f| inputs.contains(&registry.path(f)))
        .collect();
    let downloads: Vec<_> = plan
        .instances
        .iter()
        .filter(|i| i.kind == StageKind::Fetch && i.deps.is_empty())
        .collect();
    if wanted.is_empty() && downloads.is_empty() {
        if !quiet {
            say!(
                "{} reads no raw data that could be downloaded",
                plan.experiment
            );
        }
        return Ok(());
    }
    let options = FetchOptions {
        read_timeout: std::time::Duration::from_secs(read_timeout.max(1)),
        ..FetchOptions::default()
    };
    let bars = (!quiet && std::io::stderr().is_terminal()).then(indicatif::MultiProgress::new);
    for entry in wanted {
        if dry_run {
            let state = registry.check(entry)?;
            let verdict = if state == FileState::Ok {
                "present and verified"
            } else {
                "would be downloaded"
            };
            say!("{}: {verdict} ({} bytes)", entry.name, entry.size);
            continue;
        }
        let progress = crate::pipeline::Progress::new(entry.name.clone(), bars.clone(), None);
        let outcome = fetch(entry, &registry.path(entry), &options, &progress)?;
        progress.finish();
        if !quiet {
            match outcome {
                FetchOutcome::Present => say!("{}: present and verified", entry.name),
                FetchOutcome::Downloaded { url, resumed_from } => say!(
                    "{}: downloaded from {url}{}",
                    entry.name,
                    if resumed_from > 0 {
                        format!(" (resumed at byte {resumed_from})")
                    } else {
                        String::new()
                    }
                ),
            }
        }
    }
    if downloads.is_empty() {
        return Ok(());
    }
    let workspace = Workspace::new(root);
    if dry_run {
        return announce_downloads(&plan, &workspace, &options, jobs);
    }
    let fetched = crate::pipeline::execute::execute_fetch(&plan, &workspace, jobs, !quiet, bars)?;
    let mut missing = Vec::new();
    for (id, _, dir) in &fetched {
        let record = crate::experiments::googlebooks::fetch::load(dir)?;
        if record.is_missing() {
            missing.push(format!("{id} ({})", record.url));
        }
    }
    if !quiet {
        say!(
            "{} files fetched or present and pinned, {} not on the server{}",
            fetched.len() - missing.len(),
            missing.len(),
            if missing.is_empty() {
                String::new()
            } else {
                format!(": {}", missing.join(", "))
            }
        );
    }
    Ok(())
}

/// `fetch --dry-run` for downloads planned as fetch stages: what is cached already, and the
/// size the server announces for the rest (HEAD requests, `jobs` at a time).
fn announce_downloads(
    plan: &Plan,
    workspace: &Workspace,
    options: &crate::data::fetch::FetchOptions,
    jobs: usize,
) -> anyhow::Result<()> {
    use rayon::prelude::*;
    let decisions = decide(plan, workspace, Force::None)?;
    let pending: Vec<(String, String)> = decisions
        .iter()
        .zip(&plan.instances)
        .filter(|(d, i)| i.kind == StageKind::Fetch && i.deps.is_empty() && !d.cached)
        .map(|(d, i)| {
            (
                d.id.clone(),
                i.params["url"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let fetched = plan
        .instances
        .iter()
        .filter(|i| i.kind == StageKind::Fetch)
        .count()
        - pending.len();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()?;
    let sizes: Vec<_> = pool.install(|| {
        pending
            .par_iter()
            .map(|(_, url)| crate::data::googlebooks::announced_size(url, options))
            .collect()
    });
    let (mut bytes, mut unknown, mut absent) = (0u64, 0usize, 0usize);
    for ((id, url), size) in pending.iter().zip(&sizes) {
        match size {
            Ok(Some(n)) => {
                bytes += n;
                say!("{id}: {url}: {n} bytes");
            }
            Ok(None) => {
                unknown += 1;
                say!("{id}: {url}: size not announced");
            }
            Err(why) => {
                absent += 1;
                say!("{id}: {url}: {why}");
            }
        }
    }
    say!(
        "{}: {} files to download, {:.2} GB announced{}{}; {fetched} fetched already",
        plan.experiment,
        pending.len(),
        bytes as f64 / 1e9,
        if unknown > 0 {
            format!(", {unknown} without a size")
        } else {
            String::new()
        },
        if absent > 0 {
            format!(", {absent} not available (listed above)")
        } else {
            String::new()
        },
    );
    Ok(())
}

fn verify(root: &Path, json: bool) -> anyhow::Result<()> {
    use crate::data::registry::{FileState, Registry, describe_problem};
    let registry = Registry::load(&root.join("data"))?;
    let states = registry.verify()?;
    let bad: Vec<String> = states
        .iter()
        .filter(|(_, s)| *s != FileState::Ok)
        .map(|(f, s)| describe_problem(f, s, &registry.path(f)))
        .collect();
    if json {
        let doc: Vec<_> = states
            .iter()
            .map(|(f, s)| serde_json::json!({ "name": f.name, "file": f.file, "result": s }))
            .collect();
        say!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for (f, s) in &states {
            let word = if *s == FileState::Ok { "ok" } else { "BAD" };
            say!("{word:<4} {:<24} {}", f.name, f.file);
        }
    }
    if !bad.is_empty() {
        bail!(
            "{} of {} files failed verification:\n{}",
            bad.len(),
            states.len(),
            bad.join("\n")
        );
    }
    Ok(())
}

fn verify_cache(workspace: &Workspace, json: bool) -> anyhow::Result<()> {
    let clock = std::time::Instant::now();
    let report = crate::pipeline::gc::verify_cache(workspace)?;
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for bad in &report.bad {
            say!("BAD  {}: {}", bad.entry.display(), bad.reason);
        }
        say!(
            "{} entries ({}) checked in {:.2} s; {} failed",
            report.entries,
            crate::report::human_bytes(report.bytes),
            clock.elapsed().as_secs_f64(),
            report.bad.len()
        );
    }
    if !report.bad.is_empty() {
        bail!(
            "{} of {} cache entries failed verification (the next run recomputes them; \
             `symbreak gc` removes those nothing refers to)",
            report.bad.len(),
            report.entries
        );
    }
    Ok(())
}

fn gc(workspace: &Workspace, dry_run: bool, json: bool) -> anyhow::Result<()> {
    let report = crate::pipeline::gc::collect_garbage(workspace, dry_run)?;
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for dir in report
        .entries_removed
        .iter()
        .chain(&report.interrupted_runs_removed)
        .chain(&report.slurm_files_removed)
    {
        say!("{verb} {}", dir.display());
    }
    say!(
        "{verb} {} cache entries, {} interrupted runs and {} Slurm run folders or binaries ({}); \
         kept {} entries",
        report.entries_removed.len(),
        report.interrupted_runs_removed.len(),
        report.slurm_files_removed.len(),
        crate::report::human_bytes(report.bytes_freed),
        report.entries_kept
    );
    Ok(())
}

/// The spec files in `experiments/`, sorted.
fn spec_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("experiments");
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    specs.sort();
    Ok(specs)
}

/// The experiment name (its header's) of the spec `<exp>` names, and the spec's claims file.
fn named_spec(root: &Path, experiment: &str) -> anyhow::Result<(String, PathBuf)> {
    let path = spec_path(root, experiment)?;
    let header = SpecDocument::load(&path)?.header()?;
    Ok((header.name, crate::claims::claims_file_for(&path)))
}

/// The folder of the latest complete run of `experiment`, if any.
fn latest_complete(results: &Path, experiment: &str) -> Option<PathBuf> {
    let id = latest_run(results, experiment)?;
    let dir = results.join(experiment).join(&id);
    let manifest: crate::pipeline::run_folder::Manifest =
        crate::fsutil::read_json(&dir.join("manifest.json")).ok()?;
    (manifest.status == "complete").then_some(dir)
}

/// `symbreak check`: judges the latest run of each experiment by its claims.
fn check(root: &Path, experiments: &[String], json: bool) -> anyhow::Result<u8> {
    let results = root.join("results");
    let explicit = !experiments.is_empty();
    let mut targets = Vec::new();
    if explicit {
        for e in experiments {
            targets.push(named_spec(root, e)?);
        }
    } else {
        for path in spec_files(root)? {
            let claims = crate::claims::claims_file_for(&path);
            if claims.is_file() {
                let header = SpecDocument::load(&path)?.header()?;
                targets.push((header.name, claims));
            }
        }
    }
    let mut failed = false;
    let mut checked_any = false;
    let mut documents = Vec::new();
    for (experiment, claims) in targets {
        if !claims.is_file() {
            if !json {
                say!(
                    "{experiment}: declares no claims ({} does not exist)",
                    claims.display()
                );
            }
            continue;
        }
        let Some(run_dir) = latest_complete(&results, &experiment) else {
            failed |= explicit;
            if json {
                documents.push(serde_json::json!({ "experiment": experiment, "run": null }));
            } else {
                say!("{experiment}: no complete run (make one with `symbreak run {experiment}`)");
            }
            continue;
        };
        let run_id = run_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let checked = crate::claims::check_run(&results, &run_dir, &claims, &experiment, &run_id)?;
        checked_any = true;
        failed |= checked.claims.iter().any(|c| c.fails());
        if json {
            documents.push(serde_json::to_value(&checked)?);
        } else {
            say!(
                "{} (run {run_id}{})",
                checked.headline(),
                checked
                    .reference_run
                    .as_ref()
                    .map(|r| format!(", reference {r}"))
                    .unwrap_or_default()
            );
            write!(
                std::io::stdout(),
                "{}",
                crate::claims::summary_lines(&checked)
            )?;
        }
    }
    let index = refresh_index(root)?;
    if json {
        say!("{}", serde_json::to_string_pretty(&documents)?);
    } else if !checked_any {
        say!("nothing to check: no experiment with claims has a complete run");
    } else {
        say!("overview: {}", index.display());
    }
    Ok(u8::from(failed || !checked_any))
}

/// Rewrites `results/index.html` from every experiment's latest run.
fn refresh_index(root: &Path) -> anyhow::Result<PathBuf> {
    let summaries = crate::report::index::overview(root)?;
    Ok(crate::report::index::write_index(
        &root.join("results"),
        &summaries,
    )?)
}

/// `symbreak reference update <exp>`.
fn reference_update(
    root: &Path,
    experiment: &str,
    allow_dirty: bool,
    json: bool,
) -> anyhow::Result<()> {
    let (name, claims_path) = named_spec(root, experiment)?;
    let results = root.join("results");
    let Some(run_dir) = latest_complete(&results, &name) else {
        bail!("{name} has no complete run to make the reference from (`symbreak run {name}`)");
    };
    let manifest: crate::pipeline::run_folder::Manifest =
        crate::fsutil::read_json(&run_dir.join("manifest.json"))?;
    if manifest.git.dirty && !allow_dirty {
        bail!(
            "the latest run of {name} ({}) was made from a checkout with uncommitted changes, so \
             its commit does not describe its code; commit, rerun, and update (or pass \
             --allow-dirty)",
            manifest.run_id
        );
    }
    let claims = if claims_path.is_file() {
        let file = crate::claims::ClaimsFile::load(&claims_path)?;
        Some(crate::claims::evaluate_all(
            &file,
            &claims_path,
            &run_dir.join("tables"),
            &name,
            &manifest.run_id,
        )?)
    } else {
        None
    };
    let report = crate::claims::reference::update(&results, &run_dir, claims.as_ref())?;
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    say!(
        "results/reference/{name}: now run {} (was {}), {}",
        report.run_id,
        report.previous_run_id.as_deref().unwrap_or("none"),
        crate::report::human_bytes(report.bytes)
    );
    for (what, list) in [
        ("added", &report.tables_added),
        ("changed", &report.tables_changed),
        ("removed", &report.tables_removed),
    ] {
        if !list.is_empty() {
            say!("  tables {what}: {}", list.join(", "));
        }
    }
    for (id, change) in &report.claims_changed {
        say!("  claim {id}: {change}");
    }
    if report.tables_added.is_empty()
        && report.tables_changed.is_empty()
        && report.tables_removed.is_empty()
        && report.claims_changed.is_empty()
    {
        say!("  no table or claim changed");
    }
    Ok(())
}

fn list(root: &Path, json: bool) -> anyhow::Result<()> {
    let specs = spec_files(root)?;
    let mut rows = Vec::new();
    for path in specs {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let row = match SpecDocument::load(&path).and_then(|d| d.header()) {
            Ok(h) => {
                let instances = experiments::plan(&path, root)
                    .map(|p| p.instances.len())
                    .ok();
                serde_json::json!({
                    "name": name, "kind": h.kind, "description": h.description,
                    "instances": instances, "error": null,
                })
            }
            Err(e) => serde_json::json!({ "name": name, "error": e.to_string() }),
        };
        rows.push(row);
    }
    if json {
        say!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for r in &rows {
            match r["error"].as_str() {
                Some(e) => say!("{:<24} invalid: {e}", r["name"].as_str().unwrap_or("")),
                None => say!(
                    "{:<24} {:<12} {:>3} stages  {}",
                    r["name"].as_str().unwrap_or(""),
                    r["kind"].as_str().unwrap_or(""),
                    r["instances"].as_u64().unwrap_or(0),
                    r["description"].as_str().unwrap_or("")
                ),
            }
        }
    }
    Ok(())
}
