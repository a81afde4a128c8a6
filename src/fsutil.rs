//! File-system helpers that never leave a half-written file behind: every write goes to a
//! temporary file in the destination's folder and is renamed into place.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically, creating parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io("creating folder", parent, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(parent)
        .map_err(|e| Error::io("creating temporary file", parent, e))?;
    tmp.write_all(bytes)
        .map_err(|e| Error::io("writing", tmp.path(), e))?;
    // Temporary files are created private (0600); results are meant to be shared like any file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io("setting permissions of", tmp.path(), e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("syncing", path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("renaming into place", path, e.error))?;
    Ok(())
}

/// Serializes `value` as pretty JSON (maps sorted) and writes it atomically — after checking
/// that the text reads back as a `T`. JSON has no NaN or infinity: serde writes them as `null`,
/// which a number field then refuses; the check makes the writer fail, naming the field, rather
/// than publish a record its readers cannot read.
pub fn write_json<T: serde::Serialize + serde::de::DeserializeOwned>(
    path: &Path,
    value: &T,
) -> Result<()> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| Error::artefact("json", path, e))?;
    let mut reader = serde_json::Deserializer::from_str(&text);
    if let Err(e) = serde_path_to_error::deserialize::<_, T>(&mut reader) {
        return Err(Error::artefact(
            "json",
            path,
            format!(
                "{} does not read back ({}): a NaN or infinity where a number is expected?",
                e.path(),
                e.inner()
            ),
        ));
    }
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads and deserializes JSON from `path`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::unreadable("json", path, e))
}

/// Names of the files `<dir>/*.<extension>` without the extension, sorted (none if `dir` is
/// missing).
pub fn file_stems(dir: &Path, extension: &str) -> std::collections::BTreeSet<String> {
    let suffix = format!(".{extension}");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(&suffix)
                .map(str::to_string)
        })
        .collect()
}

/// blake3 of a file's contents, streamed.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    hasher
        .update_reader(file)
        .map_err(|e| Error::io("hashing", path, e))?;
    Ok(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_no_partial_file_and_are_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.txt")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }
}
