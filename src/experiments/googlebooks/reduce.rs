//! Reduce stage: one n-gram slice → its per-year unigram tallies and window-weighted pair
//! counts ([`crate::corpus::ngram`]), cached per slice so that adding a slice to a spec reduces
//! only that slice. The sha256 of the bytes as streamed is checked against the lock, so a file
//! changed since it was pinned is refused. Writes `slice/` (the counts) and `slice.json`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::corpus::ngram::{ReduceOptions, SliceCounts, SliceStats, reduce_file};
use crate::data::googlebooks::check_read;
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::pipeline::{CodeGroup, InputFile, Stage, StageContext, StageHandle, StageKind};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct ReduceStage {
    pub suffix: String,
    pub path: InputFile,
    pub lock: PathBuf,
    pub fetch: StageHandle,
    pub options: ReduceOptions,
}

/// What the reduction of one slice met.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SliceRecord {
    pub suffix: String,
    pub file: String,
    pub url: String,
    /// The server had no such file.
    pub missing: bool,
    pub stats: SliceStats,
}

impl Stage for ReduceStage {
    const KIND: StageKind = StageKind::Preprocess;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("googlebooks/reduce")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let fetched = super::fetch::load(ctx.upstream(&self.fetch)?)?;
        let (counts, stats) = if fetched.is_missing() {
            (SliceCounts::default(), SliceStats::default())
        } else {
            let path = self.path.path();
            if !path.exists() {
                return Err(crate::error::Error::Other(format!(
                    "{} is gone since it was fetched; `symbreak run <experiment> --stage fetch` \
                     downloads it again",
                    path.display()
                )));
            }
            let (counts, stats) = reduce_file(path, &self.options)?;
            check_read(&self.lock, path, &stats.sha256)?;
            (counts, stats)
        };
        counts.write(&ctx.out_dir.join("slice"))?;
        write_json(
            &ctx.out_dir.join("slice.json"),
            &SliceRecord {
                suffix: self.suffix.clone(),
                file: fetched.file.clone(),
                url: fetched.url.clone(),
                missing: fetched.is_missing(),
                stats,
            },
        )
    }
}

/// Reads the record and the counts of a reduce instance.
pub fn load(dir: &std::path::Path) -> Result<(SliceRecord, SliceCounts)> {
    Ok((
        read_json(&dir.join("slice.json"))?,
        SliceCounts::read(&dir.join("slice"))?,
    ))
}
