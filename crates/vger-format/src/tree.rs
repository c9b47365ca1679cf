//! Tree objects (docs/format.md, section 8): a snapshot's file tree as one
//! object per directory, entries sorted by name, each subdirectory named
//! by the ID of its own object (a Merkle tree: an unchanged subtree keeps
//! its ID and is stored once).
//!
//! A large directory is split into pages (leaf nodes) under index nodes
//! that give each page's first name, entry count and ID, so that no object
//! passes [`MAX_TREE_OBJECT`] and a name is found by binary search. Levels
//! count up from the leaves, and a child must sit exactly one level below
//! its index node, so the pages of one directory cannot loop.
//!
//! This module encodes nodes and checks everything a reader relies on
//! ([`TreeNode::decode`]); fetching, caching and walking are the engine's.

use serde::{Deserialize, Serialize};

use crate::entry::{is_zero_i64, is_zero_u32, is_zero_u64, ChunkRef, Entry, EntryKind, Xattr, MAX_ENTRY_LEN};
use crate::id::ChunkId;
use crate::FormatError;

/// Largest tree object (plaintext) a reader accepts: one page may hold a
/// single entry of [`MAX_ENTRY_LEN`] (a huge file's chunk list).
pub const MAX_TREE_OBJECT: usize = MAX_ENTRY_LEN + (1 << 20);
/// Most entries a directory may claim: more than any filesystem holds in
/// one directory, small enough that counts never overflow.
pub const MAX_DIR_ENTRIES: u64 = 1 << 32;
/// Highest index level a reader accepts (four levels already address far
/// more than [`MAX_DIR_ENTRIES`] with the writer's page sizes).
pub const MAX_LEVEL: u8 = 8;

/// One entry of a directory: the fields of [`Entry`] with the entry's
/// name instead of its path, and for a subdirectory the ID of its tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    /// One path component: raw bytes, not empty, no `/` or NUL, not `.`
    /// or `..`.
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    pub kind: EntryKind,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub mode: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub uid: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Nanoseconds since the epoch.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub mtime: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub ctime: i64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub ino: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub dev: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<ChunkRef>,
    /// Symlink target, or for hard links the path (from the snapshot's
    /// root) of the first name of the file.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::entry::opt_bytes")]
    pub target: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub rdev: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
    /// The directory's tree ID (directories only, always present there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<ChunkId>,
}

impl TreeEntry {
    /// The entry of `entry` in its directory: the last component of its
    /// path becomes the name. `tree` is the directory's tree ID.
    pub fn from_entry(entry: Entry, tree: Option<ChunkId>) -> TreeEntry {
        let name = match entry.path.iter().rposition(|b| *b == b'/') {
            Some(slash) => entry.path.get(slash + 1..).unwrap_or_default().to_vec(),
            None => entry.path,
        };
        TreeEntry {
            name,
            kind: entry.kind,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            user: entry.user,
            group: entry.group,
            mtime: entry.mtime,
            ctime: entry.ctime,
            ino: entry.ino,
            dev: entry.dev,
            size: entry.size,
            chunks: entry.chunks,
            target: entry.target,
            rdev: entry.rdev,
            xattrs: entry.xattrs,
            tree,
        }
    }

    /// The entry with its full path, `parent/name` (`name` at the top).
    pub fn to_entry(&self, parent: &[u8]) -> Entry {
        self.with_path(join_path(parent, &self.name))
    }

    /// The entry with `path` (which ends with its name) as its path.
    pub fn with_path(&self, path: Vec<u8>) -> Entry {
        Entry {
            path,
            kind: self.kind,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            user: self.user.clone(),
            group: self.group.clone(),
            mtime: self.mtime,
            ctime: self.ctime,
            ino: self.ino,
            dev: self.dev,
            size: self.size,
            chunks: self.chunks.clone(),
            target: self.target.clone(),
            rdev: self.rdev,
            xattrs: self.xattrs.clone(),
        }
    }

    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// `parent/name`, or `name` when `parent` is empty (the snapshot's root).
pub fn join_path(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parent.len() + 1 + name.len());
    if !parent.is_empty() {
        out.extend_from_slice(parent);
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// Why `name` cannot be an entry's name, if it cannot.
pub fn bad_name(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.contains(&b'/') {
        Some("holds a `/`")
    } else if name.contains(&0) {
        Some("holds a NUL byte")
    } else if name == b"." || name == b".." {
        Some("is `.` or `..`")
    } else {
        None
    }
}

/// One child of an index node: a page (or a lower index node) with the
/// first name in it and how many entries it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRef {
    #[serde(with = "serde_bytes")]
    pub first: Vec<u8>,
    pub id: ChunkId,
    pub count: u64,
}

/// A decoded tree object, checked: a leaf's names are valid and strictly
/// increasing; an index node's first names strictly increase and its
/// counts are positive and add up to at most [`MAX_DIR_ENTRIES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeNode {
    /// The entries of a directory, or of one page of a large one.
    Leaf(Vec<TreeEntry>),
    /// The pages of a large directory, in order, one level up.
    Index { level: u8, pages: Vec<PageRef> },
}

