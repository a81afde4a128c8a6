//! Dynamic skip-gram (Bamler & Mandt 2017) as a chain model for MAP estimation: per step t,
//! word vectors U_t and context vectors V_t (d × V each, stored side by side as Z_t ∈ R^{d×2V}),
//! the negative log-likelihood −Σ_ij [n⁺_ij log σ(u_iᵀv_j) + n⁻_ij log σ(−u_iᵀv_j)] with the
//! rank-one negatives n⁻_ij = N_t η P_t(i) P'_t(j), the isotropic prior ½‖Z_t‖²/σ_0² (part of the
//! rotation-invariant local loss), and the Ornstein–Uhlenbeck coupling ψ with c_t = 1/(D Δτ_t).
//!
//! With X = UᵀV and ∂(−log p)/∂x_ij = n⁻_ij σ(x_ij) − n⁺_ij σ(−x_ij) =: G_ij, the gradients are
//! ∇U = V Gᵀ and ∇V = U G. [`DynamicSkipGram::loss_and_gradient`] is the exact full-vocabulary
//! evaluation (dense V × V per step); [`DynamicSkipGram::block_gradient`] evaluates a vocabulary
//! block I × J for all steps, rescaled to be unbiased (the paper's minibatches, Eq. 17);
//! [`BlockAdam`] applies such blocks with per-column ("lazy") Adam moments.
//!
//! Training keeps Z and Adam's moments word-major in memory ([`to_word_major`]): the logical
//! shape stays T × d × 2V, but each column (one word's d-vector at one step) is contiguous, so
//! that a block gathers, updates and scatters only its own cache lines.

pub mod kernel;
pub mod planted;
pub mod train;

use ndarray::{Array2, Array3, s};
use rayon::prelude::*;

use super::goldstone::dense_mf::LossParts;
use super::goldstone::train::ChainModel;
use super::goldstone::{coupling_energy, coupling_gradient};

/// The counts of one time step.
#[derive(Clone, Debug, Default)]
pub struct StepCounts {
    /// Non-zero n⁺ entries (word, context, count), sorted by word.
    pub positive: Vec<(u32, u32, f64)>,
    /// P_t(i), the unigram marginal of n⁺.
    pub unigram: Vec<f64>,
    /// P'_t(j) ∝ P_t(j)^γ.
    pub smoothed: Vec<f64>,
}

impl StepCounts {
    fn total(&self) -> f64 {
        self.positive.iter().map(|p| p.2).sum()
    }

    /// Start of each word's run in `positive` (sorted by word), V + 1 entries.
    fn row_starts(&self, vocabulary: usize) -> Vec<usize> {
        let mut starts = vec![0; vocabulary + 1];
        for &(i, _, _) in &self.positive {
            starts[i as usize + 1] += 1;
        }
        for k in 0..vocabulary {
            starts[k + 1] += starts[k];
        }
        starts
    }
}

/// Parameters of logical shape T × d × 2V (the layout every analysis reads) stored word-major:
/// the memory is T × 2V × d, so column c of step t, `z[[t, .., c]]`, is d contiguous values.
/// The values are those of `z`; only the strides differ.
pub fn to_word_major(z: &Array3<f64>) -> Array3<f64> {
    let (steps, d, width) = z.dim();
    let mut out = Array3::zeros((steps, width, d)).permuted_axes([0, 2, 1]);
    out.assign(z);
    out
}

/// Whether `z` is laid out as [`to_word_major`] makes it.
pub fn is_word_major(z: &Array3<f64>) -> bool {
    let (_, d, width) = z.dim();
    z.strides() == [(width * d) as isize, 1, d as isize]
}

