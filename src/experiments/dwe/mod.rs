//! Dynamic word embeddings (Bamler & Mandt 2017) on a dated corpus, fitted by MAP with the
//! baseline Adam and with Goldstone-GD (Bamler & Mandt 2018 §5.3):
//!
//! ```text
//! preprocess (corpus → per-year co-occurrence counts, vocabulary, negative marginals)
//!   └─ fit[regime] (binning, count scale, initialisation; both optimisers, every seed)
//!        └─ evaluate[alignment] (cosine quantiles, Procrustes, word aging, held-out, sweep)
//!             └─ emit (tables and figures)
//! ```

pub use fit::{OPTIMIZERS, first_last_cosines};

mod emit;
mod evaluate;
pub(crate) mod fit;
pub(crate) mod preprocess;

use std::path::Path;
use std::sync::Arc;

use crate::code_group;
use crate::data::registry::Registry;
use crate::error::Result;
use crate::pipeline::{CodeGroup, Plan, StageInstance, StageKind};
use crate::spec::dwe::parse;
use crate::spec::{Header, SpecDocument};

static PREPROCESS_CODE: CodeGroup = code_group!(
    "dwe/preprocess",
    [
        "experiments/dwe/preprocess.rs",
        "corpus/mod.rs",
        "corpus/counts.rs",
        "data/registry.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static FIT_CODE: CodeGroup = code_group!(
    "dwe/fit",
    [
        "analysis/alignment.rs",
        "analysis/stats.rs",
        "experiments/dwe/fit.rs",
        "experiments/dwe/preprocess.rs",
        "models/dwe/mod.rs",
        "models/dwe/kernel.rs",
        "models/dwe/train.rs",
        "models/goldstone/mod.rs",
        "models/goldstone/gauge.rs",
        "models/goldstone/dense_mf.rs",
        "models/goldstone/train.rs",
        "corpus/counts.rs",
        "spec/goldstone_synthetic.rs",
        "linalg.rs",
        "seed.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static EVALUATE_CODE: CodeGroup = code_group!(
    "dwe/evaluate",
    [
        "analysis/stats.rs",
        "experiments/dwe/evaluate.rs",
        "experiments/dwe/fit.rs",
        "experiments/dwe/preprocess.rs",
        "spec/dwe.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static EMIT_CODE: CodeGroup = code_group!(
    "dwe/emit",
    [
        "analysis/stats.rs",
        "experiments/dwe/emit.rs",
        "experiments/dwe/evaluate.rs",
        "experiments/dwe/fit.rs",
        "experiments/dwe/preprocess.rs",
        "emit/figure.rs",
        "emit/table.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);

/// Every code group of this experiment, for the coverage test.
pub fn code_groups() -> [&'static CodeGroup; 4] {
    [&PREPROCESS_CODE, &FIT_CODE, &EVALUATE_CODE, &EMIT_CODE]
}

/// Plans a dwe experiment; the corpus is looked up in `<root>/data/registry.toml`.
pub fn plan(doc: &SpecDocument, header: Header, root: &Path) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let mut instances = match &spec.googlebooks {
        Some(source) => {
            let p = &spec.preprocess;
            let counts = crate::spec::googlebooks::Counts {
                vocabulary: p.vocabulary,
                window: p.window,
                gamma: p.gamma,
                // Both are required for a Google Books source (checked by the spec).
                first_year: p.first_year.unwrap_or_default(),
                last_year: p.last_year.unwrap_or_default(),
            };
            super::googlebooks::count_instances(source, &counts, root)
        }
        None => vec![corpus_counts(doc, &spec, root)?],
    };
    let counts_id = instances.last().map(StageInstance::id).unwrap_or_default();
    let shared = serde_json::json!({
        "fit": super::json(&spec.fit),
        "model": super::json(&spec.model),
        "seed": spec.header.seed,
    });
    let mut fit_ids = Vec::new();
    for (k, regime) in spec.regimes.iter().enumerate() {
        let instance = StageInstance {
            kind: StageKind::Fit,
            label: regime.label(),
            params: serde_json::json!({
                "headline": k == 0,
                "regime": super::json(regime),
                "shared": shared,
            }),
            deps: vec![counts_id.clone()],
            inputs: vec![],
            code: &FIT_CODE,
            task: Arc::new(fit::FitStage {
                spec: spec.clone(),
                regime: regime.clone(),
                headline: k == 0,
                counts_id: counts_id.clone(),
            }),
        };
        fit_ids.push(instance.id());
        instances.push(instance);
    }
    let mut evaluate_deps = vec![counts_id.clone()];
    evaluate_deps.extend(fit_ids.iter().cloned());
    let evaluate = StageInstance {
        kind: StageKind::Evaluate,
        label: "alignment".into(),
        params: serde_json::json!({ "evaluate": super::json(&spec.evaluate.queries) }),
        deps: evaluate_deps,
        inputs: vec![],
        code: &EVALUATE_CODE,
        task: Arc::new(evaluate::EvaluateStage {
            spec: spec.clone(),
            counts_id: counts_id.clone(),
            fit_ids,
        }),
    };
    let evaluate_id = evaluate.id();
    instances.push(evaluate);
    let emit_deps = vec![counts_id.clone(), evaluate_id.clone()];
    let emit = StageInstance {
        kind: StageKind::Emit,
        label: String::new(),
        params: serde_json::json!({ "histogram_bins": spec.evaluate.histogram_bins }),
        deps: emit_deps,
        inputs: vec![],
        code: &EMIT_CODE,
        task: Arc::new(emit::EmitStage {
            counts_id,
            evaluate_id,
            histogram_bins: spec.evaluate.histogram_bins,
        }),
    };
    instances.push(emit);
    Ok(super::plan_of(doc, &spec.header, &spec, instances))
}

/// The preprocess instance of a registered JSON Lines corpus.
pub(crate) fn corpus_counts(
    doc: &SpecDocument,
    spec: &crate::spec::dwe::DweSpec,
    root: &Path,
) -> Result<StageInstance> {
    let registry = Registry::load(&root.join("data"))?;
    let entry = registry
        .get(&spec.corpus)
        .map_err(|e| doc.error("data.corpus", e.to_string()))?;
    Ok(StageInstance {
        kind: StageKind::Preprocess,
        label: String::new(),
        params: serde_json::json!({
            "corpus": spec.corpus,
            "settings": super::json(&spec.preprocess),
        }),
        deps: vec![],
        inputs: vec![registry.path(entry)],
        code: &PREPROCESS_CODE,
        task: Arc::new(preprocess::CountsStage {
            registry: registry.clone(),
            corpus: spec.corpus.clone(),
            settings: spec.preprocess.clone(),
        }),
    })
}
