//! The spec of the dynamic-word-embedding experiments (`kind = "dwe"`): `[data]` names the
//! registered corpus; `[preprocess]` the vocabulary size, the context window c_max, the
//! negative-sampling exponent γ and ratio η, and an optional year range; `[model]` the embedding
//! dimension and the Ornstein–Uhlenbeck prior; `[fit]` the optimisers' settings and the regime
//! (time binning, count scale, initialisation), where each regime key may be a list — the fit
//! then runs for every combination, the first one being the headline regime; `[evaluate]` the
//! word-aging queries and the histogram bins.

use serde::{Deserialize, Serialize};

use super::gauge::GaugeVariant;
use super::{Header, MAX_VOCABULARY, MAX_WINDOW, SpecDocument, Sweep};
use crate::corpus::Cleaning;
use crate::error::Result;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[allow(dead_code)]
    experiment: super::RawHeader,
    data: RawData,
    preprocess: Option<RawPreprocess>,
    model: Option<RawModel>,
    fit: Option<RawFit>,
    evaluate: Option<RawEvaluate>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    dim: Option<usize>,
    diffusion: Option<f64>,
    prior_variance: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFit {
    iterations: Option<usize>,
    minibatch: Option<usize>,
    rate: Option<f64>,
    offset: Option<f64>,
    exponent: Option<f64>,
    beta1: Option<f64>,
    beta2: Option<f64>,
    epsilon: Option<f64>,
    k1: Option<usize>,
    k2: Option<usize>,
    gauge: Option<GaugeVariant>,
    seeds: Option<usize>,
    holdout: Option<f64>,
    record_every: Option<usize>,
    bin_years: Option<Sweep<usize>>,
    count_scale: Option<Sweep<f64>>,
    init: Option<Sweep<Init>>,
    init_scale: Option<Sweep<f64>>,
    optimizers: Option<Vec<Optimizer>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvaluate {
    queries: Option<Vec<String>>,
    histogram_bins: Option<usize>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    corpus: Option<String>,
    googlebooks: Option<super::googlebooks::RawGoogleBooks>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreprocess {
    vocabulary: Option<usize>,
    window: Option<usize>,
    gamma: Option<f64>,
    eta: Option<f64>,
    first_year: Option<i32>,
    last_year: Option<i32>,
    cleaning: Option<Cleaning>,
    language: Option<String>,
}

/// Validated preprocessing settings.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Preprocess {
    pub vocabulary: usize,
    pub window: usize,
    pub gamma: f64,
    pub eta: f64,
    pub first_year: Option<i32>,
    pub last_year: Option<i32>,
    /// How the text is cleaned: "speech" (transcripts) or "ocr" (scanned print).
    pub cleaning: Cleaning,
    /// Keep only documents whose `language` field is this; all when absent.
    pub language: Option<String>,
}

/// The model: d and the prior (σ_0², D per year).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Model {
    pub dim: usize,
    pub diffusion: f64,
    pub prior_variance: f64,
}

crate::spec_choice! {
    /// How the initial embeddings are drawn (scaled by `init_scale`).
    #[derive(Default)]
    pub enum Init ("initialisation") {
        /// Every step its own i.i.d. N(0, s²) draw: unrelated frames at every step.
        Independent = "independent",
        /// One i.i.d. draw shared by all steps: one frame everywhere.
        Shared = "shared",
        /// A draw from the Ornstein–Uhlenbeck prior scaled by s (the smoothing algorithm's
        /// start, whose samples follow the prior): frames that drift slowly along the chain.
        #[default]
        Prior = "prior",
    }
}

/// One fit regime: what the sweep varies.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Regime {
    /// Years per time step (1: every year; k: counts of k consecutive years summed).
    pub bin_years: usize,
    /// Multiplies every count (the likelihood's weight against the prior).
    pub count_scale: f64,
    pub init: Init,
    pub init_scale: f64,
}

impl Regime {
    /// The stage label, e.g. `bin=1,counts=1,init=prior,scale=0.1`.
    pub fn label(&self) -> String {
        format!(
            "bin={},counts={},init={},scale={}",
            self.bin_years, self.count_scale, self.init, self.init_scale
        )
    }
}

/// Optimiser settings shared by every regime.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Fit {
    pub iterations: usize,
    pub minibatch: usize,
    pub rate: f64,
    pub offset: f64,
    pub exponent: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub k1: usize,
    pub k2: usize,
    /// The gauge-phase variant Goldstone-GD runs.
    pub gauge: GaugeVariant,
    pub seeds: usize,
    /// Fraction of interior time steps held out for the predictive likelihood.
    pub holdout: f64,
    pub record_every: usize,
    /// Which optimisers run, in order: "baseline", "goldstone", "procrustes".
    pub optimizers: Vec<Optimizer>,
}

/// Word-aging queries and histogram resolution.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluate {
    pub queries: Vec<String>,
    pub histogram_bins: usize,
}

