//! Reading one directory from its tree objects: a name lookup is a binary
//! search down the index nodes; listing streams the pages in order. Every
//! step down checks the child against what its index node claims (level,
//! first name, entry count, and that its names stay below the next page's
//! first name), so a hostile tree is refused with the object named, never
//! followed into a loop or a page out of order.

use std::sync::Arc;

use vger_format::entry::EntryKind;
use vger_format::id::ChunkId;
use vger_format::tree::{scan_node, NameItem, PageRef, Scanned, TreeEntry, TreeNode};
use vger_format::FormatError;

use super::store::TreeStore;
use crate::Result;

/// Stands in for an entry outside a page, which [`EntryRef`] never
/// points at (it is only made from a position inside a leaf).
static NO_ENTRY: TreeEntry = TreeEntry {
    name: Vec::new(),
    kind: EntryKind::File,
    mode: 0,
    uid: 0,
    gid: 0,
    user: None,
    group: None,
    mtime: 0,
    ctime: 0,
    ino: 0,
    dev: 0,
    size: 0,
    chunks: Vec::new(),
    target: None,
    rdev: 0,
    xattrs: Vec::new(),
    tree: None,
    names_digest: None,
};

/// One entry of a directory, shared with the cached page that holds it
/// (cloning it costs a reference count, not a copy).
#[derive(Clone)]
pub struct EntryRef {
    page: Arc<TreeNode>,
    position: usize,
}

impl EntryRef {
    pub fn entry(&self) -> &TreeEntry {
        match &*self.page {
            TreeNode::Leaf(entries) => entries.get(self.position).unwrap_or(&NO_ENTRY),
            TreeNode::Index { .. } => &NO_ENTRY,
        }
    }
}

impl std::ops::Deref for EntryRef {
    type Target = TreeEntry;

    fn deref(&self) -> &TreeEntry {
        self.entry()
    }
}

impl std::fmt::Debug for EntryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.entry().fmt(f)
    }
}

/// Fetches the child `page` of an index node at `level` and checks it
/// against the claim; `below` is the first name of the next page, if any.
fn child(
    store: &TreeStore,
    parent: &ChunkId,
    level: u8,
    page: &PageRef,
    below: Option<&[u8]>,
) -> Result<Arc<TreeNode>> {
    let node = store.node(&page.id)?;
    let bad = |what: &str| -> Result<Arc<TreeNode>> {
        Err(FormatError::corrupt(
            format!("tree object {}", page.id.short()),
            format!("its {what} does not match what index node {} says of it", parent.short()),
        )
        .into())
    };
    if node.level() + 1 != level {
        return bad("level");
    }
    if node.first() != Some(page.first.as_slice()) {
        return bad("first name");
    }
    if node.count() != page.count {
        return bad("entry count");
    }
    if let (Some(last), Some(below)) = (node.last_shown(), below) {
        if last >= below {
            return bad("range of names (pages out of order)");
        }
    }
    Ok(node)
}

/// The entries of directory `dir` in name order, fetched a page at a time.
pub struct DirEntries {
    store: TreeStore,
    /// From the directory's top node down to the current page.
    stack: Vec<Frame>,
    failed: bool,
}

struct Frame {
    id: ChunkId,
    node: Arc<TreeNode>,
    /// The next item (entry or page) to visit.
    next: usize,
    /// Every name under this node is below this one.
    below: Option<Vec<u8>>,
}

impl DirEntries {
    /// All entries of directory `dir`.
    pub fn new(store: &TreeStore, dir: &ChunkId) -> Result<Self> {
        let node = store.node(dir)?;
        Ok(Self { store: store.clone(), stack: vec![Frame { id: *dir, node, next: 0, below: None }], failed: false })
    }

    /// All entries of directory `dir`, whose top node is `node`.
    fn from_node(store: &TreeStore, dir: &ChunkId, node: Arc<TreeNode>) -> Self {
        Self { store: store.clone(), stack: vec![Frame { id: *dir, node, next: 0, below: None }], failed: false }
    }

    /// The entries of `dir` whose names come after `after` (a page of a
    /// listing resumes from the last name it showed).
    pub fn after(store: &TreeStore, dir: &ChunkId, after: &[u8]) -> Result<Self> {
        let mut this = Self::new(store, dir)?;
        while let Some(top) = this.stack.last_mut() {
            match &*top.node {
                TreeNode::Leaf(entries) => {
                    top.next = entries.partition_point(|e| e.name.as_slice() <= after);
                    break;
                }
                TreeNode::Index { level, pages } => {
                    let i = pages.partition_point(|p| p.first.as_slice() <= after);
                    if i == 0 {
                        break; // Everything here comes after.
                    }
                    let page = pages.get(i - 1).cloned();
                    let below = pages.get(i).map(|p| p.first.clone()).or_else(|| top.below.clone());
                    let (level, parent) = (*level, top.id);
                    top.next = i;
                    let Some(page) = page else { break };
                    let node = child(store, &parent, level, &page, below.as_deref())?;
                    this.stack.push(Frame { id: page.id, node, next: 0, below });
                }
            }
        }
        Ok(this)
    }

    fn advance(&mut self) -> Result<Option<EntryRef>> {
        loop {
            let Some(top) = self.stack.last_mut() else { return Ok(None) };
            match &*top.node {
                TreeNode::Leaf(entries) => {
                    if top.next < entries.len() {
                        top.next += 1;
                        return Ok(Some(EntryRef { page: top.node.clone(), position: top.next - 1 }));
                    }
                }
                TreeNode::Index { level, pages } => {
                    if let Some(page) = pages.get(top.next) {
                        let below = pages.get(top.next + 1).map(|p| p.first.clone()).or_else(|| top.below.clone());
                        top.next += 1;
                        let (level, parent, page) = (*level, top.id, page.clone());
                        let node = child(&self.store, &parent, level, &page, below.as_deref())?;
                        self.stack.push(Frame { id: page.id, node, next: 0, below });
                        continue;
                    }
                }
            }
            self.stack.pop();
        }
    }
}

