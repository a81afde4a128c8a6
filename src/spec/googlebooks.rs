//! Google Books n-gram sources and the `googlebooks` experiment kind.
//!
//! `[data.googlebooks]` names the corpus (`eng-all`, `eng-fiction-all`, …), the order n, the
//! slices (suffixes or `from..to` ranges), the base URL and the reading rules (case, POS
//! variant, which pairs of an n-gram count, tolerated share of malformed lines); see
//! [`crate::corpus::ngram`] for what each rule does. The year range comes from `[preprocess]`
//! and is required. A dwe spec may use this table in place of `data.corpus`; the `googlebooks`
//! kind stops after the counts and writes them as tables.

use serde::{Deserialize, Serialize};

use super::{Header, MAX_VOCABULARY, MAX_WINDOW, SpecDocument};
use crate::corpus::ngram::{Case, PairMode, PosMode, ReduceOptions};
use crate::data::googlebooks::{CORPORA, DEFAULT_BASE_URL, expand_slices};
use crate::error::Result;

/// `[data.googlebooks]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGoogleBooks {
    corpus: Option<String>,
    n: Option<usize>,
    slices: Option<Vec<String>>,
    base_url: Option<String>,
    folder: Option<String>,
    case: Option<String>,
    pos: Option<String>,
    pairs: Option<String>,
    max_malformed: Option<f64>,
}

/// A validated Google Books source.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GoogleBooks {
    pub corpus: String,
    pub n: usize,
    /// Expanded suffixes, in the order given.
    pub slices: Vec<String>,
    pub base_url: String,
    /// Folder under `data/` holding the files.
    pub folder: String,
    pub case: Case,
    pub pos: PosMode,
    pub pairs: PairMode,
    pub max_malformed: f64,
}

impl GoogleBooks {
    /// The reading rules with the year range and window of `[preprocess]`.
    pub fn reduce_options(&self, window: usize, first_year: i32, last_year: i32) -> ReduceOptions {
        ReduceOptions {
            window,
            first_year,
            last_year,
            case: self.case,
            pos: self.pos,
            pairs: self.pairs,
            max_malformed: self.max_malformed,
            n: Some(self.n),
        }
    }
}

fn choice<T: Copy>(
    doc: &SpecDocument,
    key: &str,
    value: Option<&str>,
    options: &[(&str, T)],
) -> Result<T> {
    let name = value.unwrap_or(options[0].0);
    options
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let known: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            doc.error(
                key,
                format!("unknown value {name:?}; known: {}", known.join(", ")),
            )
        })
}

/// Validates `[data.googlebooks]`.
pub fn parse_source(doc: &SpecDocument, raw: &RawGoogleBooks) -> Result<GoogleBooks> {
    const KEY: &str = "data.googlebooks";
    let corpus = raw.corpus.clone().unwrap_or_else(|| "eng-all".into());
    if !CORPORA.contains(&corpus.as_str()) {
        return Err(doc.error(
            &format!("{KEY}.corpus"),
            format!(
                "unknown corpus {corpus:?}; version 2 has {}",
                CORPORA.join(", ")
            ),
        ));
    }
    let n = raw.n.unwrap_or(5);
    if !(1..=5).contains(&n) {
        return Err(doc.error(&format!("{KEY}.n"), format!("must be 1 to 5, got {n}")));
    }
    let slices = expand_slices(n, raw.slices.as_deref().unwrap_or_default())
        .map_err(|e| doc.error(&format!("{KEY}.slices"), e))?;
    let base_url = raw
        .base_url
        .clone()
        .unwrap_or_else(|| DEFAULT_BASE_URL.into());
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(doc.error(
            &format!("{KEY}.base_url"),
            format!("must start with http:// or https://, got {base_url:?}"),
        ));
    }
    let folder = raw.folder.clone().unwrap_or_else(|| "googlebooks".into());
    let plain = !folder.is_empty()
        && folder
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !plain {
        return Err(doc.error(
            &format!("{KEY}.folder"),
            format!("must be a plain folder name under data/ (letters, digits, '-', '_'), got {folder:?}"),
        ));
    }
    let max_malformed = raw.max_malformed.unwrap_or(1e-3);
    if !(0.0..=1.0).contains(&max_malformed) {
        return Err(doc.error(
            &format!("{KEY}.max_malformed"),
            format!("must be a fraction in [0, 1], got {max_malformed}"),
        ));
    }
    Ok(GoogleBooks {
        corpus,
        n,
        slices,
        base_url,
        folder,
        case: choice(
            doc,
            &format!("{KEY}.case"),
            raw.case.as_deref(),
            &[("keep", Case::Keep), ("lower", Case::Lower)],
        )?,
        pos: choice(
            doc,
            &format!("{KEY}.pos"),
            raw.pos.as_deref(),
            &[("untagged", PosMode::Untagged), ("tagged", PosMode::Tagged)],
        )?,
        pairs: choice(
            doc,
            &format!("{KEY}.pairs"),
            raw.pairs.as_deref(),
            &[("first", PairMode::First), ("all", PairMode::All)],
        )?,
        max_malformed,
    })
}