/// The gradient of a vocabulary block: the likelihood over words I × contexts J, rescaled by
/// V/L' so that it is unbiased for the full sum, plus the exact prior and coupling terms of the
/// touched columns. `words` and `contexts` index the vocabulary. Word-major like the
/// parameters: one column's d components are contiguous.
#[derive(Clone, Debug)]
pub struct BlockGradient {
    pub words: Vec<usize>,
    pub contexts: Vec<usize>,
    /// T × |I| × d: gradient of the word vectors u_i, i ∈ I.
    pub word_gradient: Array3<f64>,
    /// T × |J| × d: gradient of the context vectors v_j, j ∈ J.
    pub context_gradient: Array3<f64>,
    /// −log-likelihood summed over the block (unscaled).
    pub block_loss: f64,
}

impl BlockGradient {
    /// No block yet (buffers for [`DynamicSkipGram::fast_block_into`]).
    pub fn empty() -> Self {
        Self {
            words: vec![],
            contexts: vec![],
            word_gradient: Array3::zeros((0, 0, 0)),
            context_gradient: Array3::zeros((0, 0, 0)),
            block_loss: 0.0,
        }
    }
}

/// The dynamic skip-gram objective.
#[derive(Clone, Debug)]
pub struct DynamicSkipGram {
    pub steps: Vec<StepCounts>,
    pub vocabulary: usize,
    /// Negatives per positive.
    pub eta: f64,
    /// σ_0² of the isotropic prior.
    pub prior_variance: f64,
    /// c_t = 1/(D Δτ_t) between steps t and t + 1.
    pub couplings: Vec<f64>,
}

