//! Snapshot objects (docs/format.md, section 8).

use serde::{Deserialize, Serialize};

use crate::id::{ChunkId, SnapshotId};

/// Version 3: leaves keep names apart from metadata (a version 2 snapshot
/// has leaves of named-field entries, still read). Version 2: the tree is
/// one object per directory (`root`); version 1
/// stored it as one chunked stream (`tree`), which is no longer read.
pub const SNAPSHOT_VERSION: u32 = 3;

/// Counters recorded with each snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStats {
    #[serde(default)]
    pub files: u64,
    #[serde(default)]
    pub dirs: u64,
    /// Sum of the sizes of all files.
    #[serde(default)]
    pub bytes: u64,
    /// Plaintext bytes of chunks this backup added.
    #[serde(default)]
    pub added_bytes: u64,
    /// Stored (compressed, encrypted) bytes this backup added.
    #[serde(default)]
    pub added_stored: u64,
    /// Chunks this backup added.
    #[serde(default)]
    pub added_chunks: u64,
    /// Files skipped because they vanished or could not be read.
    #[serde(default)]
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    /// RFC 3339, when the backup started (or `--time`).
    pub time: String,
    #[serde(default)]
    pub end_time: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub source_label: String,
    #[serde(default)]
    pub paths: Vec<String>,
    /// The tree object of the snapshot's top directory.
    pub root: ChunkId,
    #[serde(default)]
    pub stats: SnapshotStats,
    #[serde(default)]
    pub parent: Option<SnapshotId>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The backup read extended attributes, so an entry without any has
    /// none (false in snapshots made before the field existed).
    #[serde(default)]
    pub xattrs: bool,
    /// For a snapshot made by `vger copy`: the ID of the snapshot it was
    /// copied from, in the source repository (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_from: Option<SnapshotId>,
}

/// Only the version of a snapshot: read first, so that a snapshot of
/// another version is refused by its number, not by a missing field.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct VersionOnly {
    #[serde(default)]
    pub version: u32,
}
