//! The fast path of the dynamic skip-gram: the likelihood and its gradient on a vocabulary block
//! I × J for every time step, computed in f32 as three dense GEMMs per step (X = U_IᵀV_J,
//! ∇U_I = V_J Gᵀ, ∇V_J = U_I G) with the element-wise G in between, steps in parallel (rayon;
//! each GEMM single-threaded, so the parallelism is never nested). Parameters stay in f64 and
//! are gathered into f32 blocks per step (whole columns when they are word-major, as in
//! training); sums are accumulated in f64.
//!
//! [`CountsIndex`] is the per-step compressed-row form of the counts that the kernel reads;
//! [`super::DynamicSkipGram::block_gradient`] is the f64 reference it is tested against.

use ndarray::{Array3, ArrayView2, Axis};
use rayon::prelude::*;

use super::{BlockGradient, DynamicSkipGram, StepCounts};
use crate::linalg::gemm;
use crate::models::goldstone::coupling_energy;
use crate::models::goldstone::dense_mf::LossParts;

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
    #[cfg(test)]
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

/// Per-thread buffers of the kernel, grown on demand and reused: allocating the block-sized
/// temporaries afresh every step costs more in page faults than the arithmetic.
#[derive(Default)]
struct Scratch {
    u: Vec<f32>,
    w: Vec<f32>,
    g: Vec<f32>,
    word_gradient: Vec<f32>,
    context_gradient: Vec<f32>,
    positives: Vec<f32>,
    smoothed: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

fn sized(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// Columns `offset + c` of `zt` (d × 2V) in f32, one after another (|columns| × d): whole
/// contiguous columns when `zt` is word-major.
fn gather_into(zt: ArrayView2<'_, f64>, columns: &[usize], offset: usize, out: &mut [f32]) {
    for (chunk, &c) in out.chunks_exact_mut(zt.nrows()).zip(columns) {
        let column = zt.column(offset + c);
        match column.to_slice() {
            Some(values) => {
                for (o, &x) in chunk.iter_mut().zip(values) {
                    *o = x as f32;
                }
            }
            None => {
                for (o, &x) in chunk.iter_mut().zip(column.iter()) {
                    *o = x as f32;
                }
            }
        }
    }
}

/// e^x for x ≤ 0 in f32, branch-free so that the row loops vectorise: x = n ln 2 + r with
/// |r| ≤ ½ ln 2, e^r by its degree-6 Taylor polynomial (truncation ≤ 1.2e-7 relative), 2^n
/// from the exponent bits. Arguments below −87 (where e^x leaves the normal range) give e^{−87}.
#[inline]
fn exp_non_positive(x: f32) -> f32 {
    let x = x.max(-87.0);
    // Round to nearest by adding and subtracting 1.5·2²³ (no `floor`, which is a library call
    // without SSE4.1 and would stop the loop from vectorising).
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // ln 2 split into a part exact in f32 products with n and a remainder.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// log(1 + e) for e ∈ [0, 1]: 2 atanh(s) with s = e/(2 + e) ∈ [0, ⅓] (no cancellation), by
/// its odd series to s¹¹ (truncation ≤ 1e-7 relative).
#[inline]
fn ln_1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    2.0 * s
        * (1.0
            + s2 * (1.0 / 3.0
                + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0))))))
}

/// Row a of G from row a of X, positive and negative terms in one branch-free pass:
/// x ← w q_j σ(x) − n⁺_j σ(−x) with w = N_t η P_t(i) and the row's positive counts scattered
/// densely into `positives`. Compiled also for AVX2 + FMA and chosen at run time (the baseline
/// x86-64 target has 4-wide SSE2 only). A pass over compressed rows instead branches on the sign
/// of x at every positive entry, which mispredicts half the time on dense counts.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn likelihood_row(row: &mut [f32], positives: &[f32], smoothed: &[f32], weight: f32) {
    for ((x, &n), &q) in row.iter_mut().zip(positives).zip(smoothed) {
        *x = gradient_entry(*x, exp_non_positive(-x.abs()), n, weight * q);
    }
}

/// One entry of G: n⁻σ(x) − n⁺σ(−x) from x and e = e^{−|x|}, each σ from e without
/// cancellation; selects rather than branches, so that the callers' loops vectorise.
#[inline]
fn gradient_entry(x: f32, e: f32, positive: f32, negative: f32) -> f32 {
    let non_negative = x >= 0.0;
    let sigma = if non_negative { 1.0 } else { e } / (1.0 + e);
    let sigma_minus = if non_negative { e } else { 1.0 } / (1.0 + e);
    negative * sigma - positive * sigma_minus
}

