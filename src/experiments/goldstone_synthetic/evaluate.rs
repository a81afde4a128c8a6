//! Evaluate stages. `evaluate[speedup]`: for every initialisation scale and seed, the iteration
//! at which each run first comes within each threshold of two references — the best final loss
//! of any variant on that seed (the paper's measure) and the global minimum, known in closed form
//! (T·½‖X − X_d‖² with X_d the rank-d truncation) — divergences, mirror walls, and per variant
//! the medians over seeds (iterations, speed-up against the baseline on the same seed, final
//! excess loss). A run stuck behind a mirror wall never reaches the global minimum, so both
//! references are reported. `evaluate[dispersion]`: the chain Laplacian's
//! spectrum against h_ν = (2 − 2cos(πν/T))λ, the condition number h_{T−1}/h_1 against 4T²/π²,
//! and the Hessian of the full loss at the analytic minimum with the multiplicities of its
//! eigenvalues at h_ν.
//!
//! At the minimum Z_t = Z* (time-constant: the rank-d truncation of X, split as U = √S Uᵀ,
//! V = √S Vᵀ) the data term is flat along the GL(d) orbit, whose tangent space at Z* has
//! dimension d². For a tangent direction w and a Laplacian eigenvector e_ν, e_ν ⊗ w is annihilated
//! by the data Hessian and is an eigenvector of the coupling Hessian L ⊗ 1, so every h_ν is an
//! exact Hessian eigenvalue of multiplicity d² — not the d(d−1)/2 of the rotations alone.

use ndarray::{Array1, Array2, Array3, s};
use serde::{Deserialize, Serialize};

use super::fit::{self, RunFacts};
use super::preprocess;
use crate::analysis::stats::median;
use crate::emit::npy;
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::linalg::{symmetric_eigen, symmetric_eigenvalues};
use crate::models::goldstone::ChainLaplacian;
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::spec::gauge::GaugeVariant;
use crate::spec::goldstone_synthetic::GoldstoneSyntheticSpec;

/// One run against the best final loss of its seed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRow {
    pub variant: GaugeVariant,
    pub init_scale: f64,
    pub seed: usize,
    pub final_loss: Option<f64>,
    pub final_coupling: Option<f64>,
    pub best_final_loss: f64,
    pub global_minimum: f64,
    pub diverged_at: Option<usize>,
    pub mirror_walls: usize,
    /// First iteration within each threshold of the best final loss.
    pub reached: Vec<Option<usize>>,
    /// First iteration within each threshold of the global minimum.
    pub reached_global: Vec<Option<usize>>,
    pub step_seconds: f64,
    pub gauge_seconds: f64,
}

/// Medians over seeds for one variant, scale and threshold.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SpeedupRow {
    pub variant: GaugeVariant,
    pub init_scale: f64,
    /// `best_final` or `global_minimum`.
    pub reference: String,
    pub threshold: f64,
    pub seeds: usize,
    pub reached: usize,
    pub diverged: usize,
    pub median_iterations: Option<f64>,
    /// Median over seeds where both reached of baseline iterations / variant iterations.
    pub median_speedup: Option<f64>,
    pub min_speedup: Option<f64>,
    pub max_speedup: Option<f64>,
    /// Median of final/best − 1 over seeds that did not diverge.
    pub median_final_excess: Option<f64>,
    /// Runs ending with at least one mirror wall.
    pub walled: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct SpeedupStage {
    pub spec: GoldstoneSyntheticSpec,
    pub data: StageHandle,
    /// Fit instance per (variant, scale) in spec order.
    pub fits: Vec<((GaugeVariant, f64), StageHandle)>,
}

