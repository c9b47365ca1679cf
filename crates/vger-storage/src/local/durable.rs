//! Crash-safe file writing: temporary files and directory fsync.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::StorageError;

/// Names of temporary files start with this; no valid key component can
/// (see [`crate::keys`]), so they never shadow or show up as objects.
pub(super) const TEMP_PREFIX: &str = ".tmp-";

/// A file being written under a temporary name in the object's directory.
/// Dropped before being committed, it removes itself, so an error at any
/// step leaves nothing behind.
pub(super) struct TempFile {
    path: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Creates a fresh temporary file in `dir` and writes and fsyncs `data`.
    /// The `io::Error` of the create step is returned as is so that the
    /// caller can create a missing directory and retry.
    pub(super) fn create(dir: &Path) -> io::Result<(Self, File)> {
        let path = dir.join(format!("{TEMP_PREFIX}{}", unique_suffix()));
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        Ok((TempFile { path, committed: false }, file))
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary name no longer exists (it was renamed away).
    pub(super) fn mark_committed(&mut self) {
        self.committed = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a leftover is invisible and `clean_temp_files`
            // removes it later.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes all of `data` to `file` and fsyncs it.
pub(super) fn write_synced(file: &mut File, data: &[u8], key: &str) -> Result<(), StorageError> {
    file.write_all(data).map_err(|e| StorageError::from_io("write", key, e))?;
    file.sync_all().map_err(|e| StorageError::from_io("fsync", key, e))
}

/// Fsyncs a directory so that a name created, renamed or removed in it
/// survives a crash.
pub(super) fn sync_dir(dir: &Path, key: &str) -> Result<(), StorageError> {
    let result = File::open(dir).and_then(|d| d.sync_all());
    match result {
        Ok(()) => Ok(()),
        // Some file systems (network, FUSE) cannot fsync a directory; there
        // is nothing better to do on them.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTSUP)) => Ok(()),
        Err(e) => Err(StorageError::from_io("fsync directory of", key, e)),
    }
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
}
