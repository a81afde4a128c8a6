//! Experiment families: each turns a validated spec into a [`Plan`] of stage instances. The
//! `kind` key of a spec's `[experiment]` table selects the family.

pub mod rbm_scalar;

use std::path::Path;

use crate::error::Result;
use crate::pipeline::Plan;
use crate::spec::SpecDocument;

/// Families this build knows, by `kind`.
pub const KINDS: &[&str] = &["rbm-scalar"];

/// Loads, validates and plans the spec at `path`.
pub fn plan(path: &Path) -> Result<Plan> {
    let doc = SpecDocument::load(path)?;
    let header = doc.header()?;
    match header.kind.as_str() {
        "rbm-scalar" => rbm_scalar::plan(&doc, header),
        other => Err(doc.error(
            "experiment.kind",
            format!(
                "unknown experiment kind {other:?}; known: {}",
                KINDS.join(", ")
            ),
        )),
    }
}

/// `flow,mode=exact` → `flow_mode-exact`: a label as a file-name fragment.
pub fn slug(label: &str) -> String {
    label
        .chars()
        .map(|c| match c {
            ',' => '_',
            '=' => '-',
            c if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' => c,
            _ => '_',
        })
        .collect()
}
