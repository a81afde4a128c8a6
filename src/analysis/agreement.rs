//! Agreement between fitted and true per-word quantities: Pearson and Spearman correlation,
//! mean absolute error, and how well a score singles out a known set (precision among the k
//! lowest scores, and the AUC — the probability that a member scores lower than a non-member,
//! ties counting one half).

/// Pearson correlation of `a` and `b` (NaN when either is constant or they differ in length).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() || a.len() < 2 {
        return f64::NAN;
    }
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

/// Ranks 1…n, ties sharing their mean rank.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut out = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let mean_rank = (start + end + 1) as f64 / 2.0;
        for &k in &order[start..end] {
            out[k] = mean_rank;
        }
        start = end;
    }
    out
}

/// Spearman correlation: Pearson of the ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// Mean |a − b|.
pub fn mean_absolute_error(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len().max(1) as f64
}

/// Share of the `k` lowest scores that belong to `members`.
pub fn precision_at_lowest(scores: &[f64], members: &[usize], k: usize) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&i, &j| scores[i].total_cmp(&scores[j]).then(i.cmp(&j)));
    let k = k.min(scores.len()).max(1);
    order[..k].iter().filter(|i| members.contains(i)).count() as f64 / k as f64
}

/// P(score of a member < score of a non-member), ties ½ (the Mann–Whitney statistic).
pub fn auc_lower(scores: &[f64], members: &[usize]) -> f64 {
    let (inside, outside): (Vec<usize>, Vec<usize>) =
        (0..scores.len()).partition(|i| members.contains(i));
    if inside.is_empty() || outside.is_empty() {
        return f64::NAN;
    }
    let mut wins = 0.0;
    for &i in &inside {
        for &j in &outside {
            wins += match scores[i].total_cmp(&scores[j]) {
                std::cmp::Ordering::Less => 1.0,
                std::cmp::Ordering::Equal => 0.5,
                std::cmp::Ordering::Greater => 0.0,
            };
        }
    }
    wins / (inside.len() * outside.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlations_of_known_cases() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [2.0, 4.0, 6.0, 8.0, 10.0];
        assert!((pearson(&a, &b) - 1.0).abs() < 1e-15);
        // A monotone but curved relation: Spearman 1, Pearson below 1.
        let c: Vec<f64> = a.iter().map(|x: &f64| x.powi(4)).collect();
        assert!((spearman(&a, &c) - 1.0).abs() < 1e-15);
        assert!(pearson(&a, &c) < 0.97);
        let reversed: Vec<f64> = a.iter().rev().copied().collect();
        assert!((spearman(&a, &reversed) + 1.0).abs() < 1e-15);
        // Hand-computed: x = (1, 2, 3), y = (1, 3, 2): r = 0.5.
        assert!((pearson(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]) - 0.5).abs() < 1e-15);
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
        assert!((mean_absolute_error(&a, &b) - 3.0).abs() < 1e-15);
    }

    #[test]
    fn recovery_of_a_known_set() {
        // Members 1 and 3 have the two lowest scores, then member 5 ties a non-member.
        let scores = [0.9, 0.1, 0.8, 0.2, 0.7, 0.5, 0.5];
        let members = [1, 3, 5];
        assert_eq!(precision_at_lowest(&scores, &members, 2), 1.0);
        assert!((precision_at_lowest(&scores, &members, 4) - 0.75).abs() < 1e-15);
        // Pairs (member, non-member): 1 and 3 beat all 4; 5 beats 0, 2, 4 and ties 6.
        let expected = (4.0 + 4.0 + 3.5) / 12.0;
        assert!((auc_lower(&scores, &members) - expected).abs() < 1e-15);
        assert!(auc_lower(&scores, &[]).is_nan());
    }
}
