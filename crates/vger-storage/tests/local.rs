//! LocalStorage: the shared backend suite, then what only a local
//! directory can show (temp files, errno mapping, a full disk).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use tempfile::TempDir;
use vger_storage::testsuite::{pattern, Fixture};
use vger_storage::{LocalStorage, Storage, StorageError};

struct LocalFixture {
    storage: LocalStorage,
    dir: TempDir,
}

impl Fixture for LocalFixture {
    fn storage(&self) -> &dyn Storage {
        &self.storage
    }
}

fn fresh() -> LocalFixture {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::open(dir.path()).unwrap();
    LocalFixture { storage, dir }
}

vger_storage::storage_test_suite!(fresh);

#[test]
fn run_all_passes() {
    // The runner other backends may use instead of the macro.
    vger_storage::testsuite::run_all(&fresh).unwrap();
}

/// Every file below `dir`, relative, including dot-files.
fn all_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                let rel = entry.path().strip_prefix(dir).unwrap().to_owned();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn open_and_create() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("a/b/repo");
    let err = LocalStorage::open(&missing).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let storage = LocalStorage::create(&missing).unwrap();
    assert!(missing.is_dir());
    assert_eq!(storage.describe(), missing.display().to_string());
    LocalStorage::create(&missing).unwrap(); // existing is fine
    fs::write(dir.path().join("file"), b"x").unwrap();
    assert!(LocalStorage::open(&dir.path().join("file")).is_err());
}

#[test]
fn objects_are_plain_files_and_no_temp_file_remains() {
    let f = fresh();
    f.storage.put("packs/ab/p1", b"pack").unwrap();
    f.storage.put("packs/ab/p1", b"pack2").unwrap();
    f.storage.put_new("locks/l", b"lock").unwrap();
    assert!(f.storage.put_new("locks/l", b"again").is_err());
    assert_eq!(all_files(f.dir.path()), ["locks/l", "packs/ab/p1"]);
    assert_eq!(fs::read(f.dir.path().join("packs/ab/p1")).unwrap(), b"pack2");
}

#[test]
fn failed_put_leaves_nothing() {
    let f = fresh();
    f.storage.put("a/file", b"x").unwrap();
    // The parent of the new key is a regular file.
    let err = f.storage.put("a/file/b", b"data").unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("a/file/b"), "{err}");
    // The key is an existing directory: rename fails after the data is written.
    f.storage.put("d/inner", b"x").unwrap();
    let err = f.storage.put("d", b"data").unwrap_err();
    assert!(!err.is_not_found(), "{err:?}");
    assert!(f.storage.put_new("d", b"data").is_err());
    assert_eq!(all_files(f.dir.path()), ["a/file", "d/inner"]);
    assert_eq!(f.storage.get("a/file").unwrap(), b"x");
}

#[test]
fn permission_denied_is_reported() {
    let f = fresh();
    f.storage.put("locked/obj", b"x").unwrap();
    let locked = f.dir.path().join("locked");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();
    let result = f.storage.put("locked/new", b"y");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    if is_root() {
        // Root bypasses permission bits; the write just succeeds. The
        // real-failure paths are covered by `failed_put_leaves_nothing`.
        eprintln!("note: running as root, PermissionDenied cannot be provoked");
        result.unwrap();
        return;
    }
    let err = result.unwrap_err();
    assert!(matches!(err, StorageError::PermissionDenied { .. }), "{err:?}");
    assert!(err.to_string().contains("locked/new"), "{err}");
    assert_eq!(all_files(f.dir.path()), ["locked/obj"]);
}

#[test]
fn list_ignores_temp_and_foreign_files() {
    let f = fresh();
    f.storage.put("packs/ab/p", b"123").unwrap();
    let root = f.dir.path();
    fs::write(root.join("packs/ab/.tmp-123-0-abc"), b"half").unwrap();
    fs::write(root.join(".DS_Store"), b"").unwrap();
    fs::write(root.join("packs/with space"), b"").unwrap();
    fs::create_dir(root.join(".hidden")).unwrap();
    fs::write(root.join(".hidden/x"), b"").unwrap();
    let keys: Vec<_> = f.storage.list("").unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(keys, ["packs/ab/p"]);
}

#[test]
fn list_follows_a_symlinked_directory() {
    let f = fresh();
    let elsewhere = tempfile::tempdir().unwrap();
    fs::create_dir(elsewhere.path().join("ab")).unwrap();
    fs::write(elsewhere.path().join("ab/p"), b"12345").unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), f.dir.path().join("packs")).unwrap();
    let objects = f.storage.list("packs/").unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!((objects[0].key.as_str(), objects[0].size), ("packs/ab/p", 5));
    assert_eq!(f.storage.get("packs/ab/p").unwrap(), b"12345");
}

