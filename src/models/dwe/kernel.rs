//! The fast path of the dynamic skip-gram: the likelihood and its gradient on a vocabulary block
//! I × J for every time step, computed in f32 as three dense GEMMs per step (X = U_IᵀV_J,
//! ∇U_I = V_J Gᵀ, ∇V_J = U_I G) with the element-wise G in between, steps in parallel (rayon;
//! each GEMM single-threaded, so the parallelism is never nested). Parameters stay in f64 and
//! are gathered into f32 blocks per step; sums are accumulated in f64.
//!
//! [`CountsIndex`] is the per-step compressed-row form of the counts that the kernel reads;
//! [`super::DynamicSkipGram::block_gradient`] is the f64 reference it is tested against.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Array3, ArrayView2, Axis, s};
use rayon::prelude::*;

use super::{BlockGradient, DynamicSkipGram, StepCounts};

/// One step's counts in compressed rows, in f32.
#[derive(Clone, Debug)]
pub struct StepIndex {
    /// Word i owns entries `row_starts[i]..row_starts[i + 1]`.
    pub row_starts: Vec<usize>,
    pub contexts: Vec<u32>,
    pub values: Vec<f32>,
    pub unigram: Vec<f32>,
    pub smoothed: Vec<f32>,
    /// Σ n⁺ of the step.
    pub total: f64,
}

impl StepIndex {
    pub fn new(counts: &StepCounts, vocabulary: usize) -> Self {
        let row_starts = counts.row_starts(vocabulary);
        Self {
            row_starts,
            contexts: counts.positive.iter().map(|p| p.1).collect(),
            values: counts.positive.iter().map(|p| p.2 as f32).collect(),
            unigram: counts.unigram.iter().map(|&p| p as f32).collect(),
            smoothed: counts.smoothed.iter().map(|&p| p as f32).collect(),
            total: counts.total(),
        }
    }
}

/// Every step of a model in [`StepIndex`] form.
#[derive(Clone, Debug)]
pub struct CountsIndex {
    pub steps: Vec<StepIndex>,
}

impl CountsIndex {
    pub fn new(model: &DynamicSkipGram) -> Self {
        Self {
            steps: model
                .steps
                .iter()
                .map(|c| StepIndex::new(c, model.vocabulary))
                .collect(),
        }
    }
}

/// What to compute on a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Gradient,
    Loss,
    Both,
}

impl Want {
    fn loss(self) -> bool {
        self != Want::Gradient
    }
    fn gradient(self) -> bool {
        self != Want::Loss
    }
}

/// The likelihood terms of one step on a block: −log-likelihood over I × J and, if wanted, the
/// unscaled gradients d × |I| and d × |J|.
pub struct StepTerms {
    pub loss: f64,
    pub word_gradient: Option<Array2<f32>>,
    pub context_gradient: Option<Array2<f32>>,
}

fn gather(zt: ArrayView2<'_, f64>, columns: &[usize], offset: usize) -> Array2<f32> {
    let mut out = Array2::zeros((zt.nrows(), columns.len()));
    for (k, &c) in columns.iter().enumerate() {
        out.column_mut(k)
            .zip_mut_with(&zt.column(offset + c), |o, &x| *o = x as f32);
    }
    out
}

/// The terms of step counts `counts` at parameters `zt` (d × 2V: U then V) on `words` ×
/// `contexts`. `slot_of_context[j]` is j's position in `contexts` or `usize::MAX`.
pub fn step_terms(
    zt: ArrayView2<'_, f64>,
    counts: &StepIndex,
    eta: f64,
    words: &[usize],
    contexts: &[usize],
    slot_of_context: &[usize],
    want: Want,
) -> StepTerms {
    let vocabulary = zt.ncols() / 2;
    let u = gather(zt, words, 0);
    let w = gather(zt, contexts, vocabulary);
    let mut g = Array2::<f32>::zeros((words.len(), contexts.len()));
    general_mat_mul(1.0, &u.t(), &w, 0.0, &mut g);
    let scale = (counts.total * eta) as f32;
    let smoothed: Vec<f32> = contexts.iter().map(|&j| counts.smoothed[j]).collect();
    let mut loss = 0.0f64;
    let mut positives: Vec<(usize, f32, f32)> = Vec::new();
    for (a, mut row) in g.axis_iter_mut(Axis(0)).enumerate() {
        let i = words[a];
        // Positive entries first, while the row still holds x = u_iᵀv_j.
        positives.clear();
        let (begin, end) = (counts.row_starts[i], counts.row_starts[i + 1]);
        for k in begin..end {
            let b = slot_of_context[counts.contexts[k] as usize];
            if b == usize::MAX {
                continue;
            }
            let (n, x) = (counts.values[k], row[b]);
            // −log σ(x) = max(−x, 0) + log(1 + e^{−|x|}); σ(−x) = 1 − σ(x).
            let e = (-x.abs()).exp();
            if want.loss() {
                loss += f64::from(n * ((-x).max(0.0) + e.ln_1p()));
            }
            let sigma_minus = if x >= 0.0 { e / (1.0 + e) } else { 1.0 / (1.0 + e) };
            positives.push((b, n, sigma_minus));
        }
        let weight = scale * counts.unigram[i];
        let mut row_loss = 0.0f32;
        for (x, &q) in row.iter_mut().zip(&smoothed) {
            let negative = weight * q;
            let e = (-x.abs()).exp();
            if want.loss() {
                // −log σ(−x) = max(x, 0) + log(1 + e^{−|x|}).
                row_loss += negative * (x.max(0.0) + e.ln_1p());
            }
            let sigma = if *x >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
            *x = negative * sigma;
        }
        loss += f64::from(row_loss);
        for &(b, n, sigma_minus) in &positives {
            row[b] -= n * sigma_minus;
        }
    }
    if !want.gradient() {
        return StepTerms {
            loss,
            word_gradient: None,
            context_gradient: None,
        };
    }
    let d = zt.nrows();
    let mut word_gradient = Array2::<f32>::zeros((d, words.len()));
    general_mat_mul(1.0, &w, &g.t(), 0.0, &mut word_gradient);
    let mut context_gradient = Array2::<f32>::zeros((d, contexts.len()));
    general_mat_mul(1.0, &u, &g, 0.0, &mut context_gradient);
    StepTerms {
        loss,
        word_gradient: Some(word_gradient),
        context_gradient: Some(context_gradient),
    }
}