/// [`likelihood_row`] and the row's −Σ_j [n⁺_ij log σ(x_ij) + n⁻_ij log σ(−x_ij)], summed in
/// eight lanes (a single f32 accumulator would keep the loop scalar).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn likelihood_row_with_loss(
    row: &mut [f32],
    positives: &[f32],
    smoothed: &[f32],
    weight: f32,
) -> f32 {
    const LANES: usize = 8;
    let mut lanes = [0.0f32; LANES];
    let element = |x: &mut f32, n: f32, q: f32, lane: &mut f32| {
        let negative = weight * q;
        let e = exp_non_positive(-x.abs());
        let log_term = ln_1p_unit(e);
        // −log σ(x) = max(−x, 0) + log(1 + e^{−|x|}), −log σ(−x) = max(x, 0) + log(1 + e^{−|x|}).
        *lane += n * ((-*x).max(0.0) + log_term) + negative * (x.max(0.0) + log_term);
        *x = gradient_entry(*x, e, n, negative);
    };
    let mut rows = row.chunks_exact_mut(LANES);
    let mut ns = positives.chunks_exact(LANES);
    let mut qs = smoothed.chunks_exact(LANES);
    for ((xs, n), q) in (&mut rows).zip(&mut ns).zip(&mut qs) {
        for k in 0..LANES {
            element(&mut xs[k], n[k], q[k], &mut lanes[k]);
        }
    }
    for ((x, &n), &q) in rows
        .into_remainder()
        .iter_mut()
        .zip(ns.remainder())
        .zip(qs.remainder())
    {
        element(x, n, q, &mut lanes[0]);
    }
    lanes.iter().sum()
}

/// The likelihood of step counts `counts` at parameters `zt` (d × 2V: U then V; any layout,
/// fastest word-major) on `words` × `contexts`: returns the −log-likelihood (0 unless wanted)
/// and, if wanted, calls `gradients` with the unscaled |I| × d and |J| × d gradients (word-major
/// like the blocks). `slot_of_context` is [`context_slots`] of `contexts`.
#[allow(clippy::too_many_arguments)]
pub fn step_terms(
    zt: ArrayView2<'_, f64>,
    counts: &StepIndex,
    eta: f64,
    words: &[usize],
    contexts: &[usize],
    slot_of_context: &[usize],
    want: Want,
    gradients: impl FnOnce(ArrayView2<'_, f32>, ArrayView2<'_, f32>),
) -> f64 {
    SCRATCH.with(|cell| {
        let scratch = &mut *cell.borrow_mut();
        let vocabulary = zt.ncols() / 2;
        let (d, ni, nj) = (zt.nrows(), words.len(), contexts.len());
        gather_into(zt, words, 0, sized(&mut scratch.u, d * ni));
        gather_into(zt, contexts, vocabulary, sized(&mut scratch.w, d * nj));
        // Column-major d × |I| and d × |J| views of the gathered columns.
        let u = ArrayView2::from_shape((ni, d), &scratch.u[..d * ni])
            .expect("sized above")
            .reversed_axes();
        let w = ArrayView2::from_shape((nj, d), &scratch.w[..d * nj])
            .expect("sized above")
            .reversed_axes();
        let mut g = ndarray::ArrayViewMut2::from_shape((ni, nj), sized(&mut scratch.g, ni * nj))
            .expect("sized above");
        gemm(1.0, u.t(), w, false, g.view_mut());
        let scale = (counts.total * eta) as f32;
        let mut loss = 0.0f64;
        let smoothed = sized(&mut scratch.smoothed, nj);
        for (q, &j) in smoothed.iter_mut().zip(contexts) {
            *q = counts.smoothed[j];
        }
        // One slot past the block takes the counts of contexts outside it.
        let dense = sized(&mut scratch.positives, nj + 1);
        for (a, mut row) in g.axis_iter_mut(Axis(0)).enumerate() {
            let i = words[a];
            dense.fill(0.0);
            let (begin, end) = (counts.row_starts[i], counts.row_starts[i + 1]);
            for (&j, &n) in counts.contexts[begin..end]
                .iter()
                .zip(&counts.values[begin..end])
            {
                dense[slot_of_context[j as usize]] = n;
            }
            let weight = scale * counts.unigram[i];
            let row = row.as_slice_mut().expect("rows of a standard-layout block");
            if want.loss() {
                loss += f64::from(likelihood_row_with_loss(
                    row,
                    &dense[..nj],
                    smoothed,
                    weight,
                ));
            } else {
                likelihood_row(row, &dense[..nj], smoothed, weight);
            }
        }
        if want.gradient() {
            let g = g.view();
            // The d × |I| and d × |J| products written through transposed views of |I| × d and
            // |J| × d buffers: the same products, stored word-major.
            let mut gu = ndarray::ArrayViewMut2::from_shape(
                (ni, d),
                sized(&mut scratch.word_gradient, d * ni),
            )
            .expect("sized above");
            gemm(1.0, w, g.t(), false, gu.view_mut().reversed_axes());
            let mut gw = ndarray::ArrayViewMut2::from_shape(
                (nj, d),
                sized(&mut scratch.context_gradient, d * nj),
            )
            .expect("sized above");
            gemm(1.0, u, g, false, gw.view_mut().reversed_axes());
            gradients(gu.view(), gw.view());
        }
        loss
    })
}