impl Stage for SpeedupStage {
    const KIND: StageKind = StageKind::Evaluate;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("goldstone-synthetic/speedup")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let spec = &self.spec;
        let mut outputs = Vec::new();
        for &((variant, scale), ref id) in &self.fits {
            outputs.push((
                variant,
                scale,
                fit::load(ctx.upstream(id)?, variant, scale)?,
            ));
        }
        let last = spec.iterations;
        let x = preprocess::load(ctx.upstream(&self.data)?)?;
        let global_minimum = fit::model(spec, &x)
            .loss(&analytic_minimum(spec, &x)?)
            .total();
        let mut runs = Vec::new();
        for &scale in &spec.init_scales {
            for seed in 0..spec.seeds {
                let finals: Vec<f64> = outputs
                    .iter()
                    .filter(|(_, s, _)| *s == scale)
                    .map(|(_, _, o)| o.loss[[seed, last]])
                    .filter(|v| v.is_finite())
                    .collect();
                let best = finals.iter().copied().fold(f64::INFINITY, f64::min);
                for (variant, _, out) in outputs.iter().filter(|(_, s, _)| *s == scale) {
                    let facts: &RunFacts = &out.runs[seed];
                    let curve = out.loss.slice(s![seed, ..]);
                    let within = |reference: f64| {
                        spec.thresholds
                            .iter()
                            .map(|thr| curve.iter().position(|&l| l <= reference * (1.0 + thr)))
                            .collect()
                    };
                    let final_loss = Some(out.loss[[seed, last]]).filter(|v| v.is_finite());
                    runs.push(RunRow {
                        variant: *variant,
                        init_scale: scale,
                        seed,
                        final_loss,
                        final_coupling: Some(out.coupling[[seed, last]]).filter(|v| v.is_finite()),
                        best_final_loss: best,
                        global_minimum,
                        diverged_at: facts.diverged_at,
                        mirror_walls: facts.mirror_walls,
                        reached: within(best),
                        reached_global: within(global_minimum),
                        step_seconds: facts.step_seconds,
                        gauge_seconds: facts.gauge_seconds,
                    });
                }
            }
        }
        let mut summary = Vec::new();
        for &variant in &spec.variants {
            for &scale in &spec.init_scales {
                let mine: Vec<&RunRow> = runs
                    .iter()
                    .filter(|r| r.variant == variant && r.init_scale == scale)
                    .collect();
                let base = |seed: usize| {
                    runs.iter().find(|r| {
                        r.variant == GaugeVariant::Baseline
                            && r.init_scale == scale
                            && r.seed == seed
                    })
                };
                let mut excess: Vec<f64> = mine
                    .iter()
                    .filter_map(|r| r.final_loss.map(|f| f / r.best_final_loss - 1.0))
                    .collect();
                let median_final_excess = median(&mut excess);
                let walled = mine.iter().filter(|r| r.mirror_walls > 0).count();
                for reference in ["best_final", "global_minimum"] {
                    let pick = |r: &RunRow, k: usize| {
                        if reference == "best_final" {
                            r.reached[k]
                        } else {
                            r.reached_global[k]
                        }
                    };
                    for (k, &threshold) in spec.thresholds.iter().enumerate() {
                        let mut iterations: Vec<f64> = mine
                            .iter()
                            .filter_map(|r| pick(r, k))
                            .map(|i| i as f64)
                            .collect();
                        let mut ratios: Vec<f64> = mine
                            .iter()
                            .filter_map(|r| {
                                let own = pick(r, k)?;
                                let theirs = pick(base(r.seed)?, k)?;
                                Some(theirs as f64 / own.max(1) as f64)
                            })
                            .collect();
                        let reached = iterations.len();
                        let min_speedup = ratios.iter().copied().reduce(f64::min);
                        let max_speedup = ratios.iter().copied().reduce(f64::max);
                        summary.push(SpeedupRow {
                            variant,
                            init_scale: scale,
                            reference: reference.into(),
                            threshold,
                            seeds: mine.len(),
                            reached,
                            diverged: mine.iter().filter(|r| r.diverged_at.is_some()).count(),
                            median_iterations: median(&mut iterations),
                            median_speedup: median(&mut ratios),
                            min_speedup,
                            max_speedup,
                            median_final_excess,
                            walled,
                        });
                    }
                }
            }
        }
        write_json(&ctx.out_dir.join("runs.json"), &runs)?;
        write_json(&ctx.out_dir.join("speedup.json"), &summary)
    }
}

/// Reads what [`SpeedupStage`] wrote.
pub fn load_speedup(dir: &std::path::Path) -> Result<(Vec<RunRow>, Vec<SpeedupRow>)> {
    Ok((
        read_json(&dir.join("runs.json"))?,
        read_json(&dir.join("speedup.json"))?,
    ))
}

/// The Laplacian's and the Hessian's view of the dispersion relation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dispersion {
    /// h_ν from the closed form, with the mean coupling as λ.
    pub formula: Vec<f64>,
    pub laplacian: Vec<f64>,
    /// (T, h_{T−1}/h_1, 4T²/π²) at unit coupling.
    pub condition: Vec<(usize, f64, f64)>,
    /// Per ν: Hessian eigenvalues within the tolerance of h_ν, and their mean.
    pub hessian_multiplicity: Vec<usize>,
    pub hessian_cluster_mean: Vec<Option<f64>>,
    /// Hessian eigenvalues with |e| ≤ tolerance.
    pub hessian_zero_modes: usize,
    pub tolerance: f64,
    pub gradient_norm_at_minimum: f64,
    pub predicted_multiplicity_gl: usize,
    pub predicted_multiplicity_rotations: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct DispersionStage {
    pub spec: GoldstoneSyntheticSpec,
    pub data: StageHandle,
}

