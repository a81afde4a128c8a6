//! Tests of the contract between the pipeline and every family: keys follow what tasks read,
//! a seed change reruns exactly the instances that draw random numbers (and what reads them),
//! and code fingerprints hold the code each stage reaches — and nothing it does not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{FAMILIES, Family};
use crate::pipeline::{Plan, StageInstance};
use crate::spec::SpecDocument;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn family(kind: &str) -> &'static Family {
    FAMILIES
        .iter()
        .find(|f| f.kind == kind)
        .unwrap_or_else(|| panic!("no family {kind}"))
}

/// The plan of `experiments/<name>.toml` with its text passed through `edit`.
fn plan_edited(name: &str, edit: impl Fn(&str) -> String) -> Plan {
    let path = root().join("experiments").join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = SpecDocument::parse(&path, edit(&text)).unwrap();
    let header = doc.header().unwrap();
    (family(&header.kind).plan)(&doc, header, &root()).unwrap()
}

/// The spec text with its `[experiment]` seed moved on by one.
fn with_next_seed(text: &str) -> String {
    let mut out = String::new();
    let mut replaced = false;
    for line in text.lines() {
        if let Some(value) = line.trim_start().strip_prefix("seed =")
            && !replaced
        {
            let seed: u64 = value.trim().parse().unwrap();
            out.push_str(&format!("seed = {}\n", seed + 1));
            replaced = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(replaced, "no seed line");
    out
}

/// Ids of the instances whose key changes between `a` and `b`: their own parameters differ,
/// or an upstream instance's key does.
fn rekeyed(a: &Plan, b: &Plan) -> BTreeSet<String> {
    fn by_id(p: &Plan) -> BTreeMap<String, &StageInstance> {
        p.instances.iter().map(|i| (i.id(), i)).collect()
    }
    let (before, after) = (by_id(a), by_id(b));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "a seed change must not change the stage graph"
    );
    let mut changed = BTreeSet::new();
    for instance in &b.instances {
        let id = instance.id();
        let old = before[&id];
        if old.params != instance.params || instance.deps.iter().any(|d| changed.contains(d)) {
            changed.insert(id);
        }
    }
    changed
}

/// Every id downstream of (and including) `roots`.
fn downstream(plan: &Plan, roots: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = roots.clone();
    for instance in &plan.instances {
        if instance.deps.iter().any(|d| out.contains(d)) {
            out.insert(instance.id());
        }
    }
    out
}

/// A seed change must rerun the instances `draws` selects (those that draw random numbers) and
/// everything downstream of them — and nothing else.
fn check_seed_change(name: &str, draws: impl Fn(&str) -> bool) {
    let a = plan_edited(name, |t| t.to_string());
    let b = plan_edited(name, with_next_seed);
    let drawing: BTreeSet<String> = a
        .instances
        .iter()
        .map(StageInstance::id)
        .filter(|id| draws(id))
        .collect();
    assert!(!drawing.is_empty() || name.starts_with("googlebooks"));
    let expected = downstream(&a, &drawing);
    assert_eq!(rekeyed(&a, &b), expected, "{name}");
}

#[test]
fn seed_change_reruns_the_drawing_instances_of_rbm_mnist() {
    // The fits start from random weights, the reconstruction draws Gibbs samples; the
    // correlation matrix, its spectrum and the exact-gradient relaxation runs draw nothing.
    check_seed_change("rbm-mnist-smoke", |id| {
        (id.starts_with("fit[n_hidden=")) || id == "evaluate[reconstruction]"
    });
    let plan = plan_edited("rbm-mnist-smoke", |t| t.to_string());
    let relaxation_runs = plan
        .instances
        .iter()
        .filter(|i| i.label.starts_with("relaxation,"))
        .count();
    assert!(relaxation_runs > 0);
}

#[test]
fn seed_change_reruns_the_drawing_instances_of_rbm_scalar() {
    // The target kernel is closed-form; fits, the toy and the regenerated fields draw.
    check_seed_change("rbm-scalar-smoke", |id| {
        id.starts_with("fit[") || id.starts_with("evaluate[")
    });
}

#[test]
fn seed_change_reruns_the_drawing_instances_of_goldstone_synthetic() {
    // The data are drawn, and so is every fit's start.
    check_seed_change("goldstone-synthetic-smoke", |id| {
        id == "preprocess" || id.starts_with("fit[")
    });
}

#[test]
fn seed_change_reruns_the_drawing_instances_of_dwe() {
    // Counting the corpus draws nothing; the fits draw held-out steps, starts and minibatches.
    check_seed_change("dwe-sotu-smoke", |id| id.starts_with("fit["));
}

#[test]
fn seed_change_reruns_the_drawing_instances_of_dwe_planted() {
    // The planted truths and their counts are drawn, and so are the fits; the compared
    // corpora's counts and scales draw nothing.
    check_seed_change("dwe-planted-smoke", |id| {
        (id.starts_with("preprocess[T=")) || id.starts_with("fit[")
    });
}

#[test]
fn seed_change_reruns_the_drawing_instances_of_goldstone_modes() {
    // Every fit draws its Haar rotation and its training start; the Hessians draw nothing
    // but read the fits.
    check_seed_change("goldstone-modes-smoke", |id| id.starts_with("fit["));
}

#[test]
fn seed_change_reruns_nothing_of_googlebooks() {
    check_seed_change("googlebooks-sample", |_| false);
}

/// Every family has a smoke-sized spec checked above.
#[test]
fn every_family_is_covered_by_a_seed_test() {
    let covered = [
        "dwe",
        "dwe-planted",
        "goldstone-modes",
        "goldstone-synthetic",
        "googlebooks",
        "rbm-mnist",
        "rbm-scalar",
    ];
    let kinds: Vec<&str> = FAMILIES.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, covered);
}

