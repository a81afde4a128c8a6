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

use crate::data::registry::Registry;
use crate::error::Result;
use crate::pipeline::{Plan, PlanBuilder};
use crate::spec::rbm_mnist::{FitMethod, parse};
use crate::spec::{Header, SpecDocument};

/// The `[experiment] kind` of this family's specs.
pub const KIND: &str = "rbm-mnist";

/// Registers the stage types this family plans, for workers that decode plan files.
pub fn register(tasks: &mut crate::pipeline::plan::TaskRegistry) {
    tasks
        .register::<preprocess::CorrelationStage>()
        .register::<fit::FitStage>()
        .register::<fit::RelaxationStage>()
        .register::<spectrum::SpectrumStage>()
        .register::<evaluate::ReconstructionStage>()
        .register::<evaluate::RelaxationEvaluateStage>()
        .register::<emit::EmitStage>();
}

/// Plans the rbm-mnist experiment; raw files are looked up in `<root>/data/registry.toml`.
pub fn plan(doc: &SpecDocument, header: Header, root: &Path) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let registry = Registry::load(&root.join("data"))?;
    let input = |key: &str, name: &str| {
        registry
            .input(name)
            .map_err(|e| doc.error(key, e.to_string()))
    };
    let mut plan = PlanBuilder::new();
    let preprocess = plan.add(
        "",
        preprocess::CorrelationStage {
            train_images: input("data.train_images", &spec.train_images)?,
            test_images: input("data.test_images", &spec.test_images)?,
            centred: spec.centred,
            test_digits: spec.test_digits,
        },
    )?;
    let spectrum = plan.add(
        "spectrum",
        spectrum::SpectrumStage {
            preprocess: preprocess.clone(),
            thresholds: spec.thresholds.clone(),
        },
    )?;

    let fit = |plan: &mut PlanBuilder, n_hidden: usize, extra_ml: bool| {
        let mut settings = spec.fit.clone();
        if extra_ml {
            settings.method = FitMethod::Ml;
        }
        let label = fit::fit_label(n_hidden, extra_ml);
        plan.add(
            label.clone(),
            fit::FitStage {
                label,
                n_hidden,
                mu_squared: spec.mu_squared,
                sigma_h: spec.sigma_h,
                settings,
                preprocess: preprocess.clone(),
                seed: spec.header.seed,
            },
        )
    };
    let mut fits = Vec::new();
    for &n_hidden in &spec.n_hidden {
        fits.push(fit(&mut plan, n_hidden, false)?);
    }
    // The relaxation runs start from a maximum-likelihood fixed point: reuse the swept fit when
    // it is one, otherwise fit one for them.
    let relax_n = spec.relaxation.n_hidden;
    let swept = spec.n_hidden.iter().position(|&n| n == relax_n);
    let (relax_fit, relax_label) = match swept {
        Some(i) if spec.fit.method == FitMethod::Ml => {
            (fits[i].clone(), fit::fit_label(relax_n, false))
        }
        _ => (
            fit(&mut plan, relax_n, true)?,
            fit::fit_label(relax_n, true),
        ),
    };

    let mut runs = Vec::new();
    for &rate in &spec.relaxation.learning_rates {
        runs.push(plan.add(
            fit::relaxation_label(rate),
            fit::RelaxationStage {
                learning_rate: rate,
                settings: spec.relaxation.clone(),
                mu_squared: spec.mu_squared,
                sigma_h: spec.sigma_h,
                preprocess: preprocess.clone(),
                spectrum: spectrum.clone(),
                fit: relax_fit.clone(),
                fit_label: relax_label.clone(),
            },
        )?);
    }
    let reconstruction = plan.add(
        "reconstruction",
        evaluate::ReconstructionStage {
            n_hidden: spec.n_hidden.clone(),
            mu_squared: spec.mu_squared,
            sigma_h: spec.sigma_h,
            gibbs_steps: spec.gibbs_steps,
            centred: spec.centred,
            preprocess: preprocess.clone(),
            spectrum: spectrum.clone(),
            fits,
            seed: spec.header.seed,
        },
    )?;
    let relaxation = plan.add(
        "relaxation",
        evaluate::RelaxationEvaluateStage {
            settings: spec.relaxation.clone(),
            mu_squared: spec.mu_squared,
            sigma_h: spec.sigma_h,
            spectrum: spectrum.clone(),
            runs: runs.clone(),
        },
    )?;
    plan.add(
        "",
        emit::EmitStage {
            preprocess,
            spectrum,
            reconstruction,
            relaxation,
            runs,
            n_hidden: spec.n_hidden.clone(),
            mu_squared: spec.mu_squared,
            gibbs_steps: spec.gibbs_steps,
            relaxation_settings: spec.relaxation.clone(),
        },
    )?;
    Ok(super::plan_of(doc, &spec.header, &spec, plan))
}
