//! The library's one error type. Every variant carries the context a user needs to act on it:
//! the spec file, line and key path for a bad spec; the path for I/O; the stage and update number
//! for a numerical failure. Paths come last in each message, as the user reads the cause first.

use std::path::{Path, PathBuf};

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A spec file that does not parse or does not validate.
    #[error("{file}:{line}: {key}: {message}", file = .file.display())]
    Spec {
        file: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    /// An I/O failure on a named path.
    #[error("{action}: {source}: {path}", path = .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Training produced NaN/Inf or left the model's domain.
    #[error("{what} at update {update}")]
    Numerical { what: String, update: usize },
    /// A linear-algebra routine failed (e.g. a matrix that should be positive definite is not).
    #[error("linear algebra: {0}")]
    LinearAlgebra(String),
    /// A stage failed; wraps the cause with the stage instance that raised it.
    #[error("stage {stage} failed")]
    Stage {
        stage: String,
        #[source]
        source: Box<Error>,
    },
    /// An artefact could not be encoded or decoded (tables, arrays, figures, JSON records).
    #[error("{action} {what}: {message}: {path}", path = .path.display())]
    Artefact {
        /// `writing` or `reading`.
        action: &'static str,
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    /// Anything else, with a readable message.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An I/O error on `path`, naming what was being done.
    pub fn io(action: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// An encoding error for an artefact at `path`.
    pub fn artefact(what: &'static str, path: impl AsRef<Path>, message: impl ToString) -> Self {
        Error::Artefact {
            action: "writing",
            what,
            path: path.as_ref().to_path_buf(),
            message: message.to_string(),
        }
    }

    /// A decoding error for a file at `path` (an artefact, a record or a raw file).
    pub fn unreadable(what: &'static str, path: impl AsRef<Path>, message: impl ToString) -> Self {
        Error::Artefact {
            action: "reading",
            what,
            path: path.as_ref().to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// Returns early with [`Error::Other`] built from a format string.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::Other(format!($($arg)*)))
    };
}

/// Returns early with [`Error::Other`] unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::bail!($($arg)*);
        }
    };
}
