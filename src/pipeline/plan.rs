//! The contract between the pipeline and an experiment family: a [`Stage`] is a serialisable
//! task, and a [`PlanBuilder`] turns each added task into a stage instance whose key parameters,
//! upstream instances and input files are all read off the task's own serialisation.
//!
//! A task names an upstream instance by holding the [`StageHandle`] that adding it returned, and
//! a raw file by holding an [`InputFile`]. Both serialise to markers that the builder replaces
//! (a handle by its instance id, a file by its path) while collecting them as the instance's
//! dependencies and inputs. So whatever a task can read — a field, an upstream output, a file —
//! is in its key by construction: there is no second list to keep in step with the task.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

use super::{CodeGroup, StageContext, StageKind};
use crate::error::{Error, Result};

const UPSTREAM_MARKER: &str = "$symbreak-upstream";
const INPUT_MARKER: &str = "$symbreak-input";
const FETCHED_INPUT_MARKER: &str = "$symbreak-fetched-input";

/// One kind of stage computation. Its fields are everything it reads besides upstream outputs
/// and raw files (which it holds as [`StageHandle`]s and [`InputFile`]s): their serialisation is
/// the instance's key parameters. It also deserialises from that form, so that a worker on
/// another machine runs exactly the task the driver keyed (see [`TaskRegistry`]).
pub trait Stage: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Where in the pipeline this computation sits.
    const KIND: StageKind;
    /// The code whose fingerprint enters the key.
    fn code() -> &'static CodeGroup;
    /// Computes the outputs into `ctx.out_dir`.
    fn run(&self, ctx: &StageContext<'_>) -> Result<()>;
}

/// The object-safe part of a [`Stage`], as the executor calls it.
pub(crate) trait RunStage: Send + Sync {
    fn run(&self, ctx: &StageContext<'_>) -> Result<()>;
    /// The task's serialisation, markers kept.
    fn to_json(&self) -> Result<serde_json::Value>;
}

impl<T: Stage> RunStage for T {
    fn run(&self, ctx: &StageContext<'_>) -> Result<()> {
        Stage::run(self, ctx)
    }
    fn to_json(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self)
            .map_err(|e| Error::Other(format!("task does not serialise: {e}")))
    }
}

/// A planned instance, as the tasks downstream of it name it. Only [`PlanBuilder::add`] makes
/// one, so a dependency can never name an instance that is not in the plan.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StageHandle {
    id: Arc<str>,
}

impl StageHandle {
    /// `kind` or `kind[label]`.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Serialize for StageHandle {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(UPSTREAM_MARKER, &*self.id)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for StageHandle {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let marker = BTreeMap::<String, String>::deserialize(deserializer)?;
        match (marker.len(), marker.get(UPSTREAM_MARKER)) {
            (1, Some(id)) => Ok(StageHandle {
                id: id.as_str().into(),
            }),
            _ => Err(D::Error::custom(format!(
                "expected an upstream marker {{\"{UPSTREAM_MARKER}\": id}}, got {marker:?}"
            ))),
        }
    }
}

/// A raw file a task reads: its content hash, taken before the run, enters the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    path: PathBuf,
    fetched: bool,
}

impl InputFile {
    /// A file that must exist when the plan is keyed (a registered, vendored file).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            fetched: false,
        }
    }

    /// A file an upstream fetch instance provides: keyed by its content when present, and as
    /// absent before its first download (the instance then reruns once, keyed by content).
    pub fn fetched(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            fetched: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Serialize for InputFile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        let marker = if self.fetched {
            FETCHED_INPUT_MARKER
        } else {
            INPUT_MARKER
        };
        map.serialize_entry(marker, &self.path.to_string_lossy())?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for InputFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let marker = BTreeMap::<String, String>::deserialize(deserializer)?;
        let fetched = marker.contains_key(FETCHED_INPUT_MARKER);
        match marker
            .get(INPUT_MARKER)
            .or(marker.get(FETCHED_INPUT_MARKER))
        {
            Some(path) if marker.len() == 1 => Ok(InputFile {
                path: PathBuf::from(path),
                fetched,
            }),
            _ => Err(D::Error::custom(format!(
                "expected an input-file marker, got {marker:?}"
            ))),
        }
    }
}

/// One node of the stage graph.
pub struct StageInstance {
    pub kind: StageKind,
    /// Sweep point or role, e.g. `flow,mode=exact`; empty for singletons.
    pub label: String,
    /// The task's serialisation with handles and files replaced by ids and paths.
    pub params: serde_json::Value,
    /// Ids of upstream instances: the handles the task holds.
    pub deps: BTreeSet<String>,
    /// Raw input files whose contents the result depends on: the files the task holds.
    pub inputs: Vec<PathBuf>,
    /// Files the task reads that upstream fetch instances provide ([`InputFile::fetched`]).
    pub fetched_inputs: Vec<PathBuf>,
    pub code: &'static CodeGroup,
    /// The task's Rust type, which names its decoder in a [`TaskRegistry`].
    pub task_type: &'static str,
    /// The task's own serialisation, markers kept: what a worker decodes it from.
    pub task_json: serde_json::Value,
    pub(crate) task: Arc<dyn RunStage>,
}

