//! The Gaussian RBM on MNIST (Park, Aarts & Lucini, slides 16–17 and 20).
//!
//! ```text
//! preprocess (images → train/test correlation matrices ⟨φ_i φ_j⟩, test digits)
//!   ├─ evaluate[spectrum] (784 eigenpairs; counts of small eigenvalues)
//!   ├─ fit[n_hidden=N] (maximum likelihood, one per N_h)
//!   │    └─ evaluate[reconstruction] (fixed-point check vs PCA, regenerated digits)
//!   └─ fit[relaxation,learning_rate=α] (gradient ascent back to a fixed point, per α)
//!        └─ evaluate[relaxation] (fitted τ vs the linearised flow)
//! all ── emit
//! ```
//!
//! The correlation matrix of MNIST has a band of (near-)zero eigenvalues — pixels that are zero
//! in every image give exact zeros — so the target kernel K = C⁻¹ has divergent modes: the
//! "UV-divergent data set". A Gaussian RBM with mass μ² can only learn modes with variance above
//! 1/μ², and with N_h hidden units only the N_h largest of those.

mod emit;
mod evaluate;
mod fit;
mod preprocess;
mod spectrum;

use std::path::Path;
use std::sync::Arc;

use crate::code_group;
use crate::data::registry::Registry;
use crate::error::Result;
use crate::pipeline::{CodeGroup, Plan, StageInstance, StageKind};
use crate::spec::rbm_mnist::{FitMethod, parse};
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
static FIT_CODE: CodeGroup = code_group!(
    "rbm-mnist/fit",
    [
        "experiments/rbm_mnist/fit.rs",
        "models/rbm/mod.rs",
        "models/rbm/ppca.rs",
        "models/rbm/train.rs",
        "linalg.rs",
        "seed.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static EVALUATE_CODE: CodeGroup = code_group!(
    "rbm-mnist/evaluate",
    [
        "experiments/rbm_mnist/evaluate.rs",
        "analysis/relaxation.rs",
        "models/rbm/mod.rs",
        "linalg.rs",
        "seed.rs",
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
pub fn code_groups() -> [&'static CodeGroup; 5] {
    [
        &PREPROCESS_CODE,
        &SPECTRUM_CODE,
        &FIT_CODE,
        &EVALUATE_CODE,
        &EMIT_CODE,
    ]
}

use super::json;

/// Plans the rbm-mnist experiment; raw files are looked up in `<root>/data/registry.toml`.
pub fn plan(doc: &SpecDocument, header: Header, root: &Path) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let registry = Registry::load(&root.join("data"))?;
    let mut inputs = Vec::new();
    for (key, name) in [
        ("data.train_images", &spec.train_images),
        ("data.test_images", &spec.test_images),
    ] {
        let entry = registry
            .get(name)
            .map_err(|e| doc.error(key, e.to_string()))?;
        inputs.push(registry.path(entry));
    }
    let model_params =
        serde_json::json!({ "mu_squared": spec.mu_squared, "sigma_h": spec.sigma_h });
    let mut instances = Vec::new();

    let preprocess = StageInstance {
        kind: StageKind::Preprocess,
        label: String::new(),
        params: serde_json::json!({
            "centred": spec.centred,
            "test_digits": spec.test_digits,
            "test_images": spec.test_images,
            "train_images": spec.train_images,
        }),
        deps: vec![],
        inputs,
        code: &PREPROCESS_CODE,
        task: Arc::new(preprocess::CorrelationStage {
            registry: registry.clone(),
            train_images: spec.train_images.clone(),
            test_images: spec.test_images.clone(),
            centred: spec.centred,
            test_digits: spec.test_digits,
        }),
    };
    let preprocess_id = preprocess.id();
    instances.push(preprocess);

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
    instances.push(spectrum);

    let fit_instance = |n_hidden: usize, extra_ml: bool| {
        let mut settings = spec.fit.clone();
        if extra_ml {
            settings.method = FitMethod::Ml;
        }
        StageInstance {
            kind: StageKind::Fit,
            label: fit::fit_label(n_hidden, extra_ml),
            params: serde_json::json!({
                "model": model_params,
                "n_hidden": n_hidden,
                "settings": json(&settings),
            }),
            deps: vec![preprocess_id.clone()],
            inputs: vec![],
            code: &FIT_CODE,
            task: Arc::new(fit::FitStage {
                label: fit::fit_label(n_hidden, extra_ml),
                n_hidden,
                mu_squared: spec.mu_squared,
                sigma_h: spec.sigma_h,
                settings,
                preprocess_id: preprocess_id.clone(),
                seed: spec.header.seed,
            }),
        }
    };
    let mut fit_ids = Vec::new();
    for &n_hidden in &spec.n_hidden {
        let fit = fit_instance(n_hidden, false);
        fit_ids.push(fit.id());
        instances.push(fit);
    }
    // The relaxation runs start from a maximum-likelihood fixed point: reuse the swept fit when
    // it is one, otherwise fit one for them.
    let relax_n = spec.relaxation.n_hidden;
    let reuse = spec.fit.method == FitMethod::Ml && spec.n_hidden.contains(&relax_n);
    let relax_label = fit::fit_label(relax_n, !reuse);
    let relax_fit_id = if reuse {
        fit_ids[spec
            .n_hidden
            .iter()
            .position(|&n| n == relax_n)
            .unwrap_or(0)]
        .clone()
    } else {
        let fit = fit_instance(relax_n, true);
        let id = fit.id();
        instances.push(fit);
        id
    };

    let mut run_ids = Vec::new();
    for &rate in &spec.relaxation.learning_rates {
        let run = StageInstance {
            kind: StageKind::Fit,
            label: fit::relaxation_label(rate),
            params: serde_json::json!({
                "learning_rate": rate,
                "model": model_params,
                "settings": json(&spec.relaxation),
            }),
            deps: vec![
                preprocess_id.clone(),
                spectrum_id.clone(),
                relax_fit_id.clone(),
            ],
            inputs: vec![],
            code: &FIT_CODE,
            task: Arc::new(fit::RelaxationStage {
                learning_rate: rate,
                settings: spec.relaxation.clone(),
                mu_squared: spec.mu_squared,
                sigma_h: spec.sigma_h,
                preprocess_id: preprocess_id.clone(),
                spectrum_id: spectrum_id.clone(),
                fit_id: relax_fit_id.clone(),
                fit_label: relax_label.clone(),
            }),
        };
        run_ids.push(run.id());
        instances.push(run);
    }

    let mut reconstruction_deps = vec![preprocess_id.clone(), spectrum_id.clone()];
    reconstruction_deps.extend(fit_ids.iter().cloned());
    let reconstruction = StageInstance {
        kind: StageKind::Evaluate,
        label: "reconstruction".into(),
        params: serde_json::json!({
            "gibbs_steps": spec.gibbs_steps,
            "model": model_params,
            "n_hidden": spec.n_hidden,
        }),
        deps: reconstruction_deps,
        inputs: vec![],
        code: &EVALUATE_CODE,
        task: Arc::new(evaluate::ReconstructionStage {
            n_hidden: spec.n_hidden.clone(),
            mu_squared: spec.mu_squared,
            sigma_h: spec.sigma_h,
            gibbs_steps: spec.gibbs_steps,
            centred: spec.centred,
            preprocess_id: preprocess_id.clone(),
            spectrum_id: spectrum_id.clone(),
            fit_ids,
            seed: spec.header.seed,
        }),
    };
    let reconstruction_id = reconstruction.id();
    instances.push(reconstruction);

    let mut relaxation_deps = vec![spectrum_id.clone()];
    relaxation_deps.extend(run_ids.iter().cloned());
    let relaxation = StageInstance {
        kind: StageKind::Evaluate,
        label: "relaxation".into(),
        params: serde_json::json!({
            "model": model_params,
            "settings": json(&spec.relaxation),
        }),
        deps: relaxation_deps,
        inputs: vec![],
        code: &EVALUATE_CODE,
        task: Arc::new(evaluate::RelaxationEvaluateStage {
            settings: spec.relaxation.clone(),
            mu_squared: spec.mu_squared,
            sigma_h: spec.sigma_h,
            spectrum_id: spectrum_id.clone(),
            run_ids: run_ids.clone(),
        }),
    };
    let relaxation_id = relaxation.id();
    instances.push(relaxation);

    let mut emit_deps = vec![
        preprocess_id.clone(),
        spectrum_id.clone(),
        reconstruction_id.clone(),
        relaxation_id.clone(),
    ];
    emit_deps.extend(run_ids.iter().cloned());
    let emit = StageInstance {
        kind: StageKind::Emit,
        label: String::new(),
        params: serde_json::json!({
            "gibbs_steps": spec.gibbs_steps,
            "model": model_params,
            "n_hidden": spec.n_hidden,
            "relaxation": json(&spec.relaxation),
        }),
        deps: emit_deps,
        inputs: vec![],
        code: &EMIT_CODE,
        task: Arc::new(emit::EmitStage {
            preprocess_id,
            spectrum_id,
            reconstruction_id,
            relaxation_id,
            run_ids,
            n_hidden: spec.n_hidden.clone(),
            mu_squared: spec.mu_squared,
            gibbs_steps: spec.gibbs_steps,
            relaxation: spec.relaxation.clone(),
        }),
    };
    instances.push(emit);
    Ok(super::plan_of(doc, &spec.header, &spec, instances))
}