crate::spec_choice! {
    /// The optimisers a DWE fit can be trained with, as specs name them.
    pub enum Optimizer ("optimiser") {
        /// Plain Adam.
        Baseline = "baseline",
        /// Adam with a Goldstone-GD gauge phase.
        Goldstone = "goldstone",
        /// Adam with the Procrustes gauge fixer.
        Procrustes = "procrustes",
    }
}

/// Validated dwe spec.
#[derive(Clone, Debug, Serialize)]
pub struct DweSpec {
    pub header: Header,
    /// Registry name of the corpus (gzip JSON Lines with `year` and `text`), or a label of
    /// the Google Books source.
    pub corpus: String,
    /// Set when the counts come from Google Books n-gram slices instead.
    pub googlebooks: Option<super::googlebooks::GoogleBooks>,
    pub preprocess: Preprocess,
    pub model: Model,
    pub fit: Fit,
    /// Every combination of the regime keys; the first is the headline regime.
    pub regimes: Vec<Regime>,
    pub evaluate: Evaluate,
}

/// Modern words of the addresses whose first-year neighbours say how a word "aged".
const DEFAULT_QUERIES: &[&str] = &[
    "nuclear",
    "soviet",
    "economy",
    "energy",
    "health",
    "education",
    "jobs",
    "security",
    "families",
    "women",
];

/// The optimisers named at `fit.optimizers` (default: the baseline and Goldstone-GD), each
/// once; Goldstone-GD only with a gauge variant that has a gauge phase.
pub(crate) fn parse_optimizers(
    doc: &SpecDocument,
    listed: Option<Vec<Optimizer>>,
    default: &[Optimizer],
    gauge: GaugeVariant,
) -> Result<Vec<Optimizer>> {
    let key = "fit.optimizers";
    let optimizers = listed.unwrap_or_else(|| default.to_vec());
    if optimizers.is_empty() {
        return Err(doc.error(key, "names no optimiser"));
    }
    if let Some(twice) = super::first_repeat(&optimizers) {
        return Err(doc.error(key, format!("{:?} is listed twice", twice.name())));
    }
    if optimizers.contains(&Optimizer::Goldstone) && !gauge.has_phase() {
        return Err(doc.error(
            "fit.gauge",
            format!(
                "{:?} has no gauge phase; Goldstone-GD needs one (e.g. \"exp-clip\")",
                gauge.name()
            ),
        ));
    }
    Ok(optimizers)
}

