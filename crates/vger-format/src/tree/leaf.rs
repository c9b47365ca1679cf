//! Format 3 leaves (docs/format.md, section 8): the names of a leaf kept
//! apart from the rest of its entries, so that a reader looking for names
//! (`snapshot find`) reads the names block and decodes an entry's
//! metadata only when its name matches.
//!
//! ```text
//! leaf:  { "level": 0, "names": bin, "meta": bin, "digests": bin (optional) }
//! names: per entry: kind (u8) || varint name length || name
//!                   || tree ID (32 bytes, directories only) || varint meta length
//! meta:  per entry: a msgpack array, positional (see META_FIELDS)
//! digests: per directory entry: its names digest (32 bytes, all zero if unknown)
//! ```
//!
//! Varints are unsigned LEB128 (7 bits a byte, low first), at most 5 bytes.

use crate::entry::{ChunkRef, Entry, EntryKind, Xattr, MAX_ENTRY_LEN};
use crate::id::ChunkId;
use crate::tree::{bad_name, NamesDigest, TreeEntry};

/// Why a part of a leaf cannot be read (the caller names the object).
pub type Refusal = String;

/// The fields of an entry's meta array, in order. A writer leaves out
/// trailing fields that are zero, empty or nil; a reader takes a missing
/// field as zero and skips fields past these (a later version may add some).
pub const META_FIELDS: [&str; 14] = [
    "mode", "uid", "gid", "user", "group", "mtime", "ctime", "ino", "dev", "size", "chunks", "target", "rdev", "xattrs",
];

fn kind_byte(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::File => 0,
        EntryKind::Dir => 1,
        EntryKind::Symlink => 2,
        EntryKind::Hardlink => 3,
        EntryKind::Fifo => 4,
        EntryKind::Char => 5,
        EntryKind::Block => 6,
        EntryKind::Socket => 7,
    }
}

