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

use std::path::Path;

use crate::error::Result;
use crate::pipeline::{Plan, PlanBuilder};
use crate::spec::rbm_scalar::parse;
use crate::spec::{Header, SpecDocument};

/// The `[experiment] kind` of this family's specs.
pub const KIND: &str = "rbm-scalar";

/// Registers the stage types this family plans, for workers that decode plan files.
pub fn register(tasks: &mut crate::pipeline::plan::TaskRegistry) {
    tasks
        .register::<preprocess::TargetStage>()
        .register::<fit::FitStage>()
        .register::<toy::ToyStage>()
        .register::<evaluate::EvaluateStage>()
        .register::<emit::EmitStage>();
}

/// Plans the rbm-scalar experiment from its spec.
pub fn plan(doc: &SpecDocument, header: Header, _root: &Path) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let seed = spec.header.seed;
    let mut plan = PlanBuilder::new();
    let target = plan.add(
        "",
        preprocess::TargetStage {
            target: spec.target.clone(),
        },
    )?;
    let mut fits = Vec::new();
    for f in &spec.fits {
        fits.push(plan.add(
            f.label(),
            fit::FitStage {
                fit: f.clone(),
                target: target.clone(),
                seed,
            },
        )?);
    }
    let toy = plan.add(
        "toy",
        toy::ToyStage {
            toy: spec.toy.clone(),
            seed,
        },
    )?;
    let mut points = Vec::new();
    for (f, fitted) in spec.fits.iter().zip(fits) {
        let evaluated = plan.add(
            f.label(),
            evaluate::EvaluateStage {
                fit: f.clone(),
                evaluate: spec.evaluate.clone(),
                target: target.clone(),
                fitted: fitted.clone(),
                seed,
            },
        )?;
        points.push(emit::FittedPoint {
            params: f.clone(),
            fit: fitted,
            evaluate: evaluated,
        });
    }
    plan.add(
        "",
        emit::EmitStage {
            fits: points,
            histogram_bins: spec.evaluate.histogram_bins,
            target,
            toy,
        },
    )?;
    Ok(super::plan_of(doc, &spec.header, &spec, plan))
}
