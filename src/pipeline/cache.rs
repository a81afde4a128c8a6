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
//! stale instance can say *why* it must rerun. `hash-memo.json` remembers file hashes by size,
//! times and inode, so unchanged large inputs and entries are not re-read.
//!
//! An entry is trusted only as published: `meta.json` records the size and blake3 of each of its
//! files, which are read-only, and every lookup checks them ([`Cache::check_entry`]; the memo
//! makes that cheap for untouched files). An entry that fails is a miss: it is recomputed and
//! replaced, and the run says why.

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
    /// Every other file of the entry (path relative to it, `/`-separated) as published; an entry
    /// without this record predates verification and is recomputed.
    #[serde(default)]
    pub files: Option<BTreeMap<String, FileRecord>>,
}

/// Size and content hash of one file of an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub bytes: u64,
    pub blake3: String,
}

/// What a cache lookup found.
#[derive(Debug)]
pub enum EntryCheck {
    Missing,
    /// Every file is present, unaltered, and nothing else is there.
    Valid,
    /// The entry exists but cannot be trusted; the reason names the file.
    Corrupt(String),
}

/// A file's identity and change stamps: any write or `chmod` moves `ctime`, which no user can
/// set back, so an unchanged stamp means unchanged content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct MemoEntry {
    size: u64,
    mtime_ns: u128,
    #[serde(default)]
    ctime_ns: i128,
    #[serde(default)]
    inode: u64,
    blake3: String,
}

impl MemoEntry {
    fn stamp(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            size: meta.len(),
            mtime_ns: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            inode: meta.ino(),
            blake3: String::new(),
        }
    }

    fn same_file(&self, other: &MemoEntry) -> bool {
        (self.size, self.mtime_ns, self.ctime_ns, self.inode)
            == (other.size, other.mtime_ns, other.ctime_ns, other.inode)
    }
}

/// blake3 of files, re-read only when a file's stamp ([`MemoEntry`]) changed; kept in
/// `hash-memo.json` across runs. Two processes saving at once lose only memo entries, which
/// costs a re-read, never a wrong hash.
pub struct HashMemo {
    path: PathBuf,
    entries: BTreeMap<String, MemoEntry>,
    dirty: bool,
}

impl HashMemo {
    /// Size and blake3 of the regular file at `path`.
    pub fn hash(&mut self, path: &Path) -> Result<FileRecord> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io("reading", path, e))?;
        let name = path.to_string_lossy().to_string();
        let mut now = MemoEntry::stamp(&meta);
        match self.entries.get(&name) {
            Some(known) if known.same_file(&now) => now.blake3 = known.blake3.clone(),
            _ => {
                now.blake3 = hash_file(path)?;
                self.entries.insert(name, now.clone());
                self.dirty = true;
            }
        }
        Ok(FileRecord {
            bytes: now.size,
            blake3: now.blake3,
        })
    }

    /// A memo that knows nothing and is never saved: every file is read again.
    pub fn fresh() -> Self {
        Self {
            path: PathBuf::new(),
            entries: BTreeMap::new(),
            dirty: false,
        }
    }

    /// Writes the memo back if it learnt anything, dropping files that no longer exist.
    pub fn save(&mut self) -> Result<()> {
        if !self.dirty || self.path.as_os_str().is_empty() {
            return Ok(());
        }
        self.entries.retain(|name, _| Path::new(name).exists());
        write_json(&self.path, &self.entries)?;
        self.dirty = false;
        Ok(())
    }
}

