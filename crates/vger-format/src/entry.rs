//! One file, directory, link or special file with its path: what the walk
//! of a backup yields and a restore writes (stored in tree objects by name,
//! see [`crate::tree`]; docs/format.md, section 8).

use serde::{Deserialize, Serialize};

use crate::id::ChunkId;
use crate::FormatError;

/// What kind of filesystem object an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A further name of a file stored earlier; `target` is that path.
    Hardlink,
    Fifo,
    Char,
    Block,
    Socket,
}

/// A chunk of file data: its ID and plaintext length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef(pub ChunkId, pub u32);

impl ChunkRef {
    pub fn id(&self) -> &ChunkId {
        &self.0
    }

    pub fn len(&self) -> u32 {
        self.1
    }

    pub fn is_empty(&self) -> bool {
        self.1 == 0
    }
}

pub(crate) fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
pub(crate) fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
pub(crate) fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

/// One file, directory, link or special file in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative path, `/`-separated raw bytes.
    #[serde(with = "serde_bytes")]
    pub path: Vec<u8>,
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
    /// Symlink target, or for hard links the path of the first name.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    pub target: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub rdev: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
}

/// An extended attribute: name and value, raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr(#[serde(with = "serde_bytes")] pub Vec<u8>, #[serde(with = "serde_bytes")] pub Vec<u8>);

pub(crate) mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_bytes(b),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let v: Option<serde_bytes::ByteBuf> = Deserialize::deserialize(d)?;
        Ok(v.map(|b| b.into_vec()))
    }
}

impl Entry {
    pub fn new(path: Vec<u8>, kind: EntryKind) -> Self {
        Entry {
            path,
            kind,
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
        }
    }

    /// Checks what a hostile or corrupt snapshot could use to escape a
    /// restore target: the path must be relative, non-empty, without `.`,
    /// `..` or empty components and without NUL bytes.
    pub fn validate_path(&self) -> Result<(), FormatError> {
        validate_relative_path(&self.path)
    }

    /// The path's components as byte slices.
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.path.split(|b| *b == b'/')
    }

    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// See [`Entry::validate_path`].
pub fn validate_relative_path(path: &[u8]) -> Result<(), FormatError> {
    let bad = |why: &str| {
        Err(FormatError::corrupt("snapshot entry", format!("path {:?} {why}", String::from_utf8_lossy(path))))
    };
    if path.is_empty() {
        return bad("is empty");
    }
    if path.contains(&0) {
        return bad("contains a NUL byte");
    }
    if path[0] == b'/' {
        return bad("is absolute");
    }
    for c in path.split(|b| *b == b'/') {
        if c.is_empty() || c == b"." || c == b".." {
            return bad("has an empty, `.` or `..` component");
        }
    }
    Ok(())
}

/// Largest encoded entry a reader accepts (xattrs included).
pub const MAX_ENTRY_LEN: usize = 64 << 20;
