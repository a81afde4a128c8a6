//! Google Books Ngram v2 slices → per-year co-occurrence counts:
//!
//! ```text
//! fetch[<suffix>] ─ preprocess[slice=<suffix>] ─┐
//! fetch[totalcounts] ───────────────────────────┴─ preprocess (merge: vocabulary, dwe counts)
//!                                                    └─ emit (googlebooks kind: tables, figure)
//! ```
//!
//! Each slice is its own fetch and reduce instance — the unit of parallel work (`-j`) and of
//! caching — so adding a slice to a spec downloads and reduces only that slice. The dwe kind
//! plans the same instances in place of its JSON Lines preprocess when a spec has
//! `[data.googlebooks]`; the `googlebooks` kind stops at the counts and writes them as tables.

pub(crate) mod emit;
pub(crate) mod fetch;
pub(crate) mod merge;
pub(crate) mod reduce;

use std::path::Path;

use crate::data::googlebooks::{locations, ngram_file, total_counts_file, url};
use crate::error::Result;
use crate::pipeline::{InputFile, Plan, PlanBuilder, StageHandle};
use crate::spec::googlebooks::{Counts, GoogleBooks, parse};
use crate::spec::{Header, SpecDocument};

/// Adds the fetch, reduce and merge instances of a source; returns the merge, whose output is
/// the dwe counts layout.
pub fn plan_counts(
    plan: &mut PlanBuilder,
    source: &GoogleBooks,
    counts: &Counts,
    root: &Path,
) -> Result<StageHandle> {
    let (folder, lock) = locations(root, &source.folder);
    let fetch = |file: &str| fetch::FetchStage {
        url: url(&source.base_url, file),
        dest: folder.join(file),
        lock: lock.clone(),
    };
    let options = source.reduce_options(counts.window, counts.first_year, counts.last_year);
    let mut reduces = Vec::new();
    for suffix in &source.slices {
        let file = ngram_file(&source.corpus, source.n, suffix);
        let label = format!("slice={suffix}");
        let fetched = plan.add(label.clone(), fetch(&file))?;
        reduces.push(plan.add(
            label,
            reduce::ReduceStage {
                suffix: suffix.clone(),
                path: InputFile::fetched(folder.join(&file)),
                lock: lock.clone(),
                fetch: fetched,
                options: options.clone(),
            },
        )?);
    }
    let totals_file = total_counts_file(&source.corpus);
    let totals_fetch = plan.add("totalcounts", fetch(&totals_file))?;
    plan.add(
        "",
        merge::MergeStage {
            reduces,
            totals_fetch,
            totals_path: InputFile::fetched(folder.join(&totals_file)),
            lock,
            vocabulary: counts.vocabulary,
            gamma: counts.gamma,
            first_year: counts.first_year,
            last_year: counts.last_year,
        },
    )
}

/// The `[experiment] kind` of this family's specs.
pub const KIND: &str = "googlebooks";

/// Registers the stage types this family plans, for workers that decode plan files.
pub fn register(tasks: &mut crate::pipeline::plan::TaskRegistry) {
    tasks
        .register::<fetch::FetchStage>()
        .register::<reduce::ReduceStage>()
        .register::<merge::MergeStage>()
        .register::<emit::EmitStage>();
}

/// Plans a `googlebooks` experiment: the counts, then their tables and figure.
pub fn plan(doc: &SpecDocument, header: Header, root: &Path) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let mut plan = PlanBuilder::new();
    let counts = plan_counts(&mut plan, &spec.source, &spec.counts, root)?;
    plan.add(
        "",
        emit::EmitStage {
            counts,
            top_pairs: spec.top_pairs,
            figure_words: spec.figure_words,
        },
    )?;
    Ok(super::plan_of(doc, &spec.header, &spec, plan))
}
