//! Builds the snapshot's tree bottom-up as the sorted, depth-first walk
//! leaves each directory: the directories on the current path are open,
//! each stored (or reused) when the walk moves past it and its entry then
//! added to its parent.
//!
//! A directory whose entries all equal the parent snapshot's, in the same
//! positions and as many, takes the parent's tree ID without being encoded
//! at all. Entries are compared as they come; at the first difference the
//! equal ones before it are read back from the parent's directory and
//! encoded, so an unchanged directory costs a comparison per entry and a
//! changed one what it always cost.

use vger_format::entry::{Entry, EntryKind};
use vger_format::id::ChunkId;
use vger_format::tree::{NamesDigest, TreeEntry};

use super::parent::ParentEntry;
use crate::tree::writer::StoreFn;
use crate::tree::{dir, DirEntries, DirWriter, TreeStore};
use crate::Result;

/// A directory's own entry and the parent snapshot's entry of it.
type OwnEntry = (TreeEntry, Option<ParentEntry>);

struct OpenDir {
    path: Vec<u8>,
    /// The directory's own entry (none for the top).
    own: Option<OwnEntry>,
    /// The parent snapshot's tree ID of this directory.
    old: Option<ChunkId>,
    /// Entries so far equal to the old directory's first `same` entries;
    /// none of them encoded yet.
    same: u64,
    /// Started at the first entry that differs.
    writer: Option<DirWriter>,
}

/// See the module doc.
pub(super) struct TreeBuilder {
    /// Reads the parent snapshot's directories (none: no parent).
    parent: Option<TreeStore>,
    stack: Vec<OpenDir>,
    /// An entry of the top directory made outside the walk (the command
    /// dumps' folder), put in its place by name.
    extra_top: Option<TreeEntry>,
    /// Directories stored and directories reused, for the log.
    written: u64,
    reused: u64,
}

impl TreeBuilder {
    pub fn new(parent: Option<(TreeStore, ChunkId)>, extra_top: Option<TreeEntry>) -> Self {
        let (store, old) = match parent {
            Some((store, root)) => (Some(store), Some(root)),
            None => (None, None),
        };
        let top = OpenDir { path: Vec::new(), own: None, old, same: 0, writer: None };
        Self { parent: store, stack: vec![top], extra_top, written: 0, reused: 0 }
    }

    /// Adds the next walked entry (`parent`: the parent snapshot's entry of
    /// the same path). Returns a warning when the walk skipped a directory
    /// above it, which is then made up with default metadata.
    pub fn add(
        &mut self,
        entry: Entry,
        parent: Option<ParentEntry>,
        store: &mut StoreFn<'_>,
    ) -> Result<Option<String>> {
        let (dir, _) = vger_fs::split_last(&entry.path);
        let dir = dir.to_vec();
        while self.stack.len() > 1 && !self.stack.last().is_some_and(|top| within(&top.path, &dir)) {
            self.close_top(store)?;
        }
        let mut warning = None;
        while self.stack.last().is_some_and(|top| top.path != dir) {
            // The walk yields each directory before its entries, so this
            // only happens if it could not (nothing to compare it with).
            let top = self.top_path();
            let rest = dir.get(top.len()..).unwrap_or_default();
            let rest = rest.strip_prefix(b"/").unwrap_or(rest);
            let part = rest.split(|b| *b == b'/').next().unwrap_or_default();
            let path = vger_format::tree::join_path(&top, part);
            warning = Some(format!(
                "{}: the walk skipped this directory; it is stored with default metadata",
                String::from_utf8_lossy(&path)
            ));
            let mut made = Entry::new(path.clone(), EntryKind::Dir);
            made.mode = 0o755;
            self.push_dir(made, None);
        }
        if entry.kind == EntryKind::Dir {
            self.push_dir(entry, parent);
        } else {
            self.put(TreeEntry::from_entry(entry, None), parent, store)?;
        }
        Ok(warning)
    }

