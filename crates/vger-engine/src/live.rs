//! The set of chunks that snapshots still use.

use vger_format::entry::Entry;
use vger_format::id::ChunkId;

use crate::blob::BlobReader;
use crate::index::{ChunkIndex, IdSet};
use crate::repository::Repository;
use crate::snapshots::SnapshotInfo;
use crate::tree::TreeReader;
use crate::Result;

/// Every tree and data chunk referenced by `snapshots`. Fails if a tree
/// cannot be read: deciding what is garbage on partial knowledge would
/// delete live data.
pub fn live_chunks(repo: &Repository, index: &ChunkIndex, snapshots: &[SnapshotInfo]) -> Result<IdSet> {
    let mut live = IdSet::default();
    for s in snapshots {
        for_each_entry(repo, index, s, |e| {
            live.extend(e.chunks.iter().map(|c| *c.id()));
            Ok(())
        })?;
        live.extend(s.snapshot.tree.iter().copied());
    }
    Ok(live)
}

/// Calls `f` for every entry of a snapshot's tree.
pub fn for_each_entry(
    repo: &Repository,
    index: &ChunkIndex,
    s: &SnapshotInfo,
    mut f: impl FnMut(&Entry) -> Result<()>,
) -> Result<()> {
    for entry in TreeReader::new(BlobReader::new(repo, index), s.snapshot.tree.clone()) {
        f(&entry?)?;
    }
    Ok(())
}

/// Chunk IDs referenced by one entry.
pub fn entry_chunks(e: &Entry) -> impl Iterator<Item = &ChunkId> {
    e.chunks.iter().map(|c| c.id())
}
