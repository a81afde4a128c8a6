//! Emit stage of the `googlebooks` kind: the merged counts as tables — per-slice reading
//! statistics, the vocabulary, unigram tallies by year (raw and per million words of the
//! total-counts file), yearly totals and the strongest co-occurrence pairs summed over years —
//! and a figure of the most frequent words' frequency per million by year.

use std::collections::BTreeMap;

use ndarray::Array2;

use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::npy;
use crate::emit::table::{ColumnDoc, Table, Unit, col};
use crate::error::Result;
use crate::experiments::dwe::preprocess::{load_counts, load_summary};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct EmitStage {
    pub counts: StageHandle,
    pub top_pairs: usize,
    pub figure_words: usize,
}

impl Stage for EmitStage {
    const KIND: StageKind = StageKind::Emit;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("googlebooks/emit")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let dir = ctx.upstream(&self.counts)?;
        let record = super::merge::load(dir)?;
        let summary = load_summary(dir)?;
        let (years, steps, _) = load_counts(dir)?;
        let tallies: Array2<f64> = npy::read_as(&dir.join("arrays").join("tallies.npy"))?;
        let tables = ctx.out_dir.join("tables");
        let words: Vec<&str> = summary.vocabulary.iter().map(|(w, _)| w.as_str()).collect();

        let s = &record.slices;
        let slices: Vec<SliceRow> = s
            .iter()
            .map(|r| {
                let st = &r.stats;
                let first: Vec<String> = st
                    .first_malformed
                    .iter()
                    .map(|(n, _)| n.to_string())
                    .collect();
                SliceRow {
                    slice: r.suffix.clone(),
                    file: r.file.clone(),
                    status: if r.missing { "missing (404)" } else { "read" }.to_string(),
                    sha256: st.sha256.clone(),
                    compressed_bytes: st.compressed_bytes,
                    text_bytes: st.text_bytes,
                    lines: st.lines,
                    ngrams: st.ngrams,
                    malformed: st.malformed,
                    first_malformed_lines: first.join(" "),
                    skipped_pos_variant: st.skipped_variant,
                    skipped_years: st.skipped_years,
                    seconds: st.seconds,
                    megabytes_per_second: st.megabytes_per_second(),
                }
            })
            .collect();
        Table::from_rows("slices", &["slice"], &slices)?
            .describe(COLUMNS)
            .wall_clock(&["seconds", "megabytes_per_second"])
            .write(&tables)?;

        let total_of = |year: f64| {
            record
                .totals
                .get(&(year as i32))
                .copied()
                .unwrap_or(f64::NAN)
        };
        let vocabulary: Vec<VocabularyRow> = summary
            .vocabulary
            .iter()
            .enumerate()
            .map(|(v, (word, score))| VocabularyRow {
                rank: v + 1,
                word: word.clone(),
                score: *score,
                tally: tallies.column(v).sum(),
            })
            .collect();
        Table::from_rows("vocabulary", &["rank"], &vocabulary)?
            .describe(COLUMNS)
            .write(&tables)?;

        let mut unigrams = Vec::new();
        for (t, &year) in years.iter().enumerate() {
            for (v, word) in words.iter().enumerate() {
                let tally = tallies[[t, v]];
                if tally > 0.0 {
                    unigrams.push(UnigramRow {
                        year: year as i64,
                        word: word.to_string(),
                        tally,
                        per_million: 1e6 * tally / total_of(year),
                    });
                }
            }
        }
        Table::from_rows("unigram_by_year", &["year", "word"], &unigrams)?
            .describe(COLUMNS)
            .write(&tables)?;

        // One summary step per counted year: a mismatch is a broken counts folder, not rows
        // to drop.
        if years.len() != summary.steps.len() {
            return Err(crate::error::Error::Other(format!(
                "{}: {} years of counts but {} summarised steps",
                dir.display(),
                years.len(),
                summary.steps.len()
            )));
        }
        let year_rows: Vec<YearRow> = years
            .iter()
            .zip(&summary.steps)
            .map(|(&year, st)| YearRow {
                year: year as i64,
                // A count, but NaN for a year Google's totals file lacks.
                total_match_count: total_of(year),
                ngram_lines: st.documents,
                tally_all_words: st.tokens,
                tally_vocabulary: st.vocabulary_tokens,
                positive_total: st.positive_total,
                nonzero_pairs: st.nonzero_pairs,
            })
            .collect();
        Table::from_rows("years", &["year"], &year_rows)?
            .describe(COLUMNS)
            .write(&tables)?;