/// Parses and validates the spec in `doc`.
pub fn parse(doc: &SpecDocument, header: Header) -> Result<DweSpec> {
    let raw: RawSpec = doc.deserialize()?;
    let p = raw.preprocess.unwrap_or_default();
    let gamma = p.gamma.unwrap_or(0.75);
    if !(0.0..=1.0).contains(&gamma) {
        return Err(doc.error(
            "preprocess.gamma",
            format!("must be in [0, 1], got {gamma}"),
        ));
    }
    if let Some(year) = p.first_year {
        doc.calendar_year("preprocess.first_year", year)?;
    }
    if let Some(year) = p.last_year {
        doc.calendar_year("preprocess.last_year", year)?;
    }
    if let (Some(a), Some(b)) = (p.first_year, p.last_year)
        && a > b
    {
        return Err(doc.error(
            "preprocess.last_year",
            format!("{b} is before preprocess.first_year = {a}"),
        ));
    }
    let cleaning = p.cleaning.unwrap_or_default();
    let m = raw.model.unwrap_or_default();
    let model = Model {
        dim: doc.at_most(
            "model.dim",
            doc.at_least("model.dim", m.dim.unwrap_or(100), 1)?,
            1000,
            "embedding dimension",
        )?,
        diffusion: doc.positive("model.diffusion", m.diffusion.unwrap_or(1e-3))?,
        prior_variance: doc.positive("model.prior_variance", m.prior_variance.unwrap_or(1.0))?,
    };
    let f = raw.fit.unwrap_or_default();
    let gauge = f.gauge.unwrap_or(GaugeVariant::ExpClip);
    let optimizers = parse_optimizers(
        doc,
        f.optimizers,
        &[Optimizer::Baseline, Optimizer::Goldstone],
        gauge,
    )?;
    let holdout = f.holdout.unwrap_or(0.1);
    if !(0.0..0.5).contains(&holdout) {
        return Err(doc.error("fit.holdout", format!("must be in [0, 0.5), got {holdout}")));
    }
    let fraction = |key: &str, v: f64| -> Result<f64> {
        if (0.0..1.0).contains(&v) {
            Ok(v)
        } else {
            Err(doc.error(key, format!("must be in [0, 1), got {v}")))
        }
    };
    let fit = Fit {
        iterations: doc.at_most(
            "fit.iterations",
            doc.at_least("fit.iterations", f.iterations.unwrap_or(2000), 1)? as f64,
            super::MAX_UPDATES,
            "iterations of one run",
        )? as usize,
        minibatch: doc.at_least("fit.minibatch", f.minibatch.unwrap_or(1000), 1)?,
        rate: doc.positive("fit.rate", f.rate.unwrap_or(0.1))?,
        offset: doc.positive("fit.offset", f.offset.unwrap_or(1000.0))?,
        exponent: f.exponent.unwrap_or(0.7),
        beta1: fraction("fit.beta1", f.beta1.unwrap_or(0.9))?,
        beta2: fraction("fit.beta2", f.beta2.unwrap_or(0.999))?,
        epsilon: doc.positive("fit.epsilon", f.epsilon.unwrap_or(1e-8))?,
        k1: doc.at_least("fit.k1", f.k1.unwrap_or(10), 1)?,
        k2: doc.at_least("fit.k2", f.k2.unwrap_or(10), 1)?,
        gauge,
        seeds: doc.at_most(
            "fit.seeds",
            doc.at_least("fit.seeds", f.seeds.unwrap_or(3), 1)?,
            1000,
            "runs per optimiser and regime, each keeping its first and last embeddings",
        )?,
        holdout,
        record_every: doc.at_least("fit.record_every", f.record_every.unwrap_or(100), 1)?,
        optimizers,
    };
    let bins = f.bin_years.unwrap_or(Sweep::One(1)).values();
    let scales = f.count_scale.unwrap_or(Sweep::One(1.0)).values();
    let inits = f.init.unwrap_or(Sweep::One(Init::default())).values();
    let init_scales = f.init_scale.unwrap_or(Sweep::One(0.1)).values();
    for &b in &bins {
        doc.at_least("fit.bin_years", b, 1)?;
    }
    for &c in &scales {
        doc.positive("fit.count_scale", c)?;
    }
    for &c in &init_scales {
        doc.positive("fit.init_scale", c)?;
    }
    doc.instance_count(
        "fit",
        (bins.len() * scales.len() * inits.len() * init_scales.len()) as u128,
    )?;
    let mut regimes = Vec::new();
    for &bin_years in &bins {
        for &count_scale in &scales {
            for &init in &inits {
                for &init_scale in &init_scales {
                    regimes.push(Regime {
                        bin_years,
                        count_scale,
                        init,
                        init_scale,
                    });
                }
            }
        }
    }
    let e = raw.evaluate.unwrap_or_default();
    let evaluate = Evaluate {
        queries: e
            .queries
            .unwrap_or_else(|| DEFAULT_QUERIES.iter().map(|q| q.to_string()).collect()),
        histogram_bins: doc.at_least(
            "evaluate.histogram_bins",
            e.histogram_bins.unwrap_or(40),
            2,
        )?,
    };
    let (corpus, googlebooks) = match (raw.data.corpus, raw.data.googlebooks) {
        (Some(name), None) => (name, None),
        (None, Some(source)) => {
            let source = super::googlebooks::parse_source(doc, &source)?;
            super::googlebooks::year_range(doc, p.first_year, p.last_year)?;
            if p.cleaning.is_some() || p.language.is_some() {
                return Err(doc.error(
                    "preprocess.cleaning",
                    "cleaning and language apply to JSON Lines corpora, not to Google Books n-grams",
                ));
            }
            if source.n < 2 {
                return Err(doc.error(
                    "data.googlebooks.n",
                    "word embeddings need pairs: n must be at least 2",
                ));
            }
            let label = format!("googlebooks {} {}-grams", source.corpus, source.n);
            (label, Some(source))
        }
        _ => {
            return Err(doc.error(
                "data",
                "name exactly one source: corpus = \"<registry name>\" or a [data.googlebooks] table",
            ));
        }
    };
    let preprocess = Preprocess {
        vocabulary: doc.at_most(
            "preprocess.vocabulary",
            doc.at_least("preprocess.vocabulary", p.vocabulary.unwrap_or(10_000), 2)?,
            MAX_VOCABULARY,
            "words, each with a d-vector per time step and role",
        )?,
        window: doc.at_most(
            "preprocess.window",
            doc.at_least("preprocess.window", p.window.unwrap_or(4), 1)?,
            MAX_WINDOW,
            "context words each side of a token",
        )?,
        gamma,
        eta: doc.positive("preprocess.eta", p.eta.unwrap_or(1.0))?,
        first_year: p.first_year,
        last_year: p.last_year,
        cleaning,
        language: p.language,
    };
    doc.at_most(
        "model.dim",
        (model.dim * preprocess.vocabulary) as f64,
        1e7,
        "model.dim × preprocess.vocabulary values per time step and role",
    )?;
    doc.at_most(
        "fit.seeds",
        (fit.seeds * fit.optimizers.len() * model.dim * preprocess.vocabulary) as f64,
        1e8,
        "every run keeps its first and last embeddings: seeds × optimisers × d × V values",
    )?;
    Ok(DweSpec {
        header,
        model,
        fit,
        regimes,
        evaluate,
        corpus,
        googlebooks,
        preprocess,
    })
}
