//! Fit stage `fit[bin=…,counts=…,init=…,scale=…]`: one regime, both optimisers (baseline Adam
//! and Goldstone-GD), every seed. The counts of the preprocess stage are binned into steps of
//! `bin_years` years (time stamp: the mean year of the bin), scaled by `count_scale`, and a
//! seeded 10 % of the interior steps is held out; the OU couplings follow the gaps of the
//! remaining steps. Seed k starts both optimisers from the same Z and feeds them the same
//! minibatch stream, so runs differ only by the optimiser.
//!
//! Outputs: `checkpoints.json` (loss parts, ψ, first↔last cosine medians and mirror walls at
//! every recording point), `runs.json` (wall times, held-out log-likelihoods), `steps.json`,
//! `arrays/fit.<regime>.cosine.npy` and `.cosine_aligned.npy` (optimiser × seed × V),
//! `.first.npy` and `.last.npy` (optimiser × seed × d × V: U at the first and last training
//! step) and, for the
//! headline regime, `arrays/embeddings.<optimizer>.{u,v}.npy` (T × V × d, f32, seed 0).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use ndarray::{Array2, Array3, Array4, ArrayView2, Axis, s};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::preprocess;
use crate::analysis::stats::finite_median;
use crate::corpus::counts::{PairCounts, negative_marginals};
use crate::emit::{npy, slug};
use crate::error::{Error, Result};
use crate::fsutil::{read_json, write_json};
use crate::models::dwe::kernel::{CountsIndex, StepIndex, Want, context_slots, step_terms};
use crate::models::dwe::train::{DweTrainConfig, GaugeFixer, train};
use crate::models::dwe::{DynamicSkipGram, StepCounts};
use crate::models::goldstone::coupling_energy;
use crate::models::goldstone::gauge::GaugeOptions;
use crate::models::goldstone::train::{Schedule, mirror_walls};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};
use crate::seed::rng_for;
use crate::spec::dwe::{Fit, Init, Model, Optimizer, Regime};

/// The time steps of a regime.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepLayout {
    /// Time stamp (mean year) of every step, training and held out.
    pub times: Vec<f64>,
    /// First and last calendar year in each step.
    pub spans: Vec<(i32, i32)>,
    /// Σ n⁺ of every step (after scaling).
    pub totals: Vec<f64>,
    /// Indices (into `times`) of the held-out steps.
    pub held_out: Vec<usize>,
}

impl StepLayout {
    pub fn training(&self) -> Vec<usize> {
        (0..self.times.len())
            .filter(|k| !self.held_out.contains(k))
            .collect()
    }
}

/// One recording point of one run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    pub optimizer: String,
    pub seed: usize,
    pub iteration: usize,
    /// Training seconds so far (recording excluded).
    pub seconds: f64,
    /// −log-likelihood of the training counts.
    pub likelihood: f64,
    /// ½‖Z‖²/σ_0².
    pub prior: f64,
    /// ψ, the OU coupling energy.
    pub coupling: f64,
    /// Median over words of cos(u_first, u_last).
    pub median_cosine: f64,
    /// The same after an orthogonal Procrustes map of the first step onto the last.
    pub median_aligned_cosine: f64,
    pub mirror_walls: usize,
}

impl Checkpoint {
    pub fn total(&self) -> f64 {
        self.likelihood + self.prior + self.coupling
    }
}

/// Per-run facts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunFacts {
    pub optimizer: String,
    pub seed: usize,
    pub step_seconds: f64,
    pub gauge_seconds: f64,
    pub phases: usize,
    pub iterations: usize,
    /// Median wall time of one iteration (see [`crate::models::dwe::train::DweTrace`]).
    pub median_step_seconds: f64,
    /// Gauge time / step time from the median iteration and phase.
    pub gauge_overhead: f64,
    /// Predictive log-likelihood per test point, one per held-out step.
    pub held_out: Vec<f64>,
}

