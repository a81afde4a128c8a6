//! Planted truth for dynamic word embeddings: co-occurrence counts sampled from known, slowly
//! drifting embeddings, so that a fit can be compared with the answer.
//!
//! The generative model (exact): V words with Zipf frequencies P(i) ∝ 1/(i+1) and P' ∝ P^γ;
//! per word a d_r-dimensional word and context vector that walk as a discrete Ornstein–Uhlenbeck
//! process with stationary variance s² = σ_x/√d_r per coordinate and a per-word rate r_i
//! (E cos(ũ_1, ũ_T) ≈ exp(−r_i/2)), log-uniform over an ordinary range, with a few planted words
//! at Zipf ranks in [10, 0.6V) drifting 4–30 times faster. A bias coordinate
//! β_{i,t} = −log Σ_j P'(j) exp(ũ_{i,t}·ṽ_{j,t}) completes u*_{i,t} = (ũ_{i,t}, β_{i,t}) and
//! v*_{j,t} = (ṽ_{j,t}, 1), so that p_{ij,t} = P(i) P'(j) exp(u*·v*) has Σ_j p_{ij,t} = P(i)
//! exactly. Counts n⁺_{ij,t} ~ Poisson(N_t p_{ij,t}); the negatives are built from the empirical
//! n⁺ as for a corpus, so E log(n⁺/n⁻) = u*·v* up to O(1/√count): the skip-gram optimum is the
//! truth, up to the gauge freedom.

use ndarray::{Array2, Array3};
use rand::RngExt;
use rand_distr::{Distribution, Poisson, StandardNormal};

use super::StepCounts;

/// Sizes and rates of a planted truth.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlantedOptions {
    pub vocabulary: usize,
    /// d_r: random coordinates (the truth has d_r + 1 with the bias).
    pub random_dim: usize,
    pub steps: usize,
    /// Standard deviation of ũ·ṽ (sets s² = σ_x/√d_r).
    pub sigma_x: f64,
    /// Range of the ordinary words' r_i (log-uniform).
    pub ordinary_rate: (f64, f64),
    /// How many planted fast words, and their r_i range (uniform).
    pub planted: usize,
    pub planted_rate: (f64, f64),
    /// P' ∝ P^γ.
    pub gamma: f64,
}

impl Default for PlantedOptions {
    fn default() -> Self {
        Self {
            vocabulary: 500,
            random_dim: 19,
            steps: 100,
            sigma_x: 1.5,
            ordinary_rate: (0.2, 1.0),
            planted: 10,
            planted_rate: (4.0, 6.0),
            gamma: 0.75,
        }
    }
}

impl PlantedOptions {
    /// s² = σ_x/√d_r: the stationary variance of every random coordinate, so that ũ·ṽ has
    /// standard deviation σ_x.
    pub fn stationary_variance(&self) -> f64 {
        self.sigma_x / (self.random_dim as f64).sqrt()
    }
}

/// The truth: embeddings, rates, frequencies.
#[derive(Clone, Debug)]
pub struct PlantedTruth {
    /// T × d × V: u*_{i,t} (bias coordinate last).
    pub words: Array3<f64>,
    /// T × d × V: v*_{j,t} (constant 1 last).
    pub contexts: Array3<f64>,
    /// r_i = D_i (T − 1)/s² of every word.
    pub rates: Vec<f64>,
    /// Indices of the planted fast words, ascending.
    pub planted: Vec<usize>,
    /// P(i) and P'(j).
    pub frequencies: Vec<f64>,
    pub smoothed: Vec<f64>,
}

fn zipf(vocabulary: usize, gamma: f64) -> (Vec<f64>, Vec<f64>) {
    let raw: Vec<f64> = (0..vocabulary).map(|i| 1.0 / (i + 1) as f64).collect();
    let total: f64 = raw.iter().sum();
    let p: Vec<f64> = raw.iter().map(|x| x / total).collect();
    let powered: Vec<f64> = p.iter().map(|x| x.powf(gamma)).collect();
    let norm: f64 = powered.iter().sum();
    (p, powered.iter().map(|x| x / norm).collect())
}

