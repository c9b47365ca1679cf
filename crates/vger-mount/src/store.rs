//! What the mount needs from a repository, as one small trait: the
//! snapshots, and inside a snapshot `stat`, paged `read_dir`, `walk`,
//! opening a file as `Read + Seek`, `find`, the versions of a path, `diff`
//! and `restore`. The server holds a `dyn SnapshotStore` and nothing else
//! of the engine; [`crate::engine_store`] implements it.
//!
//! Every call is synchronous (the engine runs on plain threads): the server
//! makes them on tokio's blocking pool. Paths are snapshot paths: raw bytes,
//! `/`-separated, relative, empty for the snapshot's root.

use std::io::{Read, Seek};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use vger_format::id::SnapshotId;

use crate::MountError;

pub type Result<T> = std::result::Result<T, MountError>;

/// One snapshot, as the listings show it.
#[derive(Debug, Clone)]
pub struct SnapshotMeta {
    pub id: SnapshotId,
    pub time: DateTime<Utc>,
    pub source: String,
    pub hostname: String,
    pub username: String,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// What a node is. Hard links are served as the file they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File,
    Symlink,
    /// A fifo, socket or device: listed, never served.
    Special,
}

/// A file, directory or link of a snapshot.
#[derive(Debug, Clone)]
pub struct Node {
    /// The last component of its path (empty for a snapshot's root).
    pub name: Vec<u8>,
    pub kind: NodeKind,
    pub size: u64,
    pub mode: u32,
    /// Nanoseconds since the epoch.
    pub mtime_ns: i64,
    pub uid: u32,
    pub gid: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    /// A symlink's target.
    pub link_target: Option<Vec<u8>>,
    /// Equal for equal content in any snapshot (a hash of the file's chunk
    /// IDs); `None` for what has no content of its own.
    pub content_tag: Option<[u8; 16]>,
    /// How the store finds the content again without a path lookup.
    pub content: Option<Arc<dyn ContentHandle>>,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.kind == NodeKind::Dir
    }

    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// The last modification as a time, clamped to what chrono can hold.
    pub fn mtime(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.mtime_ns)
    }
}

/// A store's private reference to a file's content (its chunk list).
pub trait ContentHandle: std::fmt::Debug + Send + Sync + std::any::Any {
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A file's bytes, readable and seekable from a blocking thread.
pub trait FileContent: Read + Seek + Send {}

impl<T: Read + Seek + Send> FileContent for T {}

/// One page of a directory listing, in name order.
#[derive(Debug, Clone, Default)]
pub struct DirPage {
    pub entries: Vec<Node>,
    /// The name to continue after, when more entries follow.
    pub next: Option<Vec<u8>>,
}

/// What `walk` does after visiting a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkStep {
    Continue,
    /// Do not descend into this directory.
    SkipChildren,
    Stop,
}

/// Which names a search matches.
#[derive(Debug, Clone)]
pub struct FindQuery {
    /// A glob over the name (`*.txt`), or a plain substring when it has no
    /// glob characters; case-insensitive.
    pub pattern: String,
    /// Search below this directory only.
    pub under: Vec<u8>,
    /// Stop after this many distinct paths.
    pub limit: usize,
}

/// How a path changed from one snapshot to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Modified,
    Metadata,
    Unchanged,
    Removed,
    /// The kind changed (a file became a directory...).
    Type,
}

/// A path in one snapshot, with how it changed since the one before.
#[derive(Debug, Clone)]
pub struct Version {
    pub snapshot: SnapshotId,
    pub time: DateTime<Utc>,
    pub change: Change,
    /// The node (none when the change is `Removed`).
    pub node: Option<Node>,
}

/// A path that a search matched, with its history over the searched
/// snapshots (one version per snapshot where it changed).
#[derive(Debug, Clone)]
pub struct FindMatch {
    pub path: Vec<u8>,
    pub kind: NodeKind,
    pub versions: Vec<Version>,
}

#[derive(Debug, Clone, Default)]
pub struct FindResult {
    pub matches: Vec<FindMatch>,
    /// More paths matched than the query's limit.
    pub truncated: bool,
}

