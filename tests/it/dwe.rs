//! dwe on the vendored State of the Union corpus: one step per calendar year, the gaps of the
//! corpus as Δτ = 2, counts that obey the window construction, and a fit of both optimisers
//! whose outputs are complete and consistent.

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
    fit_outputs_are_complete_and_consistent(&ws);
}

fn fit_outputs_are_complete_and_consistent(ws: &Workspace) {
    let run = ws.latest(EXP);
    for figure in ["cosine_histogram", "curves", "sweep"] {
        for ext in ["png", "svg"] {
            assert!(
                run.join(format!("figures/{figure}.{ext}")).exists(),
                "{figure}.{ext}"
            );
        }
    }
    // Both optimisers start from the same Z, so their first recording points agree; both lower
    // the loss; Goldstone-GD runs one gauge phase per k1 = 10 iterations.
    let curves = ws.table(EXP, "curves");
    let at = |optimizer: &str, seed: f64, iteration: f64| {
        curves
            .rows
            .iter()
            .find(|r| {
                curves.str(r, "optimizer") == optimizer
                    && curves.f64(r, "seed") == seed
                    && curves.f64(r, "iteration") == iteration
            })
            .map(|r| curves.f64(r, "total"))
            .expect("a recording point")
    };
    for seed in [0.0, 1.0] {
        assert_eq!(at("baseline", seed, 0.0), at("goldstone", seed, 0.0));
        for optimizer in ["baseline", "goldstone"] {
            assert!(at(optimizer, seed, 60.0) < at(optimizer, seed, 0.0));
        }
    }
    let runs = ws.table(EXP, "runs");
    assert_eq!(runs.rows.len(), 4);
    for row in &runs.rows {
        let phases = runs.f64(row, "phases");
        let expected = if runs.str(row, "optimizer") == "goldstone" {
            6.0
        } else {
            0.0
        };
        assert_eq!(phases, expected);
        // Untrained embeddings predict log σ(0) = −ln 2 per point; training must not be worse
        // than that by much and a log-likelihood is never positive.
        let ll = runs.f64(row, "held_out_log_likelihood");
        assert!(ll < 0.0 && ll > -0.75, "{row:?}");
    }
    // 10 % of the 44 yearly steps are held out (never the first or the last year).
    let held_out = ws.table(EXP, "held_out");
    let times: std::collections::BTreeSet<i64> = held_out
        .rows
        .iter()
        .map(|r| held_out.f64(r, "time") as i64)
        .collect();
    assert_eq!(times.len(), 4);
    assert!(!times.contains(&1930) && !times.contains(&1975));
    let quantiles = ws.table(EXP, "cosine_quantiles");
    for row in &quantiles.rows {
        let q: Vec<f64> = ["q05", "q25", "median", "q75", "q95"]
            .iter()
            .map(|c| quantiles.f64(row, c))
            .collect();
        assert!(q.windows(2).all(|w| w[0] <= w[1]) && q[4] <= 1.0, "{row:?}");
    }
    // "internet" and "nuclear" are not among the 300 words of 1930–1975 at this size; the
    // others get five neighbours per optimiser.
    let aging = ws.table(EXP, "word_aging");
    assert_eq!(aging.rows.len(), 2 * 2 * 5);
    let sweep = ws.table(EXP, "sweep");
    let bins: std::collections::BTreeSet<i64> = sweep
        .rows
        .iter()
        .map(|r| sweep.f64(r, "bin_years") as i64)
        .collect();
    assert_eq!(bins.into_iter().collect::<Vec<_>>(), vec![1, 5]);
}

#[test]
fn an_unknown_initialisation_names_the_key_and_line() {
    let ws = Workspace::with_data(EXP, &["sotu/sotu_statsmaths_1790-2020.jsonl.gz"]);
    ws.edit_spec(EXP, |s| {
        s.replace("seeds = 2", "seeds = 2\ninit = \"random\"")
    });
    let run = ws.run(&["run", EXP, "--quiet"]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("dwe-sotu-smoke.toml:25: fit.init: unknown initialisation"),
        "{}",
        run.stderr()
    );
}