/// `slot[j]` = position of j in `contexts`, `usize::MAX` elsewhere.
pub fn context_slots(contexts: &[usize], vocabulary: usize) -> Vec<usize> {
    let mut slots = vec![usize::MAX; vocabulary];
    for (k, &j) in contexts.iter().enumerate() {
        slots[j] = k;
    }
    slots
}

impl DynamicSkipGram {
    /// [`DynamicSkipGram::block_gradient`] on the fast path: f32 blocks, steps in parallel.
    /// With `want = Loss` the gradients are left zero.
    pub fn fast_block(
        &self,
        index: &CountsIndex,
        z: &Array3<f64>,
        words: &[usize],
        contexts: &[usize],
        want: Want,
    ) -> BlockGradient {
        let v = self.vocabulary;
        let (steps, d) = (z.shape()[0], z.shape()[1]);
        let slots = context_slots(contexts, v);
        let terms: Vec<StepTerms> = (0..steps)
            .into_par_iter()
            .map(|t| {
                step_terms(
                    z.index_axis(Axis(0), t),
                    &index.steps[t],
                    self.eta,
                    words,
                    contexts,
                    &slots,
                    want,
                )
            })
            .collect();
        let word_scale = v as f64 / contexts.len().max(1) as f64;
        let context_scale = v as f64 / words.len().max(1) as f64;
        let mut word_gradient = Array3::zeros((steps, d, words.len()));
        let mut context_gradient = Array3::zeros((steps, d, contexts.len()));
        let mut block_loss = 0.0;
        for (t, step) in terms.iter().enumerate() {
            block_loss += step.loss;
            if let Some(g) = &step.word_gradient {
                word_gradient
                    .slice_mut(s![t, .., ..])
                    .zip_mut_with(g, |o, &x| *o = f64::from(x) * word_scale);
            }
            if let Some(g) = &step.context_gradient {
                context_gradient
                    .slice_mut(s![t, .., ..])
                    .zip_mut_with(g, |o, &x| *o = f64::from(x) * context_scale);
            }
        }
        if want.gradient() {
            for (k, &i) in words.iter().enumerate() {
                self.add_exact_terms(z, i, &mut word_gradient, k);
            }
            for (k, &j) in contexts.iter().enumerate() {
                self.add_exact_terms(z, v + j, &mut context_gradient, k);
            }
        }
        BlockGradient {
            words: words.to_vec(),
            contexts: contexts.to_vec(),
            word_gradient,
            context_gradient,
            block_loss,
        }
    }

    /// −log-likelihood of every step over the full vocabulary (fast path), per step.
    pub fn step_likelihoods(&self, index: &CountsIndex, z: &Array3<f64>) -> Vec<f64> {
        let all: Vec<usize> = (0..self.vocabulary).collect();
        let slots = context_slots(&all, self.vocabulary);
        (0..z.shape()[0])
            .into_par_iter()
            .map(|t| {
                step_terms(
                    z.index_axis(Axis(0), t),
                    &index.steps[t],
                    self.eta,
                    &all,
                    &all,
                    &slots,
                    Want::Loss,
                )
                .loss
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    /// The f32 fast path agrees with the f64 reference on full and partial blocks, gradient and
    /// loss, to f32 accuracy (relative 1e-4 of the largest component).
    #[test]
    fn fast_blocks_match_the_reference() {
        let model = super::super::tests::model();
        let index = CountsIndex::new(&model);
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let z = Array3::from_shape_simple_fn((3, 2, 12), || {
            let x: f64 = StandardNormal.sample(&mut rng);
            1.5 * x
        });
        let all: Vec<usize> = (0..6).collect();
        for (words, contexts) in [
            (all.clone(), all.clone()),
            (vec![1, 4], vec![0, 2, 5]),
            (vec![5, 0, 3], vec![3]),
        ] {
            let reference = model.block_gradient(&z, &words, &contexts);
            let fast = model.fast_block(&index, &z, &words, &contexts, Want::Both);
            let largest = reference
                .word_gradient
                .iter()
                .chain(&reference.context_gradient)
                .fold(0.0f64, |m, x| m.max(x.abs()));
            for (a, b) in reference
                .word_gradient
                .iter()
                .zip(&fast.word_gradient)
                .chain(reference.context_gradient.iter().zip(&fast.context_gradient))
            {
                assert!((a - b).abs() < 1e-4 * largest, "{a} vs {b}");
            }
            assert!(
                (reference.block_loss - fast.block_loss).abs() < 1e-5 * reference.block_loss,
                "{} vs {}",
                reference.block_loss,
                fast.block_loss
            );
        }
        let per_step: f64 = model.step_likelihoods(&index, &z).iter().sum();
        let parts = model.loss_and_gradient(&z).0;
        let prior = 0.5 * z.iter().map(|x| x * x).sum::<f64>() / model.prior_variance;
        assert!((per_step - (parts.local - prior)).abs() < 1e-5 * per_step);
    }
}