/// The analytic minimum: Z_t = Z* for all t, UᵀV the rank-d truncation of X.
pub fn analytic_minimum(spec: &GoldstoneSyntheticSpec, x: &Array2<f64>) -> Result<Array3<f64>> {
    let eig = symmetric_eigen(x.t().dot(x).view())?;
    let n = eig.values.len();
    let mut z = Array2::zeros((spec.dim, spec.rows + spec.cols));
    for k in 0..spec.dim {
        let col = n - 1 - k;
        let sigma = eig.values[col].max(0.0).sqrt();
        let v: Array1<f64> = eig.vectors.column(col).to_owned();
        let u = x.dot(&v) / sigma;
        let root = sigma.sqrt();
        z.slice_mut(s![k, ..spec.rows]).assign(&(&u * root));
        z.slice_mut(s![k, spec.rows..]).assign(&(&v * root));
    }
    let views: Vec<_> = (0..spec.steps).map(|_| z.view()).collect();
    Ok(ndarray::stack(ndarray::Axis(0), &views).unwrap_or_else(|_| Array3::zeros((0, 0, 0))))
}

impl Stage for DispersionStage {
    const KIND: StageKind = StageKind::Evaluate;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("goldstone-synthetic/dispersion")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let spec = &self.spec;
        let laplacian = ChainLaplacian::new(&spec.couplings)?;
        let lambda = spec.couplings.iter().sum::<f64>() / spec.couplings.len() as f64;
        let t = spec.steps as f64;
        let formula: Vec<f64> = (0..spec.steps)
            .map(|nu| (2.0 - 2.0 * (std::f64::consts::PI * nu as f64 / t).cos()) * lambda)
            .collect();
        let mut condition = Vec::new();
        for &size in &spec.sizes {
            let chain = ChainLaplacian::uniform(size, 1.0)?;
            let ratio = chain.eigenvalues[size - 1] / chain.eigenvalues[1];
            let approx = 4.0 * (size as f64).powi(2) / std::f64::consts::PI.powi(2);
            condition.push((size, ratio, approx));
        }
        let x = preprocess::load(ctx.upstream(&self.data)?)?;
        let model = fit::model(spec, &x);
        let minimum = analytic_minimum(spec, &x)?;
        let gradient_norm = model
            .gradient(&minimum)
            .iter()
            .map(|g| g * g)
            .sum::<f64>()
            .sqrt();
        let hessian = model.hessian(&minimum, 1e-4);
        let eigenvalues = symmetric_eigenvalues(hessian.view())?;
        let scale = eigenvalues.iter().fold(0.0_f64, |m, e| m.max(e.abs()));
        let tolerance = 1e-6 * scale;
        let near = |target: f64| -> Vec<f64> {
            eigenvalues
                .iter()
                .copied()
                .filter(|e| (e - target).abs() <= tolerance)
                .collect()
        };
        let zero_modes = near(0.0).len();
        let mut multiplicity = Vec::new();
        let mut cluster_mean = Vec::new();
        for &h in &laplacian.eigenvalues {
            let cluster = near(h);
            multiplicity.push(cluster.len());
            cluster_mean.push(if cluster.is_empty() {
                None
            } else {
                Some(cluster.iter().sum::<f64>() / cluster.len() as f64)
            });
        }
        npy::write(
            &ctx.out_dir
                .join("arrays")
                .join("evaluate.hessian_eigenvalues.npy"),
            &eigenvalues,
        )?;
        write_json(
            &ctx.out_dir.join("dispersion.json"),
            &Dispersion {
                formula,
                laplacian: laplacian.eigenvalues.clone(),
                condition,
                hessian_multiplicity: multiplicity,
                hessian_cluster_mean: cluster_mean,
                hessian_zero_modes: zero_modes,
                tolerance,
                gradient_norm_at_minimum: gradient_norm,
                predicted_multiplicity_gl: spec.dim * spec.dim,
                predicted_multiplicity_rotations: spec.dim * (spec.dim - 1) / 2,
            },
        )
    }
}

/// Reads what [`DispersionStage`] wrote.
pub fn load_dispersion(dir: &std::path::Path) -> Result<Dispersion> {
    read_json(&dir.join("dispersion.json"))
}