/// The years a Google Books source reads: both ends of `[preprocess]` are required.
pub fn year_range(doc: &SpecDocument, first: Option<i32>, last: Option<i32>) -> Result<(i32, i32)> {
    let first = first.ok_or_else(|| {
        doc.error(
            "preprocess.first_year",
            "a Google Books source needs first_year",
        )
    })?;
    let last = last.ok_or_else(|| {
        doc.error(
            "preprocess.last_year",
            "a Google Books source needs last_year",
        )
    })?;
    let first = doc.calendar_year("preprocess.first_year", first)?;
    let last = doc.calendar_year("preprocess.last_year", last)?;
    if last < first {
        return Err(doc.error(
            "preprocess.last_year",
            format!("{last} is before preprocess.first_year = {first}"),
        ));
    }
    Ok((first, last))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[allow(dead_code)]
    experiment: super::RawHeader,
    data: RawData,
    preprocess: Option<RawCounts>,
    emit: Option<RawEmit>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    googlebooks: RawGoogleBooks,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCounts {
    vocabulary: Option<usize>,
    window: Option<usize>,
    gamma: Option<f64>,
    first_year: Option<i32>,
    last_year: Option<i32>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmit {
    top_pairs: Option<usize>,
    figure_words: Option<usize>,
}

/// The counts settings of a Google Books reduction (shared with dwe's `[preprocess]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Counts {
    pub vocabulary: usize,
    pub window: usize,
    pub gamma: f64,
    pub first_year: i32,
    pub last_year: i32,
}

/// A validated `googlebooks` spec.
#[derive(Clone, Debug, Serialize)]
pub struct GoogleBooksSpec {
    pub header: Header,
    pub source: GoogleBooks,
    pub counts: Counts,
    /// Rows of the co-occurrence table (largest summed weight first).
    pub top_pairs: usize,
    /// Words drawn in the frequency-by-year figure.
    pub figure_words: usize,
}

const MAX_TOP_PAIRS: usize = 1_000_000;
const MAX_FIGURE_WORDS: usize = 50;

/// Parses and validates a `googlebooks` spec.
pub fn parse(doc: &SpecDocument, header: Header) -> Result<GoogleBooksSpec> {
    let raw: RawSpec = doc.deserialize()?;
    let source = parse_source(doc, &raw.data.googlebooks)?;
    let c = raw.preprocess.unwrap_or_default();
    let (first_year, last_year) = year_range(doc, c.first_year, c.last_year)?;
    let gamma = c.gamma.unwrap_or(0.75);
    if !(0.0..=1.0).contains(&gamma) {
        return Err(doc.error(
            "preprocess.gamma",
            format!("must be in [0, 1], got {gamma}"),
        ));
    }
    let vocabulary = doc.at_most(
        "preprocess.vocabulary",
        doc.at_least("preprocess.vocabulary", c.vocabulary.unwrap_or(100), 1)?,
        MAX_VOCABULARY,
        "words, each with a tally per year",
    )?;
    let window = doc.at_most(
        "preprocess.window",
        doc.at_least("preprocess.window", c.window.unwrap_or(4), 1)?,
        MAX_WINDOW,
        "c_max of the window weights",
    )?;
    let e = raw.emit.unwrap_or_default();
    let top_pairs = doc.at_most(
        "emit.top_pairs",
        doc.at_least("emit.top_pairs", e.top_pairs.unwrap_or(200), 1)?,
        MAX_TOP_PAIRS,
        "rows of the co-occurrence table",
    )?;
    let figure_words = doc.at_most(
        "emit.figure_words",
        doc.at_least("emit.figure_words", e.figure_words.unwrap_or(6), 1)?,
        MAX_FIGURE_WORDS.min(vocabulary),
        "lines of the frequency figure, each a word of the vocabulary",
    )?;
    Ok(GoogleBooksSpec {
        header,
        source,
        counts: Counts {
            vocabulary,
            window,
            gamma,
            first_year,
            last_year,
        },
        top_pairs,
        figure_words,
    })
}
