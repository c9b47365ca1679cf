//! What the application layer fails with. Each variant says what went
//! wrong in words that name no command; a front end adds its own advice
//! (the CLI a command to run, the desktop app a button) by matching on the
//! variant, and [`AppError::problem`] sorts the common cases for it.

use std::path::PathBuf;

use vger_config::ConfigError;
use vger_engine::lock::LockRecord;
use vger_engine::EngineError;
use vger_storage::StorageError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The engine's own errors: locked, wrong passphrase, not a repository,
    /// storage failures, damaged data, cancelled, ...
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The storage could not be opened (unreachable, refused, a bad URL).
    #[error("repository `{repository}`")]
    Storage {
        repository: String,
        #[source]
        source: StorageError,
    },
    /// prune found a burst of new snapshots (a possible flood by a stolen
    /// client) and deleted nothing, so as not to push older ones out.
    #[error(
        "repository `{repository}`: prune held back {held} snapshots that only a burst of new ones would push out"
    )]
    PruneHeldBack { repository: String, held: usize },
    /// `vger copy` was given the same repository as source and target.
    #[error("repository `{repository}`: copy needs two different repositories (--from and --to name the same one)")]
    CopyToItself { repository: String },
    #[error("no vger repository at {} (the folder does not exist)", path.display())]
    NoRepositoryFolder { path: PathBuf, repository: String },
    #[error("cannot read the current directory")]
    CurrentDir(#[source] std::io::Error),
    #[error("could not run passcommand `{command}`")]
    PasscommandStart {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("passcommand `{command}` failed ({status}): {stderr}")]
    PasscommandFailed { command: String, status: String, stderr: String },
    #[error("passcommand `{command}` printed an empty passphrase")]
    PasscommandEmpty { command: String },
    /// The front end's prompt failed (it says why).
    #[error(transparent)]
    Prompt(Box<dyn std::error::Error + Send + Sync>),
    #[error("no source labelled `{source_label}` goes to repository `{repository}`")]
    UnknownSource { source_label: String, repository: String },
    /// `config` is the file whose `sources` would name one.
    #[error("no sources go to repository `{repository}`")]
    NoSources { repository: String, config: PathBuf },
    /// `config` is the file that names it.
    #[error("source path {} does not exist", path.display())]
    SourceMissing { path: PathBuf, config: PathBuf },
    #[error("invalid exclude pattern `{pattern}`")]
    ExcludePattern {
        pattern: String,
        #[source]
        source: ignore::Error,
    },
    #[error("invalid exclude patterns")]
    Excludes(#[source] ignore::Error),
    #[error("{kind} hook `{command}` could not start: {cause}")]
    HookStart { kind: &'static str, command: String, cause: std::io::Error },
    #[error("{kind} hook `{command}` failed ({status})")]
    HookFailed { kind: &'static str, command: String, status: String },
    /// One source of a backup failed (the others may have succeeded).
    #[error("source `{label}`")]
    Source {
        label: String,
        #[source]
        source: Box<AppError>,
    },
    /// Several sources of a backup failed; each was reported as it failed.
    #[error("{} of {total} sources failed: {}", failed.len(), failed.join(", "))]
    SourcesFailed { total: usize, failed: Vec<String> },
    #[error("keep_within `{0}`: use a number and h, d, w, m or y")]
    KeepWithin(String),
    #[error("chunker size too large")]
    ChunkerSize(#[source] std::num::TryFromIntError),
    /// `check` found problems (listed in its report).
    #[error("the repository has {errors} problem(s) affecting {snapshots} snapshot(s)")]
    Damaged { errors: usize, snapshots: usize },
}

/// The cases a front end most often treats on their own, with what it
/// needs to say about each.
#[derive(Debug)]
#[non_exhaustive]
pub enum Problem<'a> {
    /// Another process holds a lock that conflicts.
    Locked(&'a LockRecord),
    WrongPassphrase,
    /// Encrypted, and no passphrase source answered.
    PassphraseRequired,
    NotARepository,
    /// The storage did not answer (network, timeouts, refused connections).
    Unreachable(&'a StorageError),
    /// The storage refused the write: a quota or a full disk.
    Full(&'a StorageError),
    PermissionDenied(&'a StorageError),
    /// The front end asked the operation to stop, and it did.
    Cancelled,
    Other,
}

impl AppError {
    /// What kind of failure this is, looking through the layers of context.
    pub fn problem(&self) -> Problem<'_> {
        match self {
            AppError::Engine(e) => engine_problem(e),
            AppError::Storage { source, .. } => storage_problem(source),
            AppError::NoRepositoryFolder { .. } => Problem::NotARepository,
            AppError::Source { source, .. } => source.problem(),
            _ => Problem::Other,
        }
    }

    /// Whether the operation stopped because it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.problem(), Problem::Cancelled)
    }
}

fn engine_problem(e: &EngineError) -> Problem<'_> {
    match e {
        EngineError::Locked { holder, .. } => Problem::Locked(holder),
        EngineError::WrongPassphrase { .. } => Problem::WrongPassphrase,
        EngineError::PassphraseRequired { .. } => Problem::PassphraseRequired,
        EngineError::NotARepository { .. } => Problem::NotARepository,
        EngineError::Cancelled => Problem::Cancelled,
        EngineError::Storage(s) => storage_problem(s),
        _ => Problem::Other,
    }
}

fn storage_problem(e: &StorageError) -> Problem<'_> {
    match e {
        StorageError::QuotaExceeded { .. } | StorageError::NoSpace { .. } => Problem::Full(e),
        StorageError::PermissionDenied { .. } => Problem::PermissionDenied(e),
        _ if e.is_transient() => Problem::Unreachable(e),
        _ => Problem::Other,
    }
}

/// `error` and its causes on one line, without repeating a cause that the
/// text before it already contains.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cause = Some(error);
    while let Some(e) = cause {
        let text = e.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        cause = e.source();
    }
    out.replace('\n', " ")
}