fn kind_of(byte: u8) -> Option<EntryKind> {
    Some(match byte {
        0 => EntryKind::File,
        1 => EntryKind::Dir,
        2 => EntryKind::Symlink,
        3 => EntryKind::Hardlink,
        4 => EntryKind::Fifo,
        5 => EntryKind::Char,
        6 => EntryKind::Block,
        7 => EntryKind::Socket,
        _ => return None,
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Computes a directory's [`NamesDigest`] from its entries, given in name
/// order (across all its pages).
#[derive(Default, Clone)]
pub struct NamesHasher(blake3::Hasher);

impl NamesHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next entry of the directory.
    pub fn add(&mut self, kind: EntryKind, name: &[u8]) {
        let mut head = Vec::with_capacity(6);
        head.push(kind_byte(kind));
        put_varint(&mut head, name.len() as u32);
        self.0.update(&head);
        self.0.update(name);
    }

    pub fn finish(&self) -> NamesDigest {
        NamesDigest(*self.0.finalize().as_bytes())
    }
}

/// Appends `entry`'s record to `names` and its meta array to `meta`.
pub(crate) fn encode(entry: &TreeEntry, names: &mut Vec<u8>, meta: &mut Vec<u8>) -> Result<(), Refusal> {
    if (entry.kind == EntryKind::Dir) != entry.tree.is_some() {
        return Err("only a directory has a tree, and it must".into());
    }
    let at = meta.len();
    encode_meta(entry, meta);
    let meta_len = meta.len() - at;
    if meta_len > MAX_ENTRY_LEN || entry.name.len() > MAX_ENTRY_LEN {
        meta.truncate(at);
        return Err(format!("{} bytes is over the {MAX_ENTRY_LEN}-byte limit", meta_len.max(entry.name.len())));
    }
    names.push(kind_byte(entry.kind));
    put_varint(names, entry.name.len() as u32);
    names.extend_from_slice(&entry.name);
    if let Some(tree) = &entry.tree {
        names.extend_from_slice(&tree.0);
    }
    put_varint(names, meta_len as u32);
    Ok(())
}

fn encode_meta(e: &TreeEntry, out: &mut Vec<u8>) {
    // How many fields to write: up to the last one that is not empty.
    let present = [
        e.mode != 0,
        e.uid != 0,
        e.gid != 0,
        e.user.is_some(),
        e.group.is_some(),
        e.mtime != 0,
        e.ctime != 0,
        e.ino != 0,
        e.dev != 0,
        e.size != 0,
        !e.chunks.is_empty(),
        e.target.is_some(),
        e.rdev != 0,
        !e.xattrs.is_empty(),
    ];
    let n = present.iter().rposition(|p| *p).map_or(0, |i| i + 1);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_array_len(out, n as u32);
    let opt_str = |out: &mut Vec<u8>, s: &Option<String>| match s {
        Some(s) => drop(rmp::encode::write_str(out, s)),
        None => drop(rmp::encode::write_nil(out)),
    };
    for field in 0..n {
        match field {
            0 => drop(rmp::encode::write_uint(out, e.mode.into())),
            1 => drop(rmp::encode::write_uint(out, e.uid.into())),
            2 => drop(rmp::encode::write_uint(out, e.gid.into())),
            3 => opt_str(out, &e.user),
            4 => opt_str(out, &e.group),
            5 => drop(rmp::encode::write_sint(out, e.mtime)),
            6 => drop(rmp::encode::write_sint(out, e.ctime)),
            7 => drop(rmp::encode::write_uint(out, e.ino)),
            8 => drop(rmp::encode::write_uint(out, e.dev)),
            9 => drop(rmp::encode::write_uint(out, e.size)),
            10 => {
                let _ = rmp::encode::write_array_len(out, e.chunks.len() as u32);
                for c in &e.chunks {
                    let _ = rmp::encode::write_array_len(out, 2);
                    let _ = rmp::encode::write_bin(out, &c.0 .0);
                    let _ = rmp::encode::write_uint(out, c.1.into());
                }
            }
            11 => match &e.target {
                Some(t) => drop(rmp::encode::write_bin(out, t)),
                None => drop(rmp::encode::write_nil(out)),
            },
            12 => drop(rmp::encode::write_uint(out, e.rdev)),
            _ => {
                let _ = rmp::encode::write_array_len(out, e.xattrs.len() as u32);
                for x in &e.xattrs {
                    let _ = rmp::encode::write_array_len(out, 2);
                    let _ = rmp::encode::write_bin(out, &x.0);
                    let _ = rmp::encode::write_bin(out, &x.1);
                }
            }
        }
    }
}

/// One entry of a format 3 leaf as the names block gives it: name, kind
/// and tree without the rest, which [`NameItem::entry`] decodes.
#[derive(Debug, Clone, Copy)]
pub struct NameItem<'a> {
    pub name: &'a [u8],
    pub kind: EntryKind,
    pub tree: Option<ChunkId>,
    /// A directory's names digest, if the leaf gives it.
    pub digest: Option<NamesDigest>,
    meta: &'a [u8],
}

impl NameItem<'_> {
    /// The whole entry, its meta array decoded.
    pub fn entry(&self) -> Result<TreeEntry, Refusal> {
        // A name holds no `/`: the path of a new entry becomes its name.
        let mut e = TreeEntry::from_entry(Entry::new(self.name.to_vec(), self.kind), self.tree);
        e.names_digest = self.digest;
        decode_meta(self.meta, &mut e).map_err(|why| format!("entry {:?}: {why}", e.display_name()))?;
        Ok(e)
    }
}

/// Reads the names block of a leaf whose meta block is `meta`, checking
/// what [`crate::tree::TreeNode::decode`] checks of a leaf: valid names,
/// strictly increasing, a tree on directories only, and meta lengths that
/// add up to the meta block; and that `digests`, if given, holds 32 bytes
/// for each directory entry.
pub fn scan<'a>(names: &'a [u8], meta: &'a [u8], digests: Option<&[u8]>) -> Result<Vec<NameItem<'a>>, Refusal> {
    let mut out = Vec::new();
    let mut r = Cursor { rest: names };
    let mut meta_rest = meta;
    while !r.rest.is_empty() {
        let kind_b = r.byte()?;
        let kind = kind_of(kind_b).ok_or_else(|| format!("entry kind {kind_b} is unknown"))?;
        let len = r.varint()? as usize;
        let name = r.take(len)?;
        if let Some(why) = bad_name(name) {
            return Err(format!("entry name {:?} {why}", String::from_utf8_lossy(name)));
        }
        if out.last().is_some_and(|p: &NameItem<'_>| p.name >= name) {
            return Err(format!("entry {:?} is out of order or repeated", String::from_utf8_lossy(name)));
        }
        let tree = if kind == EntryKind::Dir {
            let mut id = [0u8; 32];
            id.copy_from_slice(r.take(32)?);
            Some(ChunkId(id))
        } else {
            None
        };
        let meta_len = r.varint()? as usize;
        if meta_len > meta_rest.len() {
            return Err(format!("entry {:?}: its metadata runs past the meta block", String::from_utf8_lossy(name)));
        }
        let (m, rest) = meta_rest.split_at(meta_len);
        meta_rest = rest;
        out.push(NameItem { name, kind, tree, digest: None, meta: m });
    }
    if !meta_rest.is_empty() {
        return Err(format!("{} bytes of the meta block belong to no entry", meta_rest.len()));
    }
    if let Some(digests) = digests {
        let dirs = out.iter().filter(|i| i.tree.is_some()).count();
        if digests.len() != dirs * 32 {
            return Err(format!(
                "its digests block holds {} bytes, not 32 for each of its {dirs} directories",
                digests.len()
            ));
        }
        let mut each = digests.chunks_exact(32);
        for item in out.iter_mut().filter(|i| i.tree.is_some()) {
            let mut d = [0u8; 32];
            d.copy_from_slice(each.next().unwrap_or(&[0; 32]));
            item.digest = NamesDigest::from_stored(d);
        }
    }
    Ok(out)
}

