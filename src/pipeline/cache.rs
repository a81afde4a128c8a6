//! The content-addressed stage cache under `.symbreak/` (git-ignored).
//!
//! Key of a stage instance = blake3 of the canonical JSON of: a format version, its kind and
//! label, its validated parameters, the keys of its upstream instances, the content hashes of its
//! input files (taken before it runs) and the hash of its [`CodeGroup`]. Keys are therefore
//! input-addressed: they can all be computed before anything runs, which is what `--dry-run` and
//! `status` print. A finished instance lives in `cache/<kind>/<key>/`; it is built in `tmp/` and
//! renamed into place only when complete, so an entry that exists is whole.
//!
//! `state/<experiment>.json` remembers the key record each instance had when it last ran, so a
//! stale instance can say *why* it must rerun. `hash-memo.json` remembers input-file hashes by
//! size and modification time, so unchanged large inputs are not re-read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{StageInstance, flatten_params};
use crate::error::{Error, Result};
use crate::fsutil::{hash_file, read_json, write_json};

const KEY_FORMAT: u32 = 2;

/// Everything that went into a key, kept to explain later changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key: String,
    pub params: BTreeMap<String, String>,
    pub deps: BTreeMap<String, String>,
    pub inputs: BTreeMap<String, String>,
    pub code_group: String,
    pub code: String,
}

/// Computes the key record of `instance` from its upstream keys and input hashes.
pub fn key_record(
    instance: &StageInstance,
    deps: BTreeMap<String, String>,
    inputs: BTreeMap<String, String>,
) -> KeyRecord {
    let canonical = serde_json::json!({
        "format": KEY_FORMAT,
        "kind": instance.kind,
        "label": instance.label,
        "params": instance.params,
        "deps": deps,
        "inputs": inputs,
        "code": instance.code.hash(),
    });
    let key = blake3::hash(canonical.to_string().as_bytes()).to_hex()[..32].to_string();
    KeyRecord {
        key,
        params: flatten_params(&instance.params),
        deps,
        inputs,
        code_group: instance.code.name.to_string(),
        code: instance.code.hash().to_string(),
    }
}