        let mut pairs: BTreeMap<(u32, u32), (f64, i64)> = BTreeMap::new();
        for step in &steps {
            for &(i, j, n) in &step.positive {
                let entry = pairs.entry((i, j)).or_insert((0.0, 0));
                entry.0 += n;
                entry.1 += 1;
            }
        }
        let mut ranked: Vec<((u32, u32), (f64, i64))> = pairs.into_iter().collect();
        ranked.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then(a.0.cmp(&b.0)));
        ranked.truncate(self.top_pairs);
        let cooccurrence: Vec<PairRow> = ranked
            .iter()
            .map(|&((i, j), (weight, years))| PairRow {
                word: words[i as usize].to_string(),
                context: words[j as usize].to_string(),
                weight,
                years,
            })
            .collect();
        Table::from_rows("cooccurrence", &["word", "context"], &cooccurrence)?
            .describe(COLUMNS)
            .write(&tables)?;

        let series: Vec<Series> = words
            .iter()
            .take(self.figure_words)
            .enumerate()
            .map(|(v, word)| {
                let points = years
                    .iter()
                    .enumerate()
                    .filter(|(t, _)| tallies[[*t, v]] > 0.0)
                    .map(|(t, &y)| (y, 1e6 * tallies[[t, v]] / total_of(y)))
                    .collect();
                Series::new(Some(word.to_string()), points, v, Style::LineMarkers)
            })
            .collect();
        Figure::single(Panel::Line(LineChart {
            title: format!(
                "Most frequent words of {} slice(s): tally per million words of the year",
                s.len()
            ),
            x_label: "year".into(),
            y_label: "tally per million (all n-gram positions)".into(),
            log_x: false,
            log_y: true,
            series,
            hide_legend: false,
        }))
        .write(&ctx.out_dir.join("figures"), "frequency_by_year")
    }
}

/// What reading one slice met.
#[derive(Default, serde::Serialize)]
struct SliceRow {
    slice: String,
    file: String,
    status: String,
    sha256: String,
    compressed_bytes: u64,
    text_bytes: u64,
    lines: u64,
    ngrams: u64,
    malformed: u64,
    first_malformed_lines: String,
    skipped_pos_variant: u64,
    skipped_years: u64,
    seconds: f64,
    megabytes_per_second: f64,
}

#[derive(Default, serde::Serialize)]
struct VocabularyRow {
    rank: usize,
    word: String,
    score: f64,
    tally: f64,
}

#[derive(Default, serde::Serialize)]
struct UnigramRow {
    year: i64,
    word: String,
    tally: f64,
    per_million: f64,
}

#[derive(Default, serde::Serialize)]
struct YearRow {
    year: i64,
    total_match_count: f64,
    ngram_lines: usize,
    tally_all_words: usize,
    tally_vocabulary: usize,
    positive_total: f64,
    nonzero_pairs: usize,
}

#[derive(Default, serde::Serialize)]
struct PairRow {
    word: String,
    context: String,
    weight: f64,
    years: i64,
}

/// What the columns of the Google Books tables mean.
const COLUMNS: &[ColumnDoc] = &[
    col(
        "slice",
        Unit::Label,
        "the slice's letter suffix (e.g. zz), or totalcounts",
    ),
    col("file", Unit::Label, "the file read"),
    col(
        "status",
        Unit::Label,
        "read, or missing (404) on the server",
    ),
    col("sha256", Unit::Label, "sha256 of the compressed bytes read"),
    col("compressed_bytes", Unit::Bytes, "size of the .gz file"),
    col("text_bytes", Unit::Bytes, "decompressed size"),
    col("lines", Unit::Count, "lines read"),
    col("ngrams", Unit::Count, "distinct n-grams"),
    col("malformed", Unit::Count, "lines that did not parse"),
    col(
        "first_malformed_lines",
        Unit::Label,
        "line numbers of the first malformed lines",
    ),
    col(
        "skipped_pos_variant",
        Unit::Count,
        "lines skipped as part-of-speech-tagged variants",
    ),
    col(
        "skipped_years",
        Unit::Count,
        "lines skipped for a year outside the spec's range",
    ),
    col(
        "seconds",
        Unit::Seconds,
        "wall-clock time to reduce the slice",
    ),
    col(
        "megabytes_per_second",
        Unit::MegabytesPerSecond,
        "decompressed megabytes reduced per second",
    ),
    col("rank", Unit::Index, "position in the vocabulary, from 1"),
    col("word", Unit::Label, "a vocabulary word"),
    col(
        "score",
        Unit::One,
        "Σ over years of tally / that year's match count in the total-counts file (the vocabulary is the words of highest score)",
    ),
    col(
        "tally",
        Unit::Count,
        "occurrences of the word at every position of every n-gram, × its match count (vocabulary: summed over years)",
    ),
    col(
        "per_million",
        Unit::PerMillion,
        "tally per million words of the year (its match count in the total-counts file)",
    ),
    col("year", Unit::Year, "the year"),
    col(
        "total_match_count",
        Unit::Count,
        "words of the year in Google's total-counts file (missing for a year the file lacks)",
    ),
    col("ngram_lines", Unit::Count, "n-gram lines of the year read"),
    col(
        "tally_all_words",
        Unit::Count,
        "tally of every word of the year, vocabulary or not",
    ),
    col(
        "tally_vocabulary",
        Unit::Count,
        "tally of the vocabulary words of the year",
    ),
    col(
        "positive_total",
        Unit::Count,
        "sum of the year's window-weighted positive co-occurrence counts",
    ),
    col(
        "nonzero_pairs",
        Unit::Count,
        "word-context pairs with a positive count in the year",
    ),
    col("context", Unit::Label, "the context word"),
    col(
        "weight",
        Unit::Count,
        "window-weighted co-occurrence count, summed over years",
    ),
    col("years", Unit::Count, "years in which the pair co-occurs"),
];