#[test]
fn clean_temp_files_removes_only_stale_ones() {
    let f = fresh();
    f.storage.put("packs/ab/p", b"x").unwrap();
    let root = f.dir.path();
    let stale = root.join("packs/ab/.tmp-stale");
    fs::write(&stale, b"half").unwrap();
    let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 86400);
    fs::File::options().write(true).open(&stale).unwrap().set_modified(two_days_ago).unwrap();
    fs::write(root.join(".tmp-fresh"), b"in progress").unwrap();
    let removed = f.storage.clean_temp_files(Duration::from_secs(86400)).unwrap();
    assert_eq!(removed, 1);
    assert_eq!(all_files(root), [".tmp-fresh", "packs/ab/p"]);
}

/// Unmounts the tmpfs when the test ends, even on failure.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A 1 MiB tmpfs to fill up, or `None` (with a note) where mounting needs
/// root. The mount goes away with the guard, before the directory.
fn tiny_tmpfs() -> Option<(TempDir, Mount)> {
    let dir = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .output()
        .is_ok_and(|out| out.status.success());
    if !mounted {
        eprintln!("note: skipping the ENOSPC test: cannot mount a tmpfs here (needs root)");
        return None;
    }
    let mount = Mount(dir.path().to_path_buf());
    Some((dir, mount))
}

#[test]
fn full_disk_is_no_space_and_leaves_nothing() {
    let Some((dir, _mount)) = tiny_tmpfs() else { return };
    let storage = LocalStorage::open(dir.path()).unwrap();
    storage.put("small", b"fits").unwrap();
    let err = storage.put("packs/ab/big", &pattern(7, 3 << 20)).unwrap_err();
    assert!(matches!(err, StorageError::NoSpace { .. }), "{err:?}");
    assert!(err.to_string().contains("packs/ab/big"), "{err}");
    assert!(err.to_string().contains("free space"), "{err}");
    let err = storage.put_new("big2", &pattern(8, 3 << 20)).unwrap_err();
    assert!(matches!(err, StorageError::NoSpace { .. }), "{err:?}");
    assert_eq!(all_files(dir.path()), ["small"]);
    // Space is back once the failed writes are gone.
    storage.put("packs/ab/fits", &pattern(9, 100 << 10)).unwrap();
}

/// A staged object (how the backup writes packs to a local repository):
/// written in pieces, invisible until committed, then an ordinary object;
/// dropped uncommitted, it leaves no file behind.
#[test]
fn staged_objects_appear_only_on_commit() {
    let f = fresh();
    let data = pattern(3, 300 << 10);
    let mut staged = f.storage.stage("packs/").unwrap().expect("local storage stages objects");
    for piece in data.chunks(70_000) {
        staged.write(piece).unwrap();
    }
    assert!(f.storage.list("").unwrap().is_empty(), "nothing visible before the commit");
    staged.commit("packs/ab/abcdef").unwrap();
    assert_eq!(f.storage.get("packs/ab/abcdef").unwrap(), data);
    assert_eq!(all_files(f.dir.path()), ["packs/ab/abcdef"]);

    let mut dropped = f.storage.stage("packs/").unwrap().unwrap();
    dropped.write(b"half a pack").unwrap();
    drop(dropped);
    assert_eq!(all_files(f.dir.path()), ["packs/ab/abcdef"]);

    // Into a fresh repository: the directories are made on the way.
    let g = fresh();
    let mut staged = g.storage.stage("packs/").unwrap().unwrap();
    staged.write(b"x").unwrap();
    staged.commit("packs/cd/cdef").unwrap();
    assert_eq!(g.storage.get("packs/cd/cdef").unwrap(), b"x");
    assert!(g.storage.stage("../outside/").is_err(), "prefixes are validated");
}

/// A full disk while a staged object is written is `NoSpace`, and the
/// partial file goes away with the writer.
#[test]
fn full_disk_while_staging_leaves_nothing() {
    let Some((dir, _mount)) = tiny_tmpfs() else { return };
    let storage = LocalStorage::open(dir.path()).unwrap();
    let mut staged = storage.stage("packs/").unwrap().unwrap();
    let err = (0..8).try_for_each(|i| staged.write(&pattern(i, 512 << 10))).unwrap_err();
    assert!(matches!(err, StorageError::NoSpace { .. }), "{err:?}");
    drop(staged);
    assert!(all_files(dir.path()).is_empty(), "{:?}", all_files(dir.path()));
}
