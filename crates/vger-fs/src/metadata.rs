//! Turning what `lstat` says about a path into a snapshot [`Entry`].

use std::fs::{self, File, FileType, Metadata};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use vger_format::entry::{Entry, EntryKind, Xattr};

use crate::owners::OwnerNames;

/// The entry kind of a file type (`File` for regular files; the walker
/// decides which names of a multiply linked file become `Hardlink`).
pub fn kind_of(ft: FileType) -> EntryKind {
    if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_char_device() {
        EntryKind::Char
    } else if ft.is_block_device() {
        EntryKind::Block
    } else if ft.is_socket() {
        EntryKind::Socket
    } else {
        EntryKind::File
    }
}

/// Seconds and nanoseconds as nanoseconds since the epoch.
fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// What `lstat` says of a path, as much as an [`Entry`] needs. The walk
/// takes it with `fstatat` relative to the open directory it lists (one
/// name to look up, not every component of the path again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Nanoseconds since the epoch.
    pub mtime: i64,
    pub ctime: i64,
    pub ino: u64,
    pub dev: u64,
    pub size: u64,
    pub rdev: u64,
    pub nlink: u64,
}

impl Stat {
    pub fn of(md: &Metadata) -> Self {
        Stat {
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            mtime: nanos(md.mtime(), md.mtime_nsec()),
            ctime: nanos(md.ctime(), md.ctime_nsec()),
            ino: md.ino(),
            dev: md.dev(),
            size: md.size(),
            rdev: md.rdev(),
            nlink: md.nlink(),
        }
    }

    /// `lstat` of `name` in the open directory `dir`.
    pub fn at(dir: &File, name: &[u8]) -> io::Result<Self> {
        Ok(Self::of_raw(&rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?))
    }

    // The field types differ between targets (st_nlink is u32 on some).
    #[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
    fn of_raw(st: &rustix::fs::Stat) -> Self {
        let ns = |secs, nsec| nanos(i64::from(secs), i64::try_from(nsec).unwrap_or(0));
        Stat {
            mode: u32::from(st.st_mode),
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: ns(st.st_mtime, st.st_mtime_nsec),
            ctime: ns(st.st_ctime, st.st_ctime_nsec),
            ino: u64::from(st.st_ino),
            dev: u64::from(st.st_dev),
            size: u64::try_from(st.st_size).unwrap_or(0),
            rdev: u64::from(st.st_rdev),
            nlink: u64::from(st.st_nlink),
        }
    }

    fn format(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    pub fn is_dir(&self) -> bool {
        self.format() == libc::S_IFDIR
    }

    pub fn is_file(&self) -> bool {
        self.format() == libc::S_IFREG
    }

    fn kind(&self) -> EntryKind {
        match self.format() {
            libc::S_IFDIR => EntryKind::Dir,
            libc::S_IFLNK => EntryKind::Symlink,
            libc::S_IFIFO => EntryKind::Fifo,
            libc::S_IFCHR => EntryKind::Char,
            libc::S_IFBLK => EntryKind::Block,
            libc::S_IFSOCK => EntryKind::Socket,
            _ => EntryKind::File,
        }
    }
}

/// What the walk holds open around an entry: [`entry_from_stat`] reads
/// through these descriptors where it can instead of looking the whole
/// path up again.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Opened<'a> {
    /// The entry itself, when it is a directory the walk opened to list:
    /// its xattrs are read through it.
    pub dir: Option<&'a File>,
    /// The open directory the entry is in, and its name there: a symlink's
    /// target is read relative to it.
    pub parent: Option<(&'a File, &'a [u8])>,
}

/// Builds the entry for `abs` (stored at `rel`) from its `lstat` metadata:
/// everything but the chunks. Reads the symlink target, and the xattrs when
/// `xattrs` is set (an unreadable xattr is left out, not an error).
pub fn entry_from_metadata(
    rel: Vec<u8>,
    abs: &Path,
    md: &Metadata,
    owners: &mut OwnerNames,
    xattrs: bool,
) -> io::Result<Entry> {
    entry_from_stat(rel, abs, &Stat::of(md), Opened::default(), owners, xattrs)
}

