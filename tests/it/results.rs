//! A run writes a complete, versioned result folder; same seed, same tables.

use crate::util::Workspace;

const EXP: &str = "rbm-scalar-smoke";

#[test]
fn run_writes_a_complete_result_folder() {
    let ws = Workspace::with_spec(EXP);
    ws.run(&["run", EXP, "--quiet"]).expect_code(0);
    let run = ws.latest(EXP);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["experiment"], EXP);
    assert_eq!(manifest["seed"], 7);
    assert!(
        manifest["versions"]["rustc"]
            .as_str()
            .unwrap()
            .starts_with("rustc")
    );
    let stages = manifest["stages"].as_array().unwrap();
    assert!(stages.len() >= 10, "{} stage records", stages.len());
    assert!(
        stages
            .iter()
            .all(|s| s["key"].as_str().is_some_and(|k| k.len() == 32))
    );
    assert!(run.join("log.txt").is_file());
    for table in [
        "spectrum_flow",
        "xi_squared_flow",
        "fixed_points",
        "cutoff_hidden",
        "cutoff_mass",
        "propagator_distance",
        "propagator_matrices",
        "action_density",
        "action_density_histogram",
        "toy_angle",
        "mu_flow",
        "mu_final",
        "relaxation",
    ] {
        for ext in ["csv", "parquet"] {
            let path = run.join("tables").join(format!("{table}.{ext}"));
            assert!(path.is_file(), "missing {}", path.display());
        }
    }
    for figure in [
        "spectrum_flow_flow_mode-exact",
        "spectrum_flow_flow_mode-pcd",
        "xi_squared_flow_flow_mode-exact",
        "cutoff_hidden",
        "cutoff_mass",
        "propagator_distance",
        "propagator_heatmaps_flow_mode-exact",
        "action_density",
        "toy_angle",
        "mu_flow",
        "relaxation",
    ] {
        for ext in ["png", "svg"] {
            let path = run.join("figures").join(format!("{figure}.{ext}"));
            let size = std::fs::metadata(&path)
                .unwrap_or_else(|_| panic!("missing {}", path.display()))
                .len();
            assert!(size > 1000, "{} is only {size} bytes", path.display());
        }
    }
    let artefacts = manifest["artefacts"].as_array().unwrap();
    assert!(
        artefacts
            .iter()
            .any(|a| a["path"] == "tables/relaxation.csv")
    );
    assert!(
        artefacts
            .iter()
            .any(|a| a["path"].as_str().unwrap().ends_with(".npy"))
    );
}

/// Two independent workspaces, same spec and seed: byte-identical tables.
#[test]
fn same_seed_gives_identical_tables() {
    let a = Workspace::with_spec(EXP);
    let b = Workspace::with_spec(EXP);
    a.run(&["run", EXP, "--quiet", "-j", "1"]).expect_code(0);
    b.run(&["run", EXP, "--quiet", "-j", "2"]).expect_code(0);
    let tables = a.latest(EXP).join("tables");
    let mut compared = 0;
    for entry in std::fs::read_dir(&tables).unwrap().flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().ends_with(".csv") {
            continue;
        }
        let left = std::fs::read(entry.path()).unwrap();
        let right = std::fs::read(b.latest(EXP).join("tables").join(&name)).unwrap();
        assert!(
            left == right,
            "{} differs between runs",
            name.to_string_lossy()
        );
        compared += 1;
    }
    assert!(compared >= 13);
}
