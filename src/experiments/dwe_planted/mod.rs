//! The planted-truth benchmark for dynamic word embeddings: counts sampled from known, slowly
//! drifting embeddings ([`crate::models::dwe::planted`]), fitted with every optimiser, and every
//! fit measured against the truth — where the Goldstone problem exists, as a function of the
//! count scale N_t and the chain length T.
//!
//! ```text
//! preprocess[T,N,seed] (truth + Poisson counts) ─ fit[T,N,seed] (optimisers, vs truth)
//!                                                    └─ evaluate (medians) ─┐
//! preprocess[corpus=E] (dwe spec E's counts) ─ evaluate[corpus=E] (Σn⁺ per step) ─ emit
//! ```

mod corpus;
mod emit;
mod evaluate;
mod fit;
mod generate;

use std::path::Path;

use crate::error::Result;
use crate::pipeline::{Plan, PlanBuilder, StageHandle};
use crate::spec::dwe_planted::parse;
use crate::spec::{Header, SpecDocument};

/// Adds the instances that measure the count scale of compared experiment `name`: its own
/// counts stage (from the spec `name`.toml beside `doc`, relabelled) and the per-step totals.
fn plan_corpus(
    plan: &mut PlanBuilder,
    doc: &SpecDocument,
    name: &str,
    planted_vocabulary: usize,
    root: &Path,
) -> Result<StageHandle> {
    let key = "compare.experiments";
    let folder = doc.path.parent().unwrap_or(Path::new("."));
    let path = folder.join(format!("{name}.toml"));
    if !path.is_file() {
        return Err(doc.error(key, format!("no spec {} for {name:?}", path.display())));
    }
    let compared = SpecDocument::load(&path)?;
    let header = compared.header()?;
    if header.kind != super::dwe::KIND {
        return Err(doc.error(
            key,
            format!("{name:?} is a {:?} experiment, not a dwe one", header.kind),
        ));
    }
    let spec = crate::spec::dwe::parse(&compared, header)?;
    if spec.googlebooks.is_some() {
        return Err(doc.error(
            key,
            format!(
                "{name:?} counts Google Books slices; only corpus-backed dwe specs can be \
                 compared (the slices would be downloaded)"
            ),
        ));
    }
    let label = format!("corpus={name}");
    let counts = super::dwe::plan_corpus_counts(plan, &label, &compared, &spec, root)?;
    let mut binnings: Vec<corpus::Binning> = Vec::new();
    for regime in &spec.regimes {
        let binning = corpus::Binning {
            bin_years: regime.bin_years,
            count_scale: regime.count_scale,
        };
        if !binnings.contains(&binning) {
            binnings.push(binning);
        }
    }
    plan.add(
        label,
        corpus::CorpusScaleStage {
            experiment: name.to_string(),
            binnings,
            planted_vocabulary,
            counts,
        },
    )
}

/// The `[experiment] kind` of this family's specs.
pub const KIND: &str = "dwe-planted";

/// Registers the stage types this family plans, for workers that decode plan files.
pub fn register(tasks: &mut crate::pipeline::plan::TaskRegistry) {
    tasks
        .register::<generate::GenerateStage>()
        .register::<corpus::CorpusScaleStage>()
        .register::<fit::FitStage>()
        .register::<evaluate::EvaluateStage>()
        .register::<emit::EmitStage>();
}

/// Plans a dwe-planted experiment; `root` holds the data registry of compared experiments.
pub fn plan(doc: &SpecDocument, header: Header, root: &Path) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let mut plan = PlanBuilder::new();
    // The compared corpora's counts first and the longest chains next: instances start in plan
    // order, so the long ones do not trail at the end with a core idle.
    let mut corpora = Vec::new();
    for name in &spec.compare {
        corpora.push(plan_corpus(
            &mut plan,
            doc,
            name,
            spec.truth.vocabulary,
            root,
        )?);
    }
    let mut longest_first = spec.steps.clone();
    longest_first.sort_unstable_by(|a, b| b.cmp(a));
    let mut fits = Vec::new();
    for &steps in &longest_first {
        for &counts in &spec.counts {
            for seed in 0..spec.seeds {
                let label = format!("T={steps},N={counts:e},seed={seed}");
                let mut truth = spec.truth.clone();
                truth.steps = steps;
                let generate = plan.add(
                    label.clone(),
                    generate::GenerateStage {
                        options: truth,
                        counts,
                        base_seed: spec.header.seed,
                        seed,
                    },
                )?;
                fits.push(plan.add(
                    label,
                    fit::FitStage {
                        fit: spec.fit.clone(),
                        steps,
                        counts,
                        seed,
                        base_seed: spec.header.seed,
                        generate,
                    },
                )?);
            }
        }
    }
    let evaluate = plan.add("", evaluate::EvaluateStage { fits })?;
    plan.add("", emit::EmitStage { evaluate, corpora })?;
    Ok(super::plan_of(doc, &spec.header, &spec, plan))
}