/// A corpus in the Philosophical Transactions' form (OCR text, a `language` per record) runs
/// through the same stages with `cleaning = "ocr"`: hyphenated words are joined, page numbers,
/// catchwords and formulas vanish, other languages and years outside the range are skipped.
#[test]
fn ocr_corpus_is_cleaned_and_filtered_by_language_and_year() {
    use sha2::Digest;
    let ws = Workspace::with_spec(EXP);
    let article = |year: i32, language: &str, text: &str| {
        serde_json::json!({"id": "x", "year": year, "language": language, "text": text}).to_string()
    };
    let english = "The electri-\ncity of the glass tube was strong.\n[ 12 ]\n\
                   The jar held the fire, and the fire\nfire went out of \\( \\frac{a}{b} \\) it.\n\
                   PHILOSOPHICAL TRANSACTIONS.\nThe glass and the jar and the tube were dry.";
    let mut lines = Vec::new();
    for year in 1800..=1805 {
        lines.push(article(year, "en", english));
        lines.push(article(year, "la", "Quod erat demonstrandum, quod vitrum."));
    }
    lines.push(article(1790, "en", "Outside the range entirely."));
    lines.sort();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, (lines.join("\n") + "\n").as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    let data = ws.path().join("data");
    std::fs::create_dir_all(data.join("ocr")).unwrap();
    std::fs::write(data.join("ocr/articles.jsonl.gz"), &bytes).unwrap();
    std::fs::write(
        data.join("registry.toml"),
        format!(
            "[[file]]\nname = \"ocr-fixture\"\nfile = \"ocr/articles.jsonl.gz\"\nsize = {}\n\
             sha256 = \"{}\"\nurls = []\n",
            bytes.len(),
            sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
    )
    .unwrap();
    ws.edit_spec(EXP, |s| {
        s.replace("corpus = \"sotu-statsmaths\"", "corpus = \"ocr-fixture\"")
            .replace(
                "first_year = 1930",
                "first_year = 1800\ncleaning = \"ocr\"\nlanguage = \"en\"",
            )
            .replace("last_year = 1975", "last_year = 1805")
            .replace("bin_years = [1, 5]", "bin_years = 1")
    });
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let steps = ws.table(EXP, "steps");
    let years: Vec<f64> = steps.rows.iter().map(|r| steps.f64(r, "year")).collect();
    assert_eq!(years, [1800.0, 1801.0, 1802.0, 1803.0, 1804.0, 1805.0]);
    let vocabulary = ws.table(EXP, "vocabulary");
    let words: Vec<&str> = vocabulary
        .rows
        .iter()
        .map(|r| vocabulary.str(r, "word"))
        .collect();
    for kept in ["electricity", "glass", "fire", "jar", "tube"] {
        assert!(words.contains(&kept), "{kept} missing from {words:?}");
    }
    for gone in [
        "electri",
        "city",
        "quod",
        "frac",
        "philosophical",
        "outside",
        "a",
        "b",
    ] {
        assert!(!words.contains(&gone), "{gone} in {words:?}");
    }
    // One document per year, 30 tokens each: the catchword "fire" is counted once.
    for row in &steps.rows {
        assert_eq!(steps.f64(row, "tokens"), 30.0, "{row:?}");
    }
}

/// `fit.optimizers` adds the Procrustes gauge fixer as a third optimiser: same start, one
/// phase per k1 = 10 iterations, a lower loss at the end, and every table and figure carries it.
#[test]
fn the_procrustes_gauge_fixer_runs_as_a_third_optimiser() {
    let ws = Workspace::with_data(EXP, &["sotu/sotu_statsmaths_1790-2020.jsonl.gz"]);
    ws.edit_spec(EXP, |s| {
        s.replace(
            "seeds = 2",
            "seeds = 1\noptimizers = [\"baseline\", \"goldstone\", \"procrustes\"]",
        )
        .replace("bin_years = [1, 5]", "bin_years = 5")
    });
    ws.run(&["run", EXP, "-q"]).expect_code(0);
    let runs = ws.table(EXP, "runs");
    let phases: Vec<(String, f64)> = runs
        .rows
        .iter()
        .map(|r| (runs.str(r, "optimizer").to_string(), runs.f64(r, "phases")))
        .collect();
    assert_eq!(phases.len(), 3, "{phases:?}");
    assert!(
        phases.contains(&("procrustes".to_string(), 6.0)),
        "{phases:?}"
    );
    let curves = ws.table(EXP, "curves");
    let total = |optimizer: &str, iteration: f64| {
        curves
            .rows
            .iter()
            .find(|r| {
                curves.str(r, "optimizer") == optimizer && curves.f64(r, "iteration") == iteration
            })
            .map(|r| curves.f64(r, "total"))
            .expect("a recording point")
    };
    assert_eq!(total("procrustes", 0.0), total("baseline", 0.0));
    assert!(total("procrustes", 60.0) < total("procrustes", 0.0));
    let lists = ws.table(EXP, "word_aging_lists");
    assert!(
        lists.header.iter().any(|h| h == "procrustes"),
        "{:?}",
        lists.header
    );
    // An unknown optimiser names the key.
    ws.edit_spec(EXP, |s| {
        s.replace("\"procrustes\"]", "\"procrustes\", \"sgd\"]")
    });
    let err = ws.run(&["run", EXP]);
    err.expect_code(2);
    assert!(
        err.stderr().contains("fit.optimizers") && err.stderr().contains("\"sgd\""),
        "{}",
        err.stderr()
    );
}

/// The planted-truth benchmark at test size: every optimiser at every sweep point is measured
/// against the same truth (same truth loss); at this seed, aligning the baseline post hoc along
/// the chain shrinks its twist gap and leaves no mirror wall, and neither does the Procrustes
/// gauge fixer. The compared corpus (dwe-sotu-smoke) gets one scale row per binning, whose step
/// totals add up to the same corpus total, and whose planted equivalent is Σn⁺/V² · V_planted².
#[test]
fn planted_truth_benchmark_measures_every_optimiser_against_the_truth() {
    let exp = "dwe-planted-smoke";
    let ws = Workspace::with_data(exp, &["sotu/sotu_statsmaths_1790-2020.jsonl.gz"]);
    ws.add_spec(EXP);
    ws.run(&["run", exp, "-q"]).expect_code(0);
    let scale = ws.table(exp, "corpus_scale");
    assert_eq!(scale.rows.len(), 2, "bin = 1 and bin = 5");
    for r in &scale.rows {
        assert_eq!(scale.str(r, "experiment"), EXP);
        assert_eq!(scale.f64(r, "vocabulary"), 300.0);
        let per_pair = scale.f64(r, "median_total") / 300.0f64.powi(2);
        assert!((scale.f64(r, "median_per_pair") / per_pair - 1.0).abs() < 1e-9);
        let equivalent = per_pair * 60.0f64.powi(2);
        assert!((scale.f64(r, "planted_equivalent") / equivalent - 1.0).abs() < 1e-9);
        assert!(scale.f64(r, "min_total") <= scale.f64(r, "median_total"));
        assert!(scale.f64(r, "median_total") <= scale.f64(r, "max_total"));
    }
    let steps = ws.table(exp, "corpus_steps");
    let sum = |regime: &str| -> f64 {
        steps
            .rows
            .iter()
            .filter(|r| steps.str(r, "regime") == regime)
            .map(|r| steps.f64(r, "total"))
            .sum()
    };
    let (yearly, five) = (sum("bin=1,counts=1"), sum("bin=5,counts=1"));
    assert!(
        yearly > 0.0 && (yearly - five).abs() < 1e-9 * yearly,
        "{yearly} vs {five}"
    );
    let runs = ws.table(exp, "planted_runs");
    assert_eq!(runs.rows.len(), 2 * 4, "two count scales × four rows");
    let get = |optimizer: &str, counts: f64, column: &str| {
        runs.rows
            .iter()
            .find(|r| runs.str(r, "optimizer") == optimizer && runs.f64(r, "counts") == counts)
            .map(|r| runs.f64(r, column))
            .expect("a row")
    };
    for counts in [1e5, 1e6] {
        let truth = get("baseline", counts, "truth_loss");
        for optimizer in ["goldstone", "procrustes", "baseline+posthoc"] {
            assert_eq!(get(optimizer, counts, "truth_loss"), truth);
        }
        assert!(
            get("baseline+posthoc", counts, "twist_gap") <= get("baseline", counts, "twist_gap")
        );
        assert_eq!(get("baseline+posthoc", counts, "walls"), 0.0);
        assert_eq!(get("procrustes", counts, "walls"), 0.0);
        for optimizer in ["baseline", "goldstone", "procrustes"] {
            let r = get(optimizer, counts, "cosine_pearson");
            assert!((-1.0..=1.0).contains(&r), "{optimizer}: {r}");
            assert!(get(optimizer, counts, "smooth_walls") <= get(optimizer, counts, "walls"));
            let dip = get(optimizer, counts, "axis_dip");
            assert!(dip > 0.0 && dip <= 1.0, "{optimizer}: {dip}");
        }
    }
    let summary = ws.table(exp, "planted_summary");
    assert_eq!(summary.rows.len(), 8);
    let run = ws.latest(exp);
    for figure in ["sweep", "psi"] {
        assert!(
            run.join(format!("figures/{figure}.png")).exists(),
            "{figure}"
        );
    }
}

/// A compared experiment must be a corpus-backed dwe spec beside the planted one; otherwise
/// the run is refused at planning, naming the spec line of `compare.experiments`.
#[test]
fn planted_comparison_names_what_it_cannot_compare() {
    let exp = "dwe-planted-smoke";
    let ws = Workspace::with_spec(exp);
    let run = ws.run(&["run", exp, "-q"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("compare.experiments: no spec")
            && run.stderr().contains("dwe-sotu-smoke.toml"),
        "{}",
        run.stderr()
    );
    ws.add_spec("goldstone-synthetic-smoke");
    ws.edit_spec(exp, |t| t.replace(EXP, "goldstone-synthetic-smoke"));
    let run = ws.run(&["run", exp, "-q"]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("\"goldstone-synthetic-smoke\" is a \"goldstone-synthetic\" experiment"),
        "{}",
        run.stderr()
    );
    assert!(!ws.path().join("results").join(exp).exists());
}
