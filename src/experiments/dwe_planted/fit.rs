//! Fit stage `fit[T=…,N=…,seed=…]`: the MAP dynamic skip-gram on the planted counts with every
//! optimiser of the spec — same initialisation (i.i.d. N(0, s²) per entry and step), same
//! minibatch stream — and the baseline once more after a post-hoc chain Procrustes alignment
//! ("baseline+posthoc"); every result compared with the truth. The prior is matched to the truth:
//! c = 1/D with D = s²·median(r_i)/(T − 1), σ_0² = 1.

use ndarray::{Array3, Axis, s};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::generate::load_truth;
use crate::analysis::agreement::{
    auc_lower, mean_absolute_error, pearson, precision_at_lowest, spearman,
};
use crate::analysis::alignment::{chain_procrustes, misalignment};
use crate::analysis::stats::median;
use crate::error::{Error, Result};
use crate::experiments::dwe::fit::gauge_fixer;
use crate::experiments::dwe::preprocess::load_counts;
use crate::fsutil::{read_json, write_json};
use crate::models::dwe::DynamicSkipGram;
use crate::models::dwe::kernel::CountsIndex;
use crate::models::dwe::train::{DweTrace, DweTrainConfig, train};
use crate::models::goldstone::gauge::GaugeOptions;
use crate::models::goldstone::train::Schedule;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::seed::rng_for;
use crate::spec::dwe::Optimizer;
use crate::spec::dwe_planted::PlantedFit;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct FitStage {
    pub fit: PlantedFit,
    pub steps: usize,
    pub counts: f64,
    pub seed: usize,
    pub base_seed: u64,
    pub generate: StageHandle,
}

/// One optimiser at one sweep point, against the truth.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PointRow {
    pub steps: usize,
    pub counts: f64,
    pub seed: usize,
    pub optimizer: String,
    /// Fitted vs true cos(u_first, u_last) over all words.
    pub cosine_pearson: f64,
    pub cosine_spearman: f64,
    pub cosine_mae: f64,
    pub mean_fitted_cosine: f64,
    pub twist_gap: f64,
    pub walls: usize,
    /// Walls at which an axis of the fit shrinks through zero (not a jump by a reflection).
    pub smooth_walls: usize,
    /// min/median over steps of the fit's smallest axis.
    pub axis_dip: f64,
    pub twist_path: f64,
    pub planted_precision_at_10: f64,
    pub planted_auc: f64,
    /// Final objective of the fit and of the truth on the same counts.
    pub loss: f64,
    pub truth_loss: f64,
    pub psi: f64,
    pub step_seconds: f64,
    pub gauge_seconds: f64,
    pub iterations: usize,
    pub phases: usize,
    /// Median wall time of one iteration and of one gauge phase, robust against work this
    /// thread did for other instances meanwhile (see [`crate::models::dwe::train::DweTrace`]).
    pub median_step_seconds: f64,
    pub median_phase_seconds: f64,
    /// Gauge time / step time from those medians.
    pub gauge_overhead: f64,
}

/// ψ and the objective at a recording point.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CurvePoint {
    pub optimizer: String,
    pub iteration: usize,
    pub loss: f64,
    pub psi: f64,
}

/// cos(u_{i,first}, u_{i,last}) of every word (the first `vocabulary` columns).
fn first_last_cosines(z: &Array3<f64>, vocabulary: usize) -> Result<Vec<f64>> {
    let last = z.dim().0 - 1;
    let (raw, _) = crate::experiments::dwe::fit::first_last_cosines(
        z.slice(s![0, .., ..vocabulary]),
        z.slice(s![last, .., ..vocabulary]),
    )?;
    Ok(raw)
}

/// What every fit of one instance is measured against.
struct Reference<'a> {
    model: &'a DynamicSkipGram,
    index: &'a CountsIndex,
    truth_z: &'a Array3<f64>,
    truth_cosines: &'a [f64],
    planted: &'a [usize],
    truth_loss: f64,
}

impl FitStage {
    /// The row of fit `z` (by `optimizer`, timed by `trace`) against the truth.
    fn row(
        &self,
        reference: &Reference<'_>,
        optimizer: &str,
        z: &Array3<f64>,
        trace: &DweTrace,
    ) -> Result<PointRow> {
        let v = reference.model.vocabulary;
        let (truth_cosines, planted) = (reference.truth_cosines, reference.planted);
        let fitted = first_last_cosines(z, v)?;
        let m = misalignment(z.view(), reference.truth_z.view())?;
        let loss = reference.model.fast_loss(reference.index, z);
        Ok(PointRow {
            steps: self.steps,
            counts: self.counts,
            seed: self.seed,
            optimizer: optimizer.into(),
            cosine_pearson: pearson(&fitted, truth_cosines),
            cosine_spearman: spearman(&fitted, truth_cosines),
            cosine_mae: mean_absolute_error(&fitted, truth_cosines),
            mean_fitted_cosine: fitted.iter().sum::<f64>() / v as f64,
            twist_gap: m.twist_gap,
            walls: m.walls,
            smooth_walls: m.smooth_walls,
            axis_dip: m.axis_dip,
            twist_path: m.twist_path,
            planted_precision_at_10: precision_at_lowest(&fitted, planted, 10),
            planted_auc: auc_lower(&fitted, planted),
            loss: loss.total(),
            truth_loss: reference.truth_loss,
            psi: loss.coupling,
            step_seconds: trace.step_seconds(),
            gauge_seconds: trace.gauge_seconds(),
            iterations: self.fit.iterations,
            phases: trace.phases(),
            median_step_seconds: trace.median_step_seconds(),
            median_phase_seconds: trace.median_phase_seconds(),
            gauge_overhead: trace.gauge_overhead(),
        })
    }
}