/// The stored shape of both node kinds.
#[derive(Deserialize)]
struct RawNode {
    level: u8,
    #[serde(default)]
    entries: Vec<TreeEntry>,
    #[serde(default)]
    pages: Vec<PageRef>,
}

impl TreeNode {
    /// Decodes and checks tree object `id` (named in every error).
    pub fn decode(id: &ChunkId, bytes: &[u8]) -> Result<TreeNode, FormatError> {
        let what = || format!("tree object {}", id.short());
        let raw: RawNode = rmp_serde::from_slice(bytes).map_err(|e| FormatError::corrupt(what(), e))?;
        let bad = |detail: String| Err(FormatError::corrupt(what(), detail));
        if raw.level == 0 {
            if !raw.pages.is_empty() {
                return bad("a leaf lists pages".into());
            }
            let mut prev: Option<&[u8]> = None;
            for e in &raw.entries {
                if let Some(why) = bad_name(&e.name) {
                    return bad(format!("entry name {:?} {why}", e.display_name()));
                }
                if prev.is_some_and(|p| p >= e.name.as_slice()) {
                    return bad(format!("entry {:?} is out of order or repeated", e.display_name()));
                }
                if (e.kind == EntryKind::Dir) != e.tree.is_some() {
                    return bad(format!("entry {:?}: only a directory has a tree, and it must", e.display_name()));
                }
                prev = Some(&e.name);
            }
            return Ok(TreeNode::Leaf(raw.entries));
        }
        if raw.level > MAX_LEVEL {
            return bad(format!("index level {} is above the highest, {MAX_LEVEL}", raw.level));
        }
        if !raw.entries.is_empty() || raw.pages.is_empty() {
            return bad("an index node must list pages and no entries".into());
        }
        let mut total = 0u64;
        let mut prev: Option<&[u8]> = None;
        for p in &raw.pages {
            if bad_name(&p.first).is_some() || prev.is_some_and(|f| f >= p.first.as_slice()) {
                return bad(format!("page first names are invalid or out of order at {:?}", lossy(&p.first)));
            }
            total = total.saturating_add(p.count);
            if p.count == 0 || total > MAX_DIR_ENTRIES {
                return bad(format!("pages claim {total} entries (at most {MAX_DIR_ENTRIES}, none empty)"));
            }
            prev = Some(&p.first);
        }
        Ok(TreeNode::Index { level: raw.level, pages: raw.pages })
    }

    pub fn level(&self) -> u8 {
        match self {
            TreeNode::Leaf(_) => 0,
            TreeNode::Index { level, .. } => *level,
        }
    }

    /// Entries under this node (as claimed by an index node's pages).
    pub fn count(&self) -> u64 {
        match self {
            TreeNode::Leaf(e) => e.len() as u64,
            TreeNode::Index { pages, .. } => pages.iter().map(|p| p.count).sum(),
        }
    }

    /// The first name under this node.
    pub fn first(&self) -> Option<&[u8]> {
        match self {
            TreeNode::Leaf(e) => e.first().map(|e| e.name.as_slice()),
            TreeNode::Index { pages, .. } => pages.first().map(|p| p.first.as_slice()),
        }
    }

    /// The greatest name this node itself shows (a leaf's last entry, an
    /// index node's last page's first name).
    pub fn last_shown(&self) -> Option<&[u8]> {
        match self {
            TreeNode::Leaf(e) => e.last().map(|e| e.name.as_slice()),
            TreeNode::Index { pages, .. } => pages.last().map(|p| p.first.as_slice()),
        }
    }