/// `slot[j]` = position of j in `contexts`, `contexts.len()` (a sink slot) elsewhere.
pub fn context_slots(contexts: &[usize], vocabulary: usize) -> Vec<usize> {
    let mut slots = vec![contexts.len(); vocabulary];
    for (k, &j) in contexts.iter().enumerate() {
        slots[j] = k;
    }
    slots
}

impl DynamicSkipGram {
    /// [`DynamicSkipGram::block_gradient`] on the fast path: f32 blocks, steps in parallel.
    /// With `want = Loss` the gradients are left zero.
    #[cfg(test)]
    pub fn fast_block(
        &self,
        index: &CountsIndex,
        z: &Array3<f64>,
        words: &[usize],
        contexts: &[usize],
        want: Want,
    ) -> BlockGradient {
        let mut out = BlockGradient::empty();
        self.fast_block_into(index, z, words, contexts, want, &mut out);
        out
    }

    /// [`DynamicSkipGram::fast_block`] into `out`, whose arrays are reused when their shapes fit.
    pub fn fast_block_into(
        &self,
        index: &CountsIndex,
        z: &Array3<f64>,
        words: &[usize],
        contexts: &[usize],
        want: Want,
        out: &mut BlockGradient,
    ) {
        let v = self.vocabulary;
        let (steps, d) = (z.shape()[0], z.shape()[1]);
        let slots = context_slots(contexts, v);
        for (array, n) in [
            (&mut out.word_gradient, words.len()),
            (&mut out.context_gradient, contexts.len()),
        ] {
            if array.dim() != (steps, n, d) {
                *array = Array3::zeros((steps, n, d));
            }
        }
        out.words = words.to_vec();
        out.contexts = contexts.to_vec();
        let word_scale = v as f64 / contexts.len().max(1) as f64;
        let context_scale = v as f64 / words.len().max(1) as f64;
        let word_columns: Vec<usize> = words.to_vec();
        let context_columns: Vec<usize> = contexts.iter().map(|&j| v + j).collect();
        let mut losses = ndarray::Array1::<f64>::zeros(steps);
        ndarray::Zip::indexed(out.word_gradient.axis_iter_mut(Axis(0)))
            .and(out.context_gradient.axis_iter_mut(Axis(0)))
            .and(&mut losses)
            .par_for_each(|t, mut word_out, mut context_out, loss| {
                *loss = step_terms(
                    z.index_axis(Axis(0), t),
                    &index.steps[t],
                    self.eta,
                    words,
                    contexts,
                    &slots,
                    want,
                    |gu, gw| {
                        self.fill_column_gradient(
                            z,
                            t,
                            &word_columns,
                            gu,
                            word_scale,
                            &mut word_out,
                        );
                        self.fill_column_gradient(
                            z,
                            t,
                            &context_columns,
                            gw,
                            context_scale,
                            &mut context_out,
                        );
                    },
                );
            });
        out.block_loss = losses.sum();
    }