/// A msgpack reader over a byte slice, borrowing what it returns.
struct Cursor<'a> {
    rest: &'a [u8],
}

const SHORT: &str = "ends early";

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8, Refusal> {
        let (&b, rest) = self.rest.split_first().ok_or(SHORT)?;
        self.rest = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Refusal> {
        if n > self.rest.len() {
            return Err(SHORT.into());
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }

    fn varint(&mut self) -> Result<u32, Refusal> {
        let mut v: u64 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return u32::try_from(v).map_err(|_| "a length is over 2^32".into());
            }
        }
        Err("a length takes more than 5 bytes".into())
    }

    fn be(&mut self, n: usize) -> Result<u64, Refusal> {
        Ok(self.take(n)?.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)))
    }

    fn marker(&mut self) -> Result<u8, Refusal> {
        self.byte()
    }

    /// Any integer, as i128 so that both u64 and i64 fit.
    fn int(&mut self) -> Result<i128, Refusal> {
        let m = self.marker()?;
        Ok(match m {
            0x00..=0x7f => m.into(),
            0xe0..=0xff => i128::from(m as i8),
            0xcc => self.be(1)?.into(),
            0xcd => self.be(2)?.into(),
            0xce => self.be(4)?.into(),
            0xcf => self.be(8)?.into(),
            0xd0 => i128::from(self.be(1)? as u8 as i8),
            0xd1 => i128::from(self.be(2)? as u16 as i16),
            0xd2 => i128::from(self.be(4)? as u32 as i32),
            0xd3 => i128::from(self.be(8)? as i64),
            _ => return Err(format!("expected an integer, found marker {m:#04x}")),
        })
    }

    fn uint<T: TryFrom<i128>>(&mut self) -> Result<T, Refusal> {
        let v = self.int()?;
        T::try_from(v).map_err(|_| format!("integer {v} is out of range"))
    }

    fn array_len(&mut self) -> Result<usize, Refusal> {
        let m = self.marker()?;
        let n = match m {
            0x90..=0x9f => u64::from(m & 0x0f),
            0xdc => self.be(2)?,
            0xdd => self.be(4)?,
            _ => return Err(format!("expected an array, found marker {m:#04x}")),
        };
        // Every element takes at least one byte: a longer claim is a lie.
        if n > self.rest.len() as u64 {
            return Err(format!("an array claims {n} elements in {} bytes", self.rest.len()));
        }
        Ok(n as usize)
    }

    fn is_nil(&mut self) -> bool {
        if self.rest.first() == Some(&0xc0) {
            self.rest = &self.rest[1..];
            return true;
        }
        false
    }

    /// A bin or str, borrowed.
    fn bytes(&mut self) -> Result<&'a [u8], Refusal> {
        let m = self.marker()?;
        let n = match m {
            0xa0..=0xbf => u64::from(m & 0x1f),
            0xc4 | 0xd9 => self.be(1)?,
            0xc5 | 0xda => self.be(2)?,
            0xc6 | 0xdb => self.be(4)?,
            _ => return Err(format!("expected bytes, found marker {m:#04x}")),
        };
        self.take(usize::try_from(n).map_err(|_| SHORT)?)
    }

    fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, Refusal> {
        if self.is_nil() {
            return Ok(None);
        }
        self.bytes().map(Some)
    }

    fn opt_string(&mut self) -> Result<Option<String>, Refusal> {
        match self.opt_bytes()? {
            None => Ok(None),
            Some(b) => String::from_utf8(b.to_vec()).map(Some).map_err(|_| "an owner name is not UTF-8".into()),
        }
    }

    /// Skips one value of any type (a field a later version added).
    fn skip(&mut self) -> Result<(), Refusal> {
        // Values still to skip; arrays and maps add theirs.
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let m = self.marker()?;
            let skip = |c: &mut Self, n: u64| c.take(usize::try_from(n).map_err(|_| SHORT)?).map(drop);
            match m {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => {}
                0x80..=0x8f => pending += 2 * u64::from(m & 0x0f),
                0x90..=0x9f => pending += u64::from(m & 0x0f),
                0xa0..=0xbf => skip(self, u64::from(m & 0x1f))?,
                0xcc | 0xd0 => skip(self, 1)?,
                0xcd | 0xd1 => skip(self, 2)?,
                0xce | 0xd2 | 0xca => skip(self, 4)?,
                0xcf | 0xd3 | 0xcb => skip(self, 8)?,
                0xc4 | 0xd9 => {
                    let n = self.be(1)?;
                    skip(self, n)?
                }
                0xc5 | 0xda => {
                    let n = self.be(2)?;
                    skip(self, n)?
                }
                0xc6 | 0xdb => {
                    let n = self.be(4)?;
                    skip(self, n)?
                }
                0xdc => pending += self.be(2)?,
                0xdd => pending += self.be(4)?,
                0xde => pending += 2 * self.be(2)?,
                0xdf => pending += 2 * self.be(4)?,
                0xd4 => skip(self, 2)?,
                0xd5 => skip(self, 3)?,
                0xd6 => skip(self, 5)?,
                0xd7 => skip(self, 9)?,
                0xd8 => skip(self, 17)?,
                0xc7 => {
                    let n = self.be(1)?;
                    skip(self, n + 1)?
                }
                0xc8 => {
                    let n = self.be(2)?;
                    skip(self, n + 1)?
                }
                0xc9 => {
                    let n = self.be(4)?;
                    skip(self, n + 1)?
                }
                _ => return Err(format!("marker {m:#04x} is not msgpack")),
            }
            // Every pending value takes at least a byte.
            if pending > self.rest.len() as u64 {
                return Err(SHORT.into());
            }
        }
        Ok(())
    }
}

