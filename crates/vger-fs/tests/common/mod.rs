//! Helpers shared by the integration tests: real files in temp dirs.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use vger_format::entry::{Entry, EntryKind};
use vger_fs::{RestoreTarget, SpecialOutcome, WalkError, WalkItem, WalkOptions, WalkRoot, Walker};

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("vger-fs-test-").tempdir_in("/tmp").unwrap()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The rel path of `abs` in a snapshot that stores sources under their
/// absolute paths: the path without its leading `/`.
pub fn rel_of(abs: &Path) -> Vec<u8> {
    abs.as_os_str().as_bytes().strip_prefix(b"/").unwrap().to_vec()
}

pub fn contents_root(abs: &Path) -> WalkRoot {
    WalkRoot { abs: abs.to_path_buf(), rel: Vec::new() }
}

pub fn walk(roots: Vec<WalkRoot>, opts: WalkOptions) -> (Vec<WalkItem>, Vec<WalkError>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for r in Walker::new(roots, opts).unwrap() {
        match r {
            Ok(i) => items.push(i),
            Err(e) => errors.push(e),
        }
    }
    (items, errors)
}

pub fn paths(items: &[WalkItem]) -> Vec<String> {
    items.iter().map(|i| i.entry.display_path()).collect()
}

pub fn find<'a>(items: &'a [WalkItem], path: &[u8]) -> &'a Entry {
    &items
        .iter()
        .find(|i| i.entry.path == path)
        .unwrap_or_else(|| panic!("{:?} not walked", String::from_utf8_lossy(path)))
        .entry
}

pub fn write(path: impl AsRef<Path>, data: &[u8]) {
    let path = path.as_ref();
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, data).unwrap();
}

pub fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

pub fn mknod(path: &Path, mode: u32, dev: u64) {
    let c = cpath(path);
    // SAFETY: c is a valid NUL-terminated path.
    let rc = unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, dev as libc::dev_t) };
    assert_eq!(rc, 0, "mknod {}: {}", path.display(), io::Error::last_os_error());
}

pub fn lchown(path: &Path, uid: u32, gid: u32) {
    let c = cpath(path);
    // SAFETY: c is a valid NUL-terminated path.
    let rc = unsafe { libc::lchown(c.as_ptr(), uid, gid) };
    assert_eq!(rc, 0, "lchown {}: {}", path.display(), io::Error::last_os_error());
}

/// Sets atime and mtime (nanoseconds) without following a symlink.
pub fn set_mtime(path: &Path, ns: i64) {
    let c = cpath(path);
    let ts = libc::timespec { tv_sec: ns.div_euclid(1_000_000_000), tv_nsec: ns.rem_euclid(1_000_000_000) };
    let times = [ts, ts];
    // SAFETY: valid path and two timespecs.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    assert_eq!(rc, 0, "utimensat {}: {}", path.display(), io::Error::last_os_error());
}

/// Sets a user xattr; false when the filesystem does not support them.
pub fn try_set_xattr(path: &Path, name: &str, value: &[u8]) -> bool {
    match xattr_set(path, name, value) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => false,
        Err(e) => panic!("setxattr {}: {e}", path.display()),
    }
}

fn xattr_set(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = cpath(path);
    let n = CString::new(name).unwrap();
    // SAFETY: valid path, name and value buffer.
    let rc = unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// Restores walked items into `target` the way the engine does, copying
/// file data from the source in 1 MiB pieces through `write_at`.
pub fn restore_items(target: &mut RestoreTarget, items: &[WalkItem]) {
    for item in items {
        let e = &item.entry;
        match e.kind {
            EntryKind::Dir => target.create_dir(e).unwrap(),
            EntryKind::File => {
                let mut w = target.begin_file(e).unwrap();
                let (f, _) = vger_fs::open_for_backup(&item.abs).unwrap();
                assert!(vger_fs::same_file(e, &f).unwrap());
                let mut buf = vec![0u8; 1 << 20];
                let mut off = 0u64;
                loop {
                    let n = std::os::unix::fs::FileExt::read_at(&f, &mut buf, off).unwrap();
                    if n == 0 {
                        break;
                    }
                    w.write_at(off, &buf[..n]).unwrap();
                    off += n as u64;
                }
                w.finish(e).unwrap();
            }
            EntryKind::Symlink => target.create_symlink(e).unwrap(),
            EntryKind::Hardlink => target.create_hardlink(e).unwrap(),
            EntryKind::Fifo | EntryKind::Char | EntryKind::Block | EntryKind::Socket => {
                let out = target.create_special(e).unwrap();
                if e.kind != EntryKind::Socket {
                    assert_eq!(out, SpecialOutcome::Created);
                }
            }
        }
    }
}

/// Names under `dir`, recursively, relative to it.
pub fn list_all(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                todo.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}
