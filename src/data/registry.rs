//! The data registry: every raw input with its size, sha256 and an ordered list of mirrors.
//!
//! `data/registry.toml` is parsed like a spec (unknown keys refused, `file:line: key` errors).
//! [`Registry::verify`] checks each present file's size and sha256 and says, for a missing or
//! corrupt one, what was expected and how to supply it by hand.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::pipeline::InputFile;
use crate::spec::SpecDocument;

/// One registered raw file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegisteredFile {
    pub name: String,
    /// Path relative to the data folder.
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub urls: Vec<String>,
    /// How to rebuild the file where no URL serves it as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    file: Vec<RegisteredFile>,
}

/// The registry and the folder its files live in.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    pub dir: PathBuf,
    pub files: Vec<RegisteredFile>,
}

/// State of one registered file on disk.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum FileState {
    Ok,
    Missing,
    WrongSize { actual: u64 },
    WrongHash { actual: String },
}

impl Registry {
    /// Loads `<dir>/registry.toml`.
    pub fn load(dir: &Path) -> Result<Self> {
        let doc = SpecDocument::load(&dir.join("registry.toml"))?;
        let raw: RawRegistry = doc.deserialize()?;
        for (i, f) in raw.file.iter().enumerate() {
            let key = format!("file[{i}]");
            if f.sha256.len() != 64 || !f.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(doc.error(&key, format!("sha256 of {} must be 64 hex digits", f.name)));
            }
            let relative = Path::new(&f.file);
            if relative.is_absolute()
                || relative
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(doc.error(
                    &key,
                    format!("file {:?} must be a path inside the data folder", f.file),
                ));
            }
            if raw.file[..i].iter().any(|g| g.name == f.name) {
                return Err(doc.error(&key, format!("duplicate name {:?}", f.name)));
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files: raw.file,
        })
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Result<&RegisteredFile> {
        self.files.iter().find(|f| f.name == name).ok_or_else(|| {
            Error::Other(format!(
                "no file {name:?} in {}",
                self.dir.join("registry.toml").display()
            ))
        })
    }

    /// Where `entry` lives on disk.
    pub fn path(&self, entry: &RegisteredFile) -> PathBuf {
        self.dir.join(&entry.file)
    }

    /// Checks size and sha256 of one file.
    pub fn check(&self, entry: &RegisteredFile) -> Result<FileState> {
        check_file(entry, &self.path(entry))
    }

    /// The entry named `name` as a stage input.
    pub fn input(&self, name: &str) -> Result<RegisteredInput> {
        let entry = self.get(name)?;
        Ok(RegisteredInput {
            file: InputFile::new(self.path(entry)),
            entry: entry.clone(),
        })
    }

    /// Checks every file; returns each with its state, sorted by name.
    pub fn verify(&self) -> Result<Vec<(RegisteredFile, FileState)>> {
        let mut out = Vec::with_capacity(self.files.len());
        for f in &self.files {
            out.push((f.clone(), self.check(f)?));
        }
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(out)
    }

    /// The path of a verified file, or an error that says what is wrong and how to fix it.
    pub fn require(&self, name: &str) -> Result<PathBuf> {
        let entry = self.get(name)?;
        let path = self.path(entry);
        match self.check(entry)? {
            FileState::Ok => Ok(path),
            state => Err(Error::Other(describe_problem(entry, &state, &path))),
        }
    }
}

/// A registered file as a stage reads it: the entry (name, pinned size and sha256) and the file,
/// whose content hash enters the stage's key.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RegisteredInput {
    pub entry: RegisteredFile,
    pub file: InputFile,
}

impl RegisteredInput {
    /// The file's path once its size and sha256 match the registry, or an error that says what
    /// is wrong and how to fix it.
    pub fn require(&self) -> Result<&Path> {
        let path = self.file.path();
        match check_file(&self.entry, path)? {
            FileState::Ok => Ok(path),
            state => Err(Error::Other(describe_problem(&self.entry, &state, path))),
        }
    }
}

/// Checks size and sha256 of the file of `entry` at `path`.
fn check_file(entry: &RegisteredFile, path: &Path) -> Result<FileState> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(FileState::Missing);
    };
    if meta.len() != entry.size {
        return Ok(FileState::WrongSize { actual: meta.len() });
    }
    let actual = sha256_file(path)?;
    Ok(if actual == entry.sha256 {
        FileState::Ok
    } else {
        FileState::WrongHash { actual }
    })
}

/// How to supply `entry` by hand at `path`.
pub fn how_to_supply(entry: &RegisteredFile, path: &Path) -> String {
    let origin = if entry.urls.is_empty() {
        format!(
            "rebuild it ({})",
            entry
                .source
                .as_deref()
                .unwrap_or("no public source recorded")
        )
    } else {
        format!("download it from one of {}", entry.urls.join(", "))
    };
    format!(
        "{origin} and place it at {} (size {} bytes, sha256 {})",
        path.display(),
        entry.size,
        entry.sha256
    )
}

/// A one-paragraph account of a bad file: what is wrong, what was expected, how to supply it.
pub fn describe_problem(entry: &RegisteredFile, state: &FileState, path: &Path) -> String {
    let how = how_to_supply(entry, path);
    match state {
        FileState::Ok => format!("{}: ok", entry.name),
        FileState::Missing => format!("{} is missing: {how}", entry.name),
        FileState::WrongSize { actual } => format!(
            "{} has {actual} bytes, expected {}: {how}",
            entry.name, entry.size
        ),
        FileState::WrongHash { actual } => format!(
            "{} has sha256 {actual}, expected {}: {how}",
            entry.name, entry.sha256
        ),
    }
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_registry() -> Registry {
        Registry::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data")).unwrap()
    }

    #[test]
    fn vendored_files_verify() {
        let registry = repo_registry();
        for (f, state) in registry.verify().unwrap() {
            assert_eq!(state, FileState::Ok, "{}", f.name);
        }
    }

    /// A copy with one flipped byte is refused with both hashes named.
    #[test]
    fn a_flipped_byte_is_refused() {
        let registry = repo_registry();
        let dir = tempfile::tempdir().unwrap();
        let entry = registry.get("mnist-test-labels").unwrap().clone();
        let target = dir.path().join(&entry.file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let mut bytes = std::fs::read(registry.path(&entry)).unwrap();
        bytes[100] ^= 0x01;
        std::fs::write(&target, &bytes).unwrap();
        let copy = Registry {
            dir: dir.path().to_path_buf(),
            files: vec![entry.clone()],
        };
        let err = copy.require("mnist-test-labels").unwrap_err().to_string();
        assert!(err.contains(&format!("expected {}", entry.sha256)), "{err}");
        assert!(err.contains("has sha256 "), "{err}");
        assert!(err.contains(&entry.urls[0]), "{err}");
    }

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
