//! Experiment specs: TOML files in `experiments/`, parsed in two layers.
//!
//! A [`SpecDocument`] holds the file's text and its span-annotated TOML tree, so every error can
//! name `file:line: key.path: message`. Each experiment family deserializes its raw form
//! (all fields optional, unknown keys refused) from the document and validates it once into typed
//! parameters; stages only ever see the validated form. A scalar parameter may be given as a
//! list, a [`Sweep`], which the family expands into one stage instance per point.
//!
//! Specs hold only numbers, names and flags: nothing in them is a path or a command, so a spec
//! cannot run programs or write outside `results/` and the cache.

pub mod dwe;
pub mod dwe_planted;
pub mod gauge;
pub mod goldstone_modes;
pub mod goldstone_synthetic;
pub mod googlebooks;
pub mod rbm_mnist;
pub mod rbm_scalar;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use crate::error::{Error, Result};

/// The most stage instances one spec may plan (the largest default, dwe-googlebooks, plans
/// 1407).
pub const MAX_INSTANCES: usize = 10_000;

/// The most updates or iterations of one training run: 10⁸ takes days at the fastest rates
/// here, so more is a typo (a learning rate of 1e-300 asks for 10³⁰⁰).
pub const MAX_UPDATES: f64 = 1e8;

/// Masses (m², μ²) whose kernels stay well conditioned in double precision.
pub const MIN_MASS_SQUARED: f64 = 1e-6;
pub const MAX_MASS_SQUARED: f64 = 1e6;
/// Bounds of the Gibbs sampling sizes: far above any use, far below an allocation or a run time
/// that cannot succeed.
pub const MAX_CHAINS: usize = 100_000;
pub const MAX_GIBBS_STEPS: usize = 100_000;
/// The most records one training run keeps.
pub const MAX_RECORDS: usize = 1_000_000;

/// The largest vocabulary: each word has a row per time step in the unigram tables and a
/// d-vector per time step and role in an embedding.
pub const MAX_VOCABULARY: usize = 100_000;
/// The widest co-occurrence window c_max (words each side): the counting pass costs O(c_max)
/// per token.
pub const MAX_WINDOW: usize = 100;

/// A spec file's text, path and parsed TOML tree with spans.
pub struct SpecDocument {
    pub path: PathBuf,
    pub text: String,
}

