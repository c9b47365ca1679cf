//! The parent snapshot, read in step with the walk: for each path the walk
//! yields, the parent's entry of that path (if any) and its position in
//! its directory. Only the directories on the current path are open (one
//! page each), so memory does not grow with the parent's size.

use vger_format::entry::{Entry, Xattr};
use vger_format::id::ChunkId;

use super::unchanged::{is_unchanged, xattrs_unchanged, Recorded};
use super::ChangeDetection;
use crate::index::ChunkIndex;
use crate::snapshots::SnapshotInfo;
use crate::tree::{DirEntries, EntryRef, TreeStore};

/// The parent's entry of a walked path.
#[derive(Clone, Debug)]
pub(super) struct ParentEntry {
    pub entry: EntryRef,
    /// Its position in its directory (0 for the first entry).
    pub ordinal: u64,
}

/// A file the parent snapshot holds unchanged.
pub(super) struct Unchanged {
    pub chunks: Vec<vger_format::entry::ChunkRef>,
    /// The parent's xattrs of it, when the parent read them and they
    /// cannot have changed since.
    pub xattrs: Option<Vec<Xattr>>,
}

/// Reads one of the parent's directories forward, name by name.
struct Cursor {
    entries: DirEntries,
    /// The entry read but not yet passed, and its position.
    current: Option<EntryRef>,
    ordinal: u64,
    /// The last entry [`Cursor::seek`] returned (a directory the walk
    /// enters next is looked up here).
    last: Option<EntryRef>,
}

impl Cursor {
    fn seek(&mut self, name: &[u8]) -> crate::Result<Option<ParentEntry>> {
        loop {
            if self.current.is_none() {
                match self.entries.next() {
                    None => return Ok(None),
                    Some(e) => self.current = Some(e?),
                }
            }
            let Some(current) = &self.current else { return Ok(None) };
            match current.name.as_slice().cmp(name) {
                std::cmp::Ordering::Less => {
                    self.current = None;
                    self.ordinal += 1;
                }
                std::cmp::Ordering::Equal => {
                    let entry = self.current.take();
                    let ordinal = self.ordinal;
                    self.ordinal += 1;
                    self.last = entry.clone();
                    return Ok(entry.map(|entry| ParentEntry { entry, ordinal }));
                }
                std::cmp::Ordering::Greater => return Ok(None),
            }
        }
    }
}

struct OpenDir {
    path: Vec<u8>,
    /// None: the parent has no directory at this path (or it is damaged).
    cursor: Option<Cursor>,
}

pub(super) struct ParentTree {
    store: TreeStore,
    root: ChunkId,
    stack: Vec<OpenDir>,
    /// When the parent backup started (ns): its records were read then.
    read_at: i64,
    /// The parent read xattrs, so an entry without any has none.
    read_xattrs: bool,
}

fn is_within(dir: &[u8], path: &[u8]) -> bool {
    dir.is_empty() || path == dir || (path.starts_with(dir) && path.get(dir.len()) == Some(&b'/'))
}

impl ParentTree {
    pub fn new(store: TreeStore, parent: &SnapshotInfo) -> Self {
        let read_at = chrono::DateTime::parse_from_rfc3339(&parent.snapshot.time)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or(i64::MIN);
        Self { store, root: parent.snapshot.root, stack: Vec::new(), read_at, read_xattrs: parent.snapshot.xattrs }
    }

    /// The parent's tree ID of its top directory.
    pub fn root(&self) -> ChunkId {
        self.root
    }

    fn open(&self, path: Vec<u8>, tree: Option<ChunkId>) -> OpenDir {
        let cursor = tree.and_then(|id| match DirEntries::new(&self.store, &id) {
            Ok(entries) => Some(Cursor { entries, current: None, ordinal: 0, last: None }),
            Err(e) => {
                // A damaged parent only costs speed: what is below is read.
                tracing::info!("the parent snapshot's directory {:?}: {e}", String::from_utf8_lossy(&path));
                None
            }
        });
        OpenDir { path, cursor }
    }

    /// The parent's entry of `path`. Calls come in walk order.
    pub fn find(&mut self, path: &[u8]) -> Option<ParentEntry> {
        let (dir, name) = vger_fs::split_last(path);
        while self.stack.last().is_some_and(|top| !is_within(&top.path, dir)) {
            self.stack.pop();
        }
        if self.stack.is_empty() {
            let top = self.open(Vec::new(), Some(self.root));
            self.stack.push(top);
        }
        // Open the directories between the deepest open one and `dir`.
        while let Some(top) = self.stack.last_mut() {
            if top.path == dir {
                break;
            }
            let rest = dir.get(top.path.len()..).unwrap_or_default();
            let rest = rest.strip_prefix(b"/").unwrap_or(rest);
            let part = rest.split(|b| *b == b'/').next().unwrap_or_default().to_vec();
            let tree = top.cursor.as_mut().and_then(|c| {
                let last = c.last.as_ref().filter(|l| l.name == part).cloned();
                let found = match last {
                    Some(l) => Some(l),
                    None => c.seek(&part).ok().flatten().map(|p| p.entry),
                };
                found.and_then(|e| e.tree)
            });
            let sub = vger_format::tree::join_path(&top.path, &part);
            let open = self.open(sub, tree);
            self.stack.push(open);
        }
        let cursor = self.stack.last_mut()?.cursor.as_mut()?;
        match cursor.seek(name) {
            Ok(found) => found,
            Err(e) => {
                tracing::info!("the parent snapshot at {:?}: {e}", String::from_utf8_lossy(path));
                if let Some(top) = self.stack.last_mut() {
                    top.cursor = None;
                }
                None
            }
        }
    }

    /// The parent's chunks (and maybe xattrs) for the file `now` if its
    /// entry `then` shows it unchanged.
    pub fn unchanged(
        &self,
        then: &ParentEntry,
        now: &Entry,
        mode: ChangeDetection,
        index: &ChunkIndex,
    ) -> Option<Unchanged> {
        let p = then.entry.entry();
        let recorded = Recorded {
            kind: p.kind,
            size: p.size,
            mtime: p.mtime,
            ctime: p.ctime,
            ino: p.ino,
            chunks: &p.chunks,
            read_at: self.read_at,
        };
        if !is_unchanged(&recorded, now, mode, index) {
            return None;
        }
        let xattrs = (self.read_xattrs && xattrs_unchanged(&recorded, mode)).then(|| p.xattrs.clone());
        Some(Unchanged { chunks: p.chunks.clone(), xattrs })
    }
}