fn log_sigmoid(x: f64) -> f64 {
    // log σ(x) = −log(1 + e^{−x}), evaluated without overflow.
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl DynamicSkipGram {
    /// Couplings 1/(D Δτ_t) from the time stamps and the diffusion constant D.
    pub fn ou_couplings(times: &[f64], diffusion: f64) -> Vec<f64> {
        times
            .windows(2)
            .map(|w| 1.0 / (diffusion * (w[1] - w[0])))
            .collect()
    }

    /// Local loss and its gradient at step t (likelihood + isotropic prior).
    fn local(&self, z: &Array3<f64>, t: usize) -> (f64, Array2<f64>) {
        let v = self.vocabulary;
        let counts = &self.steps[t];
        let u = z.slice(s![t, .., ..v]);
        let w = z.slice(s![t, .., v..]);
        let x = u.t().dot(&w);
        let scale = counts.total() * self.eta;
        let mut loss = 0.0;
        let mut g = Array2::<f64>::zeros((v, v));
        for ((i, j), &xij) in x.indexed_iter() {
            let negative = scale * counts.unigram[i] * counts.smoothed[j];
            loss -= negative * log_sigmoid(-xij);
            g[[i, j]] = negative * sigmoid(xij);
        }
        for &(i, j, n) in &counts.positive {
            let xij = x[[i as usize, j as usize]];
            loss -= n * log_sigmoid(xij);
            g[[i as usize, j as usize]] -= n * sigmoid(-xij);
        }
        let mut gradient = Array2::zeros((u.nrows(), 2 * v));
        gradient.slice_mut(s![.., ..v]).assign(&w.dot(&g.t()));
        gradient.slice_mut(s![.., v..]).assign(&u.dot(&g));
        let zt = z.slice(s![t, .., ..]);
        loss += 0.5 * zt.iter().map(|a| a * a).sum::<f64>() / self.prior_variance;
        gradient.scaled_add(1.0 / self.prior_variance, &zt);
        (loss, gradient)
    }

    /// Loss parts and the full gradient.
    pub fn loss_and_gradient(&self, z: &Array3<f64>) -> (LossParts, Array3<f64>) {
        let mut gradient = coupling_gradient(&z.view(), &self.couplings);
        let mut local = 0.0;
        for t in 0..self.steps.len() {
            let (l, g) = self.local(z, t);
            local += l;
            let mut slot = gradient.slice_mut(s![t, .., ..]);
            slot += &g;
        }
        (
            LossParts {
                local,
                coupling: coupling_energy(z, &self.couplings),
            },
            gradient,
        )
    }
}

impl DynamicSkipGram {
    /// Adds z_c/σ_0² and (L z)_c of parameter column `column` to `gradient[.., .., slot]`.
    #[cfg(test)]
    fn add_exact_terms(
        &self,
        z: &Array3<f64>,
        column: usize,
        gradient: &mut Array3<f64>,
        slot: usize,
    ) {
        let own = z.slice(s![.., .., column..column + 1]);
        let coupling = coupling_gradient(&own, &self.couplings);
        let exact = &own.index_axis(ndarray::Axis(2), 0) / self.prior_variance
            + coupling.index_axis(ndarray::Axis(2), 0);
        let mut target = gradient.slice_mut(s![.., .., slot]);
        target += &exact;
    }

    /// The gradient on the block `words` × `contexts` (see [`BlockGradient`]): the f64
    /// reference the fast kernel is tested against.
    #[cfg(test)]
    pub fn block_gradient(
        &self,
        z: &Array3<f64>,
        words: &[usize],
        contexts: &[usize],
    ) -> BlockGradient {
        let v = self.vocabulary;
        let (steps, d) = (z.shape()[0], z.shape()[1]);
        let word_scale = v as f64 / contexts.len().max(1) as f64;
        let context_scale = v as f64 / words.len().max(1) as f64;
        let mut slot_of_context = vec![usize::MAX; v];
        for (k, &j) in contexts.iter().enumerate() {
            slot_of_context[j] = k;
        }
        let mut word_gradient = Array3::zeros((steps, d, words.len()));
        let mut context_gradient = Array3::zeros((steps, d, contexts.len()));
        let mut block_loss = 0.0;
        for t in 0..steps {
            let counts = &self.steps[t];
            let u = z.slice(s![t, .., ..v]).select(ndarray::Axis(1), words);
            let w = z.slice(s![t, .., v..]).select(ndarray::Axis(1), contexts);
            let x = u.t().dot(&w);
            let scale = counts.total() * self.eta;
            let mut g = Array2::<f64>::zeros((words.len(), contexts.len()));
            for ((a, b), &xab) in x.indexed_iter() {
                let negative = scale * counts.unigram[words[a]] * counts.smoothed[contexts[b]];
                block_loss -= negative * log_sigmoid(-xab);
                g[[a, b]] = negative * sigmoid(xab);
            }
            let starts = counts.row_starts(v);
            for (a, &i) in words.iter().enumerate() {
                for &(_, j, n) in &counts.positive[starts[i]..starts[i + 1]] {
                    let b = slot_of_context[j as usize];
                    if b == usize::MAX {
                        continue;
                    }
                    block_loss -= n * log_sigmoid(x[[a, b]]);
                    g[[a, b]] -= n * sigmoid(-x[[a, b]]);
                }
            }
            word_gradient
                .slice_mut(s![t, .., ..])
                .assign(&(w.dot(&g.t()) * word_scale));
            context_gradient
                .slice_mut(s![t, .., ..])
                .assign(&(u.dot(&g) * context_scale));
        }
        // Exact prior and coupling terms, for the touched columns only.
        for (k, &i) in words.iter().enumerate() {
            self.add_exact_terms(z, i, &mut word_gradient, k);
        }
        for (k, &j) in contexts.iter().enumerate() {
            self.add_exact_terms(z, v + j, &mut context_gradient, k);
        }
        let word_major =
            |a: Array3<f64>| a.permuted_axes([0, 2, 1]).as_standard_layout().into_owned();
        BlockGradient {
            words: words.to_vec(),
            contexts: contexts.to_vec(),
            word_gradient: word_major(word_gradient),
            context_gradient: word_major(context_gradient),
            block_loss,
        }
    }
}

/// Adam on vocabulary blocks: the moments of a column are updated only when the column is in
/// the block ("lazy" Adam), with bias correction by the global step count.
#[derive(Clone, Debug)]
pub struct BlockAdam {
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    first: Array3<f64>,
    second: Array3<f64>,
    step: i32,
}

impl BlockAdam {
    /// Zero moments for parameters of shape (T, d, 2V), word-major like the parameters.
    pub fn new(shape: (usize, usize, usize), beta1: f64, beta2: f64, epsilon: f64) -> Self {
        // Written once up front: lazily zeroed pages that are first read and then written are
        // copied on write, and in a multi-threaded process every such copy costs a TLB
        // shoot-down (measured: seconds for the first update at V = 1000, T = 229).
        let touched = || {
            let (steps, d, width) = shape;
            let mut a = Array3::zeros((steps, width, d)).permuted_axes([0, 2, 1]);
            a.fill(std::hint::black_box(0.0));
            a
        };
        Self {
            beta1,
            beta2,
            epsilon,
            first: touched(),
            second: touched(),
            step: 0,
        }
    }

    /// Rotates the moments with the parameters when step t was mapped by `maps[t]`: the first
    /// moment (a running mean of gradients, which rotate with the parameters) by R_t, the second
    /// (running mean of squared coordinates) by R_t∘R_t, exact when coordinates are uncorrelated.
    pub fn rotate_moments(&mut self, maps: &[Array2<f64>]) {
        for (t, r) in maps.iter().enumerate() {
            let squared = r.mapv(|x| x * x);
            let first = r.dot(&self.first.index_axis(ndarray::Axis(0), t));
            self.first
                .index_axis_mut(ndarray::Axis(0), t)
                .assign(&first);
            let second = squared.dot(&self.second.index_axis(ndarray::Axis(0), t));
            self.second
                .index_axis_mut(ndarray::Axis(0), t)
                .assign(&second);
        }
    }

    /// The first and second moments.
    #[cfg(test)]
    pub fn moments(&self) -> (&Array3<f64>, &Array3<f64>) {
        (&self.first, &self.second)
    }

    #[cfg(test)]
    pub(crate) fn set_moments_for_test(&mut self, first: Array3<f64>, second: Array3<f64>) {
        self.first = to_word_major(&first);
        self.second = to_word_major(&second);
    }

    /// Applies one step of size `rate` for `block` to the word-major `z` ([`to_word_major`]):
    /// every block column of z and of both moments is d contiguous values, updated in place in
    /// one vectorisable pass; steps in parallel.
    ///
    /// # Panics
    /// If `z` is not word-major.
    pub fn step(&mut self, z: &mut Array3<f64>, block: &BlockGradient, rate: f64) {
        assert!(
            is_word_major(z),
            "Adam updates word-major parameters (to_word_major)"
        );
        self.step += 1;
        let update = AdamUpdate {
            beta1: self.beta1,
            beta2: self.beta2,
            epsilon: self.epsilon,
            rate,
            first_correction: 1.0 - self.beta1.powi(self.step),
            second_correction: 1.0 - self.beta2.powi(self.step),
        };
        let (_, d, width) = z.dim();
        let v = width / 2;
        let chunk = d * width;
        let (Some(zs), Some(ms), Some(ss)) = (
            z.as_slice_memory_order_mut(),
            self.first.as_slice_memory_order_mut(),
            self.second.as_slice_memory_order_mut(),
        ) else {
            unreachable!("parameters and moments are contiguous")
        };
        let gradients = block
            .word_gradient
            .outer_iter()
            .into_par_iter()
            .zip(block.context_gradient.outer_iter().into_par_iter());
        zs.par_chunks_mut(chunk)
            .zip(ms.par_chunks_mut(chunk))
            .zip(ss.par_chunks_mut(chunk))
            .zip(gradients)
            .for_each(|(((zt, mt), st), (word_gradient, context_gradient))| {
                for (columns, offset, gradient) in [
                    (&block.words, 0, word_gradient),
                    (&block.contexts, v, context_gradient),
                ] {
                    for (&c, g) in columns.iter().zip(gradient.outer_iter()) {
                        let range = (offset + c) * d..(offset + c + 1) * d;
                        adam_lanes(
                            &update,
                            g.as_slice().expect("block gradients are standard layout"),
                            &mut zt[range.clone()],
                            &mut mt[range.clone()],
                            &mut st[range],
                        );
                    }
                }
            });
    }
}

/// The coefficients of one Adam step.
struct AdamUpdate {
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    rate: f64,
    first_correction: f64,
    second_correction: f64,
}

/// The Adam update on contiguous lanes (vectorised; also compiled for AVX2).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn adam_lanes(
    update: &AdamUpdate,
    gradient: &[f64],
    z: &mut [f64],
    first: &mut [f64],
    second: &mut [f64],
) {
    let AdamUpdate {
        beta1,
        beta2,
        epsilon,
        rate,
        first_correction,
        second_correction,
    } = *update;
    for (((&g, z), m), s) in gradient.iter().zip(z).zip(first).zip(second) {
        *m = beta1 * *m + (1.0 - beta1) * g;
        *s = beta2 * *s + (1.0 - beta2) * g * g;
        *z -= rate * (*m / first_correction) / ((*s / second_correction).sqrt() + epsilon);
    }
}