impl StageInstance {
    /// `kind` or `kind[label]`.
    pub fn id(&self) -> String {
        instance_id(self.kind, &self.label)
    }
}

fn instance_id(kind: StageKind, label: &str) -> String {
    if label.is_empty() {
        kind.name().to_string()
    } else {
        format!("{}[{label}]", kind.name())
    }
}

/// Collects stage instances in dependency order; every instance's dependencies are planned
/// before it because a task can only hold handles that were already returned.
#[derive(Default)]
pub struct PlanBuilder {
    instances: Vec<StageInstance>,
    ids: BTreeSet<String>,
}

impl PlanBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `task` as the instance `T::KIND[label]` and returns its handle. Refuses a second
    /// instance with the same id (two sweep points that coincide).
    pub fn add<T: Stage>(&mut self, label: impl Into<String>, task: T) -> Result<StageHandle> {
        let label = label.into();
        let id = instance_id(T::KIND, &label);
        if self.ids.contains(&id) {
            return Err(Error::Other(format!(
                "stage instance {id} is planned twice (a sweep lists the same value twice?)"
            )));
        }
        let value = serde_json::to_value(&task)
            .map_err(|e| Error::Other(format!("stage {id}: its task does not serialise: {e}")))?;
        let mut deps = BTreeSet::new();
        let mut inputs = BTreeSet::new();
        let mut fetched_inputs = BTreeSet::new();
        let params = replace_markers(value.clone(), &mut deps, &mut inputs, &mut fetched_inputs);
        if let Some(unknown) = deps.iter().find(|d| !self.ids.contains(*d)) {
            return Err(Error::Other(format!(
                "stage {id} reads {unknown}, which is not planned before it"
            )));
        }
        self.ids.insert(id.clone());
        self.instances.push(StageInstance {
            kind: T::KIND,
            label,
            params,
            deps,
            inputs: inputs.into_iter().collect(),
            fetched_inputs: fetched_inputs.into_iter().collect(),
            code: T::code(),
            task_type: std::any::type_name::<T>(),
            task_json: value,
            task: Arc::new(task),
        });
        Ok(StageHandle { id: id.into() })
    }

    /// The instances, in the order added.
    pub fn into_instances(self) -> Vec<StageInstance> {
        self.instances
    }
}

/// Decodes a task from its serialisation.
type Decoder = fn(serde_json::Value) -> Result<Arc<dyn RunStage>>;

/// Every stage type a build can run, by Rust type name: how a worker turns the serialised task
/// of a plan file back into the task. A decoded task must serialise back to exactly the JSON it
/// came from (so a field the serialisation drops cannot make the worker compute something other
/// than what was keyed); [`TaskRegistry::decode`] checks that.
#[derive(Default)]
pub struct TaskRegistry {
    decoders: BTreeMap<&'static str, (StageKind, &'static CodeGroup, Decoder)>,
}

impl TaskRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers stage type `T`.
    pub fn register<T: Stage>(&mut self) -> &mut Self {
        fn decode<T: Stage>(value: serde_json::Value) -> Result<Arc<dyn RunStage>> {
            let task: T = serde_json::from_value(value)
                .map_err(|e| Error::Other(format!("task does not decode: {e}")))?;
            Ok(Arc::new(task))
        }
        self.decoders.insert(
            std::any::type_name::<T>(),
            (T::KIND, T::code(), decode::<T>),
        );
        self
    }

    /// The code group of a registered stage type.
    pub fn code(&self, task_type: &str) -> Option<&'static CodeGroup> {
        self.decoders.get(task_type).map(|(_, code, _)| *code)
    }

    /// The task of type `task_type` serialised as `json`, checked to serialise back to `json`.
    pub(crate) fn decode(
        &self,
        task_type: &str,
        kind: StageKind,
        json: &serde_json::Value,
    ) -> Result<Arc<dyn RunStage>> {
        let (registered_kind, _, decode) = self.decoders.get(task_type).ok_or_else(|| {
            Error::Other(format!(
                "this build has no stage type {task_type} (the plan was made by another build)"
            ))
        })?;
        if *registered_kind != kind {
            return Err(Error::Other(format!(
                "stage type {task_type} is a {} stage, the plan says {}",
                registered_kind.name(),
                kind.name()
            )));
        }
        let task = decode(json.clone())?;
        let again = task.to_json()?;
        if &again != json {
            return Err(Error::Other(format!(
                "stage type {task_type} does not decode to the task that was planned: \
                 it serialises back as {again} instead of {json}"
            )));
        }
        Ok(task)
    }
}

