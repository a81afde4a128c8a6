//! Emit stage of the `googlebooks` kind: the merged counts as tables — per-slice reading
//! statistics, the vocabulary, unigram tallies by year (raw and per million words of the
//! total-counts file), yearly totals and the strongest co-occurrence pairs summed over years —
//! and a figure of the most frequent words' frequency per million by year.

use std::collections::BTreeMap;

use ndarray::Array2;

use crate::corpus::ngram::SliceStats;
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::npy;
use crate::emit::table::Table;
use crate::error::Result;
use crate::experiments::dwe::preprocess::{load_counts, load_summary};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageHandle, StageKind};

#[derive(serde::Serialize)]
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
        let count = |field: fn(&SliceStats) -> u64| -> Vec<i64> {
            s.iter().map(|r| field(&r.stats) as i64).collect()
        };
        Table::new("slices", &["slice"])
            .wall_clock(&["seconds", "megabytes_per_second"])
            .str("slice", s.iter().map(|r| r.suffix.clone()).collect())
            .str("file", s.iter().map(|r| r.file.clone()).collect())
            .str(
                "status",
                s.iter()
                    .map(|r| if r.missing { "missing (404)" } else { "read" }.to_string())
                    .collect(),
            )
            .str("sha256", s.iter().map(|r| r.stats.sha256.clone()).collect())
            .i64("compressed_bytes", count(|st| st.compressed_bytes))
            .i64("text_bytes", count(|st| st.text_bytes))
            .i64("lines", count(|st| st.lines))
            .i64("ngrams", count(|st| st.ngrams))
            .i64("malformed", count(|st| st.malformed))
            .str(
                "first_malformed_lines",
                s.iter()
                    .map(|r| {
                        let lines: Vec<String> = r
                            .stats
                            .first_malformed
                            .iter()
                            .map(|(n, _)| n.to_string())
                            .collect();
                        lines.join(" ")
                    })
                    .collect(),
            )
            .i64("skipped_pos_variant", count(|st| st.skipped_variant))
            .i64("skipped_years", count(|st| st.skipped_years))
            .f64("seconds", s.iter().map(|r| r.stats.seconds).collect())
            .f64(
                "megabytes_per_second",
                s.iter().map(|r| r.stats.megabytes_per_second()).collect(),
            )
            .write(&tables)?;

        let total_of = |year: f64| {
            record
                .totals
                .get(&(year as i32))
                .copied()
                .unwrap_or(f64::NAN)
        };
        Table::new("vocabulary", &["rank"])
            .i64("rank", (1..=words.len() as i64).collect())
            .str("word", words.iter().map(|w| w.to_string()).collect())
            .f64(
                "score",
                summary.vocabulary.iter().map(|(_, s)| *s).collect(),
            )
            .f64(
                "tally",
                (0..words.len()).map(|v| tallies.column(v).sum()).collect(),
            )
            .write(&tables)?;

        let (mut year_col, mut word_col, mut count_col, mut per_million) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (t, &year) in years.iter().enumerate() {
            for (v, word) in words.iter().enumerate() {
                let count = tallies[[t, v]];
                if count > 0.0 {
                    year_col.push(year as i64);
                    word_col.push(word.to_string());
                    count_col.push(count);
                    per_million.push(1e6 * count / total_of(year));
                }
            }
        }
        Table::new("unigram_by_year", &["year", "word"])
            .i64("year", year_col)
            .str("word", word_col)
            .f64("tally", count_col)
            .f64("per_million", per_million)
            .write(&tables)?;

        Table::new("years", &["year"])
            .i64("year", years.iter().map(|&y| y as i64).collect())
            .f64(
                "total_match_count",
                years.iter().map(|&y| total_of(y)).collect(),
            )
            .i64(
                "ngram_lines",
                summary.steps.iter().map(|st| st.documents as i64).collect(),
            )
            .f64(
                "tally_all_words",
                summary.steps.iter().map(|st| st.tokens as f64).collect(),
            )
            .f64(
                "tally_vocabulary",
                summary
                    .steps
                    .iter()
                    .map(|st| st.vocabulary_tokens as f64)
                    .collect(),
            )
            .f64(
                "positive_total",
                summary.steps.iter().map(|st| st.positive_total).collect(),
            )
            .i64(
                "nonzero_pairs",
                summary
                    .steps
                    .iter()
                    .map(|st| st.nonzero_pairs as i64)
                    .collect(),
            )
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
        Table::new("cooccurrence", &["word", "context"])
            .str(
                "word",
                ranked
                    .iter()
                    .map(|((i, _), _)| words[*i as usize].to_string())
                    .collect(),
            )
            .str(
                "context",
                ranked
                    .iter()
                    .map(|((_, j), _)| words[*j as usize].to_string())
                    .collect(),
            )
            .f64("weight", ranked.iter().map(|(_, (w, _))| *w).collect())
            .i64("years", ranked.iter().map(|(_, (_, n))| *n).collect())
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
        }))
        .write(&ctx.out_dir.join("figures"), "frequency_by_year")
    }
}
