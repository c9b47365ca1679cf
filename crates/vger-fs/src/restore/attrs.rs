//! Applying an entry's metadata to what a restore created: owner first,
//! then mode (chown clears setuid/setgid), xattrs, and the times last.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};

use vger_format::entry::Entry;

use super::dir_handle::{by_fd, DirHandle};
use super::RestoreOptions;
use crate::path::cstring;

/// The options and counters shared by a target and its file writers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub opts: RestoreOptions,
    /// Extended attributes the target filesystem or our privileges refused.
    pub xattrs_skipped: AtomicU64,
}

impl Shared {
    /// Counts an xattr the filesystem does not support or we may not set,
    /// instead of failing the restore of the whole file for it.
    fn xattr_outcome(&self, r: io::Result<()>) -> io::Result<()> {
        match r {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP | libc::EPERM | libc::EACCES)) => {
                self.xattrs_skipped.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            other => other,
        }
    }

    /// The permission bits to set: all stored ones, or without setuid,
    /// setgid and sticky when those are not wanted.
    fn mode(&self, entry: &Entry) -> u32 {
        let keep = if self.opts.special_bits { 0o7777 } else { 0o0777 };
        entry.mode & keep
    }

    /// Metadata of an open file or directory.
    pub fn apply_to_fd(&self, fd: RawFd, entry: &Entry) -> io::Result<()> {
        if self.opts.owners {
            by_fd::chown(fd, entry.uid, entry.gid)?;
        }
        by_fd::chmod(fd, self.mode(entry))?;
        if self.opts.xattrs {
            for x in &entry.xattrs {
                self.xattr_outcome(by_fd::set_xattr(fd, &x.0, &x.1))?;
            }
        }
        by_fd::set_mtime(fd, entry.mtime)
    }

    /// Metadata of `name` in `dir`, a symlink or special file just created
    /// there (symlinks have no mode of their own on Linux).
    pub fn apply_at(&self, dir: &DirHandle, name: &[u8], entry: &Entry, is_symlink: bool) -> io::Result<()> {
        if self.opts.owners {
            dir.chown_at(name, entry.uid, entry.gid)?;
        }
        if !is_symlink {
            dir.chmod_at(name, self.mode(entry))?;
        }
        if self.opts.xattrs && !entry.xattrs.is_empty() {
            let path = cstring(dir.proc_path(name).as_os_str().as_bytes())?;
            for x in &entry.xattrs {
                self.xattr_outcome(lsetxattr(&path, &x.0, &x.1))?;
            }
        }
        dir.set_mtime_at(name, entry.mtime)
    }
}

fn lsetxattr(path: &CString, name: &[u8], value: &[u8]) -> io::Result<()> {
    let n = cstring(name)?;
    // SAFETY: path and name are NUL-terminated; value is valid for value.len() bytes.
    let rc = unsafe { libc::lsetxattr(path.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