    /// Step t of a block gradient (|columns| × d): the scaled likelihood part plus, exactly, the
    /// prior z/σ_0² and the coupling c_{t−1}(z_t − z_{t−1}) + c_t(z_t − z_{t+1}) of every listed
    /// column; each column's d components in one pass (contiguous when `z` is word-major).
    fn fill_column_gradient(
        &self,
        z: &Array3<f64>,
        t: usize,
        columns: &[usize],
        likelihood: ArrayView2<'_, f32>,
        scale: f64,
        out: &mut ndarray::ArrayViewMut2<'_, f64>,
    ) {
        let steps = z.shape()[0];
        let here = z.index_axis(Axis(0), t);
        // A missing neighbour is the step itself with coupling 0: the term adds exactly zero.
        let neighbour = |exists: bool, coupling: usize, step: usize| {
            if exists {
                (self.couplings[coupling], z.index_axis(Axis(0), step))
            } else {
                (0.0, here)
            }
        };
        let (before_coupling, before) = neighbour(t > 0, t.saturating_sub(1), t.saturating_sub(1));
        let (after_coupling, after) = neighbour(t + 1 < steps, t, (t + 1).min(steps - 1));
        let inverse_variance = 1.0 / self.prior_variance;
        for ((out_row, likelihood_row), &c) in out
            .outer_iter_mut()
            .zip(likelihood.outer_iter())
            .zip(columns)
        {
            ndarray::Zip::from(out_row)
                .and(likelihood_row)
                .and(here.column(c))
                .and(before.column(c))
                .and(after.column(c))
                .for_each(|o, &l, &x, &x_before, &x_after| {
                    let mut g = x * inverse_variance;
                    g += before_coupling * (x - x_before);
                    g += after_coupling * (x - x_after);
                    *o = g + scale * f64::from(l);
                });
        }
    }

    /// The objective's parts at `z` on the fast path: the likelihood of every step over the full
    /// vocabulary in f32 blocks (relative accuracy ~1e-6; the f64 reference
    /// [`DynamicSkipGram::loss_and_gradient`] also builds the full gradient with libm's exp and
    /// log1p), the prior and the coupling in f64.
    pub fn fast_loss(&self, index: &CountsIndex, z: &Array3<f64>) -> LossParts {
        let likelihood: f64 = self.step_likelihoods(index, z).iter().sum();
        let prior = 0.5 * z.iter().map(|x| x * x).sum::<f64>() / self.prior_variance;
        LossParts {
            local: likelihood + prior,
            coupling: coupling_energy(z, &self.couplings),
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
                    |_, _| {},
                )
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

    /// The vectorisable exp and log1p agree with f64 libm to a few f32 ulps over their range.
    #[test]
    fn fast_exp_and_log1p_are_accurate() {
        for k in 0..87_000 {
            let x = -(k as f32) * 1e-3;
            let exact = f64::from(x).exp();
            let fast = f64::from(exp_non_positive(x));
            assert!(
                (fast - exact).abs() <= 4e-7 * exact,
                "exp({x}): {fast} vs {exact}"
            );
            let e = (k as f32) / 87_000.0;
            let exact = f64::from(e).ln_1p();
            let fast = f64::from(ln_1p_unit(e));
            assert!(
                (fast - exact).abs() <= 4e-7 * exact + 1e-12,
                "log1p({e}): {fast} vs {exact}"
            );
        }
        assert!(exp_non_positive(-1e4) > 0.0 && exp_non_positive(f32::NEG_INFINITY) > 0.0);
    }

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
                .chain(
                    reference
                        .context_gradient
                        .iter()
                        .zip(&fast.context_gradient),
                )
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
        let fast = model.fast_loss(&index, &z);
        assert!((fast.local - parts.local).abs() < 1e-5 * parts.local);
        assert_eq!(fast.coupling, parts.coupling);
    }

    /// The layout of the parameters changes where values sit in memory, never a bit of the
    /// block gradient or the loss.
    #[test]
    fn word_major_parameters_give_the_same_bits() {
        let model = super::super::tests::model();
        let index = CountsIndex::new(&model);
        let mut rng = ChaCha8Rng::seed_from_u64(22);
        let z = Array3::from_shape_simple_fn((3, 2, 12), || {
            let x: f64 = StandardNormal.sample(&mut rng);
            1.5 * x
        });
        let word_major = super::super::to_word_major(&z);
        assert!(super::super::is_word_major(&word_major) && !super::super::is_word_major(&z));
        assert_eq!(word_major, z);
        for (words, contexts) in [
            (vec![0, 1, 2, 3, 4, 5], vec![0, 2, 3]),
            (vec![5, 1], vec![4]),
        ] {
            let a = model.fast_block(&index, &z, &words, &contexts, Want::Both);
            let b = model.fast_block(&index, &word_major, &words, &contexts, Want::Both);
            assert_eq!(a.word_gradient, b.word_gradient);
            assert_eq!(a.context_gradient, b.context_gradient);
            assert_eq!(a.block_loss.to_bits(), b.block_loss.to_bits());
        }
        assert_eq!(
            model.step_likelihoods(&index, &z),
            model.step_likelihoods(&index, &word_major)
        );
    }
}