impl ChainModel for DynamicSkipGram {
    fn loss(&self, z: &Array3<f64>) -> LossParts {
        self.loss_and_gradient(z).0
    }
    fn gradient(&self, z: &Array3<f64>) -> Array3<f64> {
        self.loss_and_gradient(z).1
    }
    fn couplings(&self) -> &[f64] {
        &self.couplings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::counts::{PairCounts, add_sentence, negative_marginals};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    pub fn model() -> DynamicSkipGram {
        let sentences = [
            vec![Some(0), Some(1), Some(2), Some(3), Some(4), Some(5)],
            vec![Some(5), Some(3), Some(1), Some(0), Some(2)],
            vec![Some(2), Some(2), Some(4), None, Some(0)],
        ];
        let steps = sentences
            .iter()
            .map(|sentence| {
                let mut counts = PairCounts::new();
                add_sentence(&mut counts, sentence, 4);
                let (unigram, smoothed) = negative_marginals(&counts, 6, 0.75);
                StepCounts {
                    positive: counts.iter().map(|(&(i, j), &n)| (i, j, n)).collect(),
                    unigram,
                    smoothed,
                }
            })
            .collect();
        DynamicSkipGram {
            steps,
            vocabulary: 6,
            eta: 1.0,
            prior_variance: 1.0,
            couplings: DynamicSkipGram::ou_couplings(&[1790.0, 1791.0, 1793.0], 0.5),
        }
    }

    #[test]
    fn ou_couplings_follow_the_gaps() {
        assert_eq!(
            DynamicSkipGram::ou_couplings(&[1932.0, 1934.0, 1935.0], 1e-3),
            vec![500.0, 1000.0]
        );
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let model = model();
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let z = Array3::from_shape_simple_fn((3, 2, 12), || {
            let x: f64 = StandardNormal.sample(&mut rng);
            0.7 * x
        });
        crate::models::goldstone::train::assert_gradient_matches_finite_differences(
            &model, &z, 1e-6,
        );
    }

    /// The full block (I = J = all words, scale 1) is the exact gradient; averaging the scaled
    /// blocks over a partition of the contexts gives the exact word gradient (unbiasedness).
    #[test]
    fn blocks_are_exact_in_full_and_unbiased_over_a_partition() {
        let model = model();
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let z = Array3::from_shape_simple_fn((3, 2, 12), || {
            let x: f64 = StandardNormal.sample(&mut rng);
            0.7 * x
        });
        let (_, full) = model.loss_and_gradient(&z);
        let all: Vec<usize> = (0..6).collect();
        let block = model.block_gradient(&z, &all, &all);
        for t in 0..3 {
            for k in 0..2 {
                for i in 0..6 {
                    assert!((block.word_gradient[[t, i, k]] - full[[t, k, i]]).abs() < 1e-10);
                    assert!(
                        (block.context_gradient[[t, i, k]] - full[[t, k, 6 + i]]).abs() < 1e-10
                    );
                }
            }
        }
        let words = [1, 4];
        let halves = [[0, 2, 5], [1, 3, 4]];
        let blocks: Vec<BlockGradient> = halves
            .iter()
            .map(|contexts| model.block_gradient(&z, &words, contexts))
            .collect();
        for t in 0..3 {
            for k in 0..2 {
                for (a, &i) in words.iter().enumerate() {
                    let mean = 0.5
                        * (blocks[0].word_gradient[[t, a, k]] + blocks[1].word_gradient[[t, a, k]]);
                    assert!(
                        (mean - full[[t, k, i]]).abs() < 1e-10,
                        "t {t} k {k} word {i}"
                    );
                }
            }
        }
    }

    /// With the whole vocabulary as one block, lazy Adam is plain Adam on the exact gradient;
    /// with random half-vocabulary blocks it still lowers the full loss substantially.
    #[test]
    fn block_adam_is_adam_on_full_blocks_and_descends_on_random_ones() {
        let model = model();
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        let z0 = Array3::from_shape_simple_fn((3, 2, 12), || {
            let x: f64 = StandardNormal.sample(&mut rng);
            0.3 * x
        });
        let all: Vec<usize> = (0..6).collect();
        let (beta1, beta2, eps, rate) = (0.9, 0.999, 1e-8, 0.01);
        let mut z = to_word_major(&z0);
        let mut adam = BlockAdam::new((3, 2, 12), beta1, beta2, eps);
        let mut reference = z0.clone();
        let (mut m, mut v) = (
            Array3::<f64>::zeros((3, 2, 12)),
            Array3::<f64>::zeros((3, 2, 12)),
        );
        for step in 1..=5 {
            let block = model.block_gradient(&z, &all, &all);
            adam.step(&mut z, &block, rate);
            let (_, g) = model.loss_and_gradient(&reference);
            m = &m * beta1 + &g * (1.0 - beta1);
            v = &v * beta2 + &(&g * &g) * (1.0 - beta2);
            let (c1, c2) = (1.0 - beta1.powi(step), 1.0 - beta2.powi(step));
            let update = (&m / c1) / ((&v / c2).mapv(f64::sqrt) + eps) * rate;
            reference -= &update;
        }
        for (a, b) in z.iter().zip(&reference) {
            assert!((a - b).abs() < 1e-12);
        }

        let mut z = to_word_major(&z0);
        let mut adam = BlockAdam::new((3, 2, 12), beta1, beta2, eps);
        let start = model.loss(&z).total();
        let mut order: Vec<usize> = (0..6).collect();
        for step in 0..600 {
            order.rotate_left(1 + step % 5);
            let (words, contexts) = (&order[..3], &order[3..]);
            let block = model.block_gradient(&z, words, contexts);
            adam.step(&mut z, &block, 0.02);
        }
        let end = model.loss(&z).total();
        let mut full = to_word_major(&z0);
        let mut adam = BlockAdam::new((3, 2, 12), beta1, beta2, eps);
        for _ in 0..600 {
            let block = model.block_gradient(&full, &all, &all);
            adam.step(&mut full, &block, 0.02);
        }
        let best = model.loss(&full).total();
        // Blocks see each column about half the time: they must still achieve most of the
        // decrease that full-batch Adam achieves in the same number of steps.
        assert!(
            start - end > 0.8 * (start - best),
            "blocks {start} → {end}, full {best}"
        );
    }

    /// log σ is accurate far into both tails (no overflow, no loss of the small term).
    #[test]
    fn log_sigmoid_is_stable() {
        assert!((log_sigmoid(800.0)).abs() < 1e-300);
        assert!((log_sigmoid(-800.0) + 800.0).abs() < 1e-9);
        assert!((log_sigmoid(0.0) + std::f64::consts::LN_2).abs() < 1e-15);
    }
}
