//! The planted-truth benchmark for dynamic word embeddings: counts sampled from known, slowly
//! drifting embeddings ([`crate::models::dwe::planted`]), fitted with every optimiser, and every
//! fit measured against the truth — where the Goldstone problem exists, as a function of the
//! count scale N_t and the chain length T.
//!
//! ```text
//! preprocess[T,N,seed] (truth + Poisson counts) ─ fit[T,N,seed] (optimisers, vs truth)
//!                                                    └─ evaluate (medians) ─ emit
//! ```

mod emit;
mod evaluate;
mod fit;
mod generate;

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
static EMIT_CODE: CodeGroup = code_group!(
    "dwe-planted/emit",
    [
        "experiments/dwe_planted/emit.rs",
        "experiments/dwe_planted/evaluate.rs",
        "experiments/dwe_planted/fit.rs",
        "emit/figure.rs",
        "emit/table.rs",
        "fsutil.rs"
    ]
);

/// Every code group of this experiment, for the coverage test.
pub fn code_groups() -> [&'static CodeGroup; 4] {
    [&GENERATE_CODE, &FIT_CODE, &EVALUATE_CODE, &EMIT_CODE]
}

/// Plans a dwe-planted experiment.
pub fn plan(doc: &SpecDocument, header: Header) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let mut instances = Vec::new();
    let mut fit_ids = Vec::new();
    for &steps in &spec.steps {
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
    instances.push(StageInstance {
        kind: StageKind::Emit,
        label: String::new(),
        params: serde_json::json!({}),
        deps: vec![evaluate_id.clone()],
        inputs: vec![],
        code: &EMIT_CODE,
        task: Arc::new(emit::EmitStage { evaluate_id }),
    });
    Ok(super::plan_of(doc, &spec.header, &spec, instances))
}