/// Why `now` differs from the record of the last run (empty when nothing differs).
pub fn change_reasons(previous: Option<&KeyRecord>, now: &KeyRecord) -> Vec<String> {
    let Some(prev) = previous else {
        return vec!["never run".into()];
    };
    let mut reasons = Vec::new();
    let mut changed = Vec::new();
    for (k, v) in &now.params {
        match prev.params.get(k) {
            Some(old) if old == v => {}
            Some(old) => changed.push(format!("{k} {old} -> {v}")),
            None => changed.push(format!("{k} (new) -> {v}")),
        }
    }
    for k in prev.params.keys().filter(|k| !now.params.contains_key(*k)) {
        changed.push(format!("{k} removed"));
    }
    if !changed.is_empty() {
        reasons.push(format!("params changed: {}", changed.join(", ")));
    }
    if prev.code != now.code {
        reasons.push(format!("code changed ({})", now.code_group));
    }
    let inputs: Vec<&String> = now
        .inputs
        .iter()
        .filter(|(p, h)| prev.inputs.get(*p) != Some(h))
        .map(|(p, _)| p)
        .collect();
    if !inputs.is_empty() {
        reasons.push(format!(
            "input changed: {}",
            inputs
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let deps: Vec<&String> = now
        .deps
        .iter()
        .filter(|(id, k)| prev.deps.get(*id) != Some(k))
        .map(|(id, _)| id)
        .collect();
    if !deps.is_empty() {
        reasons.push(format!(
            "upstream changed: {}",
            deps.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if reasons.is_empty() && prev.key != now.key {
        reasons.push("key format changed".into());
    }
    reasons
}

/// Metadata stored beside a cache entry's outputs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntryMeta {
    pub id: String,
    pub key: String,
    pub started: String,
    pub finished: String,
    pub seconds: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct MemoEntry {
    size: u64,
    mtime_ns: u128,
    blake3: String,
}

/// The cache rooted at a `.symbreak/` folder.
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Folder of a finished entry.
    pub fn entry_dir(&self, kind: &str, key: &str) -> PathBuf {
        self.root.join("cache").join(kind).join(key)
    }

    /// A fresh folder to build an entry in; its name carries our pid so stale ones can be swept.
    pub fn scratch_dir(&self) -> Result<tempfile::TempDir> {
        let tmp = self.root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io("creating folder", &tmp, e))?;
        tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .tempdir_in(&tmp)
            .map_err(|e| Error::io("creating scratch folder", &tmp, e))
    }

    /// Moves a finished scratch folder into place as the entry for `key`, replacing any old one.
    pub fn publish(
        &self,
        scratch: tempfile::TempDir,
        kind: &str,
        meta: &EntryMeta,
    ) -> Result<PathBuf> {
        write_json(&scratch.path().join("meta.json"), meta)?;
        let dest = self.entry_dir(kind, &meta.key);
        let parent = dest.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating folder", parent, e))?;
        let built = scratch.keep();
        if dest.exists() {
            let old = self.scratch_dir()?.keep();
            std::fs::rename(&dest, old.join("old"))
                .map_err(|e| Error::io("moving old entry aside", &dest, e))?;
            std::fs::rename(&built, &dest).map_err(|e| Error::io("publishing entry", &dest, e))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&built, &dest).map_err(|e| Error::io("publishing entry", &dest, e))?;
        }
        Ok(dest)
    }

    /// Metadata of a finished entry, if it exists.
    pub fn entry_meta(&self, kind: &str, key: &str) -> Option<EntryMeta> {
        read_json(&self.entry_dir(kind, key).join("meta.json")).ok()
    }

    /// Removes scratch folders left by processes that no longer run (killed runs).
    pub fn sweep_stale_scratch(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    fn state_path(&self, experiment: &str) -> PathBuf {
        self.root.join("state").join(format!("{experiment}.json"))
    }

    /// Key records of the last run of each instance of `experiment`.
    pub fn load_state(&self, experiment: &str) -> BTreeMap<String, KeyRecord> {
        read_json(&self.state_path(experiment)).unwrap_or_default()
    }

    pub fn save_state(&self, experiment: &str, state: &BTreeMap<String, KeyRecord>) -> Result<()> {
        write_json(&self.state_path(experiment), state)
    }

    /// blake3 of each input file, re-reading only files whose size or mtime changed.
    pub fn hash_inputs(&self, paths: &[PathBuf]) -> Result<BTreeMap<String, String>> {
        if paths.is_empty() {
            return Ok(BTreeMap::new());
        }
        let memo_path = self.root.join("hash-memo.json");
        let mut memo: BTreeMap<String, MemoEntry> = read_json(&memo_path).unwrap_or_default();
        let mut out = BTreeMap::new();
        let mut dirty = false;
        for path in paths {
            let meta = std::fs::metadata(path).map_err(|e| Error::io("reading input", path, e))?;
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let name = path.to_string_lossy().to_string();
            let hash = match memo.get(&name) {
                Some(m) if m.size == meta.len() && m.mtime_ns == mtime_ns => m.blake3.clone(),
                _ => {
                    let h = hash_file(path)?;
                    memo.insert(
                        name.clone(),
                        MemoEntry {
                            size: meta.len(),
                            mtime_ns,
                            blake3: h.clone(),
                        },
                    );
                    dirty = true;
                    h
                }
            };
            out.insert(name, hash);
        }
        if dirty {
            write_json(&memo_path, &memo)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input hashes come from the memo while size and mtime are unchanged, and are recomputed
    /// when either changes.
    #[test]
    fn input_hashes_are_memoised_by_size_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join(".symbreak"));
        let input = dir.path().join("data.bin");
        std::fs::write(&input, b"first").unwrap();
        let first = cache.hash_inputs(std::slice::from_ref(&input)).unwrap();
        let name = input.to_string_lossy().to_string();
        assert_eq!(first[&name], blake3::hash(b"first").to_hex().to_string());
        // Plant a different hash in the memo: an unchanged file must be served from it.
        let memo_path = dir.path().join(".symbreak/hash-memo.json");
        let text = std::fs::read_to_string(&memo_path).unwrap();
        std::fs::write(&memo_path, text.replace(&first[&name], "planted")).unwrap();
        let memoised = cache.hash_inputs(std::slice::from_ref(&input)).unwrap();
        assert_eq!(memoised[&name], "planted");
        // A change of size invalidates the memo entry.
        std::fs::write(&input, b"second, longer").unwrap();
        let changed = cache.hash_inputs(std::slice::from_ref(&input)).unwrap();
        assert_eq!(
            changed[&name],
            blake3::hash(b"second, longer").to_hex().to_string()
        );
    }

    fn record(params: &[(&str, &str)], code: &str) -> KeyRecord {
        KeyRecord {
            key: format!("{params:?}{code}"),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            deps: BTreeMap::new(),
            inputs: BTreeMap::new(),
            code_group: "g".into(),
            code: code.into(),
        }
    }

    #[test]
    fn reasons_name_old_and_new_values_and_code_changes() {
        let old = record(&[("fit.learning_rate", "0.1"), ("seed", "1")], "a");
        let new = record(&[("fit.learning_rate", "0.05"), ("seed", "1")], "b");
        assert_eq!(
            change_reasons(Some(&old), &new),
            [
                "params changed: fit.learning_rate 0.1 -> 0.05",
                "code changed (g)"
            ]
        );
        assert_eq!(change_reasons(None, &new), ["never run"]);
        assert!(change_reasons(Some(&new), &new).is_empty());
    }
}
