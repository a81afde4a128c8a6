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

use std::path::Path;

use crate::error::Result;
use crate::pipeline::{Plan, PlanBuilder};
use crate::spec::goldstone_synthetic::parse;
use crate::spec::{Header, SpecDocument};

/// The `[experiment] kind` of this family's specs.
pub const KIND: &str = "goldstone-synthetic";

/// Registers the stage types this family plans, for workers that decode plan files.
pub fn register(tasks: &mut crate::pipeline::plan::TaskRegistry) {
    tasks
        .register::<preprocess::DataStage>()
        .register::<fit::FitStage>()
        .register::<evaluate::SpeedupStage>()
        .register::<evaluate::DispersionStage>()
        .register::<emit::EmitStage>();
}

/// Plans the goldstone-synthetic experiment.
pub fn plan(doc: &SpecDocument, header: Header, _root: &Path) -> Result<Plan> {
    let spec = parse(doc, header)?;
    // Stages read the spec's values and its seed, never its name or description.
    let mut stage_spec = spec.clone();
    stage_spec.header = spec.header.stage_view();
    let mut plan = PlanBuilder::new();
    let data = plan.add(
        "",
        preprocess::DataStage {
            rows: spec.rows,
            cols: spec.cols,
            rank: spec.rank,
            noise_variance: spec.noise_variance,
            seed: spec.header.seed,
        },
    )?;
    let mut fits = Vec::new();
    for &variant in &spec.variants {
        for &scale in &spec.init_scales {
            let fitted = plan.add(
                fit::label(variant, scale),
                fit::FitStage {
                    spec: stage_spec.clone(),
                    variant,
                    init_scale: scale,
                    data: data.clone(),
                },
            )?;
            fits.push(((variant, scale), fitted));
        }
    }
    let speedup = plan.add(
        "speedup",
        evaluate::SpeedupStage {
            spec: stage_spec.clone(),
            data: data.clone(),
            fits: fits.clone(),
        },
    )?;
    let dispersion = plan.add(
        "dispersion",
        evaluate::DispersionStage {
            spec: stage_spec.clone(),
            data,
        },
    )?;
    plan.add(
        "",
        emit::EmitStage {
            spec: stage_spec,
            fits,
            speedup,
            dispersion,
        },
    )?;
    Ok(super::plan_of(doc, &spec.header, &spec, plan))
}
