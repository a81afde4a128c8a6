//! Malformed specs: each gives `file:line: key: message` on stderr and exit code 2, never a
//! panic, and nothing is run.

use crate::util::Workspace;

const EXP: &str = "rbm-scalar-smoke";

fn expect_spec_error(edit: impl Fn(&str) -> String, expected: &str) {
    expect_other_spec_error(EXP, edit, expected);
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let spec =
        std::fs::read_to_string(crate::util::repo_root().join("experiments/rbm-scalar-smoke.toml"))
            .unwrap();
    let line = line_of(&spec, "mu_squared = [7.0, 5.0]") + 1;
    expect_spec_error(
        |t| {
            t.replace(
                "mu_squared = [7.0, 5.0]",
                "mu_squared = [7.0, 5.0]\nmu_sqaured = 3.0",
            )
        },
        &format!(
            "rbm-scalar-smoke.toml:{line}: fit.cutoff_mass.mu_sqaured: unknown field `mu_sqaured`"
        ),
    );
}

#[test]
fn wrong_type_names_the_key() {
    let spec =
        std::fs::read_to_string(crate::util::repo_root().join("experiments/rbm-scalar-smoke.toml"))
            .unwrap();
    let line = line_of(&spec, "samples = 2000");
    expect_spec_error(
        |t| t.replace("samples = 2000", "samples = \"many\""),
        &format!("rbm-scalar-smoke.toml:{line}: evaluate.samples: invalid type"),
    );
}

#[test]
fn negative_rate_is_out_of_range() {
    let spec =
        std::fs::read_to_string(crate::util::repo_root().join("experiments/rbm-scalar-smoke.toml"))
            .unwrap();
    let line = line_of(&spec, "learning_rate = 0.5");
    expect_spec_error(
        |t| t.replace("learning_rate = 0.5", "learning_rate = -0.1"),
        &format!("rbm-scalar-smoke.toml:{line}: fit.learning_rate: must be > 0, got -0.1"),
    );
}

#[test]
fn a_bad_value_inside_a_sweep_is_found() {
    expect_spec_error(
        |t| t.replace("n_hidden = [8, 4]", "n_hidden = [8, 0]"),
        "fit.cutoff_hidden.n_hidden: must be an integer >= 1, got 0",
    );
}

#[test]
fn bad_toml_names_the_line() {
    let spec =
        std::fs::read_to_string(crate::util::repo_root().join("experiments/rbm-scalar-smoke.toml"))
            .unwrap();
    let line = line_of(&spec, "[fit.flow]");
    expect_spec_error(
        |t| t.replace("[fit.flow]", "[fit.flow"),
        &format!("rbm-scalar-smoke.toml:{line}: (syntax)"),
    );
}

#[test]
fn unknown_experiment_and_kind_are_errors() {
    let ws = Workspace::with_spec(EXP);
    let run = ws.run(&["run", "no-such-experiment"]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("no experiment \"no-such-experiment\"")
    );
    expect_spec_error(
        |t| t.replace("kind = \"rbm-scalar\"", "kind = \"rbm-vector\""),
        "experiment.kind: unknown experiment kind \"rbm-vector\"",
    );
}

#[test]
fn a_name_that_is_not_a_folder_name_is_refused() {
    expect_spec_error(
        |t| t.replace("name = \"rbm-scalar-smoke\"", "name = \"../escape\""),
        "experiment.name: must be lower-case letters",
    );
}

#[test]
fn an_unknown_mnist_fit_method_names_the_line_and_the_choices() {
    let ws = Workspace::with_spec("rbm-mnist-smoke");
    ws.edit_spec("rbm-mnist-smoke", |t| {
        t.replace(
            "n_hidden = [16, 4]",
            "n_hidden = [16, 4]\nmethod = \"adam\"",
        )
    });
    let spec = std::fs::read_to_string(ws.spec_path("rbm-mnist-smoke")).unwrap();
    let line = line_of(&spec, "method = \"adam\"");
    let run = ws.run(&["run", "rbm-mnist-smoke", "--quiet"]);
    run.expect_code(2);
    let err = run.stderr();
    let expected = format!(
        "rbm-mnist-smoke.toml:{line}: fit.method: unknown method \"adam\"; expected \"ml\" or \"gradient\""
    );
    assert!(err.contains(&expected), "expected {expected:?} in:\n{err}");
}

