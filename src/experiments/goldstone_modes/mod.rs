//! The Goldstone modes of the Gaussian RBM: the critique of "spontaneous symmetry breaking in
//! deep networks" asks whether a network's continuous symmetry makes some weights Goldstone
//! modes; the Gaussian RBM has one exactly (the likelihood depends on W only through WWᵀ, so
//! W → WR, R ∈ O(N_h), is a symmetry), so the question has exact answers.
//!
//! ```text
//! fit[<configuration>] (exact and trained stationary points)
//!   └─ evaluate[<configuration>] (Hessian spectrum vs closed form, flat-direction counts)
//! fit[deformation=<d>,n_hidden=<n>] (deformed minima over ε: surviving zeros, masses)
//! fit[estimator=<e>,learning_rate=<α>,batch=<|B|>] (SGD replicas: orbit MSA, noise of K)
//! fit[ensemble=<haar|weighted_l2>,…] (exact-gradient ensembles: weight correlations)
//! all ── emit
//! ```

mod deform;
mod diffuse;
mod emit;
mod emit_ensemble;
mod emit_orbit;
mod ensemble;
mod evaluate;
mod fit;

use std::path::Path;

use crate::error::Result;
use crate::pipeline::{Plan, PlanBuilder};
use crate::spec::goldstone_modes::{Deformation, parse};
use crate::spec::{Header, SpecDocument};

/// The `[experiment] kind` of this family's specs.
pub const KIND: &str = "goldstone-modes";

/// Registers the stage types this family plans, for workers that decode plan files.
pub fn register(tasks: &mut crate::pipeline::plan::TaskRegistry) {
    tasks
        .register::<fit::FitStage>()
        .register::<ensemble::EnsembleStage>()
        .register::<deform::DeformStage>()
        .register::<diffuse::DiffuseStage>()
        .register::<evaluate::EvaluateStage>()
        .register::<emit::EmitStage>();
}

/// Plans the goldstone-modes experiment.
pub fn plan(doc: &SpecDocument, header: Header, _root: &Path) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let mut plan = PlanBuilder::new();
    let mut evaluated = Vec::new();
    for configuration in &spec.configurations {
        let label = configuration.label();
        let fitted = plan.add(
            label.clone(),
            fit::FitStage {
                target: spec.target.clone(),
                configuration: configuration.clone(),
                training: spec.training.clone(),
                seed: spec.header.seed,
            },
        )?;
        let handle = plan.add(
            label,
            evaluate::EvaluateStage {
                target: spec.target.clone(),
                configuration: configuration.clone(),
                fit: fitted,
            },
        )?;
        evaluated.push((configuration.clone(), handle));
    }
    let mut deformed = Vec::new();
    for &deformation in Deformation::ALL {
        for &n_hidden in &spec.deformations.n_hidden {
            let handle = plan.add(
                deform::DeformStage::label(deformation, n_hidden),
                deform::DeformStage {
                    target: spec.target.clone(),
                    deformation,
                    n_hidden,
                    mu_squared: spec.deformations.mu_squared,
                    epsilons: spec.deformations.epsilons.clone(),
                    seed: spec.header.seed,
                },
            )?;
            deformed.push((deformation, n_hidden, handle));
        }
    }
    let d = &spec.diffusion;
    let mut diffusions = Vec::new();
    for &estimator in &d.estimators {
        for setting in &d.settings {
            let learning_rate = d.rate_of(estimator, setting);
            let handle = plan.add(
                diffuse::DiffuseStage::label(estimator, learning_rate, setting.batch),
                diffuse::DiffuseStage {
                    target: spec.target.clone(),
                    n_hidden: d.n_hidden,
                    mu_squared: d.mu_squared,
                    estimator,
                    source_scale: d.isotropic_scale,
                    learning_rate,
                    batch: setting.batch,
                    replicas: d.replicas,
                    burn_in: d.burn_in,
                    updates: d.updates,
                    record_every: d.record_every,
                    max_msa: d.max_msa,
                    seed: spec.header.seed,
                },
            )?;
            diffusions.push((estimator, *setting, handle));
        }
    }
    let e = &spec.ensemble;
    let mut ensembles = Vec::new();
    let contrast = e
        .configurations
        .first()
        .map(|c| (c.clone(), e.weighted_epsilon, e.weighted_runs));
    for (configuration, epsilon, runs) in e
        .configurations
        .iter()
        .map(|c| (c.clone(), 0.0, e.runs))
        .chain(contrast)
    {
        let label = ensemble::EnsembleStage::label(&configuration, epsilon);
        let handle = plan.add(
            label.clone(),
            ensemble::EnsembleStage {
                target: spec.target.clone(),
                configuration,
                runs,
                learning_rate: e.learning_rate,
                init_scale: spec.training.init_scale,
                gradient_tolerance: e.gradient_tolerance,
                max_updates: e.max_updates,
                epsilon,
                seed: spec.header.seed,
            },
        )?;
        ensembles.push((label, handle));
    }
    plan.add(
        "",
        emit::EmitStage {
            ensembles,
            configurations: evaluated,
            deformations: deformed,
            diffusions,
            scan_batch: d.scan_batch,
            scan_learning_rate: d.scan_learning_rate,
            diffusion_mu_squared: d.mu_squared,
        },
    )?;
    Ok(super::plan_of(doc, &spec.header, &spec, plan))
}