/// The code groups of every default experiment's stages.
fn all_instances() -> Vec<(String, Plan)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("experiments"))
        .unwrap()
        .flatten()
    {
        let path = entry.path();
        // Specs only (experiments/claims/ holds what they claim).
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        out.push((name, super::plan(&path, Path::new(&root())).unwrap()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Stage code reaches the helpers it calls — in its own family, the models and the analysis —
/// but not the plans (a family's `mod.rs`), and only emit stages reach the figure code.
#[test]
fn fingerprints_follow_the_code_each_stage_reaches() {
    for (name, plan) in all_instances() {
        for instance in &plan.instances {
            let code = instance.code;
            let sources = code.sources();
            assert!(
                code.contains(code.root()) && code.root().starts_with("experiments/"),
                "{name}: {} is not rooted in its family",
                code.name
            );
            for file in sources {
                // `experiments/<family>/mod.rs`; a stage's own folder (`emit/mod.rs`) is not a plan.
                let family_plan = file.starts_with("experiments/")
                    && file.ends_with("/mod.rs")
                    && file.split('/').count() == 3;
                assert!(
                    !family_plan,
                    "{name}: {} reaches the plan {file}",
                    code.name
                );
            }
            let draws_figures = code.contains("emit/figure.rs");
            assert_eq!(
                draws_figures,
                instance.kind == crate::pipeline::StageKind::Emit,
                "{name}: {} and the figure code",
                code.name
            );
        }
    }
    let plan = plan_edited("rbm-mnist-smoke", |t| t.to_string());
    let fit = plan
        .instances
        .iter()
        .find(|i| i.id() == "fit[n_hidden=1]" || i.label.starts_with("n_hidden="))
        .unwrap();
    for needed in [
        "experiments/rbm_mnist/fit.rs",
        "experiments/rbm_mnist/preprocess.rs",
        "models/rbm/mod.rs",
        "models/rbm/ppca.rs",
        "models/rbm/train.rs",
        "seed.rs",
        "emit/mod.rs",
        "emit/npy.rs",
    ] {
        assert!(fit.code.contains(needed), "rbm-mnist fit lacks {needed}");
    }
}

/// A worker on another machine runs the task it decodes from a plan file: every stage type of
/// every spec is registered, decodes from its own serialisation, and serialises back to it.
#[test]
fn every_planned_task_decodes_to_itself() {
    let tasks = super::task_registry();
    let mut types = BTreeSet::new();
    for (name, plan) in all_instances() {
        for instance in &plan.instances {
            let decoded = tasks
                .decode(instance.task_type, instance.kind, &instance.task_json)
                .unwrap_or_else(|e| panic!("{name}: {}: {e}", instance.id()));
            assert_eq!(decoded.to_json().unwrap(), instance.task_json);
            assert!(std::ptr::eq(
                tasks.code(instance.task_type).unwrap(),
                instance.code
            ));
            types.insert(instance.task_type);
        }
    }
    // Every stage type is planned by some spec, so the loop above saw each of them.
    assert_eq!(types.len(), 36, "{types:#?}");
}

/// A `[slurm]` table says where instances run, not what they compute: adding one (with
/// per-kind tables) changes no key, and every family accepts it.
#[test]
fn a_slurm_table_changes_no_key() {
    for name in [
        "goldstone-synthetic-smoke",
        "rbm-scalar-smoke",
        "dwe-sotu-smoke",
        "goldstone-modes-smoke",
    ] {
        let plain = plan_edited(name, |t| t.to_string());
        let with_slurm = plan_edited(name, |t| {
            format!("{t}\n[slurm]\nmem = \"2G\"\nchunk = 3\n\n[slurm.fit]\ncpus = 2\n")
        });
        assert!(rekeyed(&plain, &with_slurm).is_empty(), "{name}");
    }
}
