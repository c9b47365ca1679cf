//! Replacing a file whole, for the config and passphrase files the app
//! writes: never a half-written or truncated file, whatever happens.

use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` through a new temporary file in the same
/// folder, synced, then renamed over it: a reader (or a crash) sees the
/// old file or the new one, never part of one. The file gets `mode`, or
/// with `None` the mode of the file it replaces (0600 for a new one). A
/// symbolic link at `path` is followed, so the file it points to is
/// replaced and the link stays. With `replace` false an existing file is
/// never touched (the error is `AlreadyExists`).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>, replace: bool) -> io::Result<()> {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mode = mode.or_else(|| std::fs::metadata(&path).ok().map(|m| m.permissions().mode() & 0o7777)).unwrap_or(0o600);
    let (tmp, mut file) = temporary(&path, mode)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(mode)))
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            if replace {
                std::fs::rename(&tmp, &path)
            } else {
                // A link fails when `path` exists, where a rename would replace it.
                std::fs::hard_link(&tmp, &path).and_then(|()| std::fs::remove_file(&tmp))
            }
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A new file beside `path` named for this process and write, so a
/// leftover of a crashed write or another program's file is never reused.
fn temporary(path: &Path, mode: u32) -> io::Result<(PathBuf, std::fs::File)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_keeps_mode_follows_links_and_never_clobbers_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.yaml");
        std::fs::write(&real, "old\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("vger.yaml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        // A leftover of an earlier crashed write does not stop this one.
        std::fs::write(dir.path().join(format!(".real.yaml.{}.0.tmp", std::process::id())), "x").unwrap();

        write_atomic(&link, b"new\n", None, true).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays");
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
        assert_eq!(std::fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640);

        let err = write_atomic(&real, b"other\n", Some(0o600), false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
        let fresh = dir.path().join("sub/secret");
        write_atomic(&fresh, b"s", Some(0o600), false).unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o600);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert_eq!(left.len(), 1, "only the planted leftover remains");
    }
}
