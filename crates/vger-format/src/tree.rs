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
use serde_bytes::Bytes;

use crate::entry::{is_zero_i64, is_zero_u32, is_zero_u64, ChunkRef, Entry, EntryKind, Xattr, MAX_ENTRY_LEN};
use crate::id::ChunkId;
use crate::FormatError;

mod leaf;
pub use leaf::{NameItem, NamesHasher, META_FIELDS};

/// The **names digest** of a directory (docs/format.md, section 8): BLAKE3
/// over `kind || varint name length || name` of each of its entries, in
/// name order across all its pages. Kept beside a subdirectory's tree ID in
/// its parent (the leaf's optional `digests` block), so that a search by
/// name can tell that a directory changed in content only. Equal digests
/// mean equal lists of names and kinds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NamesDigest(pub [u8; 32]);

impl NamesDigest {
    /// The digest as stored: all zero stands for "unknown".
    pub fn stored(digest: Option<&NamesDigest>) -> [u8; 32] {
        digest.map_or([0; 32], |d| d.0)
    }

    /// A stored digest: none if it is all zero (unknown).
    pub fn from_stored(bytes: [u8; 32]) -> Option<NamesDigest> {
        (bytes != [0; 32]).then_some(NamesDigest(bytes))
    }
}

impl std::fmt::Debug for NamesDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex: String = self.0.iter().take(8).map(|b| format!("{b:02x}")).collect();
        write!(f, "NamesDigest({hex}…)")
    }
}

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
    /// The directory's names digest ([`NamesDigest`]; directories only),
    /// none when unknown (format 2, or a format 3 leaf without `digests`).
    #[serde(skip)]
    pub names_digest: Option<NamesDigest>,
}

impl TreeEntry {
    /// The entry of `entry` in its directory: the last component of its
    /// path becomes the name. `tree` is the directory's tree ID.
    pub fn from_entry(entry: Entry, tree: Option<ChunkId>) -> TreeEntry {
        // The path's own buffer becomes the name (no allocation per entry).
        let mut name = entry.path;
        if let Some(slash) = name.iter().rposition(|b| *b == b'/') {
            name.drain(..=slash);
        }
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
            names_digest: None,
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

/// The stored shape of both node kinds: a leaf of format 3 has `names`
/// and `meta`, one of format 2 `entries`.
#[derive(Deserialize)]
struct RawNode<'a> {
    level: u8,
    #[serde(default)]
    entries: Vec<TreeEntry>,
    #[serde(default)]
    pages: Vec<PageRef>,
    #[serde(default, borrow)]
    names: Option<&'a Bytes>,
    #[serde(default, borrow)]
    meta: Option<&'a Bytes>,
    #[serde(default, borrow)]
    digests: Option<&'a Bytes>,
}

/// A tree object read for its names: a format 3 leaf's entries without
/// their metadata (decoded by [`NameItem::entry`] when wanted), or any
/// other node decoded whole.
#[derive(Debug)]
pub enum Scanned<'a> {
    Names(Vec<NameItem<'a>>),
    Node(TreeNode),
}

/// Reads tree object `id` for its names; see [`Scanned`]. Checks what
/// [`TreeNode::decode`] checks, but the metadata of each entry.
pub fn scan_node<'a>(id: &ChunkId, bytes: &'a [u8]) -> Result<Scanned<'a>, FormatError> {
    let what = || format!("tree object {}", id.short());
    let raw: RawNode<'a> = rmp_serde::from_slice(bytes).map_err(|e| FormatError::corrupt(what(), e))?;
    match (raw.names, raw.meta) {
        (Some(names), Some(meta)) if raw.level == 0 => {
            if !raw.entries.is_empty() || !raw.pages.is_empty() {
                return Err(FormatError::corrupt(what(), "a leaf of names also lists entries or pages"));
            }
            let digests = raw.digests.map(|d| &d[..]);
            leaf::scan(names, meta, digests).map(Scanned::Names).map_err(|e| FormatError::corrupt(what(), e))
        }
        (None, None) if raw.digests.is_some() => {
            Err(FormatError::corrupt(what(), "a node has a digests block but no names block"))
        }
        (None, None) => TreeNode::checked(id, raw).map(Scanned::Node),
        _ => Err(FormatError::corrupt(
            what(),
            "a node has a names or meta block where it may not, or one without the other",
        )),
    }
}

