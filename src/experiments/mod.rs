//! Experiment families: each turns a validated spec into a [`Plan`] of stage instances. The
//! `kind` key of a spec's `[experiment]` table selects the family in [`FAMILIES`], the one place
//! a family is registered.

pub mod dwe;
pub mod dwe_planted;
pub mod goldstone_modes;
pub mod goldstone_synthetic;
pub mod googlebooks;
pub mod rbm_mnist;
pub mod rbm_scalar;

#[cfg(test)]
mod contract_tests;

use std::path::Path;

use crate::error::Result;
use crate::pipeline::plan::TaskRegistry;
use crate::pipeline::{Plan, PlanBuilder};
use crate::spec::{Header, SpecDocument};

/// One experiment family: the `kind` its specs name and how it plans them (`root` is the
/// project folder, whose `data/` holds the raw-file registry).
pub struct Family {
    pub kind: &'static str,
    pub plan: fn(&SpecDocument, Header, &Path) -> Result<Plan>,
    /// Registers the family's stage types (see [`task_registry`]).
    pub register: fn(&mut TaskRegistry),
}

/// Every family this build knows.
pub const FAMILIES: &[Family] = &[
    Family {
        kind: dwe::KIND,
        plan: dwe::plan,
        register: dwe::register,
    },
    Family {
        kind: dwe_planted::KIND,
        plan: dwe_planted::plan,
        register: dwe_planted::register,
    },
    Family {
        kind: goldstone_modes::KIND,
        plan: goldstone_modes::plan,
        register: goldstone_modes::register,
    },
    Family {
        kind: goldstone_synthetic::KIND,
        plan: goldstone_synthetic::plan,
        register: goldstone_synthetic::register,
    },
    Family {
        kind: googlebooks::KIND,
        plan: googlebooks::plan,
        register: googlebooks::register,
    },
    Family {
        kind: rbm_mnist::KIND,
        plan: rbm_mnist::plan,
        register: rbm_mnist::register,
    },
    Family {
        kind: rbm_scalar::KIND,
        plan: rbm_scalar::plan,
        register: rbm_scalar::register,
    },
];

/// Every stage type of every family: what a worker decodes the tasks of a plan file with.
pub fn task_registry() -> TaskRegistry {
    let mut tasks = TaskRegistry::new();
    for family in FAMILIES {
        (family.register)(&mut tasks);
    }
    tasks
}

/// Loads, validates and plans the spec at `path`; `root` is the project folder (its `data/`
/// holds the raw-file registry).
pub fn plan(path: &Path, root: &Path) -> Result<Plan> {
    let doc = SpecDocument::load(path)?;
    let header = doc.header()?;
    if header.name == crate::claims::reference::REFERENCE_DIR {
        return Err(doc.error(
            "experiment.name",
            "\"reference\" names the folder of the reference results in results/; choose another name",
        ));
    }
    let claims_path = crate::claims::claims_file_for(path);
    let claims_path = if claims_path.is_file() {
        // Checked now, so that a broken claims file stops the run before it computes.
        crate::claims::ClaimsFile::load(&claims_path)?;
        Some(claims_path)
    } else {
        None
    };
    match FAMILIES.iter().find(|f| f.kind == header.kind) {
        Some(family) => (family.plan)(&doc, header, root).map(|plan| Plan {
            claims_path,
            ..plan
        }),
        None => Err(doc.error(
            "experiment.kind",
            format!(
                "unknown experiment kind {:?}; known: {}",
                header.kind,
                FAMILIES
                    .iter()
                    .map(|f| f.kind)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// A value as JSON for the manifest (Null if it cannot be represented).
pub(crate) fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The plan of an experiment whose spec `doc` has `header`, resolved to `spec`.
pub(crate) fn plan_of<T: serde::Serialize>(
    doc: &SpecDocument,
    header: &Header,
    spec: &T,
    plan: PlanBuilder,
) -> Plan {
    Plan {
        experiment: header.name.clone(),
        kind: header.kind.clone(),
        seed: header.seed,
        spec_path: doc.path.clone(),
        spec_hash: doc.hash(),
        claims_path: None,
        resolved: json(spec),
        instances: plan.into_instances(),
    }
}
