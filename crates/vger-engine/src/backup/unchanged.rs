//! The one rule that lets a backup take a file's chunk list from an
//! earlier record of it (the parent snapshot, or the journal of an
//! interrupted run) instead of reading the file again.

use vger_format::entry::{ChunkRef, Entry, EntryKind};

use super::ChangeDetection;
use crate::index::ChunkIndex;

/// An mtime this close to when the file was read may hide a change made
/// within the clock's granularity right after: such a file is read again.
pub(crate) const RACY_NS: i64 = 1_000_000_000;

/// What an earlier run recorded of a file.
pub(crate) struct Recorded<'a> {
    pub kind: EntryKind,
    pub size: u64,
    pub mtime: i64,
    pub ctime: i64,
    pub ino: u64,
    pub chunks: &'a [ChunkRef],
    /// When that run began reading the file (the parent snapshot: when it
    /// started), ns since the epoch.
    pub read_at: i64,
}

/// Whether the recorded file can stand for the file the walk found now:
/// same size and mtime (and ctime and inode in strict mode), an mtime
/// older than the read by more than [`RACY_NS`], chunk lengths that add
/// up to the size, and every chunk in the index the backup loaded.
pub(crate) fn is_unchanged(then: &Recorded<'_>, now: &Entry, mode: ChangeDetection, index: &ChunkIndex) -> bool {
    let same = then.kind == EntryKind::File
        && now.kind == EntryKind::File
        && then.size == now.size
        && then.mtime == now.mtime
        && then.mtime < then.read_at.saturating_sub(RACY_NS)
        && (mode == ChangeDetection::MtimeSize || (then.ctime == now.ctime && then.ino == now.ino));
    let sum: u64 = then.chunks.iter().map(|c| u64::from(c.len())).sum();
    same && sum == then.size && then.chunks.iter().all(|c| index.contains(c.id()))
}

/// Whether the recorded xattrs can be trusted too: setting or removing an
/// xattr sets the ctime to "now", so in strict mode (which compared the
/// ctime) a ctime older than the read by the same margin means none
/// changed since.
pub(crate) fn xattrs_unchanged(then: &Recorded<'_>, mode: ChangeDetection) -> bool {
    mode == ChangeDetection::Strict && then.ctime < then.read_at.saturating_sub(RACY_NS)
}