/// The regular files below `dir` (relative, `/`-separated); a symlink or any other kind of file
/// is refused, never followed.
pub(crate) fn list_files(dir: &Path) -> std::result::Result<Vec<String>, String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::result::Result<(), String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let rel = format!("{prefix}{name}");
            let kind = entry.file_type().map_err(|e| format!("{rel}: {e}"))?;
            if kind.is_symlink() {
                return Err(format!("{rel} is a symbolic link"));
            } else if kind.is_dir() {
                walk(&entry.path(), &format!("{rel}/"), out)?;
            } else if kind.is_file() {
                out.push(rel);
            } else {
                return Err(format!("{rel} is not a regular file"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// Takes the lock on `file` without waiting: `None` when taken, else who holds it (the pid and
/// host its holder wrote into it).
fn try_lock(file: &mut std::fs::File, path: &Path) -> Result<Option<String>> {
    match file.try_lock() {
        Ok(()) => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = std::io::Read::read_to_string(file, &mut holder);
            Ok(Some(holder.trim().to_string()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("locking", path, e)),
    }
}

/// A run's hold on its experiment (see [`Cache::lock_experiment`]), released when dropped.
pub struct RunLock {
    _file: std::fs::File,
}

/// Name of the entry's own record, beside its files.
const META_FILE: &str = "meta.json";

/// The cache rooted at a `.symbreak/` folder.
pub struct Cache {
    root: PathBuf,
    /// Stamps and hashes of the files this process published, for the hash memo
    /// ([`Cache::remember_published`]): without them the first run after a fit re-reads every
    /// file it just wrote.
    published: std::sync::Mutex<Vec<(String, MemoEntry)>>,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            published: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The `.symbreak/` folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Refuses a `.symbreak/` that is, or whose `tmp`, `cache`, `state` or `locks` folder is, a
    /// symbolic link: sweeps and removals there must never reach a folder outside the project.
    pub fn check_layout(&self) -> Result<()> {
        let mut paths = vec![self.root.clone()];
        paths.extend(
            ["tmp", "cache", "state", "locks"]
                .iter()
                .map(|sub| self.root.join(sub)),
        );
        for path in paths {
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::Other(format!(
                    "{} is a symbolic link; the cache must be a real folder inside the project \
                     (remove the link; `symbreak` recreates the folder)",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// Takes the lock of `experiment` for this process's run, waiting (after saying so through
    /// `waiting`, with the holder's pid and host) while another run of it holds the lock. Runs of
    /// different experiments do not wait for each other; entries they share are published
    /// first-writer-wins. The lock dies with the process, however it ends.
    pub fn lock_experiment(&self, experiment: &str, waiting: impl Fn(&str)) -> Result<RunLock> {
        use std::io::{Seek, Write};
        self.check_layout()?;
        let dir = self.root.join("locks");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating folder", &dir, e))?;
        let path = dir.join(format!("{experiment}.lock"));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("opening lock", &path, e))?;
        if let Some(holder) = try_lock(&mut file, &path)? {
            waiting(&format!(
                "waiting for the other run of {experiment} ({holder}) to finish"
            ));
            file.lock().map_err(|e| Error::io("locking", &path, e))?;
        }
        let holder = format!("pid {} on host {}", std::process::id(), local_host());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(|e| Error::io("writing lock", &path, e))?;
        Ok(RunLock { _file: file })
    }

    /// The memo of file hashes.
    pub fn hash_memo(&self) -> HashMemo {
        let path = self.root.join("hash-memo.json");
        HashMemo {
            entries: read_json(&path).unwrap_or_default(),
            path,
            dirty: false,
        }
    }

    /// Every entry folder: (kind, key, folder), sorted.
    pub fn entries(&self) -> Vec<(String, String, PathBuf)> {
        let mut out = Vec::new();
        let kinds = std::fs::read_dir(self.root.join("cache"))
            .into_iter()
            .flatten()
            .flatten();
        for kind in kinds.filter(|k| k.file_type().is_ok_and(|t| t.is_dir())) {
            let kind_name = kind.file_name().to_string_lossy().to_string();
            for entry in std::fs::read_dir(kind.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let key = entry.file_name().to_string_lossy().to_string();
                out.push((kind_name.clone(), key, entry.path()));
            }
        }
        out.sort();
        out
    }

    /// Every experiment's remembered key records (`state/*.json`).
    pub fn all_states(&self) -> BTreeMap<String, BTreeMap<String, KeyRecord>> {
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(self.root.join("state"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(experiment) = name.strip_suffix(".json") {
                out.insert(experiment.to_string(), self.load_state(experiment));
            }
        }
        out
    }

    /// Locks of every experiment that has run here, taken without waiting; an error names the
    /// experiment whose run holds its lock (maintenance must not run beside a run).
    pub fn lock_all_idle(&self) -> Result<Vec<RunLock>> {
        self.check_layout()?;
        let mut held = Vec::new();
        for entry in std::fs::read_dir(self.root.join("locks"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io("opening lock", &path, e))?;
            if let Some(holder) = try_lock(&mut file, &path)? {
                return Err(Error::Other(format!(
                    "a run of {} is in progress ({holder}); try again when it has finished",
                    path.file_stem().unwrap_or_default().to_string_lossy(),
                )));
            }
            held.push(RunLock { _file: file });
        }
        Ok(held)
    }

    /// Folder of a finished entry.
    pub fn entry_dir(&self, kind: &str, key: &str) -> PathBuf {
        self.root.join("cache").join(kind).join(key)
    }

    /// A fresh folder to build an entry in, on the cache's own filesystem (so that publishing is
    /// a rename). Its name carries our pid and host, `<pid>@<host>@…`, so that stale ones can be
    /// swept — by a process on the same host only: a driver on a login node cannot see whether
    /// a job's pid on a compute node still lives.
    pub fn scratch_dir(&self) -> Result<tempfile::TempDir> {
        let tmp = self.root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io("creating folder", &tmp, e))?;
        tempfile::Builder::new()
            .prefix(&format!("{}@{}@", std::process::id(), local_host()))
            .tempdir_in(&tmp)
            .map_err(|e| Error::io("creating scratch folder", &tmp, e))
    }

    /// Checks the entry `kind/key` against the record written when it was published.
    pub fn check_entry(&self, kind: &str, key: &str, memo: &mut HashMemo) -> EntryCheck {
        let dir = self.entry_dir(kind, key);
        match std::fs::symlink_metadata(&dir) {
            Err(_) => return EntryCheck::Missing,
            Ok(m) if !m.is_dir() => {
                return EntryCheck::Corrupt(format!("{} is not a folder", dir.display()));
            }
            Ok(_) => {}
        }
        let meta: EntryMeta = match read_json(&dir.join(META_FILE)) {
            Ok(meta) => meta,
            Err(e) => return EntryCheck::Corrupt(format!("{META_FILE}: {e}")),
        };
        let Some(recorded) = meta.files.as_ref() else {
            return EntryCheck::Corrupt("no file hashes recorded (an older entry)".into());
        };
        if meta.key != key {
            return EntryCheck::Corrupt(format!("{META_FILE} is the record of key {}", meta.key));
        }
        let found = match list_files(&dir) {
            Ok(found) => found,
            Err(reason) => return EntryCheck::Corrupt(reason),
        };
        let found: std::collections::BTreeSet<&str> = found
            .iter()
            .map(String::as_str)
            .filter(|f| *f != META_FILE)
            .collect();
        if let Some(extra) = found.iter().find(|f| !recorded.contains_key(**f)) {
            return EntryCheck::Corrupt(format!("{extra} was not published with the entry"));
        }
        for (name, want) in recorded {
            if !found.contains(name.as_str()) {
                return EntryCheck::Corrupt(format!("{name} is missing"));
            }
            match memo.hash(&dir.join(name)) {
                Ok(got) if &got == want => {}
                Ok(got) => {
                    return EntryCheck::Corrupt(format!(
                        "{name} changed since it was published ({} bytes, blake3 {}…; \
                         recorded {} bytes, {}…)",
                        got.bytes,
                        &got.blake3[..12],
                        want.bytes,
                        &want.blake3[..12.min(want.blake3.len())]
                    ));
                }
                Err(e) => return EntryCheck::Corrupt(format!("{name}: {e}")),
            }
        }
        EntryCheck::Valid
    }

    /// Records the size and hash of every file of a finished scratch folder in its `meta.json`,
    /// makes the files read-only, and moves the folder into place as the entry for its key.
    ///
    /// The rename is the publication: it fails while an entry exists, so two writers of one key
    /// cannot interleave. A writer that finds a valid entry in place uses it (another process
    /// published the same key first) unless `replace` (a forced rerun) asks for its own; an
    /// entry that fails verification is moved aside and replaced.
    pub fn publish(
        &self,
        scratch: tempfile::TempDir,
        kind: &str,
        meta: &EntryMeta,
        replace: bool,
    ) -> Result<PathBuf> {
        let built = scratch.path();
        let mut files = BTreeMap::new();
        let names = list_files(built).map_err(|reason| {
            Error::Other(format!("stage output {}: {reason}", built.display()))
        })?;
        let mut stamps = Vec::with_capacity(names.len());
        for name in names {
            let path = built.join(&name);
            // Read-only first, then stamped, then read: the stamp is of the content hashed (a
            // later write or chmod moves ctime), and a rename of the folder keeps it.
            set_read_only(&path)?;
            let mut stamp = MemoEntry::stamp(
                &std::fs::metadata(&path).map_err(|e| Error::io("reading", &path, e))?,
            );
            stamp.blake3 = hash_file(&path)?;
            files.insert(
                name.clone(),
                FileRecord {
                    bytes: stamp.size,
                    blake3: stamp.blake3.clone(),
                },
            );
            stamps.push((name, stamp));
        }
        let meta = EntryMeta {
            files: Some(files),
            ..meta.clone()
        };
        let meta_path = built.join(META_FILE);
        write_json(&meta_path, &meta)?;
        set_read_only(&meta_path)?;
        let dest = self.entry_dir(kind, &meta.key);
        let parent = dest.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating folder", parent, e))?;
        let built = scratch.keep();
        for _ in 0..3 {
            match std::fs::rename(&built, &dest) {
                Ok(()) => {
                    let mut published = self
                        .published
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    published.extend(stamps.into_iter().map(|(name, stamp)| {
                        (dest.join(name).to_string_lossy().to_string(), stamp)
                    }));
                    return Ok(dest);
                }
                Err(e) if !dest.exists() => {
                    return Err(Error::io("publishing entry", &dest, e));
                }
                Err(_) => {}
            }
            let keep_theirs = !replace
                && matches!(
                    self.check_entry(kind, &meta.key, &mut self.hash_memo()),
                    EntryCheck::Valid
                );
            if keep_theirs {
                let _ = std::fs::remove_dir_all(&built);
                return Ok(dest);
            }
            // If another writer moved it first, the next round meets whatever is there now.
            let aside = self.scratch_dir()?.keep();
            let _ = std::fs::rename(&dest, aside.join("replaced"));
            let _ = std::fs::remove_dir_all(&aside);
        }
        let _ = std::fs::remove_dir_all(&built);
        Err(Error::Other(format!(
            "publishing entry {}: other writers kept replacing it",
            dest.display()
        )))
    }

    /// Adds the stamps and hashes of the files published so far to the hash memo, so that the
    /// next run verifies them without reading them. A file changed since keeps a stale stamp
    /// there, which only costs a re-read.
    pub fn remember_published(&self) -> Result<()> {
        let published = std::mem::take(
            &mut *self
                .published
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if published.is_empty() {
            return Ok(());
        }
        let mut memo = self.hash_memo();
        memo.entries.extend(published);
        memo.dirty = true;
        memo.save()
    }

    /// Metadata of a finished entry, if it exists.
    pub fn entry_meta(&self, kind: &str, key: &str) -> Option<EntryMeta> {
        read_json(&self.entry_dir(kind, key).join(META_FILE)).ok()
    }

    /// Removes scratch folders left by processes of this host that no longer run (killed runs
    /// and jobs). Folders of other hosts are left alone: their processes cannot be seen from
    /// here. Nothing is followed: a symbolic link found there is removed as a link.
    pub fn sweep_stale_scratch(&self) -> Result<()> {
        self.check_layout()?;
        let Ok(entries) = std::fs::read_dir(self.root.join("tmp")) else {
            return Ok(());
        };
        let host = local_host();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !scratch_is_stale(&name, &host, |pid| {
                Path::new(&format!("/proc/{pid}")).exists()
            }) {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
                _ => {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
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

    /// blake3 of each input file, re-reading only files whose stamp changed.
    pub fn hash_inputs(
        &self,
        paths: &[PathBuf],
        memo: &mut HashMemo,
    ) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for path in paths {
            let record = memo.hash(path)?;
            out.insert(path.to_string_lossy().to_string(), record.blake3);
        }
        Ok(out)
    }
}

/// This machine's host name, as scratch folders and locks name it.
pub fn local_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Whether the scratch folder `name` (`<pid>@<host>@…`, or `<pid>-…` from older builds, which
/// ran on this host) belongs to a process of `host` that `alive` says is gone.
fn scratch_is_stale(name: &str, host: &str, alive: impl Fn(u32) -> bool) -> bool {
    let mut parts = name.splitn(3, '@');
    let (first, owner) = match (parts.next(), parts.next(), parts.next()) {
        (Some(pid), Some(owner), Some(_)) => (pid, owner),
        _ => (name.split('-').next().unwrap_or(""), host),
    };
    if owner != host {
        return false;
    }
    !first.parse::<u32>().is_ok_and(alive)
}

/// Removes the write permission of a published file (the entry is shared by every run that
/// uses it and by the run folders copied from it).
fn set_read_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444))
        .map_err(|e| Error::io("making read-only", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input hashes come from the memo while a file's stamp is unchanged, and are recomputed
    /// when it changes — even by a rewrite of the same size with its modification time set
    /// back (the change time moves regardless).
    #[test]
    fn input_hashes_are_memoised_by_file_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join(".symbreak"));
        let input = dir.path().join("data.bin");
        std::fs::write(&input, b"first").unwrap();
        let hash_now = || {
            let mut memo = cache.hash_memo();
            let hashes = cache
                .hash_inputs(std::slice::from_ref(&input), &mut memo)
                .unwrap();
            memo.save().unwrap();
            hashes[&input.to_string_lossy().to_string()].clone()
        };
        let first = hash_now();
        assert_eq!(first, blake3::hash(b"first").to_hex().to_string());
        // Plant a different hash in the memo: an unchanged file must be served from it.
        let memo_path = dir.path().join(".symbreak/hash-memo.json");
        let text = std::fs::read_to_string(&memo_path).unwrap();
        std::fs::write(&memo_path, text.replace(&first, "planted")).unwrap();
        assert_eq!(hash_now(), "planted");
        let modified = std::fs::metadata(&input).unwrap().modified().unwrap();
        std::fs::write(&input, b"FIRST").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&input)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        assert_eq!(hash_now(), blake3::hash(b"FIRST").to_hex().to_string());
    }

    /// What a process publishes, the next run verifies from the memo without reading it; a file
    /// of the entry changed afterwards is still read again and found out.
    #[test]
    fn published_files_are_remembered_and_a_later_change_is_still_found() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join(".symbreak"));
        let scratch = cache.scratch_dir().unwrap();
        std::fs::write(scratch.path().join("table.csv"), b"a,b\n1,2\n").unwrap();
        let meta = EntryMeta {
            id: "fit".into(),
            key: "k1".into(),
            started: String::new(),
            finished: String::new(),
            seconds: 0.0,
            files: None,
        };
        let entry = cache.publish(scratch, "fit", &meta, false).unwrap();
        cache.remember_published().unwrap();
        let mut memo = cache.hash_memo();
        assert!(matches!(
            cache.check_entry("fit", "k1", &mut memo),
            EntryCheck::Valid
        ));
        assert!(!memo.dirty, "a file just published was read again");
        let table = entry.join("table.csv");
        std::fs::set_permissions(&table, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&table, b"a,b\n1,3\n").unwrap();
        let mut memo = cache.hash_memo();
        assert!(matches!(
            cache.check_entry("fit", "k1", &mut memo),
            EntryCheck::Corrupt(why) if why.contains("table.csv")
        ));
    }

    /// Scratch folders of another host are never swept (their pids are not ours to see); ours
    /// are swept when their pid is gone.
    #[test]
    fn only_this_hosts_dead_scratch_folders_are_stale() {
        let alive = |pid: u32| pid == 7;
        assert!(!scratch_is_stale("7@login@abc", "login", alive));
        assert!(scratch_is_stale("8@login@abc", "login", alive));
        assert!(!scratch_is_stale("8@node1@abc", "login", alive));
        assert!(!scratch_is_stale("8@node-1.cluster@x@y", "login", alive));
        assert!(scratch_is_stale("8-abc", "login", alive));
        assert!(!scratch_is_stale("7-abc", "login", alive));
        assert!(scratch_is_stale("junk", "login", alive));
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
