//! Files only this user may read: the client's own state (resume journals,
//! the index cache, the settings it remembers per repository, the
//! daemon's state and lock).
//!
//! Folders are made mode 0700 (an existing one of ours that is looser is
//! tightened); files are created with `O_CREAT | O_EXCL | O_NOFOLLOW` and
//! mode 0600, so a name planted in advance (a symlink to a file of the
//! user's, a file someone else can read) makes the creation fail instead
//! of writing through it. Replacing a file is a new temporary file,
//! fsync, rename and fsync of the folder: a reader sees the old content or
//! the new, never a part.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Makes `dir` and its missing parents with mode 0700. A folder that
/// exists already must be a real folder (not a symlink); if it is ours
/// and others may enter it, it is tightened to 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let md = std::fs::symlink_metadata(dir)?;
    if !md.is_dir() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is not a folder", dir.display())));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if md.uid() == me && md.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates `path`, which must not exist (not even as a symlink), for
/// writing with mode 0600.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens an existing private file for reading, refusing a symlink.
pub fn open_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)
}

/// Opens `path` for reading and writing, creating it (mode 0600) when
/// missing; refuses a symlink. For lock files that outlive their holder.
pub fn open_or_create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Reads a whole private file, refusing a symlink.
pub fn read_private_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    io::Read::read_to_end(&mut open_private_file(path)?, &mut out)?;
    Ok(out)
}

/// A new private file beside `path` under a temporary name (a dot name
/// ending in `.tmp-<pid>-<n>`), for the caller to fill and then
/// [`replace_with`] over `path`. The folder is made private first.
pub fn create_private_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = parent(path)?;
    create_private_dir(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut last = None;
    // A crashed process with the same PID may have left a name behind.
    for _ in 0..16 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        match create_private_file(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Syncs `file` (written at `temp` by [`create_private_temp`]) and renames
/// it over `path`, then syncs the folder. Removes `temp` on failure.
pub fn replace_with(temp: &Path, file: File, path: &Path) -> io::Result<()> {
    let done = file.sync_all().and_then(|()| {
        drop(file);
        std::fs::rename(temp, path)?;
        File::open(parent(path)?)?.sync_all()
    });
    if done.is_err() {
        let _ = std::fs::remove_file(temp);
    }
    done
}

/// Replaces `path` with `bytes` atomically and durably (see the module
/// docs), mode 0600 in a 0700 folder.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (temp, mut file) = create_private_temp(path)?;
    if let Err(e) = file.write_all(bytes) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    replace_with(&temp, file, path)
}

fn parent(path: &Path) -> io::Result<&Path> {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{} has no folder", path.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail by panicking.

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn files_are_0600_in_0700_folders_and_replaced_whole() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/state.json");
        write_private_file(&path, b"one").unwrap();
        write_private_file(&path, b"two").unwrap();
        assert_eq!(read_private_file(&path).unwrap(), b"two");
        assert_eq!((mode(&path), mode(&root.path().join("a/b")), mode(&root.path().join("a"))), (0o600, 0o700, 0o700));
        let names: Vec<_> =
            std::fs::read_dir(root.path().join("a/b")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["state.json"], "no temporary file left");
    }

    #[test]
    fn a_loose_folder_of_ours_is_tightened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn planted_symlinks_are_never_written_through_or_read() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let planted = root.path().join("journal");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        assert_eq!(create_private_file(&planted).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert!(open_private_file(&planted).is_err());
        assert!(open_or_create_private_file(&planted).is_err());
        // A symlinked folder is refused too.
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.path().join("dir")).unwrap();
        assert!(create_private_dir(&root.path().join("dir")).is_err());
        // Replacing renames over the symlink itself; the victim is untouched.
        write_private_file(&planted, b"state").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(read_private_file(&planted).unwrap(), b"state");
    }
}
