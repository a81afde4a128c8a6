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

mod emit;
pub(crate) mod fetch;
pub(crate) mod merge;
pub(crate) mod reduce;

use std::path::Path;
use std::sync::Arc;

use crate::code_group;
use crate::data::googlebooks::{locations, ngram_file, total_counts_file, url};
use crate::error::Result;
use crate::pipeline::{CodeGroup, Plan, StageInstance, StageKind};
use crate::spec::googlebooks::{Counts, GoogleBooks, parse};
use crate::spec::{Header, SpecDocument};

static FETCH_CODE: CodeGroup =
    code_group!("googlebooks/fetch", ["experiments/googlebooks/fetch.rs"]);
static REDUCE_CODE: CodeGroup = code_group!(
    "googlebooks/reduce",
    [
        "experiments/googlebooks/reduce.rs",
        "experiments/googlebooks/fetch.rs",
        "corpus/ngram.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static MERGE_CODE: CodeGroup = code_group!(
    "googlebooks/merge",
    [
        "experiments/googlebooks/merge.rs",
        "experiments/googlebooks/reduce.rs",
        "experiments/googlebooks/fetch.rs",
        "experiments/dwe/preprocess.rs",
        "corpus/ngram.rs",
        "corpus/counts.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);
static EMIT_CODE: CodeGroup = code_group!(
    "googlebooks/emit",
    [
        "experiments/googlebooks/emit.rs",
        "experiments/googlebooks/merge.rs",
        "experiments/googlebooks/reduce.rs",
        "experiments/dwe/preprocess.rs",
        "emit/figure.rs",
        "emit/table.rs",
        "emit/npy.rs",
        "fsutil.rs"
    ]
);

/// The record a fetch instance left in its cache folder `dir`.
pub fn fetched_record(dir: &Path) -> Result<fetch::Fetched> {
    fetch::load(dir)
}

/// Every code group of this experiment, for the coverage test.
pub fn code_groups() -> [&'static CodeGroup; 4] {
    [&FETCH_CODE, &REDUCE_CODE, &MERGE_CODE, &EMIT_CODE]
}

/// The fetch, reduce and merge instances of a source; the last one is the merge, whose output
/// is the dwe counts layout.
pub fn count_instances(source: &GoogleBooks, counts: &Counts, root: &Path) -> Vec<StageInstance> {
    let (folder, lock) = locations(root, &source.folder);
    let fetch = |label: String, file: String| StageInstance {
        kind: StageKind::Fetch,
        label,
        params: serde_json::json!({ "url": url(&source.base_url, &file), "file": file }),
        deps: vec![],
        inputs: vec![],
        code: &FETCH_CODE,
        task: Arc::new(fetch::FetchStage {
            url: url(&source.base_url, &file),
            dest: folder.join(&file),
            lock: lock.clone(),
        }),
    };
    let options = source.reduce_options(counts.window, counts.first_year, counts.last_year);
    let mut instances = Vec::new();
    let mut reduce_ids = Vec::new();
    for suffix in &source.slices {
        let file = ngram_file(&source.corpus, source.n, suffix);
        let fetched = fetch(format!("slice={suffix}"), file.clone());
        let fetch_id = fetched.id();
        let reduce = StageInstance {
            kind: StageKind::Preprocess,
            label: format!("slice={suffix}"),
            params: serde_json::json!({
                "file": file,
                "reduce": super::json(&options),
            }),
            deps: vec![fetch_id.clone()],
            inputs: vec![],
            code: &REDUCE_CODE,
            task: Arc::new(reduce::ReduceStage {
                suffix: suffix.clone(),
                path: folder.join(&file),
                lock: lock.clone(),
                fetch_id,
                options: options.clone(),
            }),
        };
        reduce_ids.push(reduce.id());
        instances.push(fetched);
        instances.push(reduce);
    }
    let totals_file = total_counts_file(&source.corpus);
    let totals = fetch("totalcounts".into(), totals_file.clone());
    let totals_fetch_id = totals.id();
    instances.push(totals);
    let mut deps = reduce_ids.clone();
    deps.push(totals_fetch_id.clone());
    instances.push(StageInstance {
        kind: StageKind::Preprocess,
        label: String::new(),
        params: serde_json::json!({
            "vocabulary": counts.vocabulary,
            "gamma": counts.gamma,
            "first_year": counts.first_year,
            "last_year": counts.last_year,
        }),
        deps,
        inputs: vec![],
        code: &MERGE_CODE,
        task: Arc::new(merge::MergeStage {
            reduce_ids,
            totals_fetch_id,
            totals_path: folder.join(&totals_file),
            lock,
            vocabulary: counts.vocabulary,
            gamma: counts.gamma,
            first_year: counts.first_year,
            last_year: counts.last_year,
        }),
    });
    instances
}

/// Plans a `googlebooks` experiment: the counts, then their tables and figure.
pub fn plan(doc: &SpecDocument, header: Header, root: &Path) -> Result<Plan> {
    let spec = parse(doc, header)?;
    let mut instances = count_instances(&spec.source, &spec.counts, root);
    let counts_id = instances.last().map(StageInstance::id).unwrap_or_default();
    instances.push(StageInstance {
        kind: StageKind::Emit,
        label: String::new(),
        params: serde_json::json!({
            "top_pairs": spec.top_pairs,
            "figure_words": spec.figure_words,
        }),
        deps: vec![counts_id.clone()],
        inputs: vec![],
        code: &EMIT_CODE,
        task: Arc::new(emit::EmitStage {
            counts_id,
            top_pairs: spec.top_pairs,
            figure_words: spec.figure_words,
        }),
    });
    Ok(super::plan_of(doc, &spec.header, &spec, instances))
}
