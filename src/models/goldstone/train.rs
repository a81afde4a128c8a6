//! Training loops for chain models: the baseline (line 5 of Algorithm 1 alone: GD with
//! element-wise clipping and the decaying rate ρ_s = ρ_0 (s̄/(s + s̄))^κ, AdaGrad or Adam) and
//! Goldstone-GD (the same steps, with a gauge phase after every k1 of them).

use std::time::Instant;

use ndarray::Array3;

use super::dense_mf::LossParts;
use super::gauge::{GaugeField, GaugeOptions};
use super::{ChainLaplacian, dense_mf::DenseMf};
use crate::error::Result;

/// A model whose parameters are a chain Z (T × d × N) coupled by a chain Laplacian.
pub trait ChainModel {
    fn loss(&self, z: &Array3<f64>) -> LossParts;
    fn gradient(&self, z: &Array3<f64>) -> Array3<f64>;
    fn couplings(&self) -> &[f64];
}

impl ChainModel for DenseMf {
    fn loss(&self, z: &Array3<f64>) -> LossParts {
        DenseMf::loss(self, z)
    }
    fn gradient(&self, z: &Array3<f64>) -> Array3<f64> {
        DenseMf::gradient(self, z)
    }
    fn couplings(&self) -> &[f64] {
        &self.couplings
    }
}

/// Asserts that `model`'s gradient at `z` matches central differences of its loss (step 1e-6)
/// to `tolerance · (1 + |numeric|)` in every component.
#[cfg(test)]
pub fn assert_gradient_matches_finite_differences(
    model: &impl ChainModel,
    z: &Array3<f64>,
    tolerance: f64,
) {
    let gradient = model.gradient(z);
    let h = 1e-6;
    for (idx, &analytic) in gradient.indexed_iter() {
        let mut plus = z.clone();
        plus[idx] += h;
        let mut minus = z.clone();
        minus[idx] -= h;
        let numeric = (model.loss(&plus).total() - model.loss(&minus).total()) / (2.0 * h);
        assert!(
            (analytic - numeric).abs() < tolerance * (1.0 + numeric.abs()),
            "{idx:?}: {analytic} vs {numeric}"
        );
    }
}

/// The optimiser of line 5.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum InnerOptimizer {
    Gd,
    AdaGrad {
        initial_accumulator: f64,
    },
    Adam {
        beta1: f64,
        beta2: f64,
        epsilon: f64,
    },
}

/// Step size ρ_s = rate · (offset/(s + offset))^exponent and optional element-wise clipping of
/// the gradient.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    pub rate: f64,
    pub offset: f64,
    pub exponent: f64,
    pub clip: Option<f64>,
}

impl Schedule {
    pub fn rate_at(&self, step: usize) -> f64 {
        self.rate * (self.offset / (step as f64 + self.offset)).powf(self.exponent)
    }
}

/// What a training run is to do.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub iterations: usize,
    pub schedule: Schedule,
    pub optimizer: InnerOptimizer,
    /// k1 and the gauge options; `None` is the baseline.
    pub goldstone: Option<(usize, GaugeOptions)>,
    /// Iterations after which Z is kept.
    pub snapshots: Vec<usize>,
    /// A total loss above this (or not finite) ends the run as diverged.
    pub divergence_bound: f64,
}

/// What a run did. `loss[s]` and `coupling[s]` are after iteration s (index 0: the start).
#[derive(Clone, Debug, Default)]
pub struct TrainTrace {
    pub loss: Vec<f64>,
    pub coupling: Vec<f64>,
    pub diverged_at: Option<usize>,
    pub snapshots: Vec<(usize, Array3<f64>)>,
    pub step_seconds: f64,
    pub gauge_seconds: f64,
    pub phases: usize,
    /// Z at the end of the run.
    pub last: Array3<f64>,
}

