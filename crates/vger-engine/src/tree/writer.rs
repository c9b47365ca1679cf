//! Writing one directory as tree objects. Entries go in by name; pages
//! are cut by a content-defined rule on names, and index nodes are built
//! above them as pages fill, so memory is one open page per level whatever
//! the size of the directory.
//!
//! The rule (docs/format.md, section 8): an item (entry or page reference)
//! ends its node when the node holds at least [`MIN_PAGE`] bytes of items
//! and the item's name hashes to a cut point; an item that would take a
//! node past [`MAX_PAGE`] starts a new one. Cut points depend on names
//! only, so adding or changing one entry of a huge directory rewrites the
//! page it lands in (and the index nodes above), not every page after it.

use vger_format::id::ChunkId;
use vger_format::tree::{
    encode_digest, encode_entry, encode_leaf, encode_node, encode_page_ref, NamesDigest, NamesHasher, PageRef,
    TreeEntry, MAX_LEVEL,
};

use crate::{EngineError, Result};

/// A node is never cut before it holds this many bytes of items ...
pub const MIN_PAGE: usize = 32 << 10;
/// ... and an item that would take it past this starts the next node (an
/// item larger than this gets a node of its own).
pub const MAX_PAGE: usize = 128 << 10;
/// Past [`MIN_PAGE`], one name in this many is a cut point: pages of about
/// 32 KiB plus 64 entries.
const CUT_ONE_IN: u16 = 64;

/// Stores one encoded tree object and returns its ID.
pub type StoreFn<'a> = dyn FnMut(&[u8]) -> Result<ChunkId> + 'a;

/// Whether an item named `name` at `level` ends its node (past the minimum).
fn is_cut_point(level: u8, name: &[u8]) -> bool {
    let hash = blake3::Hasher::new().update(&[level]).update(name).finalize();
    let b = hash.as_bytes();
    u16::from_le_bytes([b[0], b[1]]).is_multiple_of(CUT_ONE_IN)
}

/// The open node of one level.
#[derive(Default)]
struct Level {
    /// Page references, or a leaf's names block.
    items: Vec<u8>,
    /// A leaf's meta block (docs/format.md, section 8).
    meta: Vec<u8>,
    /// A leaf's digests block: its directories' names digests.
    digests: Vec<u8>,
    count: usize,
    /// Name of the first item.
    first: Vec<u8>,
    /// Entries under the items (a leaf's items are entries).
    entries: u64,
    /// Nodes this level has stored.
    stored: u64,
    /// The first node stored, until a second one shows that the level
    /// above is needed: a directory of one page has no index node.
    held: Option<PageRef>,
}

impl Level {
    /// Bytes of items in the open node (a directory entry's digest counts).
    fn size(&self) -> usize {
        self.items.len() + self.meta.len() + self.digests.len()
    }
}

/// Builds the tree objects of one directory; see the module doc.
#[derive(Default)]
pub struct DirWriter {
    levels: Vec<Level>,
    last_name: Option<Vec<u8>>,
    scratch: Vec<u8>,
    scratch_meta: Vec<u8>,
    scratch_digest: Vec<u8>,
    /// The names digest of the whole directory, as entries come in.
    names: NamesHasher,
}

impl DirWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next entry; names must strictly increase.
    pub fn add(&mut self, entry: &TreeEntry, store: &mut StoreFn<'_>) -> Result<()> {
        if self.last_name.as_ref().is_some_and(|last| last.as_slice() >= entry.name.as_slice()) {
            return Err(EngineError::Other(format!(
                "tree entries out of order: {:?} after {:?} (a bug in vger)",
                entry.display_name(),
                String::from_utf8_lossy(self.last_name.as_deref().unwrap_or_default())
            )));
        }
        self.last_name = Some(entry.name.clone());
        let mut names = std::mem::take(&mut self.scratch);
        let mut meta = std::mem::take(&mut self.scratch_meta);
        let mut digest = std::mem::take(&mut self.scratch_digest);
        names.clear();
        meta.clear();
        digest.clear();
        encode_entry(entry, &mut names, &mut meta)?;
        encode_digest(entry, &mut digest);
        self.names.add(entry.kind, &entry.name);
        let pushed = self.push(0, &entry.name, &names, &meta, &digest, 1, store);
        self.scratch = names;
        self.scratch_meta = meta;
        self.scratch_digest = digest;
        pushed
    }

    /// Stores what is left and returns the directory's tree ID, entry
    /// count and names digest (what its entry in its parent records).
    pub fn finish(mut self, store: &mut StoreFn<'_>) -> Result<(ChunkId, u64, NamesDigest)> {
        let digest = self.names.finish();
        let mut level = 0;
        loop {
            let Some(l) = self.levels.get(level) else {
                // Only an empty directory gets here: its one, empty leaf.
                let id = store(&encode_node(0, 0, &[], &[]))?;
                return Ok((id, 0, digest));
            };
            if l.count > 0 {
                self.cut(level, store)?;
            }
            if let Some(l) = self.levels.get_mut(level) {
                if l.stored == 1 {
                    if let Some(root) = l.held.take() {
                        return Ok((root.id, root.count, digest));
                    }
                }
            }
            level += 1;
        }
    }

    /// Adds an item to the open node of `level`: a page reference (`meta`
    /// and `digest` empty) or a leaf entry's name record, meta array and
    /// (for a directory) names digest.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        level: usize,
        name: &[u8],
        item: &[u8],
        meta: &[u8],
        digest: &[u8],
        entries: u64,
        store: &mut StoreFn<'_>,
    ) -> Result<()> {
        if level > usize::from(MAX_LEVEL) {
            return Err(EngineError::Other("a directory too large for the tree format".into()));
        }
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, Level::default);
        }
        let full = self
            .levels
            .get(level)
            .is_some_and(|l| l.count > 0 && l.size() + item.len() + meta.len() + digest.len() > MAX_PAGE);
        if full {
            self.cut(level, store)?;
        }
        let Some(l) = self.levels.get_mut(level) else { return Ok(()) };
        if l.count == 0 {
            l.first = name.to_vec();
        }
        l.items.extend_from_slice(item);
        l.meta.extend_from_slice(meta);
        l.digests.extend_from_slice(digest);
        l.count += 1;
        l.entries += entries;
        if l.size() >= MIN_PAGE && is_cut_point(level as u8, name) {
            self.cut(level, store)?;
        }
        Ok(())
    }

    /// Stores the open node of `level` and hands its reference up.
    fn cut(&mut self, level: usize, store: &mut StoreFn<'_>) -> Result<()> {
        let Some(l) = self.levels.get_mut(level) else { return Ok(()) };
        let node = match level {
            0 => encode_leaf(&l.items, &l.meta, &l.digests),
            _ => encode_node(level as u8, l.count, &l.items, &l.meta),
        };
        let id = store(&node)?;
        let page = PageRef { first: std::mem::take(&mut l.first), id, count: l.entries };
        l.items.clear();
        l.meta.clear();
        l.digests.clear();
        l.count = 0;
        l.entries = 0;
        l.stored += 1;
        if l.stored == 1 {
            l.held = Some(page);
            return Ok(());
        }
        let mut up = Vec::with_capacity(2);
        up.extend(l.held.take());
        up.push(page);
        for page in up {
            let mut item = Vec::new();
            encode_page_ref(&page, &mut item)?;
            self.push(level + 1, &page.first, &item, &[], &[], page.count, store)?;
        }
        Ok(())
    }
}
