//! Google Books Ngram v2 files: their names and URLs (corpus, n, slice suffix), the slice
//! lists a spec may name, and downloads pinned by a lock file.
//!
//! Google publishes no checksums, so the first download of a file is trusted and its size and
//! sha256 go into `data/googlebooks.lock` (with its URL and when it was recorded); every later
//! use of the file is checked against that entry and a file that disagrees is refused, never
//! silently replaced. A slice the server answers with 404 is recorded as missing in the same
//! file and reported, not fatal: some suffixes do not exist for every corpus and n.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::fetch::{FetchOptions, Transfer, client, download_into, file_len, part_path};
use super::registry::sha256_file;
use crate::error::{Error, Result};
use crate::pipeline::Progress;

/// Where Google serves the files.
pub const DEFAULT_BASE_URL: &str = "http://storage.googleapis.com/books/ngrams/books/";
/// The dataset version this reader understands (v2: four fields per line).
pub const VERSION: &str = "20120701";
/// The corpora of version 2.
pub const CORPORA: &[&str] = &[
    "eng-all",
    "eng-us-all",
    "eng-gb-all",
    "eng-fiction-all",
    "eng-1M",
    "chi-sim-all",
    "fre-all",
    "ger-all",
    "heb-all",
    "ita-all",
    "rus-all",
    "spa-all",
];
/// The files of n-grams that start with a pure POS tag (n ≥ 2).
pub const POS_SUFFIXES: &[&str] = &[
    "_ADJ_", "_ADP_", "_ADV_", "_CONJ_", "_DET_", "_NOUN_", "_NUM_", "_PRON_", "_PRT_", "_VERB_",
];

/// Every slice suffix of order `n`, in Google's order: digits, letters (n = 1) or letter pairs
/// with `_` (n ≥ 2; no `qk` for 5-grams), `other`, `punctuation` (and `pos` for n = 1), then
/// the POS files.
pub fn suffixes(n: usize) -> Vec<String> {
    let mut out: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let letters = 'a'..='z';
    if n == 1 {
        out.extend(letters.map(String::from));
        out.extend(["other", "pos", "punctuation"].map(String::from));
        return out;
    }
    for first in letters {
        for second in std::iter::once('_').chain('a'..='z') {
            let suffix = format!("{first}{second}");
            if !(n == 5 && suffix == "qk") {
                out.push(suffix);
            }
        }
    }
    out.extend(["other", "punctuation"].map(String::from));
    out.extend(POS_SUFFIXES.iter().map(|s| s.to_string()));
    out
}

/// Expands a spec's slice list: suffixes, and ranges `from..to` (inclusive, in the order of
/// [`suffixes`]), duplicates removed, order kept.
pub fn expand_slices(n: usize, items: &[String]) -> std::result::Result<Vec<String>, String> {
    let all = suffixes(n);
    let position = |s: &str| {
        all.iter().position(|a| a == s).ok_or_else(|| {
            format!(
                "{s:?} is not a slice of the {n}-gram files (they are 0–9, {}, other, \
                 punctuation and the POS files)",
                if n == 1 {
                    "a–z, pos"
                } else {
                    "a_, aa … zz"
                }
            )
        })
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let range = match item.split_once("..") {
            Some((from, to)) => {
                let (a, b) = (position(from.trim())?, position(to.trim())?);
                if a > b {
                    return Err(format!("the range {item:?} runs backwards"));
                }
                a..=b
            }
            None => {
                let a = position(item.trim())?;
                a..=a
            }
        };
        for k in range {
            if !out.contains(&all[k]) {
                out.push(all[k].clone());
            }
        }
    }
    if out.is_empty() {
        return Err("names no slice".into());
    }
    Ok(out)
}

/// `googlebooks-eng-all-5gram-20120701-aa.gz`.
pub fn ngram_file(corpus: &str, n: usize, suffix: &str) -> String {
    format!("googlebooks-{corpus}-{n}gram-{VERSION}-{suffix}.gz")
}

/// `googlebooks-eng-all-totalcounts-20120701.txt`.
pub fn total_counts_file(corpus: &str) -> String {
    format!("googlebooks-{corpus}-totalcounts-{VERSION}.txt")
}

/// `base` joined with `file` (one slash between).
pub fn url(base: &str, file: &str) -> String {
    format!("{}/{file}", base.trim_end_matches('/'))
}