#[test]
fn a_dwe_year_range_that_runs_backwards_names_the_key() {
    let ws = Workspace::with_spec("dwe-sotu-smoke");
    ws.edit_spec("dwe-sotu-smoke", |t| {
        t.replace("last_year = 1975", "last_year = 1920")
    });
    let spec = std::fs::read_to_string(ws.spec_path("dwe-sotu-smoke")).unwrap();
    let line = line_of(&spec, "last_year = 1920");
    let run = ws.run(&["run", "dwe-sotu-smoke", "--quiet"]);
    run.expect_code(2);
    let expected = format!(
        "dwe-sotu-smoke.toml:{line}: preprocess.last_year: 1920 is before preprocess.first_year = 1930"
    );
    assert!(run.stderr().contains(&expected), "{}", run.stderr());
}

/// Regressions of values the validator accepted and the program then crashed on or sized an
/// impossible allocation from (issue 19, item 7); each is refused at its key with the bound.
#[test]
fn sizes_beyond_their_bounds_are_refused_at_their_key() {
    expect_spec_error(
        |t| t.replace("learning_rate = 1e-3", "learning_rate = 1e-300"),
        "toy.flow_time: flow_time / learning_rate = 1.9999999999999999e301 updates, more than 1e8",
    );
    expect_spec_error(
        |t| t.replace("n_visible = 10", "n_visible = 2000000000"),
        "target.n_visible: must be at most 1000",
    );
    expect_spec_error(
        |t| t.replace("mass_squared = 4.0", "mass_squared = 1e-300"),
        "target.mass_squared: must be in [1e-6, 1e6]",
    );
    let scales: Vec<f64> = (1..=2000).map(|i| f64::from(i) * 1e-4).collect();
    expect_spec_error(
        |t| {
            t.replace(
                "n_hidden = [8, 4]",
                &format!("n_hidden = [8, 4]\ninit_scale = {scales:?}\nl2 = {scales:?}"),
            )
        },
        "fit.cutoff_hidden: plans 8000000 stage instances, more than 10000",
    );
    expect_other_spec_error(
        "goldstone-synthetic-smoke",
        |t| t.replace("steps = 12", "steps = 9223372036854775807"),
        "model.steps: must be at most 10000",
    );
    expect_other_spec_error(
        "googlebooks-sample",
        |t| t.replace("first_year = 1800", "first_year = -2000000000"),
        "preprocess.first_year: must be a year from 1000 to 3000",
    );
    expect_other_spec_error(
        "goldstone-synthetic-smoke",
        |t| t.replace("sizes = [10, 30]", "sizes = []"),
        "dispersion.sizes: must list at least one value",
    );
    // These two panicked or aborted on an allocation in the dwe fit.
    expect_other_spec_error(
        "dwe-sotu-smoke",
        |t| t.replace("dim = 10", "dim = 2000000000"),
        "model.dim: must be at most 1000",
    );
    expect_other_spec_error(
        "dwe-sotu-smoke",
        |t| t.replace("seeds = 2", "seeds = 2000000000"),
        "fit.seeds: must be at most 1000",
    );
    expect_other_spec_error(
        "rbm-mnist-smoke",
        |t| {
            t.replace(
                "learning_rates = [4e-6, 2e-6]",
                "learning_rates = [4e-6, 4e-6]",
            )
        },
        "relaxation.learning_rates: lists 4e-6 twice",
    );
}

/// rbm-mnist and googlebooks, key by key: a regeneration step count beyond i32 wrapped to a
/// negative power of the Gibbs map, and the sizes below were unbounded.
#[test]
fn mnist_and_googlebooks_sizes_are_bounded_at_their_key() {
    let mnist = [
        (
            "gibbs_steps = 3",
            "gibbs_steps = 4294967296",
            "regeneration.gibbs_steps: must be at most 100000",
        ),
        (
            "test_digits = 12",
            "test_digits = 100000",
            "preprocess.test_digits: must be at most 120",
        ),
        (
            "mu_squared = 144.0",
            "mu_squared = 1e300",
            "model.mu_squared: must be in [1e-6, 1e6]",
        ),
        (
            "updates = 3000",
            "updates = 3000000000",
            "relaxation.updates: must be at most 100000000",
        ),
        (
            "record_every = 2",
            "record_every = 5000",
            "relaxation.record_every: must be at most 3000",
        ),
        (
            "modes = [1, 3]",
            "modes = [3, 3]",
            "relaxation.modes: lists 3 twice",
        ),
        (
            "modes = [1, 3]",
            "modes = [1, 3]\nmin_points = 2000",
            "relaxation.min_points: must be at most 1501",
        ),
        (
            "n_hidden = [16, 4]",
            "n_hidden = [16, 16]",
            "fit.n_hidden: a sweep lists 16 twice",
        ),
    ];
    for (from, to, expected) in mnist {
        expect_other_spec_error("rbm-mnist-smoke", |t| t.replace(from, to), expected);
    }
    let books = [
        (
            "vocabulary = 40",
            "vocabulary = 1000000000",
            "preprocess.vocabulary: must be at most 100000",
        ),
        (
            "window = 4 ",
            "window = 100000 ",
            "preprocess.window: must be at most 100",
        ),
        (
            "top_pairs = 100",
            "top_pairs = 100000000",
            "emit.top_pairs: must be at most 1000000",
        ),
        (
            "figure_words = 6",
            "figure_words = 41",
            "emit.figure_words: must be at most 40",
        ),
    ];
    for (from, to, expected) in books {
        expect_other_spec_error("googlebooks-sample", |t| t.replace(from, to), expected);
    }
}