impl Stage for FitStage {
    const KIND: StageKind = StageKind::Fit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("dwe-planted/fit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let dir = ctx.upstream(&self.generate)?;
        let (truth, s2) = load_truth(dir)?;
        let (_, steps, v) = load_counts(dir)?;
        let t_steps = steps.len();
        let typical_rate = median(&mut truth.rates.clone()).unwrap_or(1.0);
        let diffusion = s2 * typical_rate / (t_steps - 1) as f64;
        let times: Vec<f64> = (0..t_steps).map(|t| t as f64).collect();
        let model = DynamicSkipGram {
            steps,
            vocabulary: v,
            eta: 1.0,
            prior_variance: 1.0,
            couplings: DynamicSkipGram::ou_couplings(&times, diffusion),
        };
        let index = CountsIndex::new(&model);
        let truth_z = ndarray::concatenate(Axis(2), &[truth.words.view(), truth.contexts.view()])
            .map_err(|e| Error::Other(format!("truth shapes: {e}")))?;
        let d = truth_z.dim().1;
        let truth_cosines = first_last_cosines(&truth_z, v)?;
        let reference = Reference {
            model: &model,
            index: &index,
            truth_z: &truth_z,
            truth_cosines: &truth_cosines,
            planted: &truth.planted,
            truth_loss: model.fast_loss(&index, &truth_z).total(),
        };
        let f = &self.fit;
        let label = format!("T={},N={},seed={}", self.steps, self.counts, self.seed);
        let mut init_rng = rng_for(self.base_seed, &format!("init/{label}"));
        let z0 = Array3::from_shape_simple_fn((t_steps, d, 2 * v), || {
            let x: f64 = StandardNormal.sample(&mut init_rng);
            f.init_scale * x
        });
        let gauge = GaugeOptions::for_variant(f.gauge, f.k2);
        let mut rows = Vec::new();
        let mut curves = Vec::new();
        ctx.progress
            .set_length((f.optimizers.len() * f.iterations) as u64);
        for (o, optimizer) in f.optimizers.iter().enumerate() {
            let config = DweTrainConfig {
                iterations: f.iterations,
                minibatch: f.minibatch,
                schedule: Schedule {
                    rate: f.rate,
                    offset: f.offset,
                    exponent: f.exponent,
                    clip: None,
                },
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
                gauge: gauge_fixer(*optimizer, f.k1, gauge)?,
                record_every: f.record_every,
            };
            let mut minibatch_rng = rng_for(self.base_seed, &format!("minibatch/{label}"));
            let trace = train(
                &model,
                &index,
                z0.clone(),
                &config,
                &mut minibatch_rng,
                |s, z| {
                    ctx.progress.set_position((o * f.iterations + s) as u64);
                    let parts = model.fast_loss(&index, z);
                    ctx.progress.set_detail(format!(
                        "{optimizer} at {label}: loss {:.6e}, ψ {:.4e}",
                        parts.total(),
                        parts.coupling
                    ));
                    curves.push(CurvePoint {
                        optimizer: optimizer.name().to_string(),
                        iteration: s,
                        loss: parts.total(),
                        psi: parts.coupling,
                    });
                    Ok(())
                },
            )
            .map_err(|e| Error::Other(format!("{optimizer} at {label}: {e}")))?;
            rows.push(self.row(&reference, optimizer.name(), &trace.last, &trace)?);
            if *optimizer == Optimizer::Baseline {
                let mut aligned = trace.last.clone();
                chain_procrustes(&mut aligned)?;
                rows.push(self.row(&reference, "baseline+posthoc", &aligned, &trace)?);
            }
        }
        write_json(&ctx.out_dir.join("rows.json"), &rows)?;
        write_json(&ctx.out_dir.join("curves.json"), &curves)
    }
}

/// Reads the rows and curves of a fit instance.
pub fn load(dir: &std::path::Path) -> Result<(Vec<PointRow>, Vec<CurvePoint>)> {
    Ok((
        read_json(&dir.join("rows.json"))?,
        read_json(&dir.join("curves.json"))?,
    ))
}