/// Replaces handle and file markers by their id and path, collecting both.
fn replace_markers(
    value: serde_json::Value,
    deps: &mut BTreeSet<String>,
    inputs: &mut BTreeSet<PathBuf>,
    fetched_inputs: &mut BTreeSet<PathBuf>,
) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if map.len() == 1 {
                if let Some(Value::String(id)) = map.get(UPSTREAM_MARKER) {
                    deps.insert(id.clone());
                    return Value::String(id.clone());
                }
                if let Some(Value::String(path)) = map.get(INPUT_MARKER) {
                    inputs.insert(PathBuf::from(path));
                    return Value::String(path.clone());
                }
                if let Some(Value::String(path)) = map.get(FETCHED_INPUT_MARKER) {
                    fetched_inputs.insert(PathBuf::from(path));
                    return Value::String(path.clone());
                }
            }
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, replace_markers(v, deps, inputs, fetched_inputs)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| replace_markers(v, deps, inputs, fetched_inputs))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static CODE: CodeGroup = CodeGroup::new("test", file!());

    #[derive(Serialize, Deserialize)]
    struct Source {
        seed: u64,
        data: InputFile,
    }
    impl Stage for Source {
        const KIND: StageKind = StageKind::Preprocess;
        fn code() -> &'static CodeGroup {
            &CODE
        }
        fn run(&self, _: &StageContext<'_>) -> Result<()> {
            Ok(())
        }
    }

    #[derive(Serialize, Deserialize)]
    struct Sink {
        rate: f64,
        sources: Vec<(String, StageHandle)>,
    }
    impl Stage for Sink {
        const KIND: StageKind = StageKind::Fit;
        fn code() -> &'static CodeGroup {
            &CODE
        }
        fn run(&self, _: &StageContext<'_>) -> Result<()> {
            Ok(())
        }
    }

    /// Dependencies and inputs are exactly the handles and files a task holds, wherever they
    /// sit in it; they appear in the parameters as ids and paths, in the task's order.
    #[test]
    fn dependencies_and_inputs_are_read_off_the_task() {
        let mut plan = PlanBuilder::new();
        let a = plan
            .add(
                "a",
                Source {
                    seed: 1,
                    data: InputFile::new("/data/a.bin"),
                },
            )
            .unwrap();
        let b = plan
            .add(
                "b",
                Source {
                    seed: 2,
                    data: InputFile::new("/data/b.bin"),
                },
            )
            .unwrap();
        plan.add(
            "",
            Sink {
                rate: 0.5,
                sources: vec![("second".into(), b.clone()), ("first".into(), a.clone())],
            },
        )
        .unwrap();
        let instances = plan.into_instances();
        assert_eq!(instances[0].inputs, [PathBuf::from("/data/a.bin")]);
        assert_eq!(instances[0].params["data"], "/data/a.bin");
        let sink = &instances[2];
        assert_eq!(sink.id(), "fit");
        assert_eq!(
            sink.deps.iter().map(String::as_str).collect::<Vec<_>>(),
            ["preprocess[a]", "preprocess[b]"]
        );
        assert_eq!(
            sink.params,
            serde_json::json!({
                "rate": 0.5,
                "sources": [["second", "preprocess[b]"], ["first", "preprocess[a]"]]
            })
        );
    }

    #[test]
    fn a_second_instance_with_the_same_id_is_refused() {
        let mut plan = PlanBuilder::new();
        let source = |seed| Source {
            seed,
            data: InputFile::new("x"),
        };
        plan.add("n=1", source(1)).unwrap();
        let err = plan.add("n=1", source(2)).unwrap_err().to_string();
        assert!(err.contains("preprocess[n=1] is planned twice"), "{err}");
    }

    #[test]
    fn a_handle_from_another_plan_is_refused() {
        let mut other = PlanBuilder::new();
        let foreign = other
            .add(
                "x",
                Source {
                    seed: 1,
                    data: InputFile::new("x"),
                },
            )
            .unwrap();
        let mut plan = PlanBuilder::new();
        let err = plan
            .add(
                "",
                Sink {
                    rate: 1.0,
                    sources: vec![("x".into(), foreign)],
                },
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("not planned before it"), "{err}");
    }

    /// A field planted in a task reaches its key with no other change: the key of an instance
    /// whose task differs in any one field differs.
    #[test]
    fn a_planted_field_changes_the_key() {
        #[derive(Serialize, Deserialize)]
        struct Planted {
            rate: f64,
            planted: u64,
        }
        impl Stage for Planted {
            const KIND: StageKind = StageKind::Fit;
            fn code() -> &'static CodeGroup {
                &CODE
            }
            fn run(&self, _: &StageContext<'_>) -> Result<()> {
                Ok(())
            }
        }
        let key = |task: Planted| {
            let mut plan = PlanBuilder::new();
            plan.add("", task).unwrap();
            let instance = &plan.into_instances()[0];
            crate::pipeline::cache::key_record(instance, Default::default(), Default::default()).key
        };
        let base = key(Planted {
            rate: 0.1,
            planted: 1,
        });
        assert_eq!(
            base,
            key(Planted {
                rate: 0.1,
                planted: 1
            })
        );
        assert_ne!(
            base,
            key(Planted {
                rate: 0.1,
                planted: 2
            })
        );
        assert_ne!(
            base,
            key(Planted {
                rate: 0.2,
                planted: 1
            })
        );
    }
}