/// goldstone-modes: the probe's panic and allocation abort (an unbounded N_v) and the values that
/// could only fail inside a stage (a start or a rate that diverges, a tolerance below rounding)
/// are refused at their key.
#[test]
fn goldstone_modes_sizes_and_rates_are_bounded_at_their_key() {
    let cases = [
        (
            "n_visible = 10",
            "n_visible = 2000000000",
            "target.n_visible: must be at most 2000",
        ),
        (
            "learning_rate = 1.0 ",
            "learning_rate = 1e300 ",
            "hessian.learning_rate: must be below 2/h_max",
        ),
        (
            "init_scale = 0.1",
            "init_scale = 1e300",
            "hessian.init_scale: too large",
        ),
        (
            "init_scale = 0.1",
            "init_scale = 1e-300",
            "hessian.init_scale: too small",
        ),
        (
            "learning_rate = 1.0 ",
            "learning_rate = 1e-300 ",
            "hessian.learning_rate: too small",
        ),
        (
            "gradient_tolerance = 1e-10",
            "gradient_tolerance = 1e-300",
            "hessian.gradient_tolerance: must be at least 1e-13",
        ),
        (
            "epsilons = [1e-4, 1e-3]",
            "epsilons = [1e-4, 1.0]",
            "deformation.epsilons: ε = 1 unlearns a mode",
        ),
        (
            "{ n_hidden = 6, mu_squared = 9.0 },",
            "{ n_hidden = 6, mu_squared = 9.0, mu_trained = true },",
            "mu_trained: a trained μ² is stationary only when every mode is learned",
        ),
        (
            "rate_factors = { sampled_hidden = 0.25 }",
            "rate_factors = { sampled_hidden = 1.0 }",
            "is not small noise for sampled_hidden",
        ),
        (
            "rate_factors = { sampled_hidden = 0.25 }",
            "rate_factors = { sampled_hidden = 0.25, isotropic = 0.5 }",
            "diffusion.rate_factors: names isotropic",
        ),
        (
            "estimators = [\"pcd_k1\", \"sampled_hidden\"]",
            "estimators = [\"pcd_k2\", \"sampled_hidden\"]",
            "unknown estimator \"pcd_k2\"",
        ),
        (
            "n_hidden = 10\nmu_squared = 9.0\nestimators",
            "n_hidden = 10\nmu_squared = 7.0\nestimators",
            "diffusion.mu_squared: must exceed",
        ),
        (
            "replicas = 3",
            "replicas = 1",
            "diffusion.replicas: must be at least 3",
        ),
        (
            "record_every = 5",
            "record_every = 4000",
            "diffusion.record_every: must be at most 400",
        ),
        (
            "updates = 8000",
            "updates = 100000000000",
            "diffusion.updates: must be at most",
        ),
        (
            "max_msa = 0.5",
            "max_msa = 5.0",
            "diffusion.max_msa: must be at most 2",
        ),
        (
            "weighted_epsilon = 3e-3",
            "weighted_epsilon = 1.0",
            "ensemble.weighted_epsilon: ε = 1 unlearns a mode",
        ),
        (
            "runs = 60",
            "runs = 1000000",
            "ensemble.runs: must be at most",
        ),
        // Found by the mutation probe: ε = 1e-300 reached the stage, whose label printed it as a
        // 300-digit decimal, and the array's file name was too long to write.
        (
            "weighted_epsilon = 3e-3",
            "weighted_epsilon = 1e-300",
            "ensemble.weighted_epsilon: must be at least 1e-6",
        ),
        // Found by the mutation probe: a vanishing α made the burn-in saturate to usize::MAX
        // updates, and the run never ended.
        (
            "scan_learning_rate = 0.2",
            "scan_learning_rate = 1e-300",
            "diffusion.scan_learning_rate: α = 1e-300 (pcd_k1) is too small",
        ),
        (
            "learning_rate = 1.0\ngradient_tolerance = 1e-8",
            "learning_rate = 1e-300\ngradient_tolerance = 1e-8",
            "ensemble.learning_rate: too small",
        ),
        (
            "burn_in = 1.0",
            "burn_in = 1e-300",
            "diffusion.burn_in: must be at least 1",
        ),
        (
            "max_msa = 0.5",
            "max_msa = 1e-300",
            "diffusion.max_msa: must be at least 0.01",
        ),
        (
            "updates = 8000",
            "updates = 2000",
            "diffusion.updates: 2000 recorded updates are too few",
        ),
    ];
    for (from, to, expected) in cases {
        expect_other_spec_error("goldstone-modes-smoke", |t| t.replace(from, to), expected);
    }
}

