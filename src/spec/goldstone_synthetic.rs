//! The spec of the synthetic Goldstone-GD experiment (`kind = "goldstone-synthetic"`, ICML 2018
//! §5.1): `[data]` the matrix X = ŪᵀV̄ + noise; `[model]` d, T and the chain couplings;
//! `[optimizer]` the shared line-5 steps; `[goldstone]` k1, k2 and the variants (named bundles of
//! the gauge options, see [`GaugeVariant`]); `[fit]` seeds, initialisation scales and
//! snapshot iterations; `[evaluate]` the loss thresholds; `[dispersion]` the chain lengths of
//! the condition-number table.

use serde::{Deserialize, Serialize};

use super::gauge::GaugeVariant;
use super::{Header, MAX_UPDATES, SpecDocument};
use crate::error::Result;
use crate::models::goldstone::train::{InnerOptimizer, Schedule};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[allow(dead_code)]
    experiment: super::RawHeader,
    data: Option<RawData>,
    model: Option<RawModel>,
    optimizer: Option<RawOptimizer>,
    goldstone: Option<RawGoldstone>,
    fit: Option<RawFit>,
    evaluate: Option<RawEvaluate>,
    dispersion: Option<RawDispersion>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    rows: Option<usize>,
    cols: Option<usize>,
    rank: Option<usize>,
    noise_variance: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    dim: Option<usize>,
    steps: Option<usize>,
    coupling: Option<f64>,
    couplings: Option<Vec<f64>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptimizer {
    kind: Option<String>,
    rate: Option<f64>,
    offset: Option<f64>,
    exponent: Option<f64>,
    clip: Option<f64>,
    iterations: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGoldstone {
    k1: Option<usize>,
    k2: Option<usize>,
    variants: Option<Vec<GaugeVariant>>,
    default_variant: Option<GaugeVariant>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFit {
    seeds: Option<usize>,
    init_scales: Option<Vec<f64>>,
    snapshots: Option<Vec<usize>>,
    snapshot_seed: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvaluate {
    thresholds: Option<Vec<f64>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDispersion {
    sizes: Option<Vec<usize>>,
}

/// Validated goldstone-synthetic spec.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct GoldstoneSyntheticSpec {
    pub header: Header,
    pub rows: usize,
    pub cols: usize,
    pub rank: usize,
    pub noise_variance: f64,
    pub dim: usize,
    pub steps: usize,
    /// c_t for t = 1 … T − 1.
    pub couplings: Vec<f64>,
    pub optimizer: InnerOptimizer,
    pub schedule: Schedule,
    pub iterations: usize,
    pub k1: usize,
    pub k2: usize,
    pub variants: Vec<GaugeVariant>,
    pub default_variant: GaugeVariant,
    pub seeds: usize,
    pub init_scales: Vec<f64>,
    pub snapshots: Vec<usize>,
    pub snapshot_seed: usize,
    pub thresholds: Vec<f64>,
    pub sizes: Vec<usize>,
}

/// The longest side of any matrix or chain here.
const MAX_SIDE: usize = 10_000;
/// The most values one array of a fit may hold (0.8 GB of f64).
const MAX_VALUES: f64 = 1e8;

/// Parses and validates the spec in `doc`.
pub fn parse(doc: &SpecDocument, header: Header) -> Result<GoldstoneSyntheticSpec> {
    let raw: RawSpec = doc.deserialize()?;
    let positive = |key: &str, value: f64| doc.positive(key, value);
    let at_least = |key: &str, value: usize, min: usize| doc.at_least(key, value, min);
    let data = raw.data.unwrap_or_default();
    let model = raw.model.unwrap_or_default();
    let steps = doc.at_most(
        "model.steps",
        at_least("model.steps", model.steps.unwrap_or(30), 2)?,
        MAX_SIDE,
        "time steps of the chain",
    )?;
    let couplings = match (model.couplings, model.coupling) {
        (Some(_), Some(_)) => {
            return Err(doc.error(
                "model.couplings",
                "give either model.coupling (uniform) or model.couplings, not both",
            ));
        }
        (Some(list), None) => {
            if list.len() != steps - 1 {
                return Err(doc.error(
                    "model.couplings",
                    format!("needs T − 1 = {} values, got {}", steps - 1, list.len()),
                ));
            }
            for &c in &list {
                positive("model.couplings", c)?;
            }
            list
        }
        (None, coupling) => {
            vec![positive("model.coupling", coupling.unwrap_or(10.0))?; steps - 1]
        }
    };
    let optimizer_raw = raw.optimizer.unwrap_or_default();
    let optimizer = match optimizer_raw.kind.as_deref().unwrap_or("gd") {
        "gd" => InnerOptimizer::Gd,
        "adagrad" => InnerOptimizer::AdaGrad {
            initial_accumulator: 0.1,
        },
        "adam" => InnerOptimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        },
        other => {
            return Err(doc.error(
                "optimizer.kind",
                format!("unknown optimizer {other:?}; expected \"gd\", \"adagrad\" or \"adam\""),
            ));
        }
    };
    let schedule = Schedule {
        rate: positive("optimizer.rate", optimizer_raw.rate.unwrap_or(1.0))?,
        offset: positive("optimizer.offset", optimizer_raw.offset.unwrap_or(100.0))?,
        exponent: optimizer_raw.exponent.unwrap_or(0.7),
        clip: match optimizer_raw.clip {
            Some(c) => Some(positive("optimizer.clip", c)?),
            None => Some(0.01),
        },
    };
    let goldstone = raw.goldstone.unwrap_or_default();
    let k2 = doc.at_most(
        "goldstone.k2",
        at_least("goldstone.k2", goldstone.k2.unwrap_or(10), 1)?,
        1_000_000,
        "natural-gradient steps of one gauge phase",
    )?;
    let variants = goldstone
        .variants
        .unwrap_or_else(|| GaugeVariant::ALL.to_vec());
    if !variants.contains(&GaugeVariant::Baseline) {
        return Err(doc.error("goldstone.variants", "must include \"baseline\""));
    }
    if let Some(twice) = super::first_repeat(&variants) {
        return Err(doc.error(
            "goldstone.variants",
            format!("{:?} is listed twice", twice.name()),
        ));
    }
    let default_variant = goldstone.default_variant.unwrap_or(GaugeVariant::ExpClip);
    if !default_variant.has_phase() || !variants.contains(&default_variant) {
        return Err(doc.error(
            "goldstone.default_variant",
            format!(
                "{:?} must be one of the listed Goldstone variants",
                default_variant.name()
            ),
        ));
    }
    let fit = raw.fit.unwrap_or_default();
    let seeds = doc.at_most(
        "fit.seeds",
        at_least("fit.seeds", fit.seeds.unwrap_or(10), 1)?,
        10_000,
        "runs of one fit instance",
    )?;
    let init_scales = fit.init_scales.unwrap_or_else(|| vec![0.1, 1.0]);
    doc.distinct("fit.init_scales", &init_scales)?;
    for &s in &init_scales {
        positive("fit.init_scales", s)?;
    }
    doc.instance_count(
        "fit.init_scales",
        (variants.len() * init_scales.len()) as u128,
    )?;
    let iterations = at_least(
        "optimizer.iterations",
        optimizer_raw.iterations.unwrap_or(10_000),
        1,
    )?;
    doc.at_most(
        "optimizer.iterations",
        iterations as f64,
        MAX_UPDATES,
        "iterations of one run",
    )?;
    doc.at_most(
        "optimizer.iterations",
        (seeds as f64) * (iterations as f64 + 1.0),
        MAX_VALUES,
        "every seed's loss curve is kept: fit.seeds × (iterations + 1) values",
    )?;
    let mut snapshots = fit
        .snapshots
        .unwrap_or_else(|| vec![400, 800, 2000, 5000, 10_000]);
    snapshots.retain(|&s| s <= iterations);
    snapshots.sort_unstable();
    snapshots.dedup();
    let snapshot_seed = fit.snapshot_seed.unwrap_or(0);
    if snapshot_seed >= seeds {
        return Err(doc.error(
            "fit.snapshot_seed",
            format!("must be below fit.seeds = {seeds}"),
        ));
    }
    let thresholds = raw
        .evaluate
        .unwrap_or_default()
        .thresholds
        .unwrap_or_else(|| vec![0.1, 0.01]);
    doc.distinct("evaluate.thresholds", &thresholds)?;
    for &t in &thresholds {
        positive("evaluate.thresholds", t)?;
    }
    let sizes = raw
        .dispersion
        .unwrap_or_default()
        .sizes
        .unwrap_or_else(|| vec![10, 30, 100, 188, 209]);
    doc.distinct("dispersion.sizes", &sizes)?;
    if sizes.iter().any(|&t| t < 2) {
        return Err(doc.error("dispersion.sizes", "every chain needs at least 2 steps"));
    }
    for &size in &sizes {
        doc.at_most(
            "dispersion.sizes",
            size,
            MAX_SIDE,
            "the Laplacian of a chain is diagonalised densely",
        )?;
    }
    let side = |key: &str, value: Option<usize>, default: usize| -> Result<usize> {
        doc.at_most(
            key,
            at_least(key, value.unwrap_or(default), 1)?,
            MAX_SIDE,
            "a side of the data or embedding matrices",
        )
    };
    let rows = side("data.rows", data.rows, 10)?;
    let cols = side("data.cols", data.cols, 10)?;
    let dim = side("model.dim", model.dim, 3)?;
    let rank = side("data.rank", data.rank, 3)?;
    doc.at_most(
        "model.dim",
        (steps * dim * (rows + cols)) as f64,
        MAX_VALUES,
        "one run's embeddings hold model.steps × dim × (rows + cols) values",
    )?;
    doc.at_most(
        "fit.snapshots",
        (seeds * snapshots.len() * steps * dim * cols) as f64,
        MAX_VALUES,
        "snapshots keep fit.seeds × snapshots × steps × dim × cols values",
    )?;
    if dim > rows.min(cols) {
        return Err(doc.error(
            "model.dim",
            format!("must not exceed min(rows, cols) = {}", rows.min(cols)),
        ));
    }
    Ok(GoldstoneSyntheticSpec {
        header,
        rows,
        cols,
        rank,
        noise_variance: data.noise_variance.unwrap_or(1e-3).max(0.0),
        dim,
        steps,
        couplings,
        optimizer,
        schedule,
        iterations,
        k1: doc.at_most(
            "goldstone.k1",
            at_least("goldstone.k1", goldstone.k1.unwrap_or(50), 1)?,
            iterations,
            "iterations between gauge phases: at most optimizer.iterations",
        )?,
        k2,
        variants,
        default_variant,
        seeds,
        init_scales,
        snapshots,
        snapshot_seed,
        thresholds,
        sizes,
    })
}
