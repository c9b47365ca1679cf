use std::path::PathBuf;

use thiserror::Error;
use vger_format::FormatError;
use vger_storage::StorageError;

use crate::lock::{LockKind, LockRecord};

/// Everything a repository operation can fail with. Each message is one
/// line that names the cause and, where there is one, the fix in words that
/// name no command: a front end matches the variant to add its own (the
/// CLI names a `vger` command, a desktop app shows a button).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("no vger repository at {location} (no `config` object)")]
    NotARepository { location: String },
    #[error("a vger repository already exists at {location}; refusing to initialise it again")]
    AlreadyInitialized { location: String },
    #[error("{location} is not empty and holds no vger repository; choose an empty or new location")]
    LocationNotEmpty { location: String },
    #[error("wrong passphrase for repository {location} (no key slot opens with it{note})")]
    WrongPassphrase {
        location: String,
        /// What was not tried, when not every slot was.
        note: String,
    },
    #[error("repository {location} has no key slots: its keys were deleted or never written")]
    NoKeys { location: String },
    #[error("repository {location} is encrypted; give the passphrase with VGER_PASSPHRASE, `passcommand` or `passphrase` in the config")]
    PassphraseRequired { location: String },
    #[error(
        "repository {location} is not encrypted, but the configuration does not say `encryption: {{ mode: none }}` \
         for it, so nothing was read or written: if it was made without encryption on purpose, say so there; \
         otherwise its `config` object was replaced by someone with access to the storage"
    )]
    UnencryptedNotAllowed { location: String },
    #[error(
        "repository {location} now gives {setting} as `{now}`, but this client saw `{was}` there before, so nothing \
         was read or written: its `config` object was replaced or altered; if you changed it on purpose, delete {} \
         and retry",
        memory.display()
    )]
    SettingsChanged { location: String, setting: &'static str, was: String, now: String, memory: PathBuf },
    #[error("the record of a repository's settings at {} is unreadable ({detail}); delete it to start over", path.display())]
    SettingsMemoryUnreadable { path: PathBuf, detail: String },
    #[error(
        "no key slot of repository {location} could be tried: {detail}; if you made such a slot, raise \
         `kdf_max_memory` or `kdf_max_iterations` under `encryption:` in the configuration"
    )]
    KeySlotsTooCostly { location: String, detail: String },
    #[error("no snapshot matches `{0}`")]
    SnapshotNotFound(String),
    #[error("snapshot prefix `{prefix}` is ambiguous: it matches {count} snapshots; give more digits")]
    AmbiguousSnapshot { prefix: String, count: usize },
    #[error("chunk {chunk} is not in the index (needed by {context}); the repository is missing data")]
    MissingChunk { chunk: String, context: String },
    /// Another process holds a lock that conflicts with the one wanted.
    #[error("repository is locked: {}; {}. Wait for it to finish and retry", match wanted {
        LockKind::Exclusive => "this command needs the repository to itself",
        LockKind::Shared => "maintenance is running",
    }, holder.describe())]
    Locked { holder: Box<LockRecord>, wanted: LockKind },
    /// A lock object that cannot be read: a holder that crashed while
    /// writing it, or garbage; treated as held.
    #[error("repository is locked by an unreadable lock object `{key}`")]
    LockUnreadable { key: String },
    #[error("our repository lock lapsed ({seconds}s without a heartbeat, lease {lease_secs}s): maintenance may have changed the repository meanwhile, so nothing more is committed; try again")]
    LockLapsed { seconds: u64, lease_secs: u64 },
    #[error(
        "our repository lock was removed (broken by someone, or taken as stale): nothing more is committed; try again"
    )]
    LockRemoved,
    #[error("none of the given paths is in the snapshot")]
    PathsNotInSnapshot,
    #[error("{path}: read back after restoring, the bytes at offset {offset} differ from the snapshot's; the target file system or disk may be failing")]
    VerifyFailed { path: String, offset: u64 },
    #[error("no key slot matches `{prefix}`")]
    KeySlotNotFound { prefix: String },
    #[error("pack {pack} is shorter than its index says")]
    PackTooShort { pack: String },
    /// The front end asked the operation to stop, and it stopped at a
    /// point that leaves the repository consistent.
    #[error("cancelled; the repository is consistent")]
    Cancelled,
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
    #[error("{} of the snapshot cannot be read: {source}", shown_dir(path))]
    UnreadableDirectory {
        path: String,
        #[source]
        source: Box<EngineError>,
    },
    #[error("`{path}` is not in the snapshot")]
    TreePathNotFound { path: String },
    #[error("`{path}` in the snapshot is not a directory")]
    NotADirectory { path: String },
    #[error("`{path}` is not a snapshot path: `.`, `..` and NUL bytes are not allowed in one")]
    InvalidTreePath { path: String },
    #[error("{0}")]
    Other(String),
}

impl EngineError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io { context: context.into(), source }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// A snapshot directory's path for a message: the root has an empty path.
fn shown_dir(path: &str) -> String {
    if path.is_empty() {
        "the top directory".to_string()
    } else {
        format!("directory `{path}`")
    }
}
