//! What changed between two snapshots: both trees are read side by side,
//! directory by directory, and a subtree whose tree ID is the same in both
//! is skipped without being read, so the cost follows the change, not the
//! size of the snapshots.

use serde::Serialize;
use vger_format::entry::EntryKind;
use vger_format::id::ChunkId;
use vger_format::tree::{join_path, TreeEntry};

use crate::tree::{DirEntries, EntryRef, SnapshotTree, Walk};
use crate::{EngineError, Result};

/// How one path differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Only in the second snapshot.
    Added,
    /// Only in the first.
    Removed,
    /// The content changed (data, link target or device number).
    Modified,
    /// Only metadata changed: mode, owner, mtime or xattrs.
    Metadata,
    /// It became another kind of thing (a file became a directory, ...).
    Type,
}

/// One changed path.
#[derive(Debug, Clone)]
pub struct DiffItem {
    pub path: Vec<u8>,
    pub change: Change,
    pub before: Option<TreeEntry>,
    pub after: Option<TreeEntry>,
}

/// Counts and bytes of a diff. Bytes count regular files: `added_bytes`
/// is the size of added files plus the growth of modified ones,
/// `removed_bytes` the size of removed files plus the shrinking of
/// modified ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiffSummary {
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
    pub metadata: u64,
    pub r#type: u64,
    pub added_bytes: u64,
    pub removed_bytes: u64,
}

impl DiffSummary {
    pub fn count(&mut self, item: &DiffItem) {
        let file_size = |e: &Option<TreeEntry>| e.as_ref().filter(|e| e.kind == EntryKind::File).map_or(0, |e| e.size);
        let (before, after) = (file_size(&item.before), file_size(&item.after));
        match item.change {
            Change::Added => self.added += 1,
            Change::Removed => self.removed += 1,
            Change::Modified => self.modified += 1,
            Change::Metadata => self.metadata += 1,
            Change::Type => self.r#type += 1,
        }
        self.added_bytes += after.saturating_sub(before);
        self.removed_bytes += before.saturating_sub(after);
    }
}

/// Whether the content of two entries of the same kind differs.
fn content_differs(a: &TreeEntry, b: &TreeEntry) -> bool {
    a.size != b.size || a.chunks != b.chunks || a.target != b.target || a.rdev != b.rdev
}

/// Whether their metadata differs (ctime, inode and device only serve
/// change detection and are not compared).
fn metadata_differs(a: &TreeEntry, b: &TreeEntry) -> bool {
    a.mode != b.mode
        || a.uid != b.uid
        || a.gid != b.gid
        || a.user != b.user
        || a.group != b.group
        || a.mtime != b.mtime
        || a.xattrs != b.xattrs
}

/// Calls `f` for every path at or below `path` that differs between `a`
/// and `b`, in walk order. An error if `path` is in neither snapshot.
pub fn diff(a: &SnapshotTree, b: &SnapshotTree, path: &[u8], mut f: impl FnMut(DiffItem) -> Result<()>) -> Result<()> {
    let path = crate::tree::path_components(path)?.join(&b'/');
    let (before, after) = (a.stat(&path)?, b.stat(&path)?);
    match (before, after) {
        (None, None) => Err(EngineError::TreePathNotFound { path: String::from_utf8_lossy(&path).into_owned() }),
        (before, after) if path.is_empty() => {
            let (ta, tb) = (before.and_then(|e| e.tree), after.and_then(|e| e.tree));
            match (ta, tb) {
                (Some(ta), Some(tb)) => Differ { a, b, f: &mut f }.dirs(&path, ta, tb),
                _ => Ok(()),
            }
        }
        (before, after) => Differ { a, b, f: &mut f }.pair(path, before, after),
    }
}

struct Differ<'a, F> {
    a: &'a SnapshotTree,
    b: &'a SnapshotTree,
    f: &'a mut F,
}

