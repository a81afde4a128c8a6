//! Fit stage `fit[variant=v,init_scale=s]`: every seed of one optimiser variant from one
//! initialisation scale. Seed k starts every variant from the same Z (i.i.d. N(0, s²) entries,
//! drawn from the spec seed, the scale and k), so runs differ only by the optimiser.
//!
//! Outputs: `arrays/fit.<slug>.loss.npy` and `.coupling.npy` (seeds × (iterations + 1), NaN
//! after a divergence), `.snapshots.npy` (seeds × snapshots × T × d × N; NaN where a run had
//! ended) and `runs.json` (divergence iteration and wall times per seed).

use ndarray::{Array2, Array3, Array5, s};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::preprocess;
use crate::emit::npy;
use crate::emit::slug;
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::models::goldstone::dense_mf::DenseMf;
use crate::models::goldstone::gauge::GaugeOptions;
use crate::models::goldstone::train::{TrainConfig, mirror_walls, train};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::seed::rng_for;
use crate::spec::gauge::GaugeVariant;
use crate::spec::goldstone_synthetic::GoldstoneSyntheticSpec;

/// Label of a fit instance.
pub fn label(variant: GaugeVariant, init_scale: f64) -> String {
    format!("variant={variant},init_scale={init_scale}")
}

fn prefix(label: &str) -> String {
    format!("fit.{}", slug(label))
}

/// Per-seed facts of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunFacts {
    pub seed: usize,
    pub diverged_at: Option<usize>,
    pub step_seconds: f64,
    pub gauge_seconds: f64,
    pub phases: usize,
    /// Mirror domain walls in the final Z (links with det(Z_{t+1}Z_tᵀ) < 0).
    pub mirror_walls: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct FitStage {
    pub spec: GoldstoneSyntheticSpec,
    pub variant: GaugeVariant,
    pub init_scale: f64,
    pub data: StageHandle,
}

/// A total loss this many times the start's ends a run as diverged (converging runs only ever
/// fall below their start; a blow-up passes this within a few iterations).
const DIVERGENCE_FACTOR: f64 = 100.0;

/// The model of the spec on data X.
pub fn model(spec: &GoldstoneSyntheticSpec, x: &Array2<f64>) -> DenseMf {
    DenseMf {
        data: vec![x.clone(); spec.steps],
        couplings: spec.couplings.clone(),
    }
}

/// The initial Z of seed `seed` at scale `init_scale`.
pub fn initial(spec: &GoldstoneSyntheticSpec, init_scale: f64, seed: usize) -> Array3<f64> {
    let mut rng = rng_for(
        spec.header.seed,
        &format!("init/scale={init_scale}/seed={seed}"),
    );
    Array3::from_shape_simple_fn((spec.steps, spec.dim, spec.rows + spec.cols), || {
        let x: f64 = StandardNormal.sample(&mut rng);
        init_scale * x
    })
}

impl Stage for FitStage {
    const KIND: StageKind = StageKind::Fit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("goldstone-synthetic/fit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let spec = &self.spec;
        let x = preprocess::load(ctx.upstream(&self.data)?)?;
        let model = model(spec, &x);
        let goldstone = GaugeOptions::for_variant(self.variant, spec.k2).map(|o| (spec.k1, o));
        ctx.progress.set_length(spec.seeds as u64);
        let done = std::sync::atomic::AtomicU64::new(0);
        let traces = (0..spec.seeds)
            .into_par_iter()
            .map(|seed| {
                let z = initial(spec, self.init_scale, seed);
                let start = model.loss(&z).total();
                let config = TrainConfig {
                    iterations: spec.iterations,
                    schedule: spec.schedule,
                    optimizer: spec.optimizer,
                    goldstone,
                    snapshots: spec.snapshots.clone(),
                    divergence_bound: DIVERGENCE_FACTOR * start.max(1.0),
                };
                let trace = train(&model, z, &config);
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                ctx.progress.set_position(n);
                trace
            })
            .collect::<Result<Vec<_>>>()?;
        let width = spec.iterations + 1;
        let curve = |coupling: bool| {
            Array2::from_shape_fn((spec.seeds, width), |(k, i)| {
                let values = if coupling {
                    &traces[k].coupling
                } else {
                    &traces[k].loss
                };
                values.get(i).copied().unwrap_or(f64::NAN)
            })
        };
        let loss = curve(false);
        let coupling = curve(true);
        let n = spec.rows + spec.cols;
        let mut snapshots = Array5::from_elem(
            (spec.seeds, spec.snapshots.len(), spec.steps, spec.dim, n),
            f64::NAN,
        );
        for (k, trace) in traces.iter().enumerate() {
            for (iteration, z) in &trace.snapshots {
                if let Some(j) = spec.snapshots.iter().position(|s| s == iteration) {
                    snapshots.slice_mut(s![k, j, .., .., ..]).assign(z);
                }
            }
        }
        let facts: Vec<RunFacts> = traces
            .iter()
            .enumerate()
            .map(|(seed, t)| RunFacts {
                seed,
                diverged_at: t.diverged_at,
                step_seconds: t.step_seconds,
                gauge_seconds: t.gauge_seconds,
                phases: t.phases,
                mirror_walls: mirror_walls(&t.last),
            })
            .collect();
        let name = label(self.variant, self.init_scale);
        let arrays = ctx.out_dir.join("arrays");
        let path = |what: &str| arrays.join(format!("{}.{what}.npy", prefix(&name)));
        npy::write(&path("loss"), &loss)?;
        npy::write(&path("coupling"), &coupling)?;
        npy::write(&path("snapshots"), &snapshots)?;
        write_json(&ctx.out_dir.join("runs.json"), &facts)
    }
}

/// What one fit instance wrote.
pub struct FitOutput {
    pub loss: Array2<f64>,
    pub coupling: Array2<f64>,
    pub snapshots: Array5<f64>,
    pub runs: Vec<RunFacts>,
}

/// Reads the outputs of `fit[variant,init_scale]` from its folder.
pub fn load(dir: &std::path::Path, variant: GaugeVariant, init_scale: f64) -> Result<FitOutput> {
    let name = label(variant, init_scale);
    let arrays = dir.join("arrays");
    let path = |what: &str| arrays.join(format!("{}.{what}.npy", prefix(&name)));
    Ok(FitOutput {
        loss: npy::read(&path("loss"))?,
        coupling: npy::read(&path("coupling"))?,
        snapshots: npy::read(&path("snapshots"))?,
        runs: read_json(&dir.join("runs.json"))?,
    })
}
