//! How a backup decides that a file did not change since the parent
//! snapshot, so that its chunk list is reused instead of reading it again:
//! the `change_detection` setting of a source, applied by the engine to
//! the [`Entry`](crate::entry::Entry) fields it names.

use serde::{Deserialize, Serialize};

/// Which metadata must match the parent snapshot's for a file to count as
/// unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeDetection {
    /// Size, mtime, ctime and inode must all match.
    #[default]
    Strict,
    /// Size and mtime only: for snapshots of btrfs/zfs and network mounts,
    /// where inode numbers and ctime change on every mount.
    MtimeSize,
}
