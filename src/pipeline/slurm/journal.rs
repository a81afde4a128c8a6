//! The journal of a Slurm run (`journal.jsonl`): one JSON line per event, appended and synced
//! before the driver goes on, so a driver killed at any instant leaves a record a later driver
//! can trust. The one gap — killed after `sbatch` accepted a job but before `submitted` was
//! written — is closed by the job name and comment every array carries: [`super::driver`]
//! matches a `submitting` line without its `submitted` against the scheduler's queue.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One line of the journal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// About to submit array `array` of plan round `round` (its comment is `round:array`).
    Submitting {
        time: String,
        round: usize,
        array: usize,
        tasks: usize,
    },
    /// `sbatch` accepted it as `job`.
    Submitted {
        time: String,
        round: usize,
        array: usize,
        job: String,
    },
    /// `sbatch` refused it for good (the error); nothing of it runs.
    Refused {
        time: String,
        round: usize,
        array: usize,
        error: String,
    },
    /// `symbreak cancel` cancelled the run's jobs.
    Cancelled { time: String },
    /// The driver assembled the run (or gave up on it): its jobs are over.
    Finished { time: String, status: String },
}

/// Appends `event` to the journal at `path` and syncs it to disk.
pub fn append(path: &Path, event: &Event) -> Result<()> {
    let mut line = serde_json::to_string(event)
        .map_err(|e| Error::Other(format!("journal event does not serialise: {e}")))?;
    line.push('\n');
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating folder", parent, e))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("opening journal", path, e))?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("appending to journal", path, e))
}

/// Every event of the journal at `path`, in order (none if it does not exist). A last line cut
/// short by a crash is ignored; a damaged line before it is an error.
pub fn load(path: &Path) -> Result<Vec<Event>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("reading journal", path, e)),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut events = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(event) => events.push(event),
            Err(_) if n + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(Error::Other(format!(
                    "{}:{}: damaged journal line: {e}",
                    path.display(),
                    n + 1
                )));
            }
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_in_order_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let first = Event::Submitting {
            time: "t0".into(),
            round: 0,
            array: 1,
            tasks: 3,
        };
        let second = Event::Submitted {
            time: "t1".into(),
            round: 0,
            array: 1,
            job: "42".into(),
        };
        append(&path, &first).unwrap();
        append(&path, &second).unwrap();
        assert_eq!(load(&path).unwrap(), [first.clone(), second.clone()]);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"{\"event\":\"subm").unwrap();
        assert_eq!(load(&path).unwrap(), [first, second]);
        std::fs::write(&path, "garbage\n{\"event\":\"cancelled\",\"time\":\"x\"}\n").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(
            err.contains("journal.jsonl:1: damaged journal line"),
            "{err}"
        );
        assert!(load(&dir.path().join("none.jsonl")).unwrap().is_empty());
    }
}