impl<F: FnMut(DiffItem) -> Result<()>> Differ<'_, F> {
    /// Two entries (either may be missing) at `path`.
    fn pair(&mut self, path: Vec<u8>, before: Option<TreeEntry>, after: Option<TreeEntry>) -> Result<()> {
        match (before, after) {
            (None, None) => Ok(()),
            (None, Some(after)) => self.one_side(path, after, Change::Added),
            (Some(before), None) => self.one_side(path, before, Change::Removed),
            (Some(before), Some(after)) if before.kind != after.kind => {
                let (ta, tb) = (before.tree, after.tree);
                (self.f)(DiffItem {
                    path: path.clone(),
                    change: Change::Type,
                    before: Some(before),
                    after: Some(after),
                })?;
                if let Some(t) = ta {
                    self.below(self.a, &path, t, Change::Removed)?;
                }
                if let Some(t) = tb {
                    self.below(self.b, &path, t, Change::Added)?;
                }
                Ok(())
            }
            (Some(before), Some(after)) => {
                let (ta, tb) = (before.tree, after.tree);
                let change = if content_differs(&before, &after) {
                    Some(Change::Modified)
                } else if metadata_differs(&before, &after) {
                    Some(Change::Metadata)
                } else {
                    None
                };
                if let Some(change) = change {
                    (self.f)(DiffItem { path: path.clone(), change, before: Some(before), after: Some(after) })?;
                }
                match (ta, tb) {
                    (Some(ta), Some(tb)) => self.dirs(&path, ta, tb),
                    _ => Ok(()),
                }
            }
        }
    }

    /// An entry in one snapshot only, and everything below it.
    fn one_side(&mut self, path: Vec<u8>, entry: TreeEntry, change: Change) -> Result<()> {
        let tree = entry.tree;
        let (before, after) = if change == Change::Added { (None, Some(entry)) } else { (Some(entry), None) };
        (self.f)(DiffItem { path: path.clone(), change, before, after })?;
        match tree {
            Some(t) => self.below(if change == Change::Added { self.b } else { self.a }, &path, t, change),
            None => Ok(()),
        }
    }

    fn below(&mut self, side: &SnapshotTree, path: &[u8], tree: ChunkId, change: Change) -> Result<()> {
        for item in Walk::new(side.store().clone(), path.to_vec(), tree) {
            let item = item?;
            let entry = item.entry.entry().clone();
            let (before, after) = if change == Change::Added { (None, Some(entry)) } else { (Some(entry), None) };
            (self.f)(DiffItem { path: item.path, change, before, after })?;
        }
        Ok(())
    }

    /// Two versions of directory `path`: skipped whole when their IDs are equal.
    fn dirs(&mut self, path: &[u8], ta: ChunkId, tb: ChunkId) -> Result<()> {
        if ta == tb {
            return Ok(());
        }
        let mut left = DirEntries::new(self.a.store(), &ta)?.peekable();
        let mut right = DirEntries::new(self.b.store(), &tb)?.peekable();
        loop {
            if matches!(left.peek(), Some(Err(_))) {
                if let Some(Err(e)) = left.next() {
                    return Err(e);
                }
            }
            if matches!(right.peek(), Some(Err(_))) {
                if let Some(Err(e)) = right.next() {
                    return Err(e);
                }
            }
            let order = match (left.peek(), right.peek()) {
                (None, None) => return Ok(()),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(l), Some(r)) => match (l, r) {
                    (Ok(l), Ok(r)) => l.name.cmp(&r.name),
                    _ => std::cmp::Ordering::Equal,
                },
            };
            let take =
                |it: &mut std::iter::Peekable<DirEntries>| -> Option<EntryRef> { it.next().and_then(|e| e.ok()) };
            let (before, after) = match order {
                std::cmp::Ordering::Less => (take(&mut left), None),
                std::cmp::Ordering::Greater => (None, take(&mut right)),
                std::cmp::Ordering::Equal => (take(&mut left), take(&mut right)),
            };
            let name = before.as_ref().or(after.as_ref()).map(|e| e.name.clone()).unwrap_or_default();
            self.pair(join_path(path, &name), before.map(|e| e.entry().clone()), after.map(|e| e.entry().clone()))?;
        }
    }
}
