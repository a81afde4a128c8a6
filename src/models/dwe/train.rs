//! MAP training of the dynamic skip-gram on vocabulary minibatches: each iteration draws L'
//! distinct words and L' distinct contexts uniformly (all time steps always included, Bamler &
//! Mandt 2017 supplement Eq. 17), evaluates the block on the fast f32 path and applies lazy
//! Adam with ρ_s = ρ_0 (s̄/(s + s̄))^κ. Goldstone-GD adds a gauge phase on Z_t = (U_t, V_t)
//! after every k1 iterations (ICML 2018 Algorithm 1 with the same Adam as line 5). The
//! Procrustes gauge fixer instead minimises ψ over O(d)^T exactly every k1 iterations — each
//! step rotated onto its aligned predecessor, reflections allowed
//! ([`crate::analysis::alignment::chain_procrustes`]) — and rotates Adam's moments along: the
//! first moment by R_t, the second by R_t∘R_t (exact for uncorrelated coordinates).

use std::time::Instant;

use ndarray::Array3;
use rand::Rng;

use super::kernel::{CountsIndex, Want};
use super::{BlockAdam, DynamicSkipGram, to_word_major};
use crate::analysis::alignment::chain_procrustes;
use crate::error::{Error, Result};
use crate::models::goldstone::gauge::GaugeOptions;
use crate::models::goldstone::train::{Schedule, gauge_schedule};

/// What a training run is to do.
#[derive(Clone, Debug, PartialEq)]
pub struct DweTrainConfig {
    pub iterations: usize,
    /// L', words and contexts per block; at least V means full batch.
    pub minibatch: usize,
    pub schedule: Schedule,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// How the gauge is fixed during training (nothing for the baseline).
    pub gauge: GaugeFixer,
    /// The observer sees Z after every this many iterations (and at 0 and the end).
    pub record_every: usize,
}

/// The gauge treatment of a run.
#[derive(Clone, Debug, PartialEq)]
pub enum GaugeFixer {
    /// Plain Adam: the baseline.
    None,
    /// A Goldstone-GD gauge phase with these options every `every` iterations.
    Goldstone { every: usize, options: GaugeOptions },
    /// Sequential orthogonal Procrustes along the chain every `every` iterations.
    Procrustes { every: usize },
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct DweTrace {
    pub last: Array3<f64>,
    /// Wall time of every iteration's gradient and update, and of every gauge phase.
    pub step_durations: Vec<f64>,
    pub phase_durations: Vec<f64>,
}

impl DweTrace {
    /// Total wall time of the iterations' gradients and updates.
    pub fn step_seconds(&self) -> f64 {
        self.step_durations.iter().sum()
    }

    /// Total wall time of the gauge phases.
    pub fn gauge_seconds(&self) -> f64 {
        self.phase_durations.iter().sum()
    }

    pub fn phases(&self) -> usize {
        self.phase_durations.len()
    }

    /// The median iteration (gradient + update), in seconds. Unlike the total, it is not moved by
    /// the few iterations during which this thread ran other work: a rayon worker that waits for
    /// its own parallel loop may run a whole other stage instance meanwhile.
    pub fn median_step_seconds(&self) -> f64 {
        crate::analysis::stats::median(&mut self.step_durations.clone()).unwrap_or(0.0)
    }

    /// The median gauge phase, in seconds (0 without phases).
    pub fn median_phase_seconds(&self) -> f64 {
        crate::analysis::stats::median(&mut self.phase_durations.clone()).unwrap_or(0.0)
    }