impl TreeNode {
    /// Decodes and checks tree object `id` (named in every error).
    pub fn decode(id: &ChunkId, bytes: &[u8]) -> Result<TreeNode, FormatError> {
        match scan_node(id, bytes)? {
            Scanned::Node(node) => Ok(node),
            Scanned::Names(items) => items
                .iter()
                .map(NameItem::entry)
                .collect::<Result<Vec<_>, _>>()
                .map(TreeNode::Leaf)
                .map_err(|e| FormatError::corrupt(format!("tree object {}", id.short()), e)),
        }
    }

    /// Checks a node of format 2 (or an index node).
    fn checked(id: &ChunkId, raw: RawNode<'_>) -> Result<TreeNode, FormatError> {
        let what = || format!("tree object {}", id.short());
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

/// Appends one entry of a leaf: its name record to `names` and its
/// metadata to `meta` (format 3; docs/format.md, section 8).
pub fn encode_entry(entry: &TreeEntry, names: &mut Vec<u8>, meta: &mut Vec<u8>) -> Result<(), FormatError> {
    leaf::encode(entry, names, meta)
        .map_err(|detail| FormatError::Encode { what: format!("entry {:?}", entry.display_name()), detail })
}

/// Appends the names digest of `entry` to a leaf's `digests` block: 32
/// bytes for a directory (all zero if unknown), nothing for other kinds.
pub fn encode_digest(entry: &TreeEntry, digests: &mut Vec<u8>) {
    if entry.kind == EntryKind::Dir {
        digests.extend_from_slice(&NamesDigest::stored(entry.names_digest.as_ref()));
    }
}

/// Appends one page reference, encoded as a node item, to `out`.
pub fn encode_page_ref(page: &PageRef, out: &mut Vec<u8>) -> Result<(), FormatError> {
    rmp_serde::encode::write_named(out, page)
        .map_err(|e| FormatError::Encode { what: "tree page reference".into(), detail: e.to_string() })
}

/// A whole node: a leaf (level 0) from the `names` and `meta` blocks of
/// its entries ([`encode_entry`]), or an index node from `count` items
/// encoded by [`encode_page_ref`] and concatenated in `names` (`meta` is
/// then empty).
pub fn encode_node(level: u8, count: usize, names: &[u8], meta: &[u8]) -> Vec<u8> {
    if level == 0 {
        return encode_leaf(names, meta, &[]);
    }
    let mut out = Vec::with_capacity(names.len() + 32);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_map_len(&mut out, 2);
    let _ = rmp::encode::write_str(&mut out, "level");
    let _ = rmp::encode::write_uint(&mut out, u64::from(level));
    let _ = rmp::encode::write_str(&mut out, "pages");
    let _ = rmp::encode::write_array_len(&mut out, count as u32);
    out.extend_from_slice(names);
    out
}

/// A leaf from its `names` and `meta` blocks ([`encode_entry`]) and its
/// `digests` block ([`encode_digest`]), left out when empty or all zero
/// (no digest known).
pub fn encode_leaf(names: &[u8], meta: &[u8], digests: &[u8]) -> Vec<u8> {
    let with_digests = digests.iter().any(|b| *b != 0);
    let mut out = Vec::with_capacity(names.len() + meta.len() + digests.len() + 48);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_map_len(&mut out, if with_digests { 4 } else { 3 });
    let _ = rmp::encode::write_str(&mut out, "level");
    let _ = rmp::encode::write_uint(&mut out, 0);
    let _ = rmp::encode::write_str(&mut out, "names");
    let _ = rmp::encode::write_bin(&mut out, names);
    let _ = rmp::encode::write_str(&mut out, "meta");
    let _ = rmp::encode::write_bin(&mut out, meta);
    if with_digests {
        let _ = rmp::encode::write_str(&mut out, "digests");
        let _ = rmp::encode::write_bin(&mut out, digests);
    }
    out
}

/// A leaf of format 2 holding `entries` (entries as msgpack maps with
/// named fields): vger no longer writes it, tests and fuzz seeds use it to
/// check that it still reads.
pub fn encode_leaf_v2(entries: &[TreeEntry]) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    let _ = rmp::encode::write_map_len(&mut out, 2);
    let _ = rmp::encode::write_str(&mut out, "level");
    let _ = rmp::encode::write_uint(&mut out, 0);
    let _ = rmp::encode::write_str(&mut out, "entries");
    let _ = rmp::encode::write_array_len(&mut out, entries.len() as u32);
    for e in entries {
        rmp_serde::encode::write_named(&mut out, e).map_err(|err| FormatError::Encode {
            what: format!("entry {:?}", e.display_name()),
            detail: err.to_string(),
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.
    use super::*;

    #[test]
    fn an_entry_is_named_by_the_last_component_of_its_path() {
        for (path, name) in [(&b"a/bb/ccc"[..], &b"ccc"[..]), (b"top", b"top"), (b"", b""), (b"dir/", b"")] {
            let e = TreeEntry::from_entry(Entry::new(path.to_vec(), EntryKind::File), None);
            assert_eq!(e.name, name, "{:?}", String::from_utf8_lossy(path));
        }
    }

    fn entry(name: &[u8], kind: EntryKind) -> TreeEntry {
        let mut e = TreeEntry::from_entry(Entry::new(Vec::new(), kind), None);
        e.name = name.to_vec();
        if kind == EntryKind::Dir {
            e.tree = Some(ChunkId([9; 32]));
        }
        e
    }

    fn leaf(entries: &[TreeEntry]) -> Vec<u8> {
        let (mut names, mut meta) = (Vec::new(), Vec::new());
        entries.iter().for_each(|e| encode_entry(e, &mut names, &mut meta).unwrap());
        encode_node(0, entries.len(), &names, &meta)
    }

    fn index(level: u8, pages: &[PageRef]) -> Vec<u8> {
        let mut items = Vec::new();
        pages.iter().for_each(|p| encode_page_ref(p, &mut items).unwrap());
        encode_node(level, pages.len(), &items, &[])
    }

    fn full_entry() -> TreeEntry {
        let mut f = entry(b"caf\xe9", EntryKind::File);
        f.chunks = vec![ChunkRef(ChunkId([3; 32]), 5), ChunkRef(ChunkId([4; 32]), u32::MAX)];
        f.size = 5 + u64::from(u32::MAX);
        f.mode = 0o4755;
        (f.uid, f.gid) = (1000, u32::MAX);
        (f.user, f.group) = (Some("me".into()), Some("staff".into()));
        (f.mtime, f.ctime) = (-1_234_567_890_123, i64::MAX);
        (f.ino, f.dev, f.rdev) = (u64::MAX, 7, 0);
        f.target = Some(b"t".to_vec());
        f.xattrs = vec![Xattr(b"user.x".to_vec(), vec![0, 1]), Xattr(b"user.y".to_vec(), Vec::new())];
        f
    }

    const ID: ChunkId = ChunkId([1; 32]);

    #[test]
    fn a_leaf_round_trips() {
        let mut c = entry(b"c", EntryKind::Char);
        c.rdev = 0x0801;
        let entries = vec![entry(b"a", EntryKind::Dir), entry(b"b", EntryKind::Symlink), c, full_entry()];
        assert_eq!(TreeNode::decode(&ID, &leaf(&entries)).unwrap(), TreeNode::Leaf(entries.clone()));
        // Read for names: the same names, kinds and trees, and each entry whole on demand.
        let bytes = leaf(&entries);
        let Scanned::Names(items) = scan_node(&ID, &bytes).unwrap() else { panic!("not scanned as names") };
        assert_eq!(items.len(), entries.len());
        for (item, e) in items.iter().zip(&entries) {
            assert_eq!((item.name, item.kind, item.tree), (e.name.as_slice(), e.kind, e.tree));
            assert_eq!(&item.entry().unwrap(), e);
        }
        assert_eq!(TreeNode::decode(&ID, &leaf(&[])).unwrap(), TreeNode::Leaf(Vec::new()));
    }

    fn leaf_with_digests(entries: &[TreeEntry]) -> Vec<u8> {
        let (mut names, mut meta, mut digests) = (Vec::new(), Vec::new(), Vec::new());
        for e in entries {
            encode_entry(e, &mut names, &mut meta).unwrap();
            encode_digest(e, &mut digests);
        }
        encode_leaf(&names, &meta, &digests)
    }

    /// A leaf map with `digests` set to `digests` whatever the entries.
    fn leaf_claiming(entries: &[TreeEntry], digests: &[u8]) -> Vec<u8> {
        let (mut names, mut meta) = (Vec::new(), Vec::new());
        entries.iter().for_each(|e| encode_entry(e, &mut names, &mut meta).unwrap());
        let mut out = Vec::new();
        rmp::encode::write_map_len(&mut out, 4).unwrap();
        rmp::encode::write_str(&mut out, "level").unwrap();
        rmp::encode::write_uint(&mut out, 0).unwrap();
        rmp::encode::write_str(&mut out, "names").unwrap();
        rmp::encode::write_bin(&mut out, &names).unwrap();
        rmp::encode::write_str(&mut out, "meta").unwrap();
        rmp::encode::write_bin(&mut out, &meta).unwrap();
        rmp::encode::write_str(&mut out, "digests").unwrap();
        rmp::encode::write_bin(&mut out, digests).unwrap();
        out
    }

    #[test]
    fn a_leaf_with_digests_round_trips() {
        let mut a = entry(b"a", EntryKind::Dir);
        a.names_digest = Some(NamesDigest([7; 32]));
        let unknown = entry(b"b", EntryKind::Dir);
        let mut c = entry(b"c", EntryKind::Dir);
        c.names_digest = Some(NamesDigest([8; 32]));
        let entries = vec![a, unknown, c, full_entry(), entry(b"d", EntryKind::File)];
        let bytes = leaf_with_digests(&entries);
        assert_ne!(bytes, leaf(&entries), "the digests are stored");
        assert_eq!(TreeNode::decode(&ID, &bytes).unwrap(), TreeNode::Leaf(entries.clone()));
        let Scanned::Names(items) = scan_node(&ID, &bytes).unwrap() else { panic!("not scanned as names") };
        let digests: Vec<_> = items.iter().map(|i| i.digest).collect();
        assert_eq!(digests, [Some(NamesDigest([7; 32])), None, Some(NamesDigest([8; 32])), None, None]);
        // No digest known: the key is left out, and the leaf is the plain one.
        let plain = vec![entry(b"a", EntryKind::Dir), entry(b"f", EntryKind::File)];
        assert_eq!(leaf_with_digests(&plain), leaf(&plain));
        // A leaf without the key (as format 3 was first written): unknown.
        let TreeNode::Leaf(read) = TreeNode::decode(&ID, &leaf(&entries)).unwrap() else { panic!("not a leaf") };
        assert!(read.iter().all(|e| e.names_digest.is_none()));
        // An empty digests block on a leaf with no directory is fine.
        let files = [entry(b"f", EntryKind::File)];
        assert_eq!(TreeNode::decode(&ID, &leaf_claiming(&files, &[])).unwrap(), TreeNode::Leaf(files.to_vec()));
    }

    #[test]
    fn digests_of_the_wrong_length_are_refused() {
        let entries = [entry(b"a", EntryKind::Dir), entry(b"b", EntryKind::File), entry(b"c", EntryKind::Dir)];
        for len in [0, 32, 33, 63, 96] {
            let bytes = leaf_claiming(&entries, &vec![1; len]);
            refused(&bytes, &format!("digests block holds {len} bytes, not 32 for each of its 2 directories"));
            let err = scan_node(&ID, &bytes).unwrap_err().to_string();
            assert!(err.contains("tree object 01010101"), "{err}");
        }
        assert!(TreeNode::decode(&ID, &leaf_claiming(&entries, &[1; 64])).is_ok());
        // A digests block on an index node, or without names.
        let mut idx = Vec::new();
        rmp::encode::write_map_len(&mut idx, 3).unwrap();
        rmp::encode::write_str(&mut idx, "level").unwrap();
        rmp::encode::write_uint(&mut idx, 1).unwrap();
        rmp::encode::write_str(&mut idx, "pages").unwrap();
        rmp::encode::write_array_len(&mut idx, 1).unwrap();
        encode_page_ref(&PageRef { first: b"a".to_vec(), id: ID, count: 1 }, &mut idx).unwrap();
        rmp::encode::write_str(&mut idx, "digests").unwrap();
        rmp::encode::write_bin(&mut idx, &[]).unwrap();
        refused(&idx, "digests block but no names");
    }

    /// The digest is BLAKE3 of `kind || varint name length || name` for
    /// each entry (docs/format.md, section 8).
    #[test]
    fn the_names_digest_is_as_documented() {
        assert_eq!(NamesHasher::new().finish().0, *blake3::hash(b"").as_bytes());
        let mut h = NamesHasher::new();
        h.add(EntryKind::Dir, b"bin");
        h.add(EntryKind::File, &[b'x'; 200]);
        let mut expect = vec![1, 3, b'b', b'i', b'n', 0, 0xc8, 0x01];
        expect.extend_from_slice(&[b'x'; 200]);
        assert_eq!(h.finish().0, *blake3::hash(&expect).as_bytes());
    }

    #[test]
    fn a_format_2_leaf_still_reads() {
        let entries = vec![entry(b"a", EntryKind::Dir), entry(b"b", EntryKind::Symlink), full_entry()];
        let bytes = encode_leaf_v2(&entries).unwrap();
        assert_eq!(TreeNode::decode(&ID, &bytes).unwrap(), TreeNode::Leaf(entries.clone()));
        assert!(matches!(scan_node(&ID, &bytes).unwrap(), Scanned::Node(TreeNode::Leaf(e)) if e == entries));
        refused(
            &encode_leaf_v2(&[entry(b"b", EntryKind::File), entry(b"a", EntryKind::File)]).unwrap(),
            "out of order",
        );
    }

    /// Meta arrays with fields a later version added, or fewer fields.
    #[test]
    fn meta_arrays_may_be_longer_or_shorter() {
        // [mode, uid, gid, nil, nil, mtime, 0, 0, 0, 0, [], nil, 0, [], {"new": [1, "x"]}, 3.5]
        let mut meta = b"\xdc\x00\x10\xcd\x01\xa4\x01\x02\xc0\xc0\x05\x00\x00\x00\x00\x90\xc0\x00\x90".to_vec();
        meta.extend_from_slice(b"\x81\xa3new\x92\x01\xa1x\xcb\x40\x0c\x00\x00\x00\x00\x00\x00");
        let names = [0, 1, b'f', meta.len() as u8];
        let TreeNode::Leaf(e) = TreeNode::decode(&ID, &encode_node(0, 1, &names, &meta)).unwrap() else {
            panic!("not a leaf")
        };
        assert_eq!((e[0].mode, e[0].uid, e[0].gid, e[0].mtime, e[0].size), (0o644, 1, 2, 5, 0));
        // An empty meta array: every field zero.
        let e = TreeNode::decode(&ID, &encode_node(0, 1, &[0, 1, b'f', 1], b"\x90")).unwrap();
        assert_eq!(e, TreeNode::Leaf(vec![entry(b"f", EntryKind::File)]));
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
        // Format 3 cannot say it (the kind decides whether a tree follows
        // the name); format 2 can, and is refused.
        let mut d = entry(b"d", EntryKind::Dir);
        d.tree = None;
        let mut f = entry(b"f", EntryKind::File);
        f.tree = Some(ID);
        for e in [d, f] {
            refused(&encode_leaf_v2(std::slice::from_ref(&e)).unwrap(), "only a directory has a tree");
            let err = encode_entry(&e, &mut Vec::new(), &mut Vec::new()).unwrap_err().to_string();
            assert!(err.contains("only a directory has a tree"), "{err}");
        }
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

    #[test]
    fn hostile_name_and_meta_blocks_are_refused() {
        let node = |names: &[u8], meta: &[u8]| encode_node(0, 0, names, meta);
        refused(&node(&[9, 1, b'a', 0], &[]), "kind 9 is unknown");
        refused(&node(&[0, 5, b'a'], &[]), "ends early");
        refused(&node(&[0, 1, b'a', 1], &[]), "runs past the meta block");
        refused(&node(&[0, 1, b'a', 1], b"\x90\x90"), "belong to no entry");
        refused(&node(&[0, 1, b'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &[]), "more than 5 bytes");
        refused(&node(&[1, 1, b'd', 1], b"\x90"), "ends early"); // a directory without its tree
                                                                 // One file `a` with this meta array.
        let one = |meta: &[u8]| node(&[0, 1, b'a', meta.len() as u8], meta);
        refused(&one(b"\xc0"), "expected an array");
        refused(&one(b"\x91\xcf\x01"), "ends early");
        refused(&one(b"\x91\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), "out of range");
        refused(&one(b"\x9b\x00\x00\x00\xc0\xc0\x00\x00\x00\x00\x00\xdd"), "ends early");
        refused(&one(b"\x91\xdd\xff\xff\xff\xff"), "expected an integer");
        // A chunk list claiming 2^32-1 chunks in a few bytes.
        refused(
            &one(b"\x9b\x00\x00\x00\xc0\xc0\x00\x00\x00\x00\x00\xdd\xff\xff\xff\xff\x90\x90"),
            "claims 4294967295 elements",
        );
        refused(&one(b"\x9b\x00\x00\x00\xc0\xc0\x00\x00\x00\x00\x00\x91\x92\xc4\x01\x00\x01"), "chunk ID of 1 bytes");
        refused(&one(b"\x94\x00\x00\x00\xa1\xff"), "not UTF-8");
        refused(&one(b"\x91\x00\x00"), "1 bytes after its metadata");
        refused(&one(b"\x9f\x00\x00\x00\xc0\xc0\x00\x00\x00\x00\x00\x90\xc0\x00\x90\xc1"), "not msgpack");
        refused(&node(&[0, 1, b'b', 1, 0, 1, b'a', 1], b"\x90\x90"), "out of order");
        refused(&node(&[0, 1, b'/', 1], b"\x90"), "entry name");
        refused(&one(b"\x94\x00\x00\x00"), "claims 4 elements in 3 bytes");
        // Names and meta on an index node, or a names block without meta.
        let mut half = Vec::new();
        rmp::encode::write_map_len(&mut half, 2).unwrap();
        rmp::encode::write_str(&mut half, "level").unwrap();
        rmp::encode::write_uint(&mut half, 0).unwrap();
        rmp::encode::write_str(&mut half, "names").unwrap();
        rmp::encode::write_bin(&mut half, &[]).unwrap();
        refused(&half, "without the other");
    }
}
