//! Dynamic word embeddings (Bamler & Mandt 2017) on a dated corpus, fitted by MAP with the
//! baseline Adam and with Goldstone-GD (Bamler & Mandt 2018 §5.3):
//!
//! ```text
//! preprocess (corpus → per-year co-occurrence counts, vocabulary, negative marginals)
//!   └─ fit[regime] (binning, count scale, initialisation; both optimisers, every seed)
//!        └─ evaluate[alignment] (cosine quantiles, Procrustes, word aging, held-out, sweep)
//!             └─ emit (tables and figures)
//! ```

pub(crate) mod emit;
pub(crate) mod evaluate;
pub(crate) mod fit;
pub(crate) mod preprocess;

use std::path::Path;

use crate::data::registry::Registry;
use crate::error::Result;
use crate::pipeline::{Plan, PlanBuilder, StageHandle};
use crate::spec::dwe::{DweSpec, parse};
use crate::spec::{Header, SpecDocument};

/// The `[experiment] kind` of this family's specs.
pub const KIND: &str = "dwe";

/// Registers the stage types this family plans, for workers that decode plan files.
pub fn register(tasks: &mut crate::pipeline::plan::TaskRegistry) {
    tasks
        .register::<emit::EmitStage>()
        .register::<evaluate::EvaluateStage>()
        .register::<preprocess::CountsStage>()
        .register::<fit::FitStage>();
}

/// Plans a dwe experiment; the corpus is looked up in `<root>/data/registry.toml`.
pub fn plan(doc: &SpecDocument, header: Header, root: &Path) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let mut plan = PlanBuilder::new();
    let counts = match &spec.googlebooks {
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
            super::googlebooks::plan_counts(&mut plan, source, &counts, root)?
        }
        None => plan_corpus_counts(&mut plan, "", doc, &spec, root)?,
    };
    let mut regimes = Vec::new();
    for (k, regime) in spec.regimes.iter().enumerate() {
        let fitted = plan.add(
            regime.label(),
            fit::FitStage {
                model: spec.model.clone(),
                fit: spec.fit.clone(),
                gamma: spec.preprocess.gamma,
                eta: spec.preprocess.eta,
                seed: spec.header.seed,
                regime: regime.clone(),
                headline: k == 0,
                counts: counts.clone(),
            },
        )?;
        regimes.push((regime.clone(), fitted));
    }
    let evaluate = plan.add(
        "alignment",
        evaluate::EvaluateStage {
            regimes,
            optimizers: spec.fit.optimizers.clone(),
            queries: spec.evaluate.queries.clone(),
            counts: counts.clone(),
        },
    )?;
    plan.add(
        "",
        emit::EmitStage {
            counts,
            evaluate,
            histogram_bins: spec.evaluate.histogram_bins,
        },
    )?;
    Ok(super::plan_of(doc, &spec.header, &spec, plan))
}

/// Adds the preprocess instance (labelled `label`) of the registered JSON Lines corpus of
/// `spec` (read from `doc`).
pub(crate) fn plan_corpus_counts(
    plan: &mut PlanBuilder,
    label: &str,
    doc: &SpecDocument,
    spec: &DweSpec,
    root: &Path,
) -> Result<StageHandle> {
    let registry = Registry::load(&root.join("data"))?;
    let corpus = registry
        .input(&spec.corpus)
        .map_err(|e| doc.error("data.corpus", e.to_string()))?;
    plan.add(
        label,
        preprocess::CountsStage {
            corpus,
            settings: spec.preprocess.clone(),
        },
    )
}
