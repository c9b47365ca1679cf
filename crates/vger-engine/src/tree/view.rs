//! An open snapshot's file tree, by path: [`SnapshotTree::stat`],
//! [`read_dir`](SnapshotTree::read_dir) and [`walk`](SnapshotTree::walk).
//! Restore, `snapshot list`, find, diff, check and any server or GUI read
//! snapshots through it. A lookup costs one object per path component
//! (more only for directories split into pages), whatever the size of the
//! snapshot; memory is the store's cache plus one page per open level.

use vger_format::entry::EntryKind;
use vger_format::id::ChunkId;
use vger_format::tree::{join_path, TreeEntry};
use vger_format::FormatError;

use super::dir::{lookup, DirEntries, EntryRef};
use super::store::TreeStore;
use crate::snapshots::SnapshotInfo;
use crate::{EngineError, Result};

/// One snapshot's tree. Cheap to clone, `Send + Sync`.
#[derive(Clone, Debug)]
pub struct SnapshotTree {
    store: TreeStore,
    root: ChunkId,
}

/// The components of a snapshot path (`a/b/c`; leading, trailing and
/// doubled `/` are ignored; `.` and `..` are refused).
pub fn path_components(path: &[u8]) -> Result<Vec<&[u8]>> {
    let parts: Vec<&[u8]> = path.split(|b| *b == b'/').filter(|c| !c.is_empty()).collect();
    if parts.iter().any(|c| *c == b"." || *c == b".." || c.contains(&0)) {
        return Err(EngineError::InvalidTreePath { path: String::from_utf8_lossy(path).into_owned() });
    }
    Ok(parts)
}

/// A directory that refers to itself or to one of its ancestors.
fn cycle(dir: &ChunkId, path: &[u8]) -> EngineError {
    FormatError::corrupt(
        format!("tree object {}", dir.short()),
        format!("directory {:?} refers to itself or an ancestor", String::from_utf8_lossy(path)),
    )
    .into()
}

impl SnapshotTree {
    pub fn new(store: TreeStore, root: ChunkId) -> Self {
        Self { store, root }
    }

    pub fn open(store: &TreeStore, snapshot: &SnapshotInfo) -> Self {
        Self::new(store.clone(), snapshot.snapshot.root)
    }

    pub fn root(&self) -> &ChunkId {
        &self.root
    }

    pub fn store(&self) -> &TreeStore {
        &self.store
    }

    /// The entry at `path`, `None` if there is none. The top directory
    /// (an empty path) has an entry of its own with an empty name.
    pub fn stat(&self, path: &[u8]) -> Result<Option<TreeEntry>> {
        let parts = path_components(path)?;
        let Some((last, dirs)) = parts.split_last() else {
            let mut top = TreeEntry::from_entry(vger_format::entry::Entry::new(Vec::new(), EntryKind::Dir), None);
            top.tree = Some(self.root);
            return Ok(Some(top));
        };
        let mut seen = vec![self.root];
        let mut dir = self.root;
        for part in dirs {
            let Some(e) = lookup(&self.store, &dir, part)? else { return Ok(None) };
            let Some(tree) = e.tree else { return Ok(None) };
            if seen.contains(&tree) {
                return Err(cycle(&tree, path));
            }
            seen.push(tree);
            dir = tree;
        }
        Ok(lookup(&self.store, &dir, last)?.map(|e| e.entry().clone()))
    }

    /// The tree ID of directory `path`; an error if there is no such
    /// directory.
    pub fn dir_id(&self, path: &[u8]) -> Result<ChunkId> {
        let shown = || String::from_utf8_lossy(path).into_owned();
        match self.stat(path)? {
            None => Err(EngineError::TreePathNotFound { path: shown() }),
            Some(e) => e.tree.ok_or_else(|| EngineError::NotADirectory { path: shown() }),
        }
    }

    /// The entries of directory `path` in name order, a page at a time.
    pub fn read_dir(&self, path: &[u8]) -> Result<DirEntries> {
        DirEntries::new(&self.store, &self.dir_id(path)?)
    }

    /// The entries of directory `path` after the name `after`: the next
    /// page of a listing that showed names up to `after`.
    pub fn read_dir_after(&self, path: &[u8], after: &[u8]) -> Result<DirEntries> {
        DirEntries::after(&self.store, &self.dir_id(path)?, after)
    }

    /// Everything below directory `path`, depth first, each directory
    /// before its entries, entries in name order.
    pub fn walk(&self, path: &[u8]) -> Result<Walk> {
        let top = path_components(path)?.join(&b'/');
        let id = self.dir_id(&top)?;
        // The directory asked for is read now: if it cannot be, that is
        // the caller's answer (an error), not an item of the walk.
        // Directories below it that cannot be read are items
        // (`UnreadableDirectory`), so a walk goes on past them.
        let entries = DirEntries::new(&self.store, &id)?;
        Ok(Walk { store: self.store.clone(), stack: vec![WalkFrame { path: top, id, entries }], to_enter: None })
    }
}

