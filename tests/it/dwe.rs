//! dwe on the vendored State of the Union corpus: one step per calendar year, the gaps of the
//! corpus as Δτ = 2, and counts that obey the window construction.

use crate::util::Workspace;

const EXP: &str = "dwe-sotu-smoke";

#[test]
fn sotu_counts_have_one_step_per_year_and_the_gaps() {
    let ws = Workspace::with_data(EXP, &["sotu/sotu_statsmaths_1790-2020.jsonl.gz"]);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let steps = ws.table(EXP, "steps");
    let years: Vec<f64> = steps.rows.iter().map(|r| steps.f64(r, "year")).collect();
    // 1930–1975 without 1933 and 1973, which have no address in this corpus.
    assert_eq!(years.len(), 44);
    assert!(!years.contains(&1933.0) && !years.contains(&1973.0));
    for row in &steps.rows {
        let year = steps.f64(row, "year");
        let gap = steps.f64(row, "delta_tau_to_next");
        let expected = match year as i64 {
            1932 | 1972 => 2.0,
            1975 => f64::NAN,
            _ => 1.0,
        };
        assert!(
            gap == expected || (gap.is_nan() && expected.is_nan()),
            "{row:?}"
        );
        // Every in-vocabulary token contributes at most 2·(1 + ¾ + ½ + ¼) = 5 to Σn⁺.
        let tokens = steps.f64(row, "vocabulary_tokens");
        let total = steps.f64(row, "positive_total");
        assert!(total <= 5.0 * tokens && total > 0.0, "{row:?}");
    }
    let vocabulary = ws.table(EXP, "vocabulary");
    assert_eq!(vocabulary.rows.len(), 300);
    assert_eq!(vocabulary.str(&vocabulary.rows[0], "word"), "the");
}
