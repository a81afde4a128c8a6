//! Experiment families: each turns a validated spec into a [`Plan`] of stage instances. The
//! `kind` key of a spec's `[experiment]` table selects the family.

pub mod dwe;
pub mod dwe_planted;
pub mod goldstone_synthetic;
pub mod googlebooks;
pub mod rbm_mnist;
pub mod rbm_scalar;

use std::path::Path;

use crate::error::Result;
use crate::pipeline::Plan;
use crate::spec::SpecDocument;

/// Families this build knows, by `kind`.
pub const KINDS: &[&str] = &[
    "dwe",
    "dwe-planted",
    "goldstone-synthetic",
    "googlebooks",
    "rbm-mnist",
    "rbm-scalar",
];

/// Loads, validates and plans the spec at `path`; `root` is the project folder (its `data/`
/// holds the raw-file registry).
pub fn plan(path: &Path, root: &Path) -> Result<Plan> {
    let doc = SpecDocument::load(path)?;
    let header = doc.header()?;
    match header.kind.as_str() {
        "dwe" => dwe::plan(&doc, header, root),
        "dwe-planted" => dwe_planted::plan(&doc, header, root),
        "goldstone-synthetic" => goldstone_synthetic::plan(&doc, header),
        "googlebooks" => googlebooks::plan(&doc, header, root),
        "rbm-scalar" => rbm_scalar::plan(&doc, header),
        "rbm-mnist" => rbm_mnist::plan(&doc, header, root),
        other => Err(doc.error(
            "experiment.kind",
            format!(
                "unknown experiment kind {other:?}; known: {}",
                KINDS.join(", ")
            ),
        )),
    }
}

/// A value as JSON for stage parameters and the manifest (Null if it cannot be represented).
pub(crate) fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The plan of an experiment whose spec `doc` has `header`, resolved to `spec`.
pub(crate) fn plan_of<T: serde::Serialize>(
    doc: &SpecDocument,
    header: &crate::spec::Header,
    spec: &T,
    instances: Vec<crate::pipeline::StageInstance>,
) -> Plan {
    Plan {
        experiment: header.name.clone(),
        kind: header.kind.clone(),
        description: header.description.clone(),
        seed: header.seed,
        spec_path: doc.path.clone(),
        spec_hash: doc.hash(),
        resolved: json(spec),
        instances,
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

/// Every code group of every experiment.
pub fn code_groups() -> Vec<&'static crate::pipeline::CodeGroup> {
    let mut groups: Vec<_> = rbm_scalar::code_groups().into_iter().collect();
    groups.extend(rbm_mnist::code_groups());
    groups.extend(goldstone_synthetic::code_groups());
    groups.extend(dwe::code_groups());
    groups.extend(googlebooks::code_groups());
    groups.extend(dwe_planted::code_groups());
    groups
}
