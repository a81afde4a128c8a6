//! Per-step co-occurrence counts of the dynamic word embeddings (Bamler & Mandt 2017, supplement
//! §2): every ordered pair of words in a sentence with k words between them (k < c_max) adds
//! max(0, 1 − k/c_max) to n⁺_{ij} and to n⁺_{ji}; words outside the vocabulary still count as
//! words between. Negative counts are kept as two vectors: n⁻_{ij} = (Σn⁺) η P(i) P'(j) with P
//! the unigram marginal of n⁺ and P' ∝ P^γ.

use std::collections::{BTreeMap, HashMap};

/// Sparse counts of one step: (word, context) → weight, sorted.
pub type PairCounts = BTreeMap<(u32, u32), f64>;

/// Adds the window-weighted pairs of `sentence` (token ids, `None` outside the vocabulary).
pub fn add_sentence(counts: &mut PairCounts, sentence: &[Option<u32>], window: usize) {
    for (p, first) in sentence.iter().enumerate() {
        let Some(i) = first else { continue };
        for k in 0..window {
            let q = p + k + 1;
            let Some(Some(j)) = sentence.get(q) else {
                continue;
            };
            let weight = 1.0 - k as f64 / window as f64;
            *counts.entry((*i, *j)).or_insert(0.0) += weight;
            *counts.entry((*j, *i)).or_insert(0.0) += weight;
        }
    }
}

/// The `size` words with the largest sum over steps of their per-step relative frequency
/// (ties broken alphabetically), with that score. Words are interned: `step_frequencies` maps
/// word ids to counts, `names[id]` is the word.
pub fn vocabulary(
    step_frequencies: &[HashMap<u32, f64>],
    names: &[String],
    size: usize,
) -> Vec<(String, f64)> {
    let mut score: HashMap<u32, f64> = HashMap::new();
    for frequencies in step_frequencies {
        let total: f64 = frequencies.values().sum();
        if total <= 0.0 {
            continue;
        }
        for (&word, count) in frequencies {
            *score.entry(word).or_insert(0.0) += count / total;
        }
    }
    top_by_score(score, names, size)
}

/// The `size` words of highest score (ties broken alphabetically), with their scores.
pub fn top_by_score(
    score: impl IntoIterator<Item = (u32, f64)>,
    names: &[String],
    size: usize,
) -> Vec<(String, f64)> {
    let mut ranked: Vec<(String, f64)> = score
        .into_iter()
        .map(|(w, s)| (names[w as usize].clone(), s))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(size);
    ranked
}

/// P(i) = Σ_j n⁺_{ij} / Σ n⁺ and P'(j) = P(j)^γ / Σ P^γ, for a vocabulary of `size` words.
pub fn negative_marginals(counts: &PairCounts, size: usize, gamma: f64) -> (Vec<f64>, Vec<f64>) {
    let mut marginal = vec![0.0; size];
    for (&(i, _), &n) in counts {
        marginal[i as usize] += n;
    }
    let total: f64 = marginal.iter().sum();
    if total > 0.0 {
        marginal.iter_mut().for_each(|p| *p /= total);
    }
    let mut smoothed: Vec<f64> = marginal.iter().map(|p| p.powf(gamma)).collect();
    let norm: f64 = smoothed.iter().sum();
    if norm > 0.0 {
        smoothed.iter_mut().for_each(|p| *p /= norm);
    }
    (marginal, smoothed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made corpus: weights 1, ¾, ½, ¼ for 0…3 words between, nothing at 4, both orders,
    /// out-of-vocabulary words counted as words between, and no pair across sentences.
    #[test]
    fn window_weights_on_a_hand_made_corpus() {
        // ids: a = 0, b = 1, c = 2; None is a word outside the vocabulary.
        let corpus = [
            vec![Some(0), Some(1), None, Some(2), None, None, Some(0)],
            vec![Some(2), Some(2)],
            vec![Some(1), None, None, None, Some(2)],
            vec![Some(1)],
        ];
        let mut counts = PairCounts::new();
        for sentence in &corpus {
            add_sentence(&mut counts, sentence, 4);
        }
        let get = |i: u32, j: u32| counts.get(&(i, j)).copied().unwrap_or(0.0);
        // Sentence 1: a-b (k = 0) 1; a-c (k = 2) ½; b-c (k = 1) ¾; c-a (k = 2) ½;
        // b-a(last) (k = 4) 0; a(first)-a(last) (k = 5) 0.
        assert_eq!(get(0, 1), 1.0);
        assert_eq!(get(1, 0), 1.0);
        // b-c: ¾ (k = 1, sentence 1) + ¼ (k = 3, sentence 3).
        assert_eq!(get(1, 2), 1.0);
        assert_eq!(get(2, 1), 1.0);
        assert_eq!(get(0, 2), 1.0); // ½ (a…c) + ½ (c…a)
        assert_eq!(get(2, 0), 1.0);
        assert_eq!(get(0, 0), 0.0);
        // Sentence 2: c-c adjacent, both orders on the diagonal.
        assert_eq!(get(2, 2), 2.0);
        // Symmetric overall.
        for (&(i, j), &n) in &counts {
            assert_eq!(get(j, i), n);
        }
    }

    /// The rank-one negative term Σ_ij n⁻_ij x_ij with n⁻ = N η P(i)P'(j) equals the dense sum.
    #[test]
    fn negative_counts_are_rank_one() {
        let mut counts = PairCounts::new();
        add_sentence(
            &mut counts,
            &[Some(0), Some(1), Some(2), Some(1), Some(3)],
            4,
        );
        let (p, q) = negative_marginals(&counts, 4, 0.75);
        let total: f64 = counts.values().sum();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((q.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let x = |i: usize, j: usize| ((i * 5 + j * 3) as f64).sin();
        let dense: f64 = (0..4)
            .flat_map(|i| (0..4).map(move |j| (i, j)))
            .map(|(i, j)| total * p[i] * q[j] * x(i, j))
            .sum();
        let a: Vec<f64> = p.iter().map(|v| total * v).collect();
        let factored: f64 = (0..4)
            .map(|i| a[i] * (0..4).map(|j| q[j] * x(i, j)).sum::<f64>())
            .sum();
        assert!((dense - factored).abs() < 1e-12);
        // P' flattens P: the rarest word gains weight.
        let rare = (0..4).min_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert!(q[rare] > p[rare]);
    }

    #[test]
    fn vocabulary_ranks_by_summed_relative_frequency() {
        let names: Vec<String> = ["big", "old", "new"].map(String::from).to_vec();
        let step = |pairs: &[(&str, f64)]| {
            pairs
                .iter()
                .map(|(w, c)| (names.iter().position(|n| n == w).unwrap() as u32, *c))
                .collect::<HashMap<_, _>>()
        };
        // "big" dominates one huge step, "old" is frequent in two small ones.
        let steps = [
            step(&[("big", 900.0), ("old", 100.0)]),
            step(&[("old", 5.0), ("new", 5.0)]),
            step(&[("old", 6.0), ("new", 4.0)]),
        ];
        let vocab = vocabulary(&steps, &names, 2);
        assert_eq!(vocab[0].0, "old"); // 0.1 + 0.5 + 0.6
        assert_eq!(vocab[1].0, "big"); // 0.9
        assert!((vocab[0].1 - 1.2).abs() < 1e-12);
    }
}
