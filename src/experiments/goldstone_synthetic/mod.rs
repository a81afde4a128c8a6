//! Goldstone-GD on synthetic dense dynamic matrix factorisation (Bamler & Mandt, ICML 2018 §5.1
//! and Fig. 2), with the dispersion relation of the chain (QFT 2019 Fig. 1b).
//!
//! ```text
//! preprocess (X = ŪᵀV̄ + noise)
//!   ├─ fit[variant=v,init_scale=s] (all seeds of one optimiser variant)
//!   │    └─ evaluate[speedup] (thresholds, medians over seeds, divergences)
//!   └─ evaluate[dispersion] (Laplacian and Hessian spectra, condition numbers)
//! all ── emit
//! ```

mod emit;
mod evaluate;
mod fit;
mod preprocess;

use std::sync::Arc;

use crate::code_group;
use crate::error::Result;
use crate::pipeline::{CodeGroup, Plan, StageInstance, StageKind};
use crate::spec::goldstone_synthetic::parse;
use crate::spec::{Header, SpecDocument};

static PREPROCESS_CODE: CodeGroup = code_group!(
    "goldstone-synthetic/preprocess",
    [
        "experiments/goldstone_synthetic/preprocess.rs",
        "seed.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static FIT_CODE: CodeGroup = code_group!(
    "goldstone-synthetic/fit",
    [
        "experiments/goldstone_synthetic/fit.rs",
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
    "goldstone-synthetic/evaluate",
    [
        "analysis/stats.rs",
        "experiments/goldstone_synthetic/evaluate.rs",
        "experiments/goldstone_synthetic/fit.rs",
        "models/goldstone/mod.rs",
        "models/goldstone/dense_mf.rs",
        "linalg.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static EMIT_CODE: CodeGroup = code_group!(
    "goldstone-synthetic/emit",
    [
        "analysis/stats.rs",
        "experiments/goldstone_synthetic/emit.rs",
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

use super::json;

/// Plans the goldstone-synthetic experiment.
pub fn plan(doc: &SpecDocument, header: Header) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let mut instances = Vec::new();
    let data = StageInstance {
        kind: StageKind::Preprocess,
        label: String::new(),
        params: serde_json::json!({
            "cols": spec.cols,
            "noise_variance": spec.noise_variance,
            "rank": spec.rank,
            "rows": spec.rows,
            "seed": spec.header.seed,
        }),
        deps: vec![],
        inputs: vec![],
        code: &PREPROCESS_CODE,
        task: Arc::new(preprocess::DataStage {
            rows: spec.rows,
            cols: spec.cols,
            rank: spec.rank,
            noise_variance: spec.noise_variance,
            seed: spec.header.seed,
        }),
    };
    let data_id = data.id();
    instances.push(data);

    // Everything a fit depends on except the variant and the scale.
    let shared = serde_json::json!({
        "couplings": spec.couplings,
        "dim": spec.dim,
        "iterations": spec.iterations,
        "k1": spec.k1,
        "k2": spec.k2,
        "optimizer": json(&spec.optimizer),
        "schedule": json(&spec.schedule),
        "seed": spec.header.seed,
        "seeds": spec.seeds,
        "snapshots": spec.snapshots,
        "steps": spec.steps,
    });
    let mut fit_ids = Vec::new();
    for variant in &spec.variants {
        for &scale in &spec.init_scales {
            let instance = StageInstance {
                kind: StageKind::Fit,
                label: fit::label(variant, scale),
                params: serde_json::json!({
                    "init_scale": scale,
                    "shared": shared,
                    "variant": variant,
                }),
                deps: vec![data_id.clone()],
                inputs: vec![],
                code: &FIT_CODE,
                task: Arc::new(fit::FitStage {
                    spec: spec.clone(),
                    variant: variant.clone(),
                    init_scale: scale,
                    data_id: data_id.clone(),
                }),
            };
            fit_ids.push(((variant.clone(), scale), instance.id()));
            instances.push(instance);
        }
    }

    let mut fit_deps: Vec<String> = fit_ids.iter().map(|(_, id)| id.clone()).collect();
    fit_deps.sort();
    let mut speedup_deps = fit_deps.clone();
    speedup_deps.push(data_id.clone());
    let speedup = StageInstance {
        kind: StageKind::Evaluate,
        label: "speedup".into(),
        params: serde_json::json!({ "thresholds": spec.thresholds }),
        deps: speedup_deps.clone(),
        inputs: vec![],
        code: &EVALUATE_CODE,
        task: Arc::new(evaluate::SpeedupStage {
            spec: spec.clone(),
            data_id: data_id.clone(),
            fit_ids: fit_ids.clone(),
        }),
    };
    let speedup_id = speedup.id();
    instances.push(speedup);

    let dispersion = StageInstance {
        kind: StageKind::Evaluate,
        label: "dispersion".into(),
        params: serde_json::json!({
            "couplings": spec.couplings,
            "dim": spec.dim,
            "sizes": spec.sizes,
            "steps": spec.steps,
        }),
        deps: vec![data_id.clone()],
        inputs: vec![],
        code: &EVALUATE_CODE,
        task: Arc::new(evaluate::DispersionStage {
            spec: spec.clone(),
            data_id: data_id.clone(),
        }),
    };
    let dispersion_id = dispersion.id();
    instances.push(dispersion);

    let mut emit_deps = fit_deps;
    emit_deps.push(speedup_id.clone());
    emit_deps.push(dispersion_id.clone());
    instances.push(StageInstance {
        kind: StageKind::Emit,
        label: String::new(),
        params: serde_json::json!({
            "default_variant": spec.default_variant,
            "snapshot_seed": spec.snapshot_seed,
        }),
        deps: emit_deps,
        inputs: vec![],
        code: &EMIT_CODE,
        task: Arc::new(emit::EmitStage {
            spec: spec.clone(),
            fit_ids,
            speedup_id,
            dispersion_id,
        }),
    });
    Ok(super::plan_of(doc, &spec.header, &spec, instances))
}