impl Iterator for DirEntries {
    type Item = Result<EntryRef>;

    fn next(&mut self) -> Option<Result<EntryRef>> {
        if self.failed {
            return None;
        }
        match self.advance() {
            Ok(e) => e.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The entry `name` of directory `dir`, by binary search.
pub fn lookup(store: &TreeStore, dir: &ChunkId, name: &[u8]) -> Result<Option<EntryRef>> {
    let mut id = *dir;
    let mut node = store.node(dir)?;
    let mut below: Option<Vec<u8>> = None;
    loop {
        let next = match &*node {
            TreeNode::Leaf(entries) => {
                return Ok(entries
                    .binary_search_by(|e| e.name.as_slice().cmp(name))
                    .ok()
                    .map(|position| EntryRef { page: node.clone(), position }));
            }
            TreeNode::Index { level, pages } => {
                let i = pages.partition_point(|p| p.first.as_slice() <= name);
                let Some(page) = i.checked_sub(1).and_then(|i| pages.get(i)) else { return Ok(None) };
                below = pages.get(i).map(|p| p.first.clone()).or(below);
                let child = child(store, &id, *level, page, below.as_deref())?;
                id = page.id;
                child
            }
        };
        node = next;
    }
}

/// How many entries directory `dir` holds (as its top node says; each page
/// is checked against it when read).
pub fn len(store: &TreeStore, dir: &ChunkId) -> Result<u64> {
    Ok(store.node(dir)?.count())
}

/// Every tree object of directory `dir`: its top node and, for a
/// directory split into pages, every index node and page under it (only
/// index nodes are fetched: their pages are named in them).
pub fn object_ids(store: &TreeStore, dir: &ChunkId) -> Result<Vec<ChunkId>> {
    let mut out = vec![*dir];
    let mut todo = vec![(*dir, store.node(dir)?)];
    while let Some((id, node)) = todo.pop() {
        if let TreeNode::Index { level, pages } = &*node {
            for (i, page) in pages.iter().enumerate() {
                out.push(page.id);
                if *level > 1 {
                    let below = pages.get(i + 1).map(|p| p.first.as_slice());
                    todo.push((page.id, child(store, &id, *level, page, below)?));
                }
            }
        }
    }
    Ok(out)
}

/// One entry as [`scan`] gives it: its name, kind and tree at once, the
/// rest decoded only if asked for.
pub enum Scan<'a> {
    /// From a leaf of format 3: the metadata is still encoded.
    Names(&'a NameItem<'a>),
    /// From a node decoded whole (format 2, or a page of a large directory).
    Entry(&'a TreeEntry),
}

impl Scan<'_> {
    pub fn name(&self) -> &[u8] {
        match self {
            Scan::Names(n) => n.name,
            Scan::Entry(e) => &e.name,
        }
    }

    pub fn kind(&self) -> EntryKind {
        match self {
            Scan::Names(n) => n.kind,
            Scan::Entry(e) => e.kind,
        }
    }

    pub fn tree(&self) -> Option<ChunkId> {
        match self {
            Scan::Names(n) => n.tree,
            Scan::Entry(e) => e.tree,
        }
    }

    /// A directory's names digest, if its leaf records it.
    pub fn names_digest(&self) -> Option<vger_format::tree::NamesDigest> {
        match self {
            Scan::Names(n) => n.digest,
            Scan::Entry(e) => e.names_digest,
        }
    }

    /// The whole entry; `dir` names the directory's object in errors.
    pub fn entry(&self, dir: &ChunkId) -> Result<std::borrow::Cow<'_, TreeEntry>> {
        match self {
            Scan::Names(n) => n
                .entry()
                .map(std::borrow::Cow::Owned)
                .map_err(|e| FormatError::corrupt(format!("tree object {}", dir.short()), e).into()),
            Scan::Entry(e) => Ok(std::borrow::Cow::Borrowed(e)),
        }
    }
}

/// Calls `visit` with every entry of directory `dir`, in name order,
/// reading a leaf's names without decoding each entry's metadata (which
/// [`Scan::entry`] decodes): what a search by name needs. The object is
/// not put in the cache (a search reads each directory once); one already
/// there is used. A directory split into pages is read page by page, each
/// decoded whole.
pub fn scan(store: &TreeStore, dir: &ChunkId, visit: &mut dyn FnMut(Scan<'_>) -> Result<()>) -> Result<()> {
    scan_with(store, dir, None, visit)
}

/// [`scan`] with the plaintext of `dir`'s top object, if already fetched
/// (see [`TreeStore::plaintexts`]).
pub fn scan_with(
    store: &TreeStore,
    dir: &ChunkId,
    plain: Option<Vec<u8>>,
    visit: &mut dyn FnMut(Scan<'_>) -> Result<()>,
) -> Result<()> {
    let node = match store.cached(dir) {
        Some(node) => node,
        None => {
            let plain = match plain {
                Some(p) => p,
                None => store.plaintext(dir)?,
            };
            match scan_node(dir, &plain)? {
                Scanned::Names(items) => return items.iter().try_for_each(|n| visit(Scan::Names(n))),
                Scanned::Node(node) => Arc::new(node),
            }
        }
    };
    if let TreeNode::Leaf(entries) = &*node {
        return entries.iter().try_for_each(|e| visit(Scan::Entry(e)));
    }
    for entry in DirEntries::from_node(store, dir, node) {
        visit(Scan::Entry(entry?.entry()))?;
    }
    Ok(())
}
