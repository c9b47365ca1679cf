use std::path::PathBuf;

use thiserror::Error;
use vger_format::FormatError;
use vger_storage::StorageError;

/// Everything a repository operation can fail with. Each message is one
/// line that names the cause and, where there is one, the fix.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("no vger repository at {location} (no `config` object); run `vger init` first, or check the url")]
    NotARepository { location: String },
    #[error("a vger repository already exists at {location}; refusing to initialise it again")]
    AlreadyInitialized { location: String },
    #[error("{location} is not empty and holds no vger repository; choose an empty or new location")]
    LocationNotEmpty { location: String },
    #[error("wrong passphrase for repository {location} (no key slot opens with it)")]
    WrongPassphrase { location: String },
    #[error("repository {location} has no key slots: its keys were deleted or never written")]
    NoKeys { location: String },
    #[error("repository {location} is encrypted; give the passphrase with VGER_PASSPHRASE, `passcommand` or `passphrase` in the config")]
    PassphraseRequired { location: String },
    #[error("no snapshot matches `{0}`; `vger list` shows the snapshot ids")]
    SnapshotNotFound(String),
    #[error("snapshot prefix `{prefix}` is ambiguous: it matches {count} snapshots; give more digits")]
    AmbiguousSnapshot { prefix: String, count: usize },
    #[error(
        "chunk {chunk} is not in the index (needed by {context}); the repository is missing data: run `vger check`"
    )]
    MissingChunk { chunk: String, context: String },
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Format(#[from] FormatError),
    #[error("{0}")]
    Fs(#[from] vger_fs::FsError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    #[error("source path {} does not exist", .0.display())]
    SourceMissing(PathBuf),
    #[error("{0}")]
    Other(String),
}

impl EngineError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io { context: context.into(), source }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