/// A file pinned on first download.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedFile {
    pub file: String,
    pub url: String,
    pub size: u64,
    pub sha256: String,
    /// When it was first recorded (UTC), or how a vendored file was made.
    pub recorded: String,
}

/// A URL that answered 404.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingFile {
    pub file: String,
    pub url: String,
    pub checked: String,
}

#[derive(Default, Serialize, Deserialize)]
struct LockDocument {
    #[serde(default, rename = "file")]
    files: Vec<LockedFile>,
    #[serde(default, rename = "missing", skip_serializing_if = "Vec::is_empty")]
    missing: Vec<MissingFile>,
}

/// The lock file, by file name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lock {
    pub files: BTreeMap<String, LockedFile>,
    pub missing: BTreeMap<String, MissingFile>,
}

const LOCK_HEADER: &str = "# Google Books files pinned on first use: Google publishes no checksums, so the first\n\
# download of each file is trusted and recorded here, and every later use is checked against\n\
# it. Remove an entry (and the file) to accept a new download. `missing` lists URLs that\n\
# answered 404.\n\n";

impl Lock {
    /// Reads the lock at `path` (empty when the file does not exist).
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        let doc: LockDocument =
            toml::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
        Ok(Self {
            files: doc.files.into_iter().map(|f| (f.file.clone(), f)).collect(),
            missing: doc
                .missing
                .into_iter()
                .map(|m| (m.file.clone(), m))
                .collect(),
        })
    }

    fn save(&self, path: &Path) -> Result<()> {
        let doc = LockDocument {
            files: self.files.values().cloned().collect(),
            missing: self.missing.values().cloned().collect(),
        };
        let body = toml::to_string(&doc).map_err(|e| Error::Other(e.to_string()))?;
        crate::fsutil::write_atomic(path, format!("{LOCK_HEADER}{body}").as_bytes())
    }
}

/// Serialises read-modify-write cycles of lock files within this process (slices download in
/// parallel); the write itself is an atomic rename.
static LOCK_UPDATES: Mutex<()> = Mutex::new(());