/// One entry found by a [`Walk`], with its path from the snapshot's top.
#[derive(Clone, Debug)]
pub struct WalkItem {
    pub path: Vec<u8>,
    pub entry: EntryRef,
}

/// Depth-first iteration below one directory; see [`SnapshotTree::walk`].
/// Memory is one open page per directory on the current path.
pub struct Walk {
    store: TreeStore,
    stack: Vec<WalkFrame>,
    /// The directory just yielded: entered on the next call unless
    /// [`Walk::skip_subtree`] is called first.
    to_enter: Option<(Vec<u8>, ChunkId)>,
}

struct WalkFrame {
    path: Vec<u8>,
    id: ChunkId,
    entries: DirEntries,
}

impl Walk {
    /// Walks below directory `id`, whose path is `path`.
    pub fn new(store: TreeStore, path: Vec<u8>, id: ChunkId) -> Self {
        Self { store, stack: Vec::new(), to_enter: Some((path, id)) }
    }

    /// Does not enter the directory the last call yielded (check and the
    /// live set skip a subtree they have seen under another name).
    pub fn skip_subtree(&mut self) {
        self.to_enter = None;
    }

    fn advance(&mut self) -> Result<Option<WalkItem>> {
        if let Some((path, id)) = self.to_enter.take() {
            if self.stack.iter().any(|f| f.id == id) {
                return Err(cycle(&id, &path));
            }
            let entries = DirEntries::new(&self.store, &id).map_err(|e| EngineError::UnreadableDirectory {
                path: String::from_utf8_lossy(&path).into_owned(),
                source: Box::new(e),
            })?;
            self.stack.push(WalkFrame { path, id, entries });
        }
        loop {
            let Some(top) = self.stack.last_mut() else { return Ok(None) };
            match top.entries.next() {
                Some(entry) => {
                    let entry = entry?;
                    let path = join_path(&top.path, &entry.name);
                    if let Some(tree) = entry.tree {
                        self.to_enter = Some((path.clone(), tree));
                    }
                    return Ok(Some(WalkItem { path, entry }));
                }
                None => {
                    self.stack.pop();
                }
            }
        }
    }
}

/// An error (a directory that cannot be read) is yielded in its place and
/// the walk goes on with what follows it: callers that must stop use `?`.
impl Iterator for Walk {
    type Item = Result<WalkItem>;

    fn next(&mut self) -> Option<Result<WalkItem>> {
        self.advance().transpose()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use vger_format::entry::{Entry, EntryKind};
    use vger_format::id::ChunkId;
    use vger_format::tree::{TreeEntry, TreeNode};

    use super::{SnapshotTree, Walk};
    use crate::tree::TreeStore;

    fn store() -> (tempfile::TempDir, TreeStore) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(vger_storage::LocalStorage::create(&dir.path().join("repo")).unwrap());
        let opts = crate::repository::InitOptions {
            kdf: vger_crypto::KdfParams::insecure_fast(),
            ..crate::repository::InitOptions::default()
        };
        let repo = crate::repository::Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap();
        let store = TreeStore::new(&repo, Arc::new(crate::index::ChunkIndex::default()), 1 << 20);
        (dir, store)
    }

    fn dir_entry(name: &[u8], tree: ChunkId) -> TreeEntry {
        let mut e = TreeEntry::from_entry(Entry::new(name.to_vec(), EntryKind::Dir), None);
        e.tree = Some(tree);
        e
    }

    /// Content-addressed objects cannot form a loop (the ID check comes
    /// first); the walk and lookups refuse one all the same.
    #[test]
    fn a_directory_that_is_its_own_ancestor_is_refused() {
        let (_dir, store) = store();
        let (a, b) = (ChunkId([1; 32]), ChunkId([2; 32]));
        store.plant(a, TreeNode::Leaf(vec![dir_entry(b"down", b)]));
        store.plant(b, TreeNode::Leaf(vec![dir_entry(b"up", a)]));
        let tree = SnapshotTree::new(store.clone(), a);
        let items: Vec<_> = Walk::new(store, Vec::new(), a).take(10).collect();
        let errors: Vec<String> = items.iter().filter_map(|i| i.as_ref().err()).map(|e| e.to_string()).collect();
        assert_eq!(items.len(), 3, "the walk must stop at the loop: {items:?}");
        assert!(errors.len() == 1 && errors[0].contains("refers to itself or an ancestor"), "{errors:?}");
        let err = tree.stat(b"down/up/down/x").unwrap_err().to_string();
        assert!(err.contains("tree object 01010101") && err.contains("ancestor"), "{err}");
    }
}
