//! The set of chunks that snapshots still use.

use std::collections::HashSet;
use std::sync::Arc;

use vger_format::id::ChunkId;

use crate::chunk_table::{Bits, ChunkTable};
use crate::repository::Repository;
use crate::snapshots::SnapshotInfo;
use crate::tree::{dir, TreeStore, Walk};
use crate::Result;

/// Decoded directories kept while the live set is gathered.
const CACHE_BYTES: u64 = 16 << 20;

/// Every tree object and data chunk referenced by `snapshots`, as one bit
/// per position of `table`; referenced chunks the table lacks go into
/// `unindexed`. A directory met again (in another snapshot, or under
/// another name) is not read again. Fails if a tree cannot be read:
/// deciding what is garbage on partial knowledge would delete live data.
pub(crate) fn live_positions(
    repo: &Repository,
    table: &ChunkTable,
    snapshots: &[SnapshotInfo],
    unindexed: &mut HashSet<ChunkId>,
) -> Result<Bits> {
    let mut live = Bits::new(table.len());
    let store = TreeStore::new(repo, Arc::new(table.tree_index()), CACHE_BYTES);
    let mut mark = |id: &ChunkId| match table.position(id) {
        Some(p) => live.set(p),
        None => {
            unindexed.insert(*id);
        }
    };
    let mut seen = HashSet::new();
    for s in snapshots {
        let root = s.snapshot.root;
        if !seen.insert(root) {
            continue;
        }
        dir::object_ids(&store, &root)?.iter().for_each(&mut mark);
        let mut walk = Walk::new(store.clone(), Vec::new(), root);
        while let Some(item) = walk.next() {
            let item = item?;
            item.entry.chunks.iter().for_each(|c| mark(c.id()));
            if let Some(tree) = item.entry.tree {
                if seen.insert(tree) {
                    dir::object_ids(&store, &tree)?.iter().for_each(&mut mark);
                } else {
                    walk.skip_subtree();
                }
            }
        }
    }
    Ok(live)
}