    /// Gauge time per step time from the medians: phases × median phase / (iterations × median
    /// iteration).
    pub fn gauge_overhead(&self) -> f64 {
        let steps = self.step_durations.len() as f64 * self.median_step_seconds();
        if steps > 0.0 {
            self.phases() as f64 * self.median_phase_seconds() / steps
        } else {
            0.0
        }
    }
}

/// L' distinct indices out of `vocabulary`, sorted (all of them when L' ≥ V).
pub fn draw_block(rng: &mut impl Rng, vocabulary: usize, size: usize) -> Vec<usize> {
    if size >= vocabulary {
        return (0..vocabulary).collect();
    }
    let mut block = rand::seq::index::sample(rng, vocabulary, size).into_vec();
    block.sort_unstable();
    block
}

/// Trains `z` on `model`, calling `observe(iteration, z)` at the recording points (z word-major
/// there; [`DweTrace::last`] in standard layout). Stops with an error naming the iteration when a
/// gradient is not finite.
pub fn train(
    model: &DynamicSkipGram,
    index: &CountsIndex,
    z: Array3<f64>,
    config: &DweTrainConfig,
    rng: &mut impl Rng,
    mut observe: impl FnMut(usize, &Array3<f64>) -> Result<()>,
) -> Result<DweTrace> {
    let (steps, d, width) = z.dim();
    let mut z = to_word_major(&z);
    let goldstone = match &config.gauge {
        GaugeFixer::Goldstone { every, options } => Some((*every, *options)),
        _ => None,
    };
    let (mut gauge, k1) = gauge_schedule(goldstone.as_ref(), &model.couplings, d)?;
    let mut adam = BlockAdam::new(
        (steps, d, width),
        config.beta1,
        config.beta2,
        config.epsilon,
    );
    let mut trace = DweTrace::default();
    let mut block = super::BlockGradient::empty();
    observe(0, &z)?;
    for s in 1..=config.iterations {
        let clock = Instant::now();
        let words = draw_block(rng, model.vocabulary, config.minibatch);
        let contexts = draw_block(rng, model.vocabulary, config.minibatch);
        model.fast_block_into(index, &z, &words, &contexts, Want::Gradient, &mut block);
        if !(all_finite(&block.word_gradient) && all_finite(&block.context_gradient)) {
            let largest = z.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let (bad_step, bad_column) = block
                .word_gradient
                .indexed_iter()
                .find(|(_, g)| !g.is_finite())
                .map(|((t, k, _), _)| (t, block.words[k]))
                .or_else(|| {
                    block
                        .context_gradient
                        .indexed_iter()
                        .find(|(_, g)| !g.is_finite())
                        .map(|((t, k, _), _)| (t, model.vocabulary + block.contexts[k]))
                })
                .unwrap_or((0, 0));
            return Err(Error::Other(format!(
                "training stopped at iteration {s}: the gradient is not finite (first at step \
                 {bad_step}, column {bad_column}; largest |z| = {largest:.3e})"
            )));
        }
        adam.step(&mut z, &block, config.schedule.rate_at(s - 1));
        trace.step_durations.push(clock.elapsed().as_secs_f64());
        if let Some(field) = gauge.as_mut()
            && s % k1 == 0
        {
            let clock = Instant::now();
            let report = field.phase(&mut z);
            if !z.iter().all(|x| x.is_finite()) {
                return Err(Error::Other(format!(
                    "training stopped at iteration {s}: the gauge phase made the parameters \
                     non-finite (gauge rate {:.3e}, largest generator {:.3e}); a clipped \
                     variant such as fit.gauge = \"exp-clip\" bounds the gauge field",
                    report.rate, report.max_generator
                )));
            }
            trace.phase_durations.push(clock.elapsed().as_secs_f64());
        }
        if let GaugeFixer::Procrustes { every } = config.gauge
            && s % every.max(1) == 0
        {
            let clock = Instant::now();
            let maps = chain_procrustes(&mut z)?;
            adam.rotate_moments(&maps);
            trace.phase_durations.push(clock.elapsed().as_secs_f64());
        }
        if s % config.record_every.max(1) == 0 || s == config.iterations {
            observe(s, &z)?;
        }
    }
    trace.last = z.as_standard_layout().into_owned();
    Ok(trace)
}

/// Whether every entry is finite: x·0 is 0 for finite x and NaN otherwise, summed in eight
/// independent lanes so that the pass vectorises (an early-exit test per entry does not).
fn all_finite(values: &Array3<f64>) -> bool {
    let Some(values) = values.as_slice() else {
        return values.iter().all(|x| x.is_finite());
    };
    const LANES: usize = 8;
    let mut lanes = [0.0f64; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x * 0.0;
        }
    }
    lanes.iter().all(|x| x.is_finite()) && chunks.remainder().iter().all(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn config(gauge: &str) -> DweTrainConfig {
        DweTrainConfig {
            iterations: 400,
            minibatch: 4,
            schedule: Schedule {
                rate: 0.02,
                offset: 100.0,
                exponent: 0.7,
                clip: None,
            },
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            gauge: match gauge {
                "goldstone" => {
                    let mut options = GaugeOptions::paper(10);
                    options.exact_exponential = true;
                    GaugeFixer::Goldstone { every: 10, options }
                }
                "procrustes" => GaugeFixer::Procrustes { every: 10 },
                _ => GaugeFixer::None,
            },
            record_every: 100,
        }
    }

    /// Every optimizer lowers the exact loss on the tiny model; the observer sees 0, every
    /// `record_every` and the end; the gauge fixers run one phase per k1 iterations.
    #[test]
    fn every_optimizer_descends() {
        let model = super::super::tests::model();
        let index = CountsIndex::new(&model);
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        let z0 = Array3::from_shape_simple_fn((3, 2, 12), || {
            let x: f64 = StandardNormal.sample(&mut rng);
            0.3 * x
        });
        let start = model.loss_and_gradient(&z0).0.total();
        for gauge in ["baseline", "goldstone", "procrustes"] {
            let mut seen = Vec::new();
            let mut rng = ChaCha8Rng::seed_from_u64(32);
            let trace = train(
                &model,
                &index,
                z0.clone(),
                &config(gauge),
                &mut rng,
                |s, _| {
                    seen.push(s);
                    Ok(())
                },
            )
            .unwrap();
            let end = model.loss_and_gradient(&trace.last).0.total();
            assert!(end < 0.9 * start, "{gauge}: {start} → {end}");
            assert_eq!(seen, vec![0, 100, 200, 300, 400]);
            assert_eq!(trace.phases(), if gauge == "baseline" { 0 } else { 40 });
        }
    }

    /// The Procrustes phase is a gauge transformation: the local loss (likelihood and isotropic
    /// prior) is unchanged to rounding, ψ does not rise, and a second phase finds nothing left
    /// to do (every map the identity, up to reflections already taken).
    #[test]
    fn a_procrustes_phase_keeps_the_local_loss_and_minimises_psi() {
        let model = super::super::tests::model();
        let mut rng = ChaCha8Rng::seed_from_u64(34);
        let mut z = Array3::from_shape_simple_fn((3, 2, 12), || {
            let x: f64 = StandardNormal.sample(&mut rng);
            0.5 * x
        });
        let (before, _) = model.loss_and_gradient(&z);
        chain_procrustes(&mut z).unwrap();
        let (after, _) = model.loss_and_gradient(&z);
        assert!((after.local - before.local).abs() < 1e-10 * before.local.abs());
        assert!(after.coupling <= before.coupling + 1e-12);
        let maps = chain_procrustes(&mut z).unwrap();
        for r in maps {
            assert!((r - Array2::<f64>::eye(2)).iter().all(|x| x.abs() < 1e-10));
        }
    }

    /// Rotating the moments: the first moment follows R_t, the second R_t∘R_t.
    #[test]
    fn moments_rotate_with_the_parameters() {
        let mut adam = BlockAdam::new((2, 2, 3), 0.9, 0.999, 1e-8);
        let (c, s) = (0.6f64, 0.8f64);
        let r = ndarray::array![[c, -s], [s, c]];
        let maps = vec![Array2::eye(2), r.clone()];
        adam.set_moments_for_test(
            Array3::from_shape_fn((2, 2, 3), |(t, k, j)| (t + 2 * k + j) as f64),
            Array3::from_elem((2, 2, 3), 1.0),
        );
        let (first, _) = adam.moments();
        let expected = r.dot(&first.index_axis(ndarray::Axis(0), 1));
        adam.rotate_moments(&maps);
        let (first, second) = adam.moments();
        assert!(
            (&first.index_axis(ndarray::Axis(0), 1) - &expected)
                .iter()
                .all(|x| x.abs() < 1e-15)
        );
        // Rows of R∘R sum to 1: a uniform second moment stays uniform.
        assert!(second.iter().all(|x| (x - 1.0).abs() < 1e-15));
    }

    /// Every non-finite value is seen wherever it sits (lanes or remainder); huge finite values
    /// are finite.
    /// One iteration that ran a whole other instance (100 s) moves the total but not the
    /// medians: 10 iterations of 2 ms, 1 phase of 1 ms → overhead 1/20.
    #[test]
    fn timings_from_medians_ignore_stolen_work() {
        let mut step_durations = vec![2e-3; 10];
        step_durations[3] = 100.0;
        let trace = DweTrace {
            step_durations,
            phase_durations: vec![1e-3],
            ..DweTrace::default()
        };
        assert_eq!(trace.median_step_seconds(), 2e-3);
        assert_eq!(trace.median_phase_seconds(), 1e-3);
        assert!((trace.gauge_overhead() - 0.05).abs() < 1e-15);
        assert_eq!(DweTrace::default().gauge_overhead(), 0.0);
    }

    #[test]
    fn all_finite_sees_every_non_finite_entry() {
        let mut values = Array3::from_elem((1, 3, 7), f64::MAX);
        assert!(all_finite(&values));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for at in 0..21 {
                let mut copy = values.clone();
                copy[[0, at / 7, at % 7]] = bad;
                assert!(!all_finite(&copy), "{bad} at {at}");
                assert!(
                    !all_finite(&copy.view().reversed_axes().to_owned()),
                    "{bad} at {at}"
                );
            }
        }
        values.invert_axis(ndarray::Axis(2));
        assert!(all_finite(&values));
    }

    /// A non-finite parameter stops training with the iteration number in the message.
    #[test]
    fn non_finite_gradients_stop_with_the_iteration() {
        let model = super::super::tests::model();
        let index = CountsIndex::new(&model);
        let mut z = Array3::from_elem((3, 2, 12), 0.1);
        z[[1, 0, 3]] = f64::NAN;
        let mut rng = ChaCha8Rng::seed_from_u64(33);
        let mut full = config("baseline");
        full.minibatch = 6;
        let error = train(&model, &index, z, &full, &mut rng, |_, _| Ok(())).unwrap_err();
        assert!(error.to_string().contains("iteration 1"), "{error}");
    }
}