/// One changed path between two snapshots.
#[derive(Debug, Clone)]
pub struct DiffLine {
    pub path: Vec<u8>,
    pub change: Change,
    pub size_before: Option<u64>,
    pub size_after: Option<u64>,
    pub is_dir: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DiffSummary {
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
    pub metadata: u64,
    pub type_changed: u64,
    pub bytes_added: u64,
    pub bytes_removed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct DiffResult {
    pub lines: Vec<DiffLine>,
    /// More lines than the limit; the summary still counts all.
    pub truncated: bool,
    pub summary: DiffSummary,
}

/// Counters a restore updates while it runs (files, bytes, current path).
pub type RestoreProgress = vger_engine::progress::Progress;
/// What stops a restore between files ([`RestoreProgress::with_cancel`]).
pub use vger_engine::progress::CancelFlag;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreSummary {
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    pub bytes: u64,
    pub failures: Vec<String>,
}

/// The repository as the mount sees it.
pub trait SnapshotStore: Send + Sync + 'static {
    /// A description of the repository for messages (its location).
    fn describe(&self) -> String;

    /// Every readable snapshot, oldest first. Cheap to call often: the
    /// list is cached and refreshed when it grows stale.
    fn snapshots(&self) -> Result<Arc<Vec<SnapshotMeta>>>;

    /// The node at `path` (the root for an empty path); `None` when absent.
    fn stat(&self, snap: &SnapshotId, path: &[u8]) -> Result<Option<Node>>;

    /// Up to `limit` entries of directory `dir` after the name `after`.
    fn read_dir(&self, snap: &SnapshotId, dir: &[u8], after: Option<&[u8]>, limit: usize) -> Result<DirPage>;

    /// Visits everything below `dir` (not `dir` itself), parents before
    /// children, with each node's path relative to the snapshot's root.
    fn walk(
        &self,
        snap: &SnapshotId,
        dir: &[u8],
        visit: &mut dyn FnMut(&[u8], &Node) -> Result<WalkStep>,
    ) -> Result<()>;

    /// The content of a file node as a reader.
    fn open(&self, node: &Node) -> Result<Box<dyn FileContent>>;

    /// Paths whose name matches, across `snapshots` (oldest first), each
    /// with its history over them.
    fn find(&self, snapshots: &[SnapshotId], query: &FindQuery) -> Result<FindResult>;

    /// What changed from snapshot `a` to `b` below `dir`, at most `limit` lines.
    fn diff(&self, a: &SnapshotId, b: &SnapshotId, dir: &[u8], limit: usize) -> Result<DiffResult>;

    /// The path in each of `snapshots` (oldest first), one version per
    /// snapshot where it changed (appeared, changed, disappeared).
    fn versions(&self, snapshots: &[SnapshotMeta], path: &[u8]) -> Result<Vec<Version>> {
        let mut out = Vec::new();
        let mut before: Option<Node> = None;
        for s in snapshots {
            let now = self.stat(&s.id, path)?;
            let change = classify(before.as_ref(), now.as_ref());
            if change != Change::Unchanged && !(before.is_none() && now.is_none()) {
                out.push(Version { snapshot: s.id, time: s.time, change, node: now.clone() });
            }
            before = now;
        }
        Ok(out)
    }

    /// Restores `paths` of a snapshot (everything when empty) into `target`.
    fn restore(
        &self,
        snap: &SnapshotId,
        paths: &[Vec<u8>],
        target: &Path,
        progress: &RestoreProgress,
    ) -> Result<RestoreSummary>;
}

/// How `after` differs from `before` (either may be absent).
pub fn classify(before: Option<&Node>, after: Option<&Node>) -> Change {
    match (before, after) {
        (None, None) => Change::Unchanged,
        (None, Some(_)) => Change::Added,
        (Some(_), None) => Change::Removed,
        (Some(b), Some(a)) if b.kind != a.kind => Change::Type,
        (Some(b), Some(a)) if b.size != a.size || b.content_tag != a.content_tag || b.link_target != a.link_target => {
            Change::Modified
        }
        (Some(b), Some(a))
            if b.mode != a.mode
                || b.mtime_ns != a.mtime_ns
                || b.uid != a.uid
                || b.gid != a.gid
                || b.user != a.user
                || b.group != a.group =>
        {
            Change::Metadata
        }
        _ => Change::Unchanged,
    }
}