impl SpecDocument {
    /// Reads and parses the TOML file at `path`; syntax errors name the line.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading spec", path, e))?;
        Self::parse(path, text)
    }

    /// Parses `text` as the spec at `path`.
    pub fn parse(path: &Path, text: String) -> Result<Self> {
        if let Err(e) = DeTable::parse(&text) {
            return Err(Error::Spec {
                file: path.to_path_buf(),
                line: e.span().map_or(1, |s| line_of_offset(&text, s.start)),
                key: "(syntax)".into(),
                message: e.message().trim().to_string(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            text,
        })
    }

    /// blake3 of the file's bytes.
    pub fn hash(&self) -> String {
        blake3::hash(self.text.as_bytes()).to_hex().to_string()
    }

    /// 1-based line of the key at `path` (dotted segments), or of its deepest existing parent.
    pub fn line_of(&self, key_path: &str) -> usize {
        let Ok(root) = DeTable::parse(&self.text) else {
            return 1;
        };
        let mut table = root.get_ref();
        let mut line = 1;
        for segment in key_path.split('.') {
            let name = segment.split('[').next().unwrap_or(segment);
            let Some((key, value)) = table.iter().find(|(k, _)| k.get_ref() == name) else {
                break;
            };
            line = line_of_offset(&self.text, key.span().start);
            match value.get_ref() {
                DeValue::Table(t) => table = t,
                _ => break,
            }
        }
        line
    }

    /// An error at `key_path`, with its line.
    pub fn error(&self, key_path: &str, message: impl Into<String>) -> Error {
        Error::Spec {
            file: self.path.clone(),
            line: self.line_of(key_path),
            key: key_path.to_string(),
            message: message.into(),
        }
    }

    /// Deserializes the whole document into `T`, naming the key path and line of any error.
    /// `value` if it is finite and > 0, else an error naming `key_path`.
    pub fn positive(&self, key_path: &str, value: f64) -> Result<f64> {
        if value.is_finite() && value > 0.0 {
            Ok(value)
        } else {
            Err(self.error(
                key_path,
                format!("must be a finite number > 0, got {value}"),
            ))
        }
    }

    /// `value` if it is at most `max`, else an error naming `key_path`, the bound and `why` it
    /// exists (sizes are bounded so that a typo cannot fill the memory or run for years).
    pub fn at_most<T: PartialOrd + std::fmt::Display>(
        &self,
        key_path: &str,
        value: T,
        max: T,
        why: &str,
    ) -> Result<T> {
        if value <= max {
            Ok(value)
        } else {
            Err(self.error(
                key_path,
                format!("must be at most {max} ({why}), got {value}"),
            ))
        }
    }

    /// An error unless `values` is non-empty and lists nothing twice (each value becomes a stage
    /// instance or a table row).
    pub fn distinct<T: PartialEq + std::fmt::Debug>(
        &self,
        key_path: &str,
        values: &[T],
    ) -> Result<()> {
        if values.is_empty() {
            return Err(self.error(key_path, "must list at least one value"));
        }
        match first_repeat(values) {
            Some(twice) => Err(self.error(key_path, format!("lists {twice:?} twice"))),
            None => Ok(()),
        }
    }

    /// `count` stage instances (or sweep points) planned from `key_path`, if at most
    /// [`MAX_INSTANCES`].
    pub fn instance_count(&self, key_path: &str, count: u128) -> Result<usize> {
        if count <= MAX_INSTANCES as u128 {
            Ok(count as usize)
        } else {
            Err(self.error(
                key_path,
                format!(
                    "plans {count} stage instances, more than {MAX_INSTANCES} (split the sweep \
                     into several specs)"
                ),
            ))
        }
    }

    /// `year` if it is a calendar year of printed text (1000–3000), else an error naming
    /// `key_path` (year arithmetic sizes arrays, so an absurd year must not reach it).
    pub fn calendar_year(&self, key_path: &str, year: i32) -> Result<i32> {
        if (1000..=3000).contains(&year) {
            Ok(year)
        } else {
            Err(self.error(
                key_path,
                format!("must be a year from 1000 to 3000, got {year}"),
            ))
        }
    }

    /// `value` if it is at least `min`, else an error naming `key_path`.
    pub fn at_least(&self, key_path: &str, value: usize, min: usize) -> Result<usize> {
        if value >= min {
            Ok(value)
        } else {
            Err(self.error(key_path, format!("must be at least {min}, got {value}")))
        }
    }

    ///
    /// The `[slurm]` table (and its `[slurm.<kind>]` tables) is left out: it says where a run
    /// executes, not what it computes, and only [`Self::deserialize_with_executor_tables`] reads
    /// it. Its lines are blanked, so every other line keeps its number.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T> {
        self.deserialize_text(&without_executor_tables(&self.text))
    }

    /// [`Self::deserialize`] with the `[slurm]` table kept.
    pub fn deserialize_with_executor_tables<T: DeserializeOwned>(&self) -> Result<T> {
        self.deserialize_text(&self.text)
    }

    fn deserialize_text<T: DeserializeOwned>(&self, text: &str) -> Result<T> {
        let deserializer = toml::de::Deserializer::parse(text).map_err(|e| Error::Spec {
            file: self.path.clone(),
            line: e.span().map_or(1, |s| line_of_offset(&self.text, s.start)),
            key: "(syntax)".into(),
            message: e.message().trim().to_string(),
        })?;
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let mut key = e.path().to_string();
            let message = e.inner().message().trim().to_string();
            if let Some(unknown) = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
            {
                if key == "." {
                    key = unknown.to_string();
                } else if !key.ends_with(&format!(".{unknown}")) && key != unknown {
                    key = format!("{key}.{unknown}");
                }
            }
            let line = match e.inner().span() {
                Some(span) if span.start > 0 => line_of_offset(&self.text, span.start),
                _ => self.line_of(&key),
            };
            Error::Spec {
                file: self.path.clone(),
                line,
                key,
                message,
            }
        })
    }
}

/// The tables that say where a spec's stages execute, not what they compute.
const EXECUTOR_TABLES: &[&str] = &["slurm"];