/// [`entry_from_metadata`] from a [`Stat`], through what `at` holds open.
pub(crate) fn entry_from_stat(
    rel: Vec<u8>,
    abs: &Path,
    st: &Stat,
    at: Opened<'_>,
    owners: &mut OwnerNames,
    xattrs: bool,
) -> io::Result<Entry> {
    let kind = st.kind();
    let mut e = Entry::new(rel, kind);
    e.mode = st.mode & 0o7777;
    e.uid = st.uid;
    e.gid = st.gid;
    e.user = owners.user(e.uid);
    e.group = owners.group(e.gid);
    e.mtime = st.mtime;
    e.ctime = st.ctime;
    e.ino = st.ino;
    e.dev = st.dev;
    match kind {
        EntryKind::File => e.size = st.size,
        EntryKind::Symlink => {
            e.target = Some(match at.parent {
                Some((dir, name)) => rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes(),
                None => fs::read_link(abs)?.into_os_string().into_vec(),
            })
        }
        EntryKind::Char | EntryKind::Block => e.rdev = st.rdev,
        _ => {}
    }
    if xattrs {
        // Other entries by path: Linux before 6.13 has no `llistxattrat`,
        // and opening a file only for its xattrs costs more than the lookup.
        e.xattrs = match at.dir {
            Some(dir) => read_xattrs_of(dir).unwrap_or_default(),
            None => read_xattrs(abs),
        };
    }
    Ok(e)
}

/// The extended attributes of `abs` itself (symlinks are not followed),
/// sorted by name. Attributes that cannot be read are skipped: a backup
/// should not fail because one security label is unreadable.
pub fn read_xattrs(abs: &Path) -> Vec<Xattr> {
    let Ok(names) = xattr::list(abs) else {
        return Vec::new();
    };
    collect_xattrs(names, |name| xattr::get(abs, name))
}

/// The extended attributes of an open file, sorted by name, as
/// [`read_xattrs`] reads them by path: through the descriptor the kernel
/// need not look the path up again. An attribute that cannot be read is
/// skipped; a file system without extended attributes gives none, with
/// the error (`ENOTSUP`) that [`XattrSupport`] remembers.
fn read_xattrs_of(file: &File) -> io::Result<Vec<Xattr>> {
    use xattr::FileExt;
    let names = file.list_xattr()?;
    Ok(collect_xattrs(names, |name| file.get_xattr(name)))
}

fn collect_xattrs(
    names: xattr::XAttrs,
    mut get: impl FnMut(&std::ffi::OsStr) -> io::Result<Option<Vec<u8>>>,
) -> Vec<Xattr> {
    let mut out: Vec<Xattr> = names
        .filter_map(|name| match get(&name) {
            Ok(Some(value)) => Some(Xattr(name.as_bytes().to_vec(), value)),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Remembers the devices whose file system has no extended attributes at
/// all (listing them failed with `ENOTSUP`): their files are not asked
/// again, which saves a system call per file. A device that merely has
/// none on the files seen so far is asked for every file, since any file
/// may carry one.
#[derive(Debug, Default, Clone)]
pub struct XattrSupport {
    unsupported: std::collections::HashSet<u64>,
}

impl XattrSupport {
    /// The extended attributes of `file`, on device `dev`.
    pub fn read(&mut self, file: &File, dev: u64) -> Vec<Xattr> {
        if self.unsupported.contains(&dev) {
            return Vec::new();
        }
        match read_xattrs_of(file) {
            Ok(x) => x,
            Err(e) => {
                if e.raw_os_error() == Some(libc::ENOTSUP) {
                    self.unsupported.insert(dev);
                }
                Vec::new()
            }
        }
    }

    /// Whether `dev` was found to have no extended attributes.
    pub fn unsupported(&self, dev: u64) -> bool {
        self.unsupported.contains(&dev)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// Through the open file, the same attributes (sorted) as by path; a
    /// file without any has none, and its device is not taken for one
    /// that has no extended attributes at all.
    #[test]
    fn xattrs_through_the_open_file_equal_those_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let with = dir.path().join("with");
        let without = dir.path().join("without");
        fs::write(&with, b"x").unwrap();
        fs::write(&without, b"y").unwrap();
        match xattr::set(&with, "user.b", b"two") {
            Ok(()) => xattr::set(&with, "user.a", b"one \x00\xff").unwrap(),
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {
                eprintln!("note: this filesystem has no user xattrs; skipped");
                return;
            }
            Err(e) => panic!("setting an xattr: {e}"),
        }
        let want =
            vec![Xattr(b"user.a".to_vec(), b"one \x00\xff".to_vec()), Xattr(b"user.b".to_vec(), b"two".to_vec())];
        assert_eq!(read_xattrs(&with), want);
        let file = File::open(&with).unwrap();
        assert_eq!(read_xattrs_of(&file).unwrap(), want);

        let mut support = XattrSupport::default();
        let dev = file.metadata().unwrap().dev();
        assert_eq!(support.read(&File::open(&without).unwrap(), dev), Vec::new());
        assert!(!support.unsupported(dev));
        assert_eq!(support.read(&file, dev), want);
    }
}