impl RunFacts {
    /// Mean over the held-out steps of the log-likelihood per test point.
    pub fn mean_held_out(&self) -> f64 {
        self.held_out.iter().sum::<f64>() / self.held_out.len().max(1) as f64
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct FitStage {
    pub model: Model,
    pub fit: Fit,
    /// The counts' down-weighting and negative-sampling exponents (`preprocess.gamma`, `.eta`).
    pub gamma: f64,
    pub eta: f64,
    pub seed: u64,
    pub regime: Regime,
    pub headline: bool,
    pub counts: StageHandle,
}

/// The gauge treatment `optimizer` stands for, with a gauge phase every `every` iterations;
/// Goldstone-GD runs its phase with `goldstone`, and is refused without one (a gauge variant
/// without a phase would silently train the baseline under its name).
pub(crate) fn gauge_fixer(
    optimizer: Optimizer,
    every: usize,
    goldstone: Option<GaugeOptions>,
) -> Result<GaugeFixer> {
    Ok(match (optimizer, goldstone) {
        (Optimizer::Baseline, _) => GaugeFixer::None,
        (Optimizer::Goldstone, Some(options)) => GaugeFixer::Goldstone { every, options },
        (Optimizer::Goldstone, None) => {
            return Err(Error::Other(
                "Goldstone-GD needs a gauge variant with a gauge phase".into(),
            ));
        }
        (Optimizer::Procrustes, _) => GaugeFixer::Procrustes { every },
    })
}

/// Indices of `years` (sorted, from the first) grouped into bins of `bin_years` consecutive
/// years counted from the first; empty bins are skipped.
pub(crate) fn year_bins(years: &[f64], bin_years: usize) -> Vec<Vec<usize>> {
    let Some(&first) = years.first() else {
        return Vec::new();
    };
    let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (k, &y) in years.iter().enumerate() {
        groups
            .entry((y as i64 - first as i64) / bin_years.max(1) as i64)
            .or_default()
            .push(k);
    }
    groups.into_values().collect()
}

/// Merges the preprocessed steps into bins of `bin_years` calendar years and scales them.
fn bin_steps(
    years: &[f64],
    steps: &[StepCounts],
    vocabulary: usize,
    gamma: f64,
    regime: &Regime,
) -> (Vec<StepCounts>, Vec<f64>, Vec<(i32, i32)>) {
    let mut out = Vec::new();
    let mut times = Vec::new();
    let mut spans = Vec::new();
    for members in &year_bins(years, regime.bin_years) {
        let mut counts = PairCounts::new();
        for &k in members {
            for &(i, j, n) in &steps[k].positive {
                *counts.entry((i, j)).or_insert(0.0) += n * regime.count_scale;
            }
        }
        let (unigram, smoothed) = negative_marginals(&counts, vocabulary, gamma);
        out.push(StepCounts {
            positive: counts.iter().map(|(&(i, j), &n)| (i, j, n)).collect(),
            unigram,
            smoothed,
        });
        times.push(members.iter().map(|&k| years[k]).sum::<f64>() / members.len() as f64);
        spans.push((
            years[members[0]] as i32,
            years[*members.last().unwrap_or(&members[0])] as i32,
        ));
    }
    (out, times, spans)
}

/// A seeded choice of round(fraction · T) interior steps (never the first or the last).
fn choose_held_out(steps: usize, fraction: f64, rng: &mut impl Rng) -> Vec<usize> {
    if steps < 3 {
        return vec![];
    }
    let wanted = ((fraction * steps as f64).round() as usize).min(steps - 2);
    let mut chosen: Vec<usize> = rand::seq::index::sample(rng, steps - 2, wanted)
        .into_iter()
        .map(|k| k + 1)
        .collect();
    chosen.sort_unstable();
    chosen
}

/// The initial Z (T × d × 2V) of a regime and seed.
fn initial(
    regime: &Regime,
    times: &[f64],
    d: usize,
    v: usize,
    model: &Model,
    rng: &mut impl Rng,
) -> Array3<f64> {
    let scale = regime.init_scale;
    let mut normal = || -> f64 { StandardNormal.sample(&mut *rng) };
    let steps = times.len();
    match regime.init {
        Init::Independent => Array3::from_shape_simple_fn((steps, d, 2 * v), || scale * normal()),
        Init::Shared => {
            let one = Array2::from_shape_simple_fn((d, 2 * v), || scale * normal());
            let mut z = Array3::zeros((steps, d, 2 * v));
            for mut zt in z.outer_iter_mut() {
                zt.assign(&one);
            }
            z
        }
        Init::Prior => {
            // z_1 ~ N(0, σ_0²); z_{t+1} | z_t ~ N(z_t/(1 + σ_t²/σ_0²), (σ_t⁻² + σ_0⁻²)⁻¹).
            let s0 = model.prior_variance;
            let mut z = Array3::zeros((steps, d, 2 * v));
            let mut current = Array2::from_shape_simple_fn((d, 2 * v), || s0.sqrt() * normal());
            z.index_axis_mut(Axis(0), 0).assign(&current);
            for t in 1..steps {
                let st = model.diffusion * (times[t] - times[t - 1]);
                let shrink = 1.0 / (1.0 + st / s0);
                let sd = (1.0 / (1.0 / st + 1.0 / s0)).sqrt();
                current.mapv_inplace(|x| shrink * x + sd * normal());
                z.index_axis_mut(Axis(0), t).assign(&current);
            }
            z * scale
        }
    }
}

/// Per-word cos(u_first, u_last), raw and after the Procrustes map of first onto last.
pub fn first_last_cosines(
    first: ArrayView2<'_, f64>,
    last: ArrayView2<'_, f64>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let rotation = crate::linalg::procrustes(first, last)?;
    let aligned = rotation.dot(&first);
    let cosines = |a: ArrayView2<'_, f64>| -> Vec<f64> {
        a.axis_iter(Axis(1))
            .zip(last.axis_iter(Axis(1)))
            .map(|(x, y)| {
                let norm = (x.dot(&x) * y.dot(&y)).sqrt();
                if norm > 0.0 { x.dot(&y) / norm } else { 0.0 }
            })
            .collect()
    };
    Ok((cosines(first), cosines(aligned.view())))
}

/// Predictive log-likelihood per test point of every held-out step, with its embeddings
/// interpolated linearly in time between the neighbouring training steps.
fn held_out_likelihoods(
    z: &Array3<f64>,
    layout: &StepLayout,
    held_out: &[StepIndex],
    eta: f64,
) -> Vec<f64> {
    let training = layout.training();
    let v = z.shape()[2] / 2;
    let all: Vec<usize> = (0..v).collect();
    let slots = context_slots(&all, v);
    layout
        .held_out
        .iter()
        .zip(held_out)
        .map(|(&k, counts)| {
            let after = training
                .iter()
                .position(|&t| t > k)
                .unwrap_or(training.len() - 1);
            let before = after.saturating_sub(1);
            let (ta, tb) = (
                layout.times[training[before]],
                layout.times[training[after]],
            );
            let weight = if tb > ta {
                (layout.times[k] - ta) / (tb - ta)
            } else {
                0.5
            };
            let zt = &z.index_axis(Axis(0), before) * (1.0 - weight)
                + &z.index_axis(Axis(0), after) * weight;
            let loss = step_terms(
                zt.view(),
                counts,
                eta,
                &all,
                &all,
                &slots,
                Want::Loss,
                |_, _| {},
            );
            -loss / ((1.0 + eta) * counts.total)
        })
        .collect()
}

impl Stage for FitStage {
    const KIND: StageKind = StageKind::Fit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("dwe/fit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let regime = &self.regime;
        let upstream = ctx.upstream(&self.counts)?;
        let (years, raw_steps, v) = preprocess::load_counts(upstream)?;
        let (steps, times, spans) = bin_steps(&years, &raw_steps, v, self.gamma, regime);
        let mut holdout_rng = rng_for(self.seed, &format!("holdout/bin={}", regime.bin_years));
        let held_out = choose_held_out(steps.len(), self.fit.holdout, &mut holdout_rng);
        let layout = StepLayout {
            totals: steps
                .iter()
                .map(|c| c.positive.iter().map(|p| p.2).sum())
                .collect(),
            times,
            spans,
            held_out,
        };
        let training = layout.training();
        let training_times: Vec<f64> = training.iter().map(|&k| layout.times[k]).collect();
        let model = DynamicSkipGram {
            steps: training.iter().map(|&k| steps[k].clone()).collect(),
            vocabulary: v,
            eta: self.eta,
            prior_variance: self.model.prior_variance,
            couplings: DynamicSkipGram::ou_couplings(&training_times, self.model.diffusion),
        };
        let index = CountsIndex::new(&model);
        let held_out_index: Vec<StepIndex> = layout
            .held_out
            .iter()
            .map(|&k| StepIndex::new(&steps[k], v))
            .collect();
        let d = self.model.dim;
        let f = &self.fit;
        let gauge = GaugeOptions::for_variant(f.gauge, f.k2);
        let seeds = f.seeds;
        ctx.progress
            .set_length((f.optimizers.len() * seeds * f.iterations) as u64);
        let mut checkpoints = Vec::new();
        let mut runs = Vec::new();
        let optimizers = f.optimizers.len();
        let mut cosine = Array3::<f64>::zeros((optimizers, seeds, v));
        let mut aligned = Array3::<f64>::zeros((optimizers, seeds, v));
        let mut first = Array4::<f64>::zeros((optimizers, seeds, d, v));
        let mut last = Array4::<f64>::zeros((optimizers, seeds, d, v));
        let label = regime.label();
        let last_step = training.len() - 1;
        for (o, optimizer) in f.optimizers.iter().enumerate() {
            for seed in 0..seeds {
                let mut init_rng = rng_for(self.seed, &format!("init/{label}/seed={seed}"));
                let z0 = initial(regime, &training_times, d, v, &self.model, &mut init_rng);
                let mut minibatch_rng =
                    rng_for(self.seed, &format!("minibatch/{label}/seed={seed}"));
                let config = DweTrainConfig {
                    iterations: f.iterations,
                    minibatch: f.minibatch,
                    schedule: Schedule {
                        rate: f.rate,
                        offset: f.offset,
                        exponent: f.exponent,
                        clip: None,
                    },
                    beta1: f.beta1,
                    beta2: f.beta2,
                    epsilon: f.epsilon,
                    gauge: gauge_fixer(*optimizer, f.k1, gauge)?,
                    record_every: f.record_every,
                };
                let clock = Instant::now();
                let mut recording = 0.0;
                let done = ((o * seeds + seed) * f.iterations) as u64;
                let trace = train(&model, &index, z0, &config, &mut minibatch_rng, |s, z| {
                    let started = Instant::now();
                    ctx.progress.set_position(done + s as u64);
                    let likelihood: f64 = model.step_likelihoods(&index, z).iter().sum();
                    let u = |t: usize| z.slice(s![t, .., ..v]);
                    let (raw, rotated) = first_last_cosines(u(0), u(last_step))?;
                    let parts = Checkpoint {
                        optimizer: optimizer.to_string(),
                        seed,
                        iteration: s,
                        seconds: clock.elapsed().as_secs_f64() - recording,
                        likelihood,
                        prior: 0.5 * z.iter().map(|x| x * x).sum::<f64>()
                            / self.model.prior_variance,
                        coupling: coupling_energy(z, &model.couplings),
                        median_cosine: finite_median(&raw),
                        median_aligned_cosine: finite_median(&rotated),
                        mirror_walls: mirror_walls(z),
                    };
                    if !parts.total().is_finite() {
                        return Err(Error::Other(format!(
                            "{optimizer} seed {seed}: the loss is not finite at iteration {s}"
                        )));
                    }
                    ctx.progress.set_detail(format!(
                        "{optimizer} seed {}/{seeds}: loss {:.6e}, ψ {:.4e}",
                        seed + 1,
                        parts.total(),
                        parts.coupling
                    ));
                    checkpoints.push(parts);
                    recording += started.elapsed().as_secs_f64();
                    Ok(())
                })?;
                let z = &trace.last;
                let (raw, rotated) =
                    first_last_cosines(z.slice(s![0, .., ..v]), z.slice(s![last_step, .., ..v]))?;
                cosine
                    .slice_mut(s![o, seed, ..])
                    .assign(&ndarray::Array1::from(raw));
                aligned
                    .slice_mut(s![o, seed, ..])
                    .assign(&ndarray::Array1::from(rotated));
                first
                    .slice_mut(s![o, seed, .., ..])
                    .assign(&z.slice(s![0, .., ..v]));
                last.slice_mut(s![o, seed, .., ..])
                    .assign(&z.slice(s![last_step, .., ..v]));
                runs.push(RunFacts {
                    optimizer: optimizer.to_string(),
                    seed,
                    step_seconds: trace.step_seconds(),
                    gauge_seconds: trace.gauge_seconds(),
                    phases: trace.phases(),
                    iterations: f.iterations,
                    median_step_seconds: trace.median_step_seconds(),
                    gauge_overhead: trace.gauge_overhead(),
                    held_out: held_out_likelihoods(z, &layout, &held_out_index, model.eta),
                });
                if self.headline && seed == 0 {
                    write_embeddings(ctx.out_dir, optimizer.name(), z, v)?;
                }
            }
        }
        let path = |what: &str| array_path(ctx.out_dir, &self.regime, what);
        npy::write(&path("cosine"), &cosine)?;
        npy::write(&path("cosine_aligned"), &aligned)?;
        npy::write(&path("first"), &first)?;
        npy::write(&path("last"), &last)?;
        write_json(&ctx.out_dir.join("steps.json"), &layout)?;
        write_json(&ctx.out_dir.join("runs.json"), &runs)?;
        write_json(&ctx.out_dir.join("checkpoints.json"), &checkpoints)
    }
}

/// U and V of every training step as T × V × d f32 arrays.
fn write_embeddings(dir: &Path, optimizer: &str, z: &Array3<f64>, v: usize) -> Result<()> {
    for (name, offset) in [("u", 0), ("v", v)] {
        let part = z
            .slice(s![.., .., offset..offset + v])
            .permuted_axes([0, 2, 1])
            .mapv(|x| x as f32);
        npy::write(
            &dir.join("arrays")
                .join(format!("embeddings.{optimizer}.{name}.npy")),
            &part.as_standard_layout().to_owned(),
        )?;
    }
    Ok(())
}

/// What one fit instance wrote.
pub struct FitOutput {
    pub layout: StepLayout,
    pub checkpoints: Vec<Checkpoint>,
    pub runs: Vec<RunFacts>,
    pub cosine: Array3<f64>,
    pub aligned: Array3<f64>,
    pub first: Array4<f64>,
    pub last: Array4<f64>,
}

/// `arrays/fit.<regime>.<what>.npy`: every regime's fit has its own artefact names, so the
/// regimes of one run folder do not collide.
fn array_path(dir: &Path, regime: &Regime, what: &str) -> std::path::PathBuf {
    dir.join("arrays")
        .join(format!("fit.{}.{what}.npy", slug(&regime.label())))
}

/// Reads the outputs of the fit instance of `regime`.
pub fn load(dir: &Path, regime: &Regime) -> Result<FitOutput> {
    let path = |what: &str| array_path(dir, regime, what);
    Ok(FitOutput {
        layout: read_json(&dir.join("steps.json"))?,
        checkpoints: read_json(&dir.join("checkpoints.json"))?,
        runs: read_json(&dir.join("runs.json"))?,
        cosine: npy::read(&path("cosine"))?,
        aligned: npy::read(&path("cosine_aligned"))?,
        first: npy::read(&path("first"))?,
        last: npy::read(&path("last"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn spec_with(init: &str) -> crate::spec::dwe::DweSpec {
        let text = format!(
            "[experiment]\nname = \"t\"\nkind = \"dwe\"\nseed = 1\n[data]\ncorpus = \"c\"\n\
             [fit]\ninit = \"{init}\"\ninit_scale = 0.5\n"
        );
        let doc = crate::spec::SpecDocument::parse(Path::new("t.toml"), text).unwrap();
        crate::spec::dwe::parse(&doc, doc.header().unwrap()).unwrap()
    }

    /// A shared start has no coupling energy. A start drawn from the prior's transitions has,
    /// with a = DΔτ/σ_0², the variance recursion V_{t+1} = V_t/(1 + a)² + σ_0² a/(1 + a) from
    /// V_1 = σ_0² (scaled by s²): it relaxes towards σ_0²(1 + a)/(2 + a), not σ_0² — the product
    /// N(U_t, σ_t²)·N(0, σ_0²) of the 2017 paper is not stationary at σ_0². Checked within
    /// sampling error (2000 entries per step: relative standard error √(2/2000) ≈ 3 %, bound 4σ);
    /// consecutive steps are correlated as √(V_t/V_{t+1})/(1 + a).
    #[test]
    fn initialisations_follow_their_definitions() {
        let times: Vec<f64> = (0..40).map(|k| 1800.0 + 5.0 * k as f64).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let spec = spec_with("shared");
        let z = initial(&spec.regimes[0], &times, 10, 100, &spec.model, &mut rng);
        assert_eq!(coupling_energy(&z, &[1.0; 39]), 0.0);
        let spec = spec_with("prior");
        let z = initial(&spec.regimes[0], &times, 10, 100, &spec.model, &mut rng);
        let a = 1e-3 * 5.0;
        let mut predicted = vec![1.0];
        for _ in 1..40 {
            let v = predicted[predicted.len() - 1];
            predicted.push(v / (1.0 + a) / (1.0 + a) + a / (1.0 + a));
        }
        for t in [0, 20, 39] {
            let variance = z.index_axis(Axis(0), t).iter().map(|x| x * x).sum::<f64>() / 2000.0;
            let expected = 0.25 * predicted[t];
            assert!(
                (variance / expected - 1.0).abs() < 0.13,
                "step {t}: {variance} vs {expected}"
            );
        }
        let (x, y) = (z.index_axis(Axis(0), 10), z.index_axis(Axis(0), 11));
        let correlation = (&x * &y).sum() / ((&x * &x).sum() * (&y * &y).sum()).sqrt();
        let expected = (predicted[10] / predicted[11]).sqrt() / (1.0 + a);
        assert!(
            (correlation - expected).abs() < 0.01,
            "{correlation} vs {expected}"
        );
    }

    #[test]
    fn held_out_steps_are_interior_and_sorted() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let chosen = choose_held_out(229, 0.1, &mut rng);
        assert_eq!(chosen.len(), 23);
        assert!(chosen.windows(2).all(|w| w[0] < w[1]));
        assert!(chosen.iter().all(|&k| k > 0 && k < 228));
    }

    /// A first step that is the last one rotated (with a reflection) aligns perfectly; the raw
    /// cosines are those of the rotation.
    #[test]
    fn procrustes_alignment_undoes_a_global_orthogonal_map() {
        let last = Array2::from_shape_fn((3, 9), |(i, j)| {
            (((i + 2) * (j + 3) * (j + 1)) as f64).cos()
        });
        let r = ndarray::array![[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]];
        let first = r.t().dot(&last);
        let (raw, aligned) = first_last_cosines(first.view(), last.view()).unwrap();
        assert!(aligned.iter().all(|c| (c - 1.0).abs() < 1e-12));
        assert!(raw.iter().any(|c| *c < 0.9));
    }
}
