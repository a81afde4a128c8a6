//! Fetch stage of a Google Books source: one instance per file (each slice, and the
//! total-counts file). It makes `data/<folder>/<file>` present and pinned in the lock (see
//! [`crate::data::googlebooks`]) and records what it found in `fetched.json`; a 404 is recorded
//! as a missing slice and printed as a warning, not an error.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::fetch::FetchOptions;
use crate::data::googlebooks::{Obtained, obtain};
use crate::error::Result;
use crate::fsutil::{read_json, write_json};
use crate::pipeline::{CodeGroup, Stage, StageContext, StageKind};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct FetchStage {
    pub url: String,
    pub dest: PathBuf,
    pub lock: PathBuf,
}

/// The record a fetch instance leaves for the stages that read its file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fetched {
    pub file: String,
    pub url: String,
    /// What happened: present, downloaded or missing.
    pub obtained: Obtained,
}

impl Fetched {
    pub fn is_missing(&self) -> bool {
        matches!(self.obtained, Obtained::Missing { .. })
    }
}

impl Stage for FetchStage {
    const KIND: StageKind = StageKind::Fetch;

    fn code() -> &'static CodeGroup {
        crate::stage_code!("googlebooks/fetch")
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        let obtained = obtain(
            &self.url,
            &self.dest,
            &self.lock,
            &FetchOptions::default(),
            ctx.progress,
        )?;
        if let Obtained::Missing { url } = &obtained {
            eprintln!(
                "warning: {} is not on the server (404 for {url}); the slice is skipped and \
                 recorded as missing",
                self.dest.display()
            );
        }
        write_json(
            &ctx.out_dir.join("fetched.json"),
            &Fetched {
                file: self
                    .dest
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                url: self.url.clone(),
                obtained,
            },
        )
    }
}

/// Reads the record of a fetch instance.
pub fn load(dir: &std::path::Path) -> Result<Fetched> {
    read_json(&dir.join("fetched.json"))
}
