//! Errors of walking and restoring.

use std::fmt;
use std::io;
use std::path::PathBuf;

use vger_format::FormatError;

/// A failure that stops an operation: a missing source root, an I/O error
/// while restoring, or an entry refused because it would escape the target.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    #[error("source path {} does not exist", .0.display())]
    SourceMissing(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The snapshot asks for something a restore must not do (write through
    /// a symlink, link to a file outside the target, replace a directory).
    #[error("refusing to restore {path}: {reason}")]
    Refused { path: String, reason: String },
    #[error("refusing to restore: {0}")]
    InvalidPath(#[from] FormatError),
}

impl FsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        FsError::Io { path: path.into(), source }
    }

    pub(crate) fn refused(path: &[u8], reason: impl Into<String>) -> Self {
        FsError::Refused { path: String::from_utf8_lossy(path).into_owned(), reason: reason.into() }
    }
}

/// A problem with one path during a walk; the walk goes on after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkError {
    /// The path on disk.
    pub path: PathBuf,
    pub message: String,
    /// `NotFound` when the path vanished during the walk (a file deleted
    /// while the backup runs), which callers may treat as a warning.
    pub kind: io::ErrorKind,
}

impl WalkError {
    pub(crate) fn new(path: impl Into<PathBuf>, err: &io::Error) -> Self {
        WalkError { path: path.into(), message: err.to_string(), kind: err.kind() }
    }
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for WalkError {}
