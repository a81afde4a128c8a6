//! The spec of the dynamic-word-embedding experiments (`kind = "dwe"`): `[data]` names the
//! registered corpus; `[preprocess]` the vocabulary size, the context window c_max, the
//! negative-sampling exponent γ and ratio η, and an optional year range. (Model and fit settings
//! join this spec with the fit stage.)

use serde::{Deserialize, Serialize};

use super::{Header, SpecDocument};
use crate::error::Result;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[allow(dead_code)]
    experiment: super::RawHeader,
    data: RawData,
    preprocess: Option<RawPreprocess>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    corpus: String,
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
}

/// Validated preprocessing settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Preprocess {
    pub vocabulary: usize,
    pub window: usize,
    pub gamma: f64,
    pub eta: f64,
    pub first_year: Option<i32>,
    pub last_year: Option<i32>,
}

/// Validated dwe spec.
#[derive(Clone, Debug, Serialize)]
pub struct DweSpec {
    pub header: Header,
    /// Registry name of the corpus (gzip JSON Lines with `year` and `text`).
    pub corpus: String,
    pub preprocess: Preprocess,
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
    if let (Some(a), Some(b)) = (p.first_year, p.last_year)
        && a > b
    {
        return Err(doc.error(
            "preprocess.last_year",
            format!("{b} is before preprocess.first_year = {a}"),
        ));
    }
    Ok(DweSpec {
        header,
        corpus: raw.data.corpus,
        preprocess: Preprocess {
            vocabulary: doc.at_least("preprocess.vocabulary", p.vocabulary.unwrap_or(10_000), 2)?,
            window: doc.at_least("preprocess.window", p.window.unwrap_or(4), 1)?,
            gamma,
            eta: doc.positive("preprocess.eta", p.eta.unwrap_or(1.0))?,
            first_year: p.first_year,
            last_year: p.last_year,
        },
    })
}
