//! The scalar-field Gaussian RBM experiment (Park, Aarts & Lucini): the stage graph.
//!
//! ```text
//! preprocess (target K_φ, C_t = K_φ⁻¹, κ)
//!   ├─ fit[<group>,<sweep point>] ── evaluate[<group>,<sweep point>] ─┐
//!   │   (flow, cutoff_hidden, cutoff_mass, mu_trained, relaxation)    ├─ emit (tables, figures)
//! fit[toy] (N_v = 2, N_h = 1 rotation, against its closed form) ──────┘
//! ```
//!
//! Each fit instance trains an ensemble of models (exact or PCD) and records the spectrum of K,
//! ξ² and μ along training; each evaluate instance regenerates fields from the fitted model and
//! measures propagators, action densities and relaxation times against the predictions of the
//! model's fixed-point spectrum; emit draws the figures and writes the tables.

mod emit;
mod evaluate;
mod fit;
mod preprocess;
mod toy;

use std::sync::Arc;

use crate::code_group;
use crate::error::Result;
use crate::pipeline::{CodeGroup, Plan, StageInstance, StageKind};
use crate::spec::rbm_scalar::{FitParams, parse};
use crate::spec::{Header, SpecDocument};

static TARGET_CODE: CodeGroup = code_group!(
    "rbm-scalar/preprocess",
    [
        "experiments/rbm_scalar/preprocess.rs",
        "analysis/lattice.rs",
        "linalg.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static FIT_CODE: CodeGroup = code_group!(
    "rbm-scalar/fit",
    [
        "experiments/rbm_scalar/fit.rs",
        "models/rbm/mod.rs",
        "models/rbm/train.rs",
        "linalg.rs",
        "seed.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static EVALUATE_CODE: CodeGroup = code_group!(
    "rbm-scalar/evaluate",
    [
        "experiments/rbm_scalar/evaluate.rs",
        "models/rbm/mod.rs",
        "analysis/lattice.rs",
        "analysis/jackknife.rs",
        "analysis/relaxation.rs",
        "linalg.rs",
        "seed.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static TOY_CODE: CodeGroup = code_group!(
    "rbm-scalar/toy",
    [
        "experiments/rbm_scalar/toy.rs",
        "models/rbm/mod.rs",
        "models/rbm/train.rs",
        "linalg.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static EMIT_CODE: CodeGroup = code_group!(
    "rbm-scalar/emit",
    [
        "experiments/rbm_scalar/emit.rs",
        "emit/figure.rs",
        "emit/table.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);

/// Every code group of this experiment, for the coverage test.
pub fn code_groups() -> [&'static CodeGroup; 5] {
    [
        &TARGET_CODE,
        &FIT_CODE,
        &EVALUATE_CODE,
        &TOY_CODE,
        &EMIT_CODE,
    ]
}

use super::json;

/// Plans the rbm-scalar experiment from its spec.
pub fn plan(doc: &SpecDocument, header: Header) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let seed = spec.header.seed;
    let mut instances = Vec::new();
    instances.push(StageInstance {
        kind: StageKind::Preprocess,
        label: String::new(),
        params: json(&spec.target),
        deps: vec![],
        inputs: vec![],
        code: &TARGET_CODE,
        task: Arc::new(preprocess::TargetStage {
            params: spec.target.clone(),
        }),
    });
    let target_id = instances[0].id();
    let fit_id = |f: &FitParams| format!("fit[{}]", f.label());
    for f in &spec.fits {
        instances.push(StageInstance {
            kind: StageKind::Fit,
            label: f.label(),
            params: serde_json::json!({ "fit": json(f), "seed": seed }),
            deps: vec![target_id.clone()],
            inputs: vec![],
            code: &FIT_CODE,
            task: Arc::new(fit::FitStage {
                params: f.clone(),
                target_id: target_id.clone(),
                seed,
            }),
        });
    }
    instances.push(StageInstance {
        kind: StageKind::Fit,
        label: "toy".into(),
        params: serde_json::json!({ "toy": json(&spec.toy), "seed": seed }),
        deps: vec![],
        inputs: vec![],
        code: &TOY_CODE,
        task: Arc::new(toy::ToyStage {
            params: spec.toy.clone(),
            seed,
        }),
    });
    for f in &spec.fits {
        instances.push(StageInstance {
            kind: StageKind::Evaluate,
            label: f.label(),
            params: serde_json::json!({ "evaluate": json(&spec.evaluate), "seed": seed }),
            deps: vec![target_id.clone(), fit_id(f)],
            inputs: vec![],
            code: &EVALUATE_CODE,
            task: Arc::new(evaluate::EvaluateStage {
                fit: f.clone(),
                params: spec.evaluate.clone(),
                target_id: target_id.clone(),
                fit_id: fit_id(f),
                seed,
            }),
        });
    }
    let mut emit_deps = vec![target_id.clone(), "fit[toy]".to_string()];
    for f in &spec.fits {
        emit_deps.push(fit_id(f));
        emit_deps.push(format!("evaluate[{}]", f.label()));
    }
    instances.push(StageInstance {
        kind: StageKind::Emit,
        label: String::new(),
        params: serde_json::json!({
            "fits": spec.fits.iter().map(FitParams::label).collect::<Vec<_>>(),
            "histogram_bins": spec.evaluate.histogram_bins,
        }),
        deps: emit_deps,
        inputs: vec![],
        code: &EMIT_CODE,
        task: Arc::new(emit::EmitStage {
            fits: spec.fits.clone(),
            histogram_bins: spec.evaluate.histogram_bins,
            target_id,
        }),
    });
    Ok(super::plan_of(doc, &spec.header, &spec, instances))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::fingerprint::STAGE_NEUTRAL;

    fn sources(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if entry.path().is_dir() {
                sources(&entry.path(), &rel, out);
            } else if name.ends_with(".rs") {
                out.push(rel);
            }
        }
    }

    /// Every source file either feeds some stage's code fingerprint or is declared neutral, so
    /// no change to computing code can slip past the cache.
    #[test]
    fn every_source_file_is_fingerprinted_or_neutral() {
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            "",
            &mut files,
        );
        let unclaimed: Vec<&String> = files
            .iter()
            .filter(|f| {
                !STAGE_NEUTRAL.contains(&f.as_str())
                    && !crate::experiments::code_groups()
                        .iter()
                        .any(|g| g.contains(f))
            })
            .collect();
        assert!(
            unclaimed.is_empty(),
            "unclaimed source files: {unclaimed:?}"
        );
    }

    #[test]
    fn figure_code_is_not_in_any_computing_group() {
        for group in &code_groups()[..4] {
            assert!(!group.contains("emit/figure.rs"), "{}", group.name);
        }
    }
}
