//! Turning what `lstat` says about a path into a snapshot [`Entry`].

use std::fs::{self, FileType, Metadata};
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
    let kind = kind_of(md.file_type());
    let mut e = Entry::new(rel, kind);
    e.mode = md.mode() & 0o7777;
    e.uid = md.uid();
    e.gid = md.gid();
    e.user = owners.user(e.uid);
    e.group = owners.group(e.gid);
    e.mtime = nanos(md.mtime(), md.mtime_nsec());
    e.ctime = nanos(md.ctime(), md.ctime_nsec());
    e.ino = md.ino();
    e.dev = md.dev();
    match kind {
        EntryKind::File => e.size = md.size(),
        EntryKind::Symlink => e.target = Some(fs::read_link(abs)?.into_os_string().into_vec()),
        EntryKind::Char | EntryKind::Block => e.rdev = md.rdev(),
        _ => {}
    }
    if xattrs {
        e.xattrs = read_xattrs(abs);
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
    let mut out: Vec<Xattr> = names
        .filter_map(|name| match xattr::get(abs, &name) {
            Ok(Some(value)) => Some(Xattr(name.as_bytes().to_vec(), value)),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
