//! Walking a repository directory, shared by the local backend and
//! vger-server: visiting objects one at a time (so a listing of a million
//! keys can be streamed) and sweeping stale temporary files.

use std::fs::{self, DirEntry, FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::durable::TEMP_PREFIX;
use crate::keys::validate_key;
use crate::StorageError;

/// An object found by [`for_each_object`].
#[derive(Debug)]
pub struct Found {
    pub key: String,
    pub path: PathBuf,
    pub size: u64,
    /// Last modification, unix seconds.
    pub modified: Option<u64>,
}

/// Calls `visit` for every object below `root` whose key starts with
/// `prefix` (already validated); `visit` returning `false` stops the walk.
/// `packs/` walks `root/packs`; `packs/a` walks `root/packs` too but
/// descends only into entries whose name starts with `a`. Names that are
/// not valid keys (temporary files, dot-files, foreign names) are skipped;
/// a missing directory has no objects.
pub fn for_each_object(root: &Path, prefix: &str, visit: &mut dyn FnMut(Found) -> bool) -> Result<(), StorageError> {
    let (dir_key, first_name) = match prefix.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), prefix),
    };
    let mut pending = vec![(root.join(&dir_key), dir_key)];
    let mut first_level = true;
    while let Some((dir, dir_key)) = pending.pop() {
        for entry in read_dir(&dir, &dir_key)? {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue; // not UTF-8, so not a key
            };
            if first_level && !name.starts_with(first_name) {
                continue;
            }
            let key = format!("{dir_key}{name}");
            // Skips temp files, dot-files and foreign names, and bounds the
            // depth (keys are at most 512 bytes) even under symlink loops.
            if validate_key(&key).is_err() {
                continue;
            }
            let Some((file_type, meta)) = entry_kind(&entry, &key)? else {
                continue; // vanished while listing
            };
            if file_type.is_dir() {
                pending.push((entry.path(), format!("{key}/")));
            } else if file_type.is_file() {
                let found = Found { key, path: entry.path(), size: meta.len(), modified: modified_secs(&meta) };
                if !visit(found) {
                    return Ok(());
                }
            }
        }
        first_level = false;
    }
    Ok(())
}

/// Unix seconds of a file's last modification, if the system says.
pub fn modified_secs(meta: &Metadata) -> Option<u64> {
    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs())
}

/// Removes `.tmp-*` files under `root` last modified more than
/// `older_than` ago; returns how many. Does not follow symlinks.
pub fn remove_stale_temp_files(root: &Path, older_than: Duration) -> Result<usize, StorageError> {
    let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = 0;
    let mut pending: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, dir_key)) = pending.pop() {
        for entry in read_dir(&dir, &dir_key)? {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() && validate_key(&format!("{dir_key}{name}")).is_ok() {
                pending.push((entry.path(), format!("{dir_key}{name}/")));
            } else if file_type.is_file() && name.starts_with(TEMP_PREFIX) {
                let stale = entry.metadata().and_then(|m| m.modified()).is_ok_and(|modified| modified < cutoff);
                if stale {
                    match fs::remove_file(entry.path()) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StorageError::from_io("remove", &dir_key, e)),
                    }
                }
            }
        }
    }
    Ok(removed)
}

/// The entries of a directory; a directory that does not exist (or
/// vanished, or is a file) has none.
fn read_dir(dir: &Path, dir_key: &str) -> Result<Vec<DirEntry>, StorageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if is_absent(&e) => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::from_io("list", dir_key, e)),
    };
    let mut result = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => result.push(entry),
            Err(e) if is_absent(&e) => {}
            Err(e) => return Err(StorageError::from_io("list", dir_key, e)),
        }
    }
    Ok(result)
}

/// Type and metadata of an entry, following a symlink (a user may have
/// moved `packs/` to another disk and linked it). `None` if it vanished.
fn entry_kind(entry: &DirEntry, key: &str) -> Result<Option<(FileType, Metadata)>, StorageError> {
    let meta = match entry.file_type() {
        Ok(t) if t.is_symlink() => fs::metadata(entry.path()),
        Ok(_) => entry.metadata(),
        Err(e) => Err(e),
    };
    match meta {
        Ok(meta) => Ok(Some((meta.file_type(), meta))),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(StorageError::from_io("stat", key, e)),
    }
}

fn is_absent(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn visits_by_prefix_skips_temp_files_and_stops_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        for key in ["config", "packs/ab/ab1", "packs/ac/ac1", "packs/.tmp-x", "snapshots/s1"] {
            let path = dir.path().join(key);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"xy").unwrap();
        }
        let keys = |prefix: &str| {
            let mut keys = Vec::new();
            for_each_object(dir.path(), prefix, &mut |f| {
                keys.push(f.key);
                true
            })
            .unwrap();
            keys.sort();
            keys
        };
        assert_eq!(keys(""), ["config", "packs/ab/ab1", "packs/ac/ac1", "snapshots/s1"]);
        assert_eq!(keys("packs/ab"), ["packs/ab/ab1"]);
        assert_eq!(keys("con"), ["config"]);
        assert!(keys("missing/").is_empty());
        let mut seen = 0;
        for_each_object(dir.path(), "", &mut |_| {
            seen += 1;
            false
        })
        .unwrap();
        assert_eq!(seen, 1);
        assert_eq!(remove_stale_temp_files(dir.path(), Duration::ZERO).unwrap(), 1);
    }
}
