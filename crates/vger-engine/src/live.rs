//! The set of chunks that snapshots still use.

use vger_format::entry::Entry;
use vger_format::id::ChunkId;

use crate::blob::BlobReader;
use crate::chunk_table::{Bits, ChunkTable};
use crate::index::ChunkIndex;
use crate::repository::Repository;
use crate::snapshots::SnapshotInfo;
use crate::tree::TreeReader;
use crate::Result;

/// Every tree and data chunk referenced by `snapshots`, as one bit per
/// position of `table` (referenced chunks the table lacks are not
/// marked). Fails if a tree cannot be read: deciding what is garbage on
/// partial knowledge would delete live data.
pub(crate) fn live_positions(repo: &Repository, table: &ChunkTable, snapshots: &[SnapshotInfo]) -> Result<Bits> {
    let mut live = Bits::new(table.len());
    let trees = table.tree_index();
    let mut mark = |id: &ChunkId| {
        if let Some(p) = table.position(id) {
            live.set(p);
        }
    };
    for s in snapshots {
        for_each_entry(repo, &trees, s, |e| {
            entry_chunks(e).for_each(&mut mark);
            Ok(())
        })?;
        s.snapshot.tree.iter().for_each(&mut mark);
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
