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
    /// What a file this process creates gets: its owner, group (in a folder
    /// without setgid bit) and umask; `None` when the umask is unknown.
    creator: Option<Creator>,
    /// Whether files can be written unnamed and linked in place once
    /// complete (see `DirHandle::can_link_unnamed`).
    pub unnamed_files: bool,
}

#[derive(Debug, Clone, Copy)]
struct Creator {
    uid: u32,
    gid: u32,
    umask: u32,
}

impl Shared {
    pub fn new(opts: RestoreOptions) -> Self {
        // SAFETY: geteuid and getegid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let creator = current_umask().map(|umask| Creator { uid, gid, umask });
        Shared { opts, xattrs_skipped: AtomicU64::new(0), creator, unnamed_files: false }
    }

    /// The mode to create a regular file with when that makes it the
    /// entry's owner, group and mode as created, in a plain folder (no
    /// setgid bit, no default ACL): then no `fchown` or `fchmod` follows.
    /// `None` when they must be set (other owners, setuid, setgid or
    /// sticky bits, bits the umask takes away).
    pub fn preset_mode(&self, entry: &Entry) -> Option<u32> {
        let c = self.creator?;
        if self.opts.owners && (entry.uid != c.uid || entry.gid != c.gid) {
            return None;
        }
        let mode = self.mode(entry);
        (mode & 0o7000 == 0 && mode & c.umask == 0).then_some(mode)
    }

    /// Metadata of a file made with [`preset_mode`](Self::preset_mode)
    /// (`preset`), whose owner and mode are right already, or of any
    /// other open file.
    pub fn apply_to_new_file(&self, fd: RawFd, entry: &Entry, preset: bool) -> io::Result<()> {
        if !preset {
            return self.apply_to_fd(fd, entry);
        }
        self.set_xattrs(fd, entry)?;
        by_fd::set_mtime(fd, entry.mtime)
    }

    fn set_xattrs(&self, fd: RawFd, entry: &Entry) -> io::Result<()> {
        if self.opts.xattrs {
            for x in &entry.xattrs {
                self.xattr_outcome(by_fd::set_xattr(fd, &x.0, &x.1))?;
            }
        }
        Ok(())
    }

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
        self.set_xattrs(fd, entry)?;
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

/// The process's umask, from `/proc/self/status` (reading it with
/// `umask(2)` would change it for a moment, under other threads).
fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
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