/// The spec `name` with `edit` applied is refused with `expected` on stderr, before any run.
fn expect_other_spec_error(name: &str, edit: impl Fn(&str) -> String, expected: &str) {
    let ws = Workspace::with_spec(name);
    ws.edit_spec(name, edit);
    let run = ws.run(&["run", name, "--quiet"]);
    run.expect_code(2);
    let err = run.stderr();
    assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !ws.path().join("results").exists(),
        "a bad spec must not start a run"
    );
}

/// Regressions: a sweep listing a value twice planned one instance twice and ended in "stage
/// graph has a cycle"; `record_every` beyond the updates left a trajectory of NaN cells.
#[test]
fn duplicate_sweep_values_and_empty_trajectories_are_refused() {
    expect_spec_error(
        |t| t.replace("n_hidden = [8, 4]", "n_hidden = [8, 8]"),
        "fit.cutoff_hidden.n_hidden: a sweep lists 8 twice",
    );
    expect_spec_error(
        |t| t.replace("record_every = 100", "record_every = 100000000"),
        "toy.record_every: must be at most 20000",
    );
}

/// Every numeric key of a fast spec set to extreme values, one at a time, run with a 4 GB
/// address-space limit: the program never panics or aborts, and a spec it refuses is refused
/// with `file:line: key` before anything runs (issue 19, item 7; the probe behind it mutated all
/// the smoke specs).
#[test]
fn mutated_specs_never_panic_abort_or_fail_without_their_key() {
    const EXTREMES: [&str; 8] = [
        "0",
        "-1",
        "1e-300",
        "1e300",
        "9223372036854775807",
        "-2000000000",
        "nan",
        "[]",
    ];
    let name = "goldstone-synthetic-smoke";
    let original = std::fs::read_to_string(
        crate::util::repo_root()
            .join("experiments")
            .join(format!("{name}.toml")),
    )
    .unwrap();
    let number = |v: &str| {
        v.starts_with('[') || v.parse::<f64>().is_ok() || v.replace('_', "").parse::<f64>().is_ok()
    };
    let mut tried = 0;
    for (index, line) in original.lines().enumerate() {
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        let value = value.split('#').next().unwrap().trim();
        if key.trim() == "seed" || !number(value) || value.contains('"') {
            continue;
        }
        for extreme in EXTREMES {
            let ws = Workspace::with_spec(name);
            let text: Vec<String> = original
                .lines()
                .enumerate()
                .map(|(i, l)| {
                    if i == index {
                        format!("{key} = {extreme}")
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            std::fs::write(ws.spec_path(name), text.join("\n")).unwrap();
            let output = std::process::Command::new("bash")
                .arg("-c")
                .arg(format!(
                    "ulimit -v 4000000; exec timeout 30 {} run {name} --quiet",
                    env!("CARGO_BIN_EXE_symbreak")
                ))
                .current_dir(ws.path())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            let what = format!(
                "{key} = {extreme}: exit {:?}\n{stderr}",
                output.status.code()
            );
            assert!(!stderr.contains("panicked"), "{what}");
            assert!(matches!(output.status.code(), Some(0 | 2 | 124)), "{what}");
            if output.status.code() == Some(2) && !ws.path().join("results").exists() {
                assert!(stderr.contains(&format!("{name}.toml:")), "{what}");
            }
            tried += 1;
        }
    }
    assert!(tried >= 80, "only {tried} mutations");
}
