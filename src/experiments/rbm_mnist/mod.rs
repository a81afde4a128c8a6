//! The Gaussian RBM on MNIST (Park, Aarts & Lucini, slides 16–17): the data side.
//!
//! ```text
//! preprocess (training images → correlation matrix ⟨φ_i φ_j⟩, 784 × 784)
//!   └─ evaluate[spectrum] (its 784 eigenvalues; counts of small ones) ── emit
//! ```
//!
//! The correlation matrix of MNIST has a band of (near-)zero eigenvalues — pixels that are zero
//! in every image give exact zeros — so the target kernel K = C⁻¹ has divergent modes: the
//! "UV-divergent data set". A Gaussian RBM with mass μ² can only learn modes with variance above
//! 1/μ², which the spectrum figure marks.

mod emit;
mod preprocess;
mod spectrum;

use std::path::Path;
use std::sync::Arc;

use crate::code_group;
use crate::data::registry::Registry;
use crate::error::Result;
use crate::pipeline::{CodeGroup, Plan, StageInstance, StageKind};
use crate::spec::rbm_mnist::parse;
use crate::spec::{Header, SpecDocument};

static PREPROCESS_CODE: CodeGroup = code_group!(
    "rbm-mnist/preprocess",
    [
        "experiments/rbm_mnist/preprocess.rs",
        "data/idx.rs",
        "data/registry.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static SPECTRUM_CODE: CodeGroup = code_group!(
    "rbm-mnist/spectrum",
    [
        "experiments/rbm_mnist/spectrum.rs",
        "linalg.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static EMIT_CODE: CodeGroup = code_group!(
    "rbm-mnist/emit",
    [
        "experiments/rbm_mnist/emit.rs",
        "emit/figure.rs",
        "emit/table.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);

/// Every code group of this experiment, for the coverage test.
pub fn code_groups() -> [&'static CodeGroup; 3] {
    [&PREPROCESS_CODE, &SPECTRUM_CODE, &EMIT_CODE]
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Plans the rbm-mnist experiment; raw files are looked up in `<root>/data/registry.toml`.
pub fn plan(doc: &SpecDocument, header: Header, root: &Path) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let registry = Registry::load(&root.join("data"))?;
    let entry = registry
        .get(&spec.train_images)
        .map_err(|e| doc.error("data.train_images", e.to_string()))?;
    let images = registry.path(entry);
    let preprocess = StageInstance {
        kind: StageKind::Preprocess,
        label: String::new(),
        params: serde_json::json!({ "centred": spec.centred, "train_images": spec.train_images }),
        deps: vec![],
        inputs: vec![images.clone()],
        code: &PREPROCESS_CODE,
        task: Arc::new(preprocess::CorrelationStage {
            registry: registry.clone(),
            name: spec.train_images.clone(),
            centred: spec.centred,
        }),
    };
    let preprocess_id = preprocess.id();
    let spectrum = StageInstance {
        kind: StageKind::Evaluate,
        label: "spectrum".into(),
        params: serde_json::json!({ "thresholds": spec.thresholds }),
        deps: vec![preprocess_id.clone()],
        inputs: vec![],
        code: &SPECTRUM_CODE,
        task: Arc::new(spectrum::SpectrumStage {
            preprocess_id: preprocess_id.clone(),
            thresholds: spec.thresholds.clone(),
        }),
    };
    let spectrum_id = spectrum.id();
    let emit = StageInstance {
        kind: StageKind::Emit,
        label: String::new(),
        params: serde_json::json!({ "mu_squared": spec.mu_squared }),
        deps: vec![preprocess_id.clone(), spectrum_id.clone()],
        inputs: vec![],
        code: &EMIT_CODE,
        task: Arc::new(emit::EmitStage {
            preprocess_id,
            spectrum_id,
            mu_squared: spec.mu_squared,
        }),
    };
    Ok(Plan {
        experiment: spec.header.name.clone(),
        kind: spec.header.kind.clone(),
        description: spec.header.description.clone(),
        seed: spec.header.seed,
        spec_path: doc.path.clone(),
        spec_hash: doc.hash(),
        resolved: json(&spec),
        instances: vec![preprocess, spectrum, emit],
    })
}