/// `text` with the lines of its executor tables (`[slurm]`, `[slurm.fit]`, …) blanked.
fn without_executor_tables(text: &str) -> String {
    let mut inside = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            let name = trimmed
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim();
            inside = EXECUTOR_TABLES
                .iter()
                .any(|t| name == *t || name.starts_with(&format!("{t}.")));
        }
        if inside {
            if line.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// A closed set of names a spec chooses from, as a unit enum: `ALL`, `name()`, `Display`,
/// `FromStr` (the error lists the known names) and serde both ways as the name, so a raw spec
/// can hold the enum itself and a misspelt name is refused with its file, line and key.
#[macro_export]
macro_rules! spec_choice {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every choice, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name specs and tables use.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(name: &str) -> std::result::Result<Self, String> {
                Self::ALL.iter().copied().find(|c| c.name() == name).ok_or_else(|| {
                    let known: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
                    format!("unknown {} {name:?}; known: {}", $what, known.join(", "))
                })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let name = <String as serde::Deserialize>::deserialize(d)?;
                name.parse().map_err(<D::Error as serde::de::Error>::custom)
            }
        }
    };
}

/// The first value of `values` that an earlier one equals.
pub(crate) fn first_repeat<T: PartialEq>(values: &[T]) -> Option<&T> {
    values
        .iter()
        .enumerate()
        .find_map(|(i, v)| values[..i].contains(v).then_some(v))
}

/// A parameter given either as one value or as a list of values to sweep over.
#[derive(Clone, Debug, PartialEq)]
pub enum Sweep<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> Sweep<T> {
    /// The values, in the order written.
    pub fn values(&self) -> Vec<T> {
        match self {
            Sweep::One(v) => vec![v.clone()],
            Sweep::Many(v) => v.clone(),
        }
    }
}

impl<'de, T: DeserializeOwned + PartialEq + std::fmt::Debug> serde::Deserialize<'de> for Sweep<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = toml::Value::deserialize(deserializer)?;
        match value {
            toml::Value::Array(items) => {
                if items.is_empty() {
                    return Err(D::Error::custom("a sweep needs at least one value"));
                }
                let values = items
                    .into_iter()
                    .map(|item| item.try_into::<T>().map_err(D::Error::custom))
                    .collect::<Result<Vec<T>, _>>()?;
                // Two equal points would be one stage instance planned twice.
                if let Some(twice) = first_repeat(&values) {
                    return Err(D::Error::custom(format!("a sweep lists {twice:?} twice")));
                }
                Ok(Sweep::Many(values))
            }
            other => other
                .try_into::<T>()
                .map(Sweep::One)
                .map_err(D::Error::custom),
        }
    }
}

/// The `[experiment]` header every spec starts with.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub description: String,
    pub seed: u64,
}

#[derive(serde::Deserialize)]
struct HeaderOnly {
    experiment: RawHeader,
}

/// Validated header.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Header {
    pub name: String,
    pub kind: String,
    pub description: String,
    pub seed: u64,
}

impl Header {
    /// The header as stages see it: kind and seed, without the name and description, which
    /// label a run but shape no result (so renaming or re-describing a spec reruns nothing).
    pub fn stage_view(&self) -> Header {
        Header {
            name: String::new(),
            kind: self.kind.clone(),
            description: String::new(),
            seed: self.seed,
        }
    }
}

impl SpecDocument {
    /// Reads and validates the `[experiment]` header (ignoring the other tables).
    pub fn header(&self) -> Result<Header> {
        let raw: HeaderOnly = self.deserialize()?;
        let raw = raw.experiment;
        let slug_ok = !raw.name.is_empty()
            && raw
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !slug_ok {
            return Err(self.error(
                "experiment.name",
                format!(
                    "must be lower-case letters, digits, '-' or '_' (it names a folder), got {:?}",
                    raw.name
                ),
            ));
        }
        Ok(Header {
            name: raw.name,
            kind: raw.kind,
            description: raw.description,
            seed: raw.seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The executor tables are blanked line for line, so a later error keeps its line number;
    /// other tables, including ones whose names start alike, stay.
    #[test]
    fn executor_tables_are_blanked_line_for_line() {
        let text = "[experiment]\nname = \"x\"\n[slurm]\nmem = \"1G\"\n[slurm.fit]\ncpus = 2\n[slurmish]\na = 1\n[model]\nb = 2\n";
        let blanked = without_executor_tables(text);
        assert_eq!(
            blanked,
            "[experiment]\nname = \"x\"\n\n\n\n\n[slurmish]\na = 1\n[model]\nb = 2\n"
        );
        assert_eq!(blanked.lines().count(), text.lines().count());
    }
}
