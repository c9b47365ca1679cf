//! File-system pieces: temporary files that remove themselves, directory
//! fsync, creating the directories of a key, walking a repository, free
//! disk space.

use std::collections::hash_map::RandomState;
use std::ffi::CString;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vger_storage::keys::validate_key;

/// Temporary files start with this: no key component may (see
/// `vger_storage::keys`), so they never show up as objects.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A temporary file's name; dropped before [`TempPath::keep`], it removes
/// the file, so an aborted upload leaves nothing behind.
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    pub fn new_in(dir: &Path) -> Self {
        TempPath { path: dir.join(format!("{TEMP_PREFIX}{}", unique_suffix())), armed: true }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file was renamed away; nothing to remove.
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// Fsyncs a directory so a name created, renamed or removed in it
/// survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTSUP)) => Ok(()),
        other => other,
    }
}

/// Creates the missing directories from `root` down to `dir` (which is
/// below `root`), fsyncing the parent of each.
pub fn create_dirs(root: &Path, dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let relative = dir.strip_prefix(root).map_err(|_| io::Error::other("directory outside the data directory"))?;
    let mut current = root.to_path_buf();
    for part in relative.components() {
        let parent = current.clone();
        current.push(part);
        match fs::create_dir(&current) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && current.is_dir() => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(io::Error::from_raw_os_error(libc::ENOTDIR))
            }
            Err(e) => return Err(e),
        }
        sync_dir(&parent)?;
    }
    Ok(())
}

/// Bytes available to unprivileged writers on the file system of `dir`.
pub fn free_space(dir: &Path) -> Option<u64> {
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid NUL-terminated string and `stat` points to
    // writable memory of the right type; statvfs fills it on success.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised `stat`.
    let stat = unsafe { stat.assume_init() };
    // The field types differ between platforms (u32 on some 32-bit ones).
    #[allow(clippy::unnecessary_cast)]
    let (blocks, block_size) = (stat.f_bavail as u64, stat.f_frsize as u64);
    Some(blocks.saturating_mul(block_size))
}

/// Unix seconds of a file's modification time.
pub fn mtime_secs(meta: &fs::Metadata) -> u64 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()).unwrap_or(0)
}

/// An object found while walking a repository.
#[derive(Debug, Clone)]
pub struct Found {
    pub key: String,
    pub size: u64,
    pub modified: u64,
}

/// Calls `visit` for every object of the repository at `root` whose key
/// starts with `prefix`. Dot-names (temporary files), symbolic links and
/// names that are not valid keys are skipped. `visit` returning `false`
/// stops the walk. A missing repository or prefix directory has no objects.
pub fn walk(root: &Path, prefix: &str, visit: &mut dyn FnMut(Found) -> bool) -> io::Result<()> {
    let (dir_part, partial) = match prefix.rfind('/') {
        Some(i) => (prefix.get(..=i).unwrap_or_default(), prefix.get(i + 1..).unwrap_or_default()),
        None => ("", prefix),
    };
    let mut pending = vec![(root.join(dir_part), dir_part.to_owned(), partial.to_owned())];
    while let Some((dir, key_prefix, partial)) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') || !name.starts_with(partial.as_str()) {
                continue;
            }
            let key = format!("{key_prefix}{name}");
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                pending.push((entry.path(), format!("{key}/"), String::new()));
            } else if file_type.is_file() && validate_key(&key).is_ok() {
                let meta = match entry.metadata() {
                    Ok(meta) => meta,
                    // Deleted since read_dir.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                if !visit(Found { key, size: meta.len(), modified: mtime_secs(&meta) }) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Bytes in all objects of a repository.
pub fn total_size(root: &Path) -> io::Result<u64> {
    let mut total = 0u64;
    walk(root, "", &mut |found| {
        total = total.saturating_add(found.size);
        true
    })?;
    Ok(total)
}

/// Removes temporary files older than `age` below `dir` (left by a crash:
/// a live upload removes its own). Returns how many were removed.
pub fn remove_stale_temp_files(dir: &Path, age: Duration) -> io::Result<usize> {
    let mut removed = 0;
    let mut pending = vec![dir.to_path_buf()];
    let now = SystemTime::now();
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            let is_temp = entry.file_name().to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX));
            if file_type.is_dir() {
                pending.push(entry.path());
            } else if file_type.is_file() && is_temp {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|elapsed| elapsed >= age);
                if old && fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn walk_filters_by_prefix_and_skips_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        for key in ["config", "packs/ab/ab1", "packs/ac/ac1", "packs/.tmp-x", "snapshots/s1"] {
            let path = dir.path().join(key);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"xy").unwrap();
        }
        let keys = |prefix: &str| {
            let mut keys = Vec::new();
            walk(dir.path(), prefix, &mut |f| {
                keys.push(f.key);
                true
            })
            .unwrap();
            keys.sort();
            keys
        };
        assert_eq!(keys(""), ["config", "packs/ab/ab1", "packs/ac/ac1", "snapshots/s1"]);
        assert_eq!(keys("packs/"), ["packs/ab/ab1", "packs/ac/ac1"]);
        assert_eq!(keys("packs/ab"), ["packs/ab/ab1"]);
        assert_eq!(keys("packs/ab/"), ["packs/ab/ab1"]);
        assert_eq!(keys("con"), ["config"]);
        assert!(keys("missing/").is_empty());
        assert_eq!(total_size(dir.path()).unwrap(), 8);
        assert_eq!(remove_stale_temp_files(dir.path(), Duration::ZERO).unwrap(), 1);
    }
}