fn update_lock(path: &Path, change: impl FnOnce(&mut Lock) -> Result<()>) -> Result<()> {
    let _guard = LOCK_UPDATES.lock().unwrap_or_else(|e| e.into_inner());
    let mut lock = Lock::load(path)?;
    let before = lock.clone();
    change(&mut lock)?;
    if lock == before {
        return Ok(());
    }
    lock.save(path)
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What [`obtain`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Obtained {
    /// Present and equal to its lock entry (or recorded now, on first use).
    Present { size: u64, sha256: String },
    Downloaded {
        size: u64,
        sha256: String,
        resumed_from: u64,
    },
    /// The server answered 404.
    Missing { url: String },
}

/// Makes `dest` hold the file at `url`, pinned in the lock at `lock_path`: a present file is
/// checked against its entry (and recorded on first use); a missing one is downloaded into
/// `<dest>.part`, resumed by Range after a dropped connection, and renamed into place only
/// when its sha256 agrees with the lock (or there is no entry yet).
pub fn obtain(
    url: &str,
    dest: &Path,
    lock_path: &Path,
    options: &FetchOptions,
    progress: &Progress,
) -> Result<Obtained> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if dest.exists() {
        let (size, sha256) = (file_len(dest), sha256_file(dest)?);
        pin(lock_path, &name, url, size, &sha256, dest)?;
        return Ok(Obtained::Present { size, sha256 });
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating folder", parent, e))?;
    }
    let http = client(options)?;
    let part = part_path(dest);
    let mut failures = Vec::new();
    for _ in 0..options.attempts_per_mirror.max(1) {
        let resumed_from = file_len(&part);
        match download_into(&http, url, &part, None, progress) {
            Ok(Transfer::Complete) => {
                let (size, sha256) = (file_len(&part), sha256_file(&part)?);
                if let Err(e) = pin(lock_path, &name, url, size, &sha256, dest) {
                    let _ = std::fs::remove_file(&part);
                    return Err(e);
                }
                std::fs::rename(&part, dest)
                    .map_err(|e| Error::io("renaming into place", dest, e))?;
                return Ok(Obtained::Downloaded {
                    size,
                    sha256,
                    resumed_from,
                });
            }
            Ok(Transfer::NotFound) => {
                update_lock(lock_path, |lock| {
                    lock.missing.insert(
                        name.clone(),
                        MissingFile {
                            file: name.clone(),
                            url: url.to_string(),
                            checked: now(),
                        },
                    );
                    Ok(())
                })?;
                return Ok(Obtained::Missing {
                    url: url.to_string(),
                });
            }
            Err(message) => failures.push(message),
        }
    }
    Err(Error::Other(format!(
        "could not download {url} ({}); the partial file {} is kept and resumed next time",
        failures.join("; "),
        part.display()
    )))
}

/// Checks `name` (size, sha256) against its lock entry, or records it when it has none.
fn pin(
    lock_path: &Path,
    name: &str,
    url: &str,
    size: u64,
    sha256: &str,
    shown: &Path,
) -> Result<()> {
    update_lock(lock_path, |lock| {
        match lock.files.get(name) {
            Some(entry) if entry.size == size && entry.sha256 == sha256 => {}
            Some(entry) => {
                return Err(Error::Other(format!(
                    "{} does not match {} (size {size}, sha256 {sha256}; the lock has size {}, \
                     sha256 {} recorded {}); refused — delete the file to download it again, or \
                     remove its entry from the lock to trust the new content",
                    shown.display(),
                    lock_path.display(),
                    entry.size,
                    entry.sha256,
                    entry.recorded
                )));
            }
            None => {
                lock.files.insert(
                    name.to_string(),
                    LockedFile {
                        file: name.to_string(),
                        url: url.to_string(),
                        size,
                        sha256: sha256.to_string(),
                        recorded: now(),
                    },
                );
                lock.missing.remove(name);
            }
        }
        Ok(())
    })
}

/// Checks a file about to be read against its lock entry, by the sha256 its reader computed.
pub fn check_read(lock_path: &Path, path: &Path, sha256: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let lock = Lock::load(lock_path)?;
    match lock.files.get(&name) {
        Some(entry) if entry.sha256 == sha256 => Ok(()),
        Some(entry) => Err(Error::Other(format!(
            "{} changed since it was pinned in {} (sha256 {sha256}, the lock has {}); delete it \
             and rerun the fetch stage, or remove its lock entry to trust the new content",
            path.display(),
            lock_path.display(),
            entry.sha256
        ))),
        None => Err(Error::Other(format!(
            "{} has no entry in {}; run the fetch stage first",
            path.display(),
            lock_path.display()
        ))),
    }
}

/// Size announced by a HEAD request for `url` (None when the server does not say, or does not
/// answer); `Err` text for a 404.
pub fn announced_size(
    url: &str,
    options: &FetchOptions,
) -> std::result::Result<Option<u64>, String> {
    let http = client(options).map_err(|e| e.to_string())?;
    match http.head(url).send() {
        Ok(r) if r.status().as_u16() == 404 => Err("404 not found".into()),
        Ok(r) if r.status().is_success() => Ok(r
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())),
        Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
        Err(e) => Err(e.to_string()),
    }
}

/// Where the files of a spec live: `<root>/data/<folder>/`, and the lock `<root>/data/googlebooks.lock`.
pub fn locations(root: &Path, folder: &str) -> (PathBuf, PathBuf) {
    let data = root.join("data");
    (data.join(folder), data.join("googlebooks.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_lists_follow_the_published_layout() {
        let five = suffixes(5);
        // 10 digits + 26 × 27 letter pairs − qk + other, punctuation + 10 POS files.
        assert_eq!(five.len(), 10 + 702 - 1 + 2 + 10);
        assert!(!five.contains(&"qk".to_string()));
        assert!(suffixes(4).contains(&"qk".to_string()));
        assert_eq!(suffixes(1).len(), 10 + 26 + 3);
        assert_eq!(&five[10..13], ["a_", "aa", "ab"]);
    }

    #[test]
    fn slice_ranges_expand_in_order_without_duplicates() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            expand_slices(5, &s(&["ay..b_", "zz", "az"])).unwrap(),
            s(&["ay", "az", "b_", "zz"])
        );
        assert!(
            expand_slices(5, &s(&["qk"]))
                .unwrap_err()
                .contains("\"qk\"")
        );
        assert!(
            expand_slices(5, &s(&["b_..aa"]))
                .unwrap_err()
                .contains("backwards")
        );
        assert!(expand_slices(1, &s(&["aa"])).is_err());
        assert_eq!(
            ngram_file("eng-fiction-all", 5, "ab"),
            "googlebooks-eng-fiction-all-5gram-20120701-ab.gz"
        );
        assert_eq!(
            url("http://h/books/", "f.gz"),
            url("http://h/books", "f.gz")
        );
    }
}
