//! Crash-safe file writing, shared by the local backend and vger-server:
//! a temporary file in the object's own directory, fsynced, then renamed
//! (replace) or hard-linked (create-only) into place and the directory
//! fsynced, so no object is ever visible half-written and a finished
//! write survives a crash.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Names of temporary files start with this; no valid key component can
/// (see [`crate::keys`]), so they never shadow or show up as objects.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A file being written under a temporary name in the object's directory.
/// Dropped before being committed, it removes itself, so an error at any
/// step leaves nothing behind.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Creates a fresh temporary file in `dir`. The `io::Error` is returned
    /// as is, so that a caller can create a missing directory and retry
    /// (or use [`TempFile::create_for`]).
    pub fn create(dir: &Path) -> io::Result<(Self, File)> {
        let path = dir.join(format!("{TEMP_PREFIX}{}", unique_suffix()));
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        Ok((TempFile { path, committed: false }, file))
    }

    /// A temporary file beside the object `key` of the repository at
    /// `root` (a valid key), creating the directories on the way if missing.
    pub fn create_for(root: &Path, key: &str) -> io::Result<(Self, File)> {
        let dir = object_dir(root, key);
        match TempFile::create(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_parent_dirs(root, key)?;
                TempFile::create(&dir)
            }
            other => other,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the (written and fsynced) file to `dest`, replacing what is
    /// there atomically, and fsyncs the directory. `dest` is in the same
    /// directory or one created since ([`create_parent_dirs`]).
    pub fn rename_into_place(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.committed = true;
        sync_dir(parent(dest))
    }

    /// Hard-links the file to `dest`, which fails if `dest` exists: of
    /// several writers exactly one wins. `Ok(false)` when the name was
    /// taken. The temporary name is removed either way.
    pub fn link_into_place(self, dest: &Path) -> io::Result<bool> {
        match fs::hard_link(&self.path, dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e),
        }
        drop(self); // removes the temporary name
        sync_dir(parent(dest))?;
        Ok(true)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a leftover is invisible and the stale-file sweep
            // (`walk::remove_stale_temp_files`) removes it later.
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// The directory holding object `key` below `root`.
pub fn object_dir(root: &Path, key: &str) -> PathBuf {
    match key.rsplit_once('/') {
        Some((dir, _)) => root.join(dir),
        None => root.to_path_buf(),
    }
}

/// Fsyncs a directory so that a name created, renamed or removed in it
/// survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        // Some file systems (network, FUSE) cannot fsync a directory; there
        // is nothing better to do on them.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTSUP)) => Ok(()),
        other => other,
    }
}

/// Creates the missing directories on the way to object `key` (a valid
/// key) below `root`, fsyncing the parent of each so a new directory
/// survives a crash. A file where a directory must be is `ENOTDIR`.
pub fn create_parent_dirs(root: &Path, key: &str) -> io::Result<()> {
    let mut dir = root.to_path_buf();
    let mut parts: Vec<&str> = key.split('/').collect();
    parts.pop(); // the object's own name
    for part in parts {
        let parent = dir.clone();
        dir.push(part);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            // A file sits where a directory must be (`a` is an object and
            // `a/b` is being written).
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(io::Error::from_raw_os_error(libc::ENOTDIR))
            }
            Err(e) => return Err(e),
        }
        // Also when another writer created it: it may not have fsynced the
        // parent yet, and this write must be durable on return.
        sync_dir(&parent)?;
    }
    Ok(())
}

/// Unique across threads (counter), processes (pid) and hosts sharing a
/// network file system (random bits from the OS-seeded std hasher).
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(count);
    hasher.write_u128(nanos);
    format!("{:x}-{count:x}-{:016x}", std::process::id(), hasher.finish())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn suffixes_differ() {
        let a = unique_suffix();
        let b = unique_suffix();
        assert_ne!(a, b);
        assert!(crate::keys::validate_key(&format!("{TEMP_PREFIX}{a}")).is_err());
    }

    #[test]
    fn dropped_temp_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, _file) = TempFile::create(dir.path()).unwrap();
        let path = temp.path().to_path_buf();
        assert!(path.exists());
        drop(temp);
        assert!(!path.exists());
    }

    #[test]
    fn link_refuses_an_existing_name_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, _file) = TempFile::create_for(dir.path(), "a/b/c").unwrap();
        assert!(temp.link_into_place(&dir.path().join("a/b/c")).unwrap());
        let (temp, _file) = TempFile::create_for(dir.path(), "a/b/c").unwrap();
        assert!(!temp.link_into_place(&dir.path().join("a/b/c")).unwrap());
        let names: Vec<_> = fs::read_dir(dir.path().join("a/b")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["c"]);
        fs::write(dir.path().join("f"), b"").unwrap();
        let err = TempFile::create_for(dir.path(), "f/x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
    }
}
