//! The spec of the planted-truth benchmark (`kind = "dwe-planted"`): `[truth]` the generative
//! model ([`crate::models::dwe::planted`]), `[sweep]` the step counts T, the count scales N_t and
//! the seeds, `[fit]` the MAP fit (its dimension equals the truth's d_r + 1) and the optimisers.

use serde::{Deserialize, Serialize};

use super::dwe::Optimizer;
use super::gauge::GaugeVariant;
use super::{Header, SpecDocument};
use crate::error::Result;
use crate::models::dwe::planted::PlantedOptions;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[allow(dead_code)]
    experiment: super::RawHeader,
    truth: Option<RawTruth>,
    sweep: Option<RawSweep>,
    fit: Option<RawFit>,
    compare: Option<RawCompare>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompare {
    experiments: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTruth {
    vocabulary: Option<usize>,
    random_dim: Option<usize>,
    sigma_x: Option<f64>,
    ordinary_rate: Option<[f64; 2]>,
    planted: Option<usize>,
    planted_rate: Option<[f64; 2]>,
    gamma: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    steps: Option<Vec<usize>>,
    counts: Option<Vec<f64>>,
    seeds: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFit {
    iterations: Option<usize>,
    minibatch: Option<usize>,
    rate: Option<f64>,
    offset: Option<f64>,
    exponent: Option<f64>,
    k1: Option<usize>,
    k2: Option<usize>,
    gauge: Option<GaugeVariant>,
    init_scale: Option<f64>,
    record_every: Option<usize>,
    optimizers: Option<Vec<Optimizer>>,
}

/// The fit of every sweep point.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct PlantedFit {
    pub iterations: usize,
    pub minibatch: usize,
    pub rate: f64,
    pub offset: f64,
    pub exponent: f64,
    pub k1: usize,
    pub k2: usize,
    pub gauge: GaugeVariant,
    pub init_scale: f64,
    pub record_every: usize,
    pub optimizers: Vec<Optimizer>,
}

/// A validated dwe-planted spec.
#[derive(Clone, Debug, Serialize)]
pub struct PlantedSpec {
    pub header: Header,
    pub truth: PlantedOptions,
    pub steps: Vec<usize>,
    pub counts: Vec<f64>,
    pub seeds: usize,
    pub fit: PlantedFit,
    /// Corpus-backed dwe specs (names in the same folder) whose per-step count totals are set
    /// beside the sweep.
    pub compare: Vec<String>,
}

/// Parses and validates a dwe-planted spec.
pub fn parse(doc: &SpecDocument, header: Header) -> Result<PlantedSpec> {
    let raw: RawSpec = doc.deserialize()?;
    let t = raw.truth.unwrap_or_default();
    let defaults = PlantedOptions::default();
    let range = |key: &str, value: Option<[f64; 2]>, default: (f64, f64)| -> Result<(f64, f64)> {
        let (lo, hi) = value.map_or(default, |[a, b]| (a, b));
        if lo > 0.0 && hi >= lo && hi.is_finite() {
            Ok((lo, hi))
        } else {
            Err(doc.error(
                key,
                format!("must be [low, high] with 0 < low ≤ high, got [{lo}, {hi}]"),
            ))
        }
    };
    let vocabulary = doc.at_least(
        "truth.vocabulary",
        t.vocabulary.unwrap_or(defaults.vocabulary),
        20,
    )?;
    let truth = PlantedOptions {
        vocabulary,
        random_dim: doc.at_least(
            "truth.random_dim",
            t.random_dim.unwrap_or(defaults.random_dim),
            1,
        )?,
        steps: 0,
        sigma_x: doc.positive("truth.sigma_x", t.sigma_x.unwrap_or(defaults.sigma_x))?,
        ordinary_rate: range(
            "truth.ordinary_rate",
            t.ordinary_rate,
            defaults.ordinary_rate,
        )?,
        planted: t.planted.unwrap_or(defaults.planted),
        planted_rate: range("truth.planted_rate", t.planted_rate, defaults.planted_rate)?,
        gamma: t.gamma.unwrap_or(defaults.gamma),
    };
    if truth.planted + 10 > (0.6 * vocabulary as f64) as usize {
        return Err(doc.error(
            "truth.planted",
            format!(
                "{} planted words do not fit in the ranks [10, 0.6 V) of V = {vocabulary}",
                truth.planted
            ),
        ));
    }
    let s = raw.sweep.unwrap_or_default();
    let steps = s.steps.unwrap_or_else(|| vec![100, 200]);
    doc.distinct("sweep.steps", &steps)?;
    for &st in &steps {
        doc.at_least("sweep.steps", st, 3)?;
        doc.at_most("sweep.steps", st, 10_000, "time steps of the planted chain")?;
    }
    let counts = s.counts.unwrap_or_else(|| vec![1e5, 1e6, 1e7]);
    doc.distinct("sweep.counts", &counts)?;
    for &n in &counts {
        doc.positive("sweep.counts", n)?;
    }
    let f = raw.fit.unwrap_or_default();
    let gauge = f.gauge.unwrap_or(GaugeVariant::ExpClip);
    let optimizers = super::dwe::parse_optimizers(doc, f.optimizers, Optimizer::ALL, gauge)?;
    Ok(PlantedSpec {
        header,
        truth,
        steps,
        counts,
        seeds: doc.at_least("sweep.seeds", s.seeds.unwrap_or(3), 1)?,
        fit: PlantedFit {
            iterations: doc.at_least("fit.iterations", f.iterations.unwrap_or(1500), 1)?,
            minibatch: doc.at_least("fit.minibatch", f.minibatch.unwrap_or(250), 1)?,
            rate: doc.positive("fit.rate", f.rate.unwrap_or(0.1))?,
            offset: doc.positive("fit.offset", f.offset.unwrap_or(1000.0))?,
            exponent: f.exponent.unwrap_or(0.7),
            k1: doc.at_least("fit.k1", f.k1.unwrap_or(10), 1)?,
            k2: doc.at_least("fit.k2", f.k2.unwrap_or(10), 1)?,
            gauge,
            init_scale: doc.positive("fit.init_scale", f.init_scale.unwrap_or(0.1))?,
            record_every: doc.at_least("fit.record_every", f.record_every.unwrap_or(100), 1)?,
            optimizers,
        },
        compare: compared_experiments(doc, raw.compare.unwrap_or_default())?,
    })
}

/// `compare.experiments`: distinct names of spec files, no paths.
fn compared_experiments(doc: &SpecDocument, raw: RawCompare) -> Result<Vec<String>> {
    let names = raw.experiments.unwrap_or_default();
    for (k, name) in names.iter().enumerate() {
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !plain {
            return Err(doc.error(
                "compare.experiments",
                format!("{name:?} is not a spec name (letters, digits, '-' and '_')"),
            ));
        }
        if names[..k].contains(name) {
            return Err(doc.error("compare.experiments", format!("{name:?} is listed twice")));
        }
    }
    Ok(names)
}