/// Links t where the orientation flips, det(Z_{t+1} Z_tᵀ) < 0: mirror domain walls, which no
/// rotation-only gauge step can remove.
pub fn mirror_walls(z: &Array3<f64>) -> usize {
    super::gauge::neighbour_products(z)
        .iter()
        .filter(|p| crate::linalg::determinant(p.view()) < 0.0)
        .count()
}

struct InnerState {
    optimizer: InnerOptimizer,
    first: Array3<f64>,
    second: Array3<f64>,
}

impl InnerState {
    fn new(optimizer: InnerOptimizer, shape: &[usize]) -> Self {
        let initial = match optimizer {
            InnerOptimizer::AdaGrad {
                initial_accumulator,
            } => initial_accumulator,
            _ => 0.0,
        };
        let dim = (shape[0], shape[1], shape[2]);
        Self {
            optimizer,
            first: Array3::zeros(dim),
            second: Array3::from_elem(dim, initial),
        }
    }

    /// The update −Δz for gradient `g` at (1-based) step `s` with rate `rate`.
    fn direction(&mut self, g: &Array3<f64>, s: usize, rate: f64) -> Array3<f64> {
        match self.optimizer {
            InnerOptimizer::Gd => g * rate,
            InnerOptimizer::AdaGrad { .. } => {
                self.second.zip_mut_with(g, |a, &x| *a += x * x);
                let mut out = g * rate;
                out.zip_mut_with(&self.second, |o, &a| *o /= a.sqrt());
                out
            }
            InnerOptimizer::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                self.first
                    .zip_mut_with(g, |m, &x| *m = beta1 * *m + (1.0 - beta1) * x);
                self.second
                    .zip_mut_with(g, |v, &x| *v = beta2 * *v + (1.0 - beta2) * x * x);
                let c1 = 1.0 - beta1.powi(s as i32);
                let c2 = 1.0 - beta2.powi(s as i32);
                let mut out = self.first.mapv(|m| rate * m / c1);
                out.zip_mut_with(&self.second, |o, &v| *o /= (v / c2).sqrt() + epsilon);
                out
            }
        }
    }
}

/// The gauge field of Goldstone-GD (`None` for the baseline) on the chain `couplings` with
/// d-dimensional embeddings, and k1, the iterations between phases (never for the baseline).
pub fn gauge_schedule(
    goldstone: Option<&(usize, GaugeOptions)>,
    couplings: &[f64],
    d: usize,
) -> Result<(Option<GaugeField>, usize)> {
    match goldstone {
        Some((k1, options)) => {
            let laplacian = ChainLaplacian::new(couplings)?;
            Ok((Some(GaugeField::new(&laplacian, d, *options)), (*k1).max(1)))
        }
        None => Ok((None, usize::MAX)),
    }
}