fn decode_meta(bytes: &[u8], e: &mut TreeEntry) -> Result<(), Refusal> {
    let mut r = Cursor { rest: bytes };
    let n = r.array_len()?;
    for field in 0..n {
        match field {
            0 => e.mode = r.uint()?,
            1 => e.uid = r.uint()?,
            2 => e.gid = r.uint()?,
            3 => e.user = r.opt_string()?,
            4 => e.group = r.opt_string()?,
            5 => e.mtime = r.uint()?,
            6 => e.ctime = r.uint()?,
            7 => e.ino = r.uint()?,
            8 => e.dev = r.uint()?,
            9 => e.size = r.uint()?,
            10 => {
                let count = r.array_len()?;
                // Each chunk takes 37 bytes at least: the claim was checked
                // against the bytes left, so this allocation is bounded.
                e.chunks.reserve_exact(count);
                for _ in 0..count {
                    if r.array_len()? != 2 {
                        return Err("a chunk is not [id, length]".into());
                    }
                    let id = r.bytes()?;
                    let id: [u8; 32] = id.try_into().map_err(|_| format!("a chunk ID of {} bytes", id.len()))?;
                    e.chunks.push(ChunkRef(ChunkId(id), r.uint()?));
                }
            }
            11 => e.target = r.opt_bytes()?.map(<[u8]>::to_vec),
            12 => e.rdev = r.uint()?,
            13 => {
                let count = r.array_len()?;
                for _ in 0..count {
                    if r.array_len()? != 2 {
                        return Err("an xattr is not [name, value]".into());
                    }
                    let name = r.bytes()?.to_vec();
                    e.xattrs.push(Xattr(name, r.bytes()?.to_vec()));
                }
            }
            _ => r.skip()?,
        }
    }
    if !r.rest.is_empty() {
        return Err(format!("{} bytes after its metadata", r.rest.len()));
    }
    Ok(())
}
