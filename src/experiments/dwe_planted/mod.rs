//! The planted-truth benchmark for dynamic word embeddings: counts sampled from known, slowly
//! drifting embeddings ([`crate::models::dwe::planted`]), fitted with every optimiser, and every
//! fit measured against the truth — where the Goldstone problem exists, as a function of the
//! count scale N_t and the chain length T.
//!
//! ```text
//! preprocess[T,N,seed] (truth + Poisson counts) ─ fit[T,N,seed] (optimisers, vs truth)
//!                                                    └─ evaluate (medians) ─┐
//! preprocess[corpus=E] (dwe spec E's counts) ─ evaluate[corpus=E] (Σn⁺ per step) ─ emit
//! ```

mod corpus;
mod emit;
mod evaluate;
mod fit;
mod generate;

use std::path::Path;
use std::sync::Arc;

use crate::code_group;
use crate::error::Result;
use crate::pipeline::{CodeGroup, Plan, StageInstance, StageKind};
use crate::spec::dwe_planted::parse;
use crate::spec::{Header, SpecDocument};

static GENERATE_CODE: CodeGroup = code_group!(
    "dwe-planted/generate",
    [
        "experiments/dwe_planted/generate.rs",
        "experiments/dwe/preprocess.rs",
        "models/dwe/planted.rs",
        "corpus/counts.rs",
        "emit/npy.rs",
        "fsutil.rs",
        "seed.rs"
    ]
);
static FIT_CODE: CodeGroup = code_group!(
    "dwe-planted/fit",
    [
        "experiments/dwe_planted/fit.rs",
        "experiments/dwe_planted/generate.rs",
        "experiments/dwe/preprocess.rs",
        "experiments/dwe/fit.rs",
        "analysis/agreement.rs",
        "analysis/alignment.rs",
        "analysis/stats.rs",
        "models/dwe/mod.rs",
        "models/dwe/kernel.rs",
        "models/dwe/train.rs",
        "models/dwe/planted.rs",
        "models/goldstone/mod.rs",
        "models/goldstone/gauge.rs",
        "models/goldstone/dense_mf.rs",
        "models/goldstone/train.rs",
        "spec/goldstone_synthetic.rs",
        "linalg.rs",
        "seed.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static EVALUATE_CODE: CodeGroup = code_group!(
    "dwe-planted/evaluate",
    [
        "experiments/dwe_planted/evaluate.rs",
        "experiments/dwe_planted/fit.rs",
        "analysis/stats.rs",
        "fsutil.rs"
    ]
);
static CORPUS_CODE: CodeGroup = code_group!(
    "dwe-planted/corpus",
    [
        "experiments/dwe_planted/corpus.rs",
        "experiments/dwe/fit.rs",
        "experiments/dwe/preprocess.rs",
        "analysis/stats.rs",
        "fsutil.rs"
    ]
);
static EMIT_CODE: CodeGroup = code_group!(
    "dwe-planted/emit",
    [
        "experiments/dwe_planted/emit.rs",
        "experiments/dwe_planted/corpus.rs",
        "experiments/dwe_planted/evaluate.rs",
        "experiments/dwe_planted/fit.rs",
        "emit/figure.rs",
        "emit/table.rs",
        "fsutil.rs"
    ]
);

/// Every code group of this experiment, for the coverage test.
pub fn code_groups() -> [&'static CodeGroup; 5] {
    [
        &GENERATE_CODE,
        &FIT_CODE,
        &EVALUATE_CODE,
        &CORPUS_CODE,
        &EMIT_CODE,
    ]
}

/// The instances that measure the count scale of compared experiment `name`: its own counts
/// stage (from the spec `name`.toml beside `doc`, relabelled) and the per-step totals.
fn corpus_instances(
    doc: &SpecDocument,
    name: &str,
    planted_vocabulary: usize,
    root: &Path,
) -> Result<[StageInstance; 2]> {
    let key = "compare.experiments";
    let folder = doc.path.parent().unwrap_or(Path::new("."));
    let path = folder.join(format!("{name}.toml"));
    if !path.is_file() {
        return Err(doc.error(key, format!("no spec {} for {name:?}", path.display())));
    }
    let compared = SpecDocument::load(&path)?;
    let header = compared.header()?;
    if header.kind != "dwe" {
        return Err(doc.error(
            key,
            format!("{name:?} is a {:?} experiment, not a dwe one", header.kind),
        ));
    }
    let spec = crate::spec::dwe::parse(&compared, header)?;
    if spec.googlebooks.is_some() {
        return Err(doc.error(
            key,
            format!(
                "{name:?} counts Google Books slices; only corpus-backed dwe specs can be \
                 compared (the slices would be downloaded)"
            ),
        ));
    }
    let mut counts = super::dwe::corpus_counts(&compared, &spec, root)?;
    counts.label = format!("corpus={name}");
    let counts_id = counts.id();
    let mut binnings: Vec<corpus::Binning> = Vec::new();
    for regime in &spec.regimes {
        let binning = corpus::Binning {
            bin_years: regime.bin_years,
            count_scale: regime.count_scale,
        };
        if !binnings.contains(&binning) {
            binnings.push(binning);
        }
    }
    let scale = StageInstance {
        kind: StageKind::Evaluate,
        label: format!("corpus={name}"),
        params: serde_json::json!({
            "experiment": name,
            "binnings": super::json(&binnings),
            "planted_vocabulary": planted_vocabulary,
        }),
        deps: vec![counts_id.clone()],
        inputs: vec![],
        code: &CORPUS_CODE,
        task: Arc::new(corpus::CorpusScaleStage {
            experiment: name.to_string(),
            binnings,
            planted_vocabulary,
            counts_id,
        }),
    };
    Ok([counts, scale])
}

/// Plans a dwe-planted experiment; `root` holds the data registry of compared experiments.
pub fn plan(doc: &SpecDocument, header: Header, root: &Path) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let mut instances = Vec::new();
    // The compared corpora's counts first and the longest chains next: instances start in plan
    // order, so the long ones do not trail at the end with a core idle.
    let mut corpus_ids = Vec::new();
    for name in &spec.compare {
        let [counts, scale] = corpus_instances(doc, name, spec.truth.vocabulary, root)?;
        corpus_ids.push(scale.id());
        instances.push(counts);
        instances.push(scale);
    }
    let mut longest_first = spec.steps.clone();
    longest_first.sort_unstable_by(|a, b| b.cmp(a));
    let mut fit_ids = Vec::new();
    for &steps in &longest_first {
        for &counts in &spec.counts {
            for seed in 0..spec.seeds {
                let label = format!("T={steps},N={counts:e},seed={seed}");
                let mut truth = spec.truth.clone();
                truth.steps = steps;
                let generate = StageInstance {
                    kind: StageKind::Preprocess,
                    label: label.clone(),
                    params: serde_json::json!({
                        "truth": super::json(&truth),
                        "counts": counts,
                        "seed": seed,
                        "base_seed": spec.header.seed,
                    }),
                    deps: vec![],
                    inputs: vec![],
                    code: &GENERATE_CODE,
                    task: Arc::new(generate::GenerateStage {
                        options: truth,
                        counts,
                        base_seed: spec.header.seed,
                        seed,
                    }),
                };
                let generate_id = generate.id();
                let fit = StageInstance {
                    kind: StageKind::Fit,
                    label,
                    params: serde_json::json!({
                        "fit": super::json(&spec.fit),
                        "steps": steps,
                        "counts": counts,
                        "seed": seed,
                        "base_seed": spec.header.seed,
                    }),
                    deps: vec![generate_id.clone()],
                    inputs: vec![],
                    code: &FIT_CODE,
                    task: Arc::new(fit::FitStage {
                        fit: spec.fit.clone(),
                        steps,
                        counts,
                        seed,
                        base_seed: spec.header.seed,
                        generate_id,
                    }),
                };
                fit_ids.push(fit.id());
                instances.push(generate);
                instances.push(fit);
            }
        }
    }
    let evaluate = StageInstance {
        kind: StageKind::Evaluate,
        label: String::new(),
        params: serde_json::json!({}),
        deps: fit_ids.clone(),
        inputs: vec![],
        code: &EVALUATE_CODE,
        task: Arc::new(evaluate::EvaluateStage { fit_ids }),
    };
    let evaluate_id = evaluate.id();
    instances.push(evaluate);
    let mut emit_deps = vec![evaluate_id.clone()];
    emit_deps.extend(corpus_ids.iter().cloned());
    instances.push(StageInstance {
        kind: StageKind::Emit,
        label: String::new(),
        params: serde_json::json!({}),
        deps: emit_deps,
        inputs: vec![],
        code: &EMIT_CODE,
        task: Arc::new(emit::EmitStage {
            evaluate_id,
            corpus_ids,
        }),
    });
    Ok(super::plan_of(doc, &spec.header, &spec, instances))
}