    /// Memory the decoded node takes, roughly (for byte-bounded caches).
    pub fn weight(&self) -> usize {
        const ENTRY: usize = std::mem::size_of::<TreeEntry>();
        match self {
            TreeNode::Leaf(entries) => entries
                .iter()
                .map(|e| {
                    let xattrs: usize = e.xattrs.iter().map(|x| x.0.len() + x.1.len() + 48).sum();
                    ENTRY
                        + e.name.len()
                        + e.chunks.len() * std::mem::size_of::<ChunkRef>()
                        + e.target.as_ref().map_or(0, Vec::len)
                        + e.user.as_ref().map_or(0, String::len)
                        + e.group.as_ref().map_or(0, String::len)
                        + xattrs
                })
                .sum::<usize>()
                .max(64),
            TreeNode::Index { pages, .. } => pages.iter().map(|p| p.first.len() + 72).sum(),
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Appends one entry, encoded as a node item, to `out`.
pub fn encode_entry(entry: &TreeEntry, out: &mut Vec<u8>) -> Result<(), FormatError> {
    let at = out.len();
    rmp_serde::encode::write_named(out, entry)
        .map_err(|e| FormatError::Encode { what: "tree entry".into(), detail: e.to_string() })?;
    if out.len() - at > MAX_ENTRY_LEN {
        let len = out.len() - at;
        out.truncate(at);
        return Err(FormatError::Encode {
            what: format!("entry {:?}", entry.display_name()),
            detail: format!("{len} bytes is over the {MAX_ENTRY_LEN}-byte limit"),
        });
    }
    Ok(())
}

/// Appends one page reference, encoded as a node item, to `out`.
pub fn encode_page_ref(page: &PageRef, out: &mut Vec<u8>) -> Result<(), FormatError> {
    rmp_serde::encode::write_named(out, page)
        .map_err(|e| FormatError::Encode { what: "tree page reference".into(), detail: e.to_string() })
}

/// A whole node from `count` items encoded by [`encode_entry`] (level 0)
/// or [`encode_page_ref`] (level 1 and up), concatenated in `items`.
pub fn encode_node(level: u8, count: usize, items: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() + 32);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_map_len(&mut out, 2);
    let _ = rmp::encode::write_str(&mut out, "level");
    let _ = rmp::encode::write_uint(&mut out, u64::from(level));
    let _ = rmp::encode::write_str(&mut out, if level == 0 { "entries" } else { "pages" });
    let _ = rmp::encode::write_array_len(&mut out, count as u32);
    out.extend_from_slice(items);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(name: &[u8], kind: EntryKind) -> TreeEntry {
        let mut e = TreeEntry::from_entry(Entry::new(Vec::new(), kind), None);
        e.name = name.to_vec();
        if kind == EntryKind::Dir {
            e.tree = Some(ChunkId([9; 32]));
        }
        e
    }

    fn leaf(entries: &[TreeEntry]) -> Vec<u8> {
        let mut items = Vec::new();
        entries.iter().for_each(|e| encode_entry(e, &mut items).unwrap());
        encode_node(0, entries.len(), &items)
    }

    fn index(level: u8, pages: &[PageRef]) -> Vec<u8> {
        let mut items = Vec::new();
        pages.iter().for_each(|p| encode_page_ref(p, &mut items).unwrap());
        encode_node(level, pages.len(), &items)
    }

    const ID: ChunkId = ChunkId([1; 32]);

    #[test]
    fn a_leaf_round_trips() {
        let mut f = entry(b"caf\xe9", EntryKind::File);
        f.chunks = vec![ChunkRef(ChunkId([3; 32]), 5)];
        f.size = 5;
        f.xattrs = vec![Xattr(b"user.x".to_vec(), vec![0, 1])];
        let entries = vec![entry(b"a", EntryKind::Dir), entry(b"b", EntryKind::Symlink), f];
        assert_eq!(TreeNode::decode(&ID, &leaf(&entries)).unwrap(), TreeNode::Leaf(entries));
    }

    #[test]
    fn an_index_round_trips() {
        let pages = vec![
            PageRef { first: b"a".to_vec(), id: ChunkId([2; 32]), count: 3 },
            PageRef { first: b"m".to_vec(), id: ChunkId([3; 32]), count: 4 },
        ];
        let node = TreeNode::decode(&ID, &index(1, &pages)).unwrap();
        assert_eq!(node.count(), 7);
        assert_eq!(node, TreeNode::Index { level: 1, pages });
    }

    #[track_caller]
    fn refused(bytes: &[u8], needle: &str) {
        let err = TreeNode::decode(&ID, bytes).unwrap_err().to_string();
        assert!(err.contains("tree object 01010101") && err.contains(needle), "{err}");
    }

    #[test]
    fn hostile_leaves_are_refused() {
        for name in [&b""[..], b"a/b", b"a\0", b".", b".."] {
            refused(&leaf(&[entry(name, EntryKind::File)]), "entry name");
        }
        refused(&leaf(&[entry(b"b", EntryKind::File), entry(b"a", EntryKind::File)]), "out of order");
        refused(&leaf(&[entry(b"a", EntryKind::File), entry(b"a", EntryKind::File)]), "repeated");
        let mut d = entry(b"d", EntryKind::Dir);
        d.tree = None;
        refused(&leaf(&[d]), "only a directory has a tree");
        let mut f = entry(b"f", EntryKind::File);
        f.tree = Some(ID);
        refused(&leaf(&[f]), "only a directory has a tree");
    }

    #[test]
    fn hostile_indexes_are_refused() {
        let page = |first: &[u8], count| PageRef { first: first.to_vec(), id: ChunkId([2; 32]), count };
        refused(&index(1, &[page(b"b", 1), page(b"a", 1)]), "out of order");
        refused(&index(1, &[]), "must list pages");
        refused(&index(1, &[page(b"a", 1 << 40)]), "claim");
        refused(&index(1, &[page(b"a", u64::MAX), page(b"b", u64::MAX)]), "claim");
        refused(&index(1, &[page(b"a", 0)]), "none empty");
        refused(&index(MAX_LEVEL + 1, &[page(b"a", 1)]), "level");
        refused(b"\x93\x01\x02\x03", "corrupt");
    }
}