/// Trains `z` on `model`.
pub fn train(
    model: &impl ChainModel,
    mut z: Array3<f64>,
    config: &TrainConfig,
) -> Result<TrainTrace> {
    let (mut gauge, k1) =
        gauge_schedule(config.goldstone.as_ref(), model.couplings(), z.shape()[1])?;
    let mut inner = InnerState::new(config.optimizer, z.shape());
    let mut trace = TrainTrace::default();
    let start = model.loss(&z);
    trace.loss.push(start.total());
    trace.coupling.push(start.coupling);
    let mut snapshots = config.snapshots.clone();
    snapshots.sort_unstable();
    for s in 1..=config.iterations {
        let clock = Instant::now();
        let mut g = model.gradient(&z);
        if let Some(bound) = config.schedule.clip {
            g.mapv_inplace(|x| x.clamp(-bound, bound));
        }
        let step = inner.direction(&g, s, config.schedule.rate_at(s - 1));
        z -= &step;
        trace.step_seconds += clock.elapsed().as_secs_f64();
        if let Some(field) = gauge.as_mut()
            && s % k1 == 0
        {
            let clock = Instant::now();
            field.phase(&mut z);
            trace.gauge_seconds += clock.elapsed().as_secs_f64();
            trace.phases += 1;
        }
        let parts = model.loss(&z);
        let total = parts.total();
        trace.loss.push(total);
        trace.coupling.push(parts.coupling);
        if snapshots.binary_search(&s).is_ok() {
            trace.snapshots.push((s, z.clone()));
        }
        if !total.is_finite() || total > config.divergence_bound {
            trace.diverged_at = Some(s);
            break;
        }
    }
    trace.last = z;
    Ok(trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn small_model(rng: &mut ChaCha8Rng) -> (DenseMf, Array3<f64>) {
        let mut normal = || -> f64 { StandardNormal.sample(&mut *rng) };
        let x = Array2::from_shape_simple_fn((4, 5), &mut normal);
        let model = DenseMf {
            data: vec![x; 6],
            couplings: vec![2.0; 5],
        };
        let z = Array3::from_shape_simple_fn((6, 2, 9), || 0.3 * normal());
        (model, z)
    }

    /// Adam's first bias-corrected step moves every coordinate by exactly the rate (m/√v is the
    /// sign of the gradient); AdaGrad's by rate·g/√(a₀ + g²).
    #[test]
    fn first_steps_of_the_adaptive_optimizers_are_exact() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let (model, z) = small_model(&mut rng);
        let g = model.gradient(&z);
        let mut adam = InnerState::new(
            InnerOptimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 0.0,
            },
            z.shape(),
        );
        let step = adam.direction(&g, 1, 0.01);
        for (s, gi) in step.iter().zip(&g) {
            assert!((s - 0.01 * gi.signum()).abs() < 1e-12);
        }
        let mut adagrad = InnerState::new(
            InnerOptimizer::AdaGrad {
                initial_accumulator: 0.1,
            },
            z.shape(),
        );
        let step = adagrad.direction(&g, 1, 0.5);
        for (s, gi) in step.iter().zip(&g) {
            assert!((s - 0.5 * gi / (0.1 + gi * gi).sqrt()).abs() < 1e-12);
        }
    }

    /// With every inner optimiser, Goldstone-GD brings a small chain model to within 1 % of its
    /// global minimum T·½Σ_{k>d} s_k² (Eckart–Young; the data are the same at every step).
    #[test]
    fn goldstone_gd_descends_with_every_inner_optimizer() {
        for optimizer in [
            InnerOptimizer::Gd,
            InnerOptimizer::AdaGrad {
                initial_accumulator: 0.1,
            },
            InnerOptimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
            },
        ] {
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            let (model, z) = small_model(&mut rng);
            let mut options = GaugeOptions::paper(10);
            options.exact_exponential = true;
            options.clip_gauge = true;
            let config = TrainConfig {
                iterations: 3000,
                schedule: Schedule {
                    rate: match optimizer {
                        InnerOptimizer::Gd => 0.02,
                        InnerOptimizer::AdaGrad { .. } => 0.2,
                        InnerOptimizer::Adam { .. } => 0.01,
                    },
                    offset: 1000.0,
                    exponent: 0.7,
                    clip: None,
                },
                optimizer,
                goldstone: Some((20, options)),
                snapshots: vec![],
                divergence_bound: 1e9,
            };
            let x = &model.data[0];
            let singular2 = crate::linalg::symmetric_eigenvalues(x.dot(&x.t()).view()).unwrap();
            // Ascending: all but the d = 2 largest squared singular values are lost.
            let minimum = 6.0 * 0.5 * singular2.iter().take(singular2.len() - 2).sum::<f64>();
            let trace = train(&model, z, &config).unwrap();
            let last = *trace.loss.last().unwrap();
            assert!(trace.diverged_at.is_none());
            assert!(
                last >= minimum * (1.0 - 1e-9) && last < minimum * 1.01,
                "{optimizer:?}: final {last}, global minimum {minimum}"
            );
        }
    }
}