    /// Stores every open directory; returns the top's tree ID and how many
    /// directories were written and how many reused from the parent.
    pub fn finish(mut self, store: &mut StoreFn<'_>) -> Result<(ChunkId, u64, u64)> {
        while self.stack.len() > 1 {
            self.close_top(store)?;
        }
        if let Some(extra) = self.extra_top.take() {
            self.put(extra, None, store)?;
        }
        let top = self.stack.pop().ok_or_else(|| crate::EngineError::Other("tree builder lost its top".into()))?;
        let (root, _, _) = self.close(top, store)?;
        Ok((root, self.written, self.reused))
    }

    fn top_path(&self) -> Vec<u8> {
        self.stack.last().map(|d| d.path.clone()).unwrap_or_default()
    }

    fn push_dir(&mut self, entry: Entry, parent: Option<ParentEntry>) {
        let path = entry.path.clone();
        let old = parent.as_ref().and_then(|p| p.entry.tree);
        let own = TreeEntry::from_entry(entry, None);
        self.stack.push(OpenDir { path, own: Some((own, parent)), old, same: 0, writer: None });
    }

    fn close_top(&mut self, store: &mut StoreFn<'_>) -> Result<()> {
        let Some(done) = self.stack.pop() else { return Ok(()) };
        let (id, digest, own) = self.close(done, store)?;
        if let Some((mut entry, parent)) = own {
            entry.tree = Some(id);
            entry.names_digest = digest;
            self.put(entry, parent, store)?;
        }
        Ok(())
    }

    /// Stores (or reuses) a directory: its tree ID, its names digest (a
    /// reused directory keeps the parent's, unknown if that was) and its
    /// own entry.
    fn close(
        &mut self,
        mut dir: OpenDir,
        store: &mut StoreFn<'_>,
    ) -> Result<(ChunkId, Option<NamesDigest>, Option<OwnEntry>)> {
        if dir.writer.is_none() {
            if let (Some(old), Some(parent)) = (dir.old, &self.parent) {
                if dir::len(parent, &old)? == dir.same {
                    self.reused += 1;
                    let digest = dir.own.as_ref().and_then(|(_, p)| p.as_ref()?.entry.names_digest);
                    return Ok((old, digest, dir.own));
                }
            }
            // Entries were removed at the end: write the equal ones.
            self.start_writing(&mut dir, store)?;
        }
        let writer = dir.writer.take().unwrap_or_default();
        let (id, _, digest) = writer.finish(store)?;
        self.written += 1;
        Ok((id, Some(digest), dir.own))
    }

    /// Adds an entry to the deepest open directory.
    fn put(&mut self, entry: TreeEntry, parent: Option<ParentEntry>, store: &mut StoreFn<'_>) -> Result<()> {
        if self.stack.len() == 1 && self.extra_top.as_ref().is_some_and(|x| x.name < entry.name) {
            if let Some(extra) = self.extra_top.take() {
                self.put(extra, None, store)?;
            }
        }
        let parent_store = self.parent.clone();
        let Some(dir) = self.stack.last_mut() else { return Ok(()) };
        if dir.writer.is_none() {
            let equal = dir.old.is_some()
                && parent.as_ref().is_some_and(|p| p.ordinal == dir.same && *p.entry.entry() == entry);
            if equal {
                dir.same += 1;
                return Ok(());
            }
            start_writing(parent_store.as_ref(), dir, store)?;
        }
        match &mut dir.writer {
            Some(w) => w.add(&entry, store),
            None => Ok(()),
        }
    }

    fn start_writing(&self, dir: &mut OpenDir, store: &mut StoreFn<'_>) -> Result<()> {
        start_writing(self.parent.as_ref(), dir, store)
    }
}

/// Starts encoding `dir`: the entries found equal so far are read back
/// from the parent's directory.
fn start_writing(parent: Option<&TreeStore>, dir: &mut OpenDir, store: &mut StoreFn<'_>) -> Result<()> {
    let mut writer = DirWriter::new();
    if let (Some(old), Some(parent)) = (dir.old, parent) {
        if dir.same > 0 {
            for entry in DirEntries::new(parent, &old)?.take(dir.same as usize) {
                writer.add(entry?.entry(), store)?;
            }
        }
    }
    dir.writer = Some(writer);
    Ok(())
}

fn within(dir: &[u8], path: &[u8]) -> bool {
    dir.is_empty() || path == dir || (path.starts_with(dir) && path.get(dir.len()) == Some(&b'/'))
}