/// Draws a planted truth.
pub fn generate(options: &PlantedOptions, rng: &mut impl rand::Rng) -> PlantedTruth {
    let (v, dr, steps) = (options.vocabulary, options.random_dim, options.steps);
    let s2 = options.stationary_variance();
    let (frequencies, smoothed) = zipf(v, options.gamma);
    // Planted words: distinct ranks in [10, 0.6 V).
    let upper = ((0.6 * v as f64) as usize).max(11);
    let mut planted: Vec<usize> = Vec::new();
    while planted.len() < options.planted.min(upper.saturating_sub(10)) {
        let rank = rng.random_range(10..upper);
        if !planted.contains(&rank) {
            planted.push(rank);
        }
    }
    planted.sort_unstable();
    let (lo, hi) = options.ordinary_rate;
    let rates: Vec<f64> = (0..v)
        .map(|i| {
            if planted.contains(&i) {
                rng.random_range(options.planted_rate.0..=options.planted_rate.1)
            } else {
                (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
            }
        })
        .collect();
    let walk = |rng: &mut dyn rand::Rng| {
        let mut x = Array3::<f64>::zeros((steps, dr, v));
        for i in 0..v {
            let diffusion = s2 * rates[i] / (steps.max(2) - 1) as f64;
            let shrink = 1.0 / (1.0 + diffusion / s2).sqrt();
            for k in 0..dr {
                let z: f64 = StandardNormal.sample(rng);
                x[[0, k, i]] = s2.sqrt() * z;
            }
            for t in 1..steps {
                for k in 0..dr {
                    let xi: f64 = StandardNormal.sample(rng);
                    x[[t, k, i]] = (x[[t - 1, k, i]] + diffusion.sqrt() * xi) * shrink;
                }
            }
        }
        x
    };
    let word_walk = walk(rng);
    let context_walk = walk(rng);
    let d = dr + 1;
    let mut words = Array3::<f64>::zeros((steps, d, v));
    let mut contexts = Array3::<f64>::zeros((steps, d, v));
    for t in 0..steps {
        let u = word_walk.index_axis(ndarray::Axis(0), t);
        let c = context_walk.index_axis(ndarray::Axis(0), t);
        let x = u.t().dot(&c);
        for i in 0..v {
            // log Σ_j P'(j) e^{x_ij}, shifted by the row maximum for range.
            let top = x.row(i).iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = x
                .row(i)
                .iter()
                .zip(&smoothed)
                .map(|(&xij, &q)| q * (xij - top).exp())
                .sum();
            let bias = -(top + sum.ln());
            for k in 0..dr {
                words[[t, k, i]] = u[[k, i]];
                contexts[[t, k, i]] = c[[k, i]];
            }
            words[[t, dr, i]] = bias;
            contexts[[t, dr, i]] = 1.0;
        }
    }
    PlantedTruth {
        words,
        contexts,
        rates,
        planted,
        frequencies,
        smoothed,
    }
}

impl PlantedTruth {
    pub fn steps(&self) -> usize {
        self.words.dim().0
    }

    pub fn vocabulary(&self) -> usize {
        self.words.dim().2
    }

    /// x*_t = U*_tᵀ V*_t (V × V).
    pub fn scores(&self, t: usize) -> Array2<f64> {
        let u = self.words.index_axis(ndarray::Axis(0), t);
        let c = self.contexts.index_axis(ndarray::Axis(0), t);
        u.t().dot(&c)
    }

    /// p_{ij,t} = P(i) P'(j) exp(x*_{ij,t}).
    pub fn probabilities(&self, t: usize) -> Array2<f64> {
        let mut p = self.scores(t);
        for ((i, j), value) in p.indexed_iter_mut() {
            *value = self.frequencies[i] * self.smoothed[j] * value.exp();
        }
        p
    }

    /// Poisson counts with `total` expected positives per step, and the empirical negatives
    /// (row marginal P̂_t, P̂' ∝ P̂^γ) as a corpus would give them.
    pub fn sample_counts(
        &self,
        total: f64,
        gamma: f64,
        rng: &mut impl rand::Rng,
    ) -> Vec<StepCounts> {
        let v = self.vocabulary();
        (0..self.steps())
            .map(|t| {
                let p = self.probabilities(t);
                let mut positive = Vec::new();
                let mut marginal = vec![0.0; v];
                for i in 0..v {
                    for j in 0..v {
                        let mean = total * p[[i, j]];
                        let n = if mean > 0.0 {
                            Poisson::new(mean).map_or(0.0, |d| d.sample(rng))
                        } else {
                            0.0
                        };
                        if n > 0.0 {
                            positive.push((i as u32, j as u32, n));
                            marginal[i] += n;
                        }
                    }
                }
                let sum: f64 = marginal.iter().sum();
                let unigram: Vec<f64> = marginal.iter().map(|m| m / sum.max(1.0)).collect();
                let powered: Vec<f64> = unigram.iter().map(|x| x.powf(gamma)).collect();
                let norm: f64 = powered.iter().sum::<f64>().max(f64::MIN_POSITIVE);
                StepCounts {
                    positive,
                    unigram,
                    smoothed: powered.iter().map(|x| x / norm).collect(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn small(steps: usize) -> PlantedOptions {
        PlantedOptions {
            vocabulary: 60,
            random_dim: 5,
            steps,
            planted: 4,
            ..PlantedOptions::default()
        }
    }

    /// Σ_j p_{ij,t} = P(i) to rounding, for every word and step.
    #[test]
    fn rows_of_the_truth_sum_to_the_word_frequency() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let truth = generate(&small(5), &mut rng);
        for t in 0..5 {
            let p = truth.probabilities(t);
            for i in 0..60 {
                let row: f64 = p.row(i).sum();
                assert!((row - truth.frequencies[i]).abs() < 1e-14, "t {t} i {i}");
            }
            assert!((p.sum() - 1.0).abs() < 1e-12);
        }
    }

    /// On a large sample, log(n⁺/n⁻) − u*·v* over the well-counted pairs has mean ≈ 0 and its
    /// standardised spread ≈ 1 (the Poisson error of log n⁺ is 1/√(E n⁺)).
    #[test]
    fn log_ratio_of_counts_estimates_the_true_scores() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let truth = generate(&small(2), &mut rng);
        let total = 1e9;
        let counts = truth.sample_counts(total, 0.75, &mut rng);
        let mut residuals = Vec::new();
        for (t, step) in counts.iter().enumerate() {
            let x = truth.scores(t);
            let p = truth.probabilities(t);
            let n: f64 = step.positive.iter().map(|e| e.2).sum();
            for &(i, j, count) in &step.positive {
                let expected = total * p[[i as usize, j as usize]];
                if expected < 2e3 {
                    continue;
                }
                let negative = n * step.unigram[i as usize] * step.smoothed[j as usize];
                let z = ((count / negative).ln() - x[[i as usize, j as usize]]) * expected.sqrt();
                residuals.push(z);
            }
        }
        let k = residuals.len() as f64;
        assert!(k > 500.0, "{k} pairs");
        let mean = residuals.iter().sum::<f64>() / k;
        let sd = (residuals.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
        eprintln!("log(n+/n-) − u*·v*, standardised: mean {mean:.4}, sd {sd:.4} over {k} pairs");
        // The empirical marginals add a little correlated noise: allow 5 standard errors.
        assert!(
            mean.abs() < 5.0 * sd / k.sqrt() + 0.05,
            "mean {mean}, sd {sd}, {k} pairs"
        );
        assert!((sd - 1.0).abs() < 0.15, "sd {sd}");
    }

    /// Planted words have the larger rates, and drift further: their mean first↔last cosine
    /// is below the ordinary words' and near exp(−r/2) on average.
    #[test]
    fn planted_words_drift_faster() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let options = PlantedOptions {
            vocabulary: 200,
            random_dim: 19,
            steps: 50,
            planted: 10,
            ..PlantedOptions::default()
        };
        let truth = generate(&options, &mut rng);
        let slowest_planted = truth
            .planted
            .iter()
            .map(|&i| truth.rates[i])
            .fold(f64::INFINITY, f64::min);
        let fastest_ordinary = (0..200)
            .filter(|i| !truth.planted.contains(i))
            .map(|i| truth.rates[i])
            .fold(0.0, f64::max);
        assert!(slowest_planted > fastest_ordinary);
        let cos = |i: usize| {
            let dr = options.random_dim;
            let a = truth.words.slice(ndarray::s![0, ..dr, i]);
            let b = truth.words.slice(ndarray::s![options.steps - 1, ..dr, i]);
            let dot = |x: &ndarray::ArrayView1<f64>, y: &ndarray::ArrayView1<f64>| -> f64 {
                x.iter().zip(y).map(|(p, q)| p * q).sum()
            };
            dot(&a, &b) / (dot(&a, &a) * dot(&b, &b)).sqrt()
        };
        let mean = |set: &mut dyn Iterator<Item = usize>| {
            let v: Vec<f64> = set.map(cos).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let planted = mean(&mut truth.planted.clone().into_iter());
        let ordinary = mean(&mut (0..200).filter(|i| !truth.planted.contains(i)));
        let expected: f64 = truth
            .planted
            .iter()
            .map(|&i| (-truth.rates[i] / 2.0).exp())
            .sum::<f64>()
            / 10.0;
        assert!(
            planted < ordinary - 0.3,
            "planted {planted}, ordinary {ordinary}"
        );
        // Ten words of 19 coordinates each: the mean cosine scatters by ~0.08.
        assert!(
            (planted - expected).abs() < 0.25,
            "planted {planted} vs exp(−r/2) {expected}"
        );
    }
}
