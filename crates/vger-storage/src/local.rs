//! The local-directory backend: one file per object, `root/<key>`.
//!
//! Every write goes to a temporary file in the object's directory, is
//! fsynced, then renamed (`put`) or hard-linked (`put_new`) into place and
//! the directory fsynced, so no object is ever visible half-written and a
//! returned write survives a crash. Directories are created on demand and
//! never removed, which keeps concurrent writers free of races.

pub mod durable;
mod open_packs;
pub mod walk;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::keys::{validate_key, validate_prefix};
use crate::{ObjectInfo, StagedObject, Storage, StorageError};
use durable::{create_parent_dirs, TempFile};
use open_packs::OpenPacks;

/// A repository in a local directory (or a mounted network file system
/// that supports hard links).
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
    /// Packs kept open for reading, shared by clones.
    open_packs: OpenPacks,
}

/// How a written temporary file takes its final name.
#[derive(Clone, Copy)]
enum Commit {
    /// `rename`: replaces an existing object atomically.
    Replace,
    /// `link`: fails with `EEXIST` if the object exists.
    CreateNew,
}

impl LocalStorage {
    /// Opens an existing directory.
    pub fn open(root: &Path) -> Result<Self, StorageError> {
        let what = "open repository directory";
        match fs::metadata(root) {
            Ok(meta) if meta.is_dir() => {
                Ok(LocalStorage { root: root.to_path_buf(), open_packs: OpenPacks::default() })
            }
            Ok(_) => Err(StorageError::Backend { detail: format!("{} is not a directory", root.display()) }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::Backend {
                detail: format!(
                    "repository directory {} does not exist; check the path or run `vger init`",
                    root.display()
                ),
            }),
            Err(e) => Err(StorageError::from_io(what, &root.display().to_string(), e)),
        }
    }

    /// Creates the directory (and its parents) if missing, then opens it.
    /// Whether it already holds a repository is for the engine to check.
    pub fn create(root: &Path) -> Result<Self, StorageError> {
        fs::create_dir_all(root)
            .map_err(|e| StorageError::from_io("create repository directory", &root.display().to_string(), e))?;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            durable::sync_dir(parent)
                .map_err(|e| StorageError::from_io("fsync directory of", &root.display().to_string(), e))?;
        }
        Self::open(root)
    }

    /// The repository directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes temporary files left by crashed writers whose last change
    /// is older than `older_than` (pick hours, not seconds: a live writer's
    /// temp file must not be taken). Returns how many were removed.
    pub fn clean_temp_files(&self, older_than: Duration) -> Result<usize, StorageError> {
        walk::remove_stale_temp_files(&self.root, older_than)
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Opens an object for reading with its size; a directory is not an
    /// object (`NotFound`).
    fn open_object(&self, key: &str) -> Result<(File, u64), StorageError> {
        let file = File::open(self.path(key)).map_err(|e| read_error("open", key, e))?;
        let meta = file.metadata().map_err(|e| read_error("stat", key, e))?;
        if !meta.is_file() {
            return Err(StorageError::NotFound { key: key.to_owned() });
        }
        Ok((file, meta.len()))
    }

    fn write_object(&self, key: &str, data: &[u8], commit: Commit) -> Result<(), StorageError> {
        let (temp, mut file) = TempFile::create_for(&self.root, key)
            .map_err(|e| StorageError::from_io("create temporary file for", key, e))?;
        file.write_all(data).map_err(|e| StorageError::from_io("write", key, e))?;
        file.sync_all().map_err(|e| StorageError::from_io("fsync", key, e))?;
        drop(file);
        let path = self.path(key);
        match commit {
            Commit::Replace => {
                temp.rename_into_place(&path).map_err(|e| StorageError::from_io("rename into place", key, e))
            }
            Commit::CreateNew => match temp.link_into_place(&path) {
                Ok(true) => Ok(()),
                Ok(false) => Err(StorageError::AlreadyExists { key: key.to_owned() }),
                Err(e) => Err(StorageError::from_io("link into place", key, e)),
            },
        }
    }
}

impl Storage for LocalStorage {
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        let (mut file, size) = self.open_object(key)?;
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.read_to_end(&mut data).map_err(|e| read_error("read", key, e))?;
        Ok(data)
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        let mut data = Vec::new();
        self.get_range_into(key, offset, len, &mut data)?;
        Ok(data)
    }

    /// Reads into the spare capacity of `buf` (`read_to_end` on a `File`
    /// reads into uninitialised memory), so a reused buffer is neither
    /// reallocated nor zeroed: about 4 % of a restore's CPU went to that.
    /// Reads into the spare capacity of `buf`, so a reused buffer is
    /// neither reallocated nor zeroed (about 4 % of a restore's CPU went to
    /// that), with one `pread` of a pack kept open (see [`open_packs`]).
    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<(), StorageError> {
        validate_key(key)?;
        let (file, size) = match self.open_packs.get(key) {
            Some(open) => open,
            None => {
                let (file, size) = self.open_object(key)?;
                let file = Arc::new(file);
                self.open_packs.keep(key, file.clone(), size);
                (file, size)
            }
        };
        let out_of_bounds = || StorageError::RangeOutOfBounds { key: key.to_owned(), offset, len, size };
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(out_of_bounds());
        }
        let want = usize::try_from(len).map_err(|_| out_of_bounds())?;
        let got = open_packs::pread_into(&file, offset, want, buf).map_err(|e| read_error("read", key, e))?;
        if got != want {
            // The object shrank between the size check and the read.
            return Err(out_of_bounds());
        }
        Ok(())
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        self.open_packs.forget(key);
        self.write_object(key, data, Commit::Replace)
    }

    fn put_new(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        self.open_packs.forget(key);
        // Cheap early refusal; the link below is what makes it atomic.
        if fs::symlink_metadata(self.path(key)).is_ok() {
            return Err(StorageError::AlreadyExists { key: key.to_owned() });
        }
        self.write_object(key, data, Commit::CreateNew)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        self.open_packs.forget(key);
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => durable::sync_dir(path.parent().unwrap_or(&self.root))
                .map_err(|e| StorageError::from_io("fsync directory of", key, e)),
            Err(e) => match read_error("delete", key, e) {
                StorageError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        validate_prefix(prefix)?;
        let mut objects = Vec::new();
        walk::for_each_object(&self.root, prefix, &mut |found| {
            objects.push(ObjectInfo { key: found.key, size: found.size, modified: found.modified, writer: None });
            true
        })?;
        Ok(objects)
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        validate_key(key)?;
        match fs::metadata(self.path(key)) {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) => match read_error("stat", key, e) {
                StorageError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn is_local(&self) -> bool {
        true
    }

    fn remove_stale_temp_files(&self, older_than: Duration) -> Result<usize, StorageError> {
        self.clean_temp_files(older_than)
    }

    fn stage(&self, dir: &str) -> Result<Option<Box<dyn StagedObject>>, StorageError> {
        validate_prefix(dir)?;
        let what = format!("{dir}(new object)");
        let placeholder = format!("{}/x", dir.trim_end_matches('/'));
        let (temp, file) = TempFile::create_for(&self.root, &placeholder)
            .map_err(|e| StorageError::from_io("create temporary file for", &what, e))?;
        // Blobs of small files are a few hundred bytes: one write call each
        // would cost more than the copy into this buffer. Large blobs skip it.
        let file = io::BufWriter::with_capacity(STAGE_BUFFER, file);
        Ok(Some(Box::new(StagedFile { storage: self.clone(), what, temp, file })))
    }
}

/// An object written straight into a temporary file (in the directory the
/// caller named) and renamed to its key on commit: a 32 MiB pack costs the
/// backup no memory and no copy into a buffer.
struct StagedFile {
    storage: LocalStorage,
    /// For messages until the key is known.
    what: String,
    temp: TempFile,
    file: io::BufWriter<File>,
}

/// Buffer of a staged write (see [`LocalStorage::stage`]).
const STAGE_BUFFER: usize = 256 << 10;

impl StagedObject for StagedFile {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.file.write_all(data).map_err(|e| StorageError::from_io("write", &self.what, e))
    }

    fn commit(self: Box<Self>, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        let StagedFile { storage, what: _, temp, file } = *self;
        storage.open_packs.forget(key);
        let file = file.into_inner().map_err(|e| StorageError::from_io("write", key, e.into_error()))?;
        file.sync_all().map_err(|e| StorageError::from_io("fsync", key, e))?;
        drop(file);
        let path = storage.path(key);
        if path.parent().is_some_and(|dir| !dir.is_dir()) {
            create_parent_dirs(&storage.root, key)
                .map_err(|e| StorageError::from_io("create directory for", key, e))?;
        }
        temp.rename_into_place(&path).map_err(|e| StorageError::from_io("rename into place", key, e))
    }
}

/// Like [`StorageError::from_io`], but a path through a file (`ENOTDIR`)
/// or a directory where an object should be (`EISDIR`) means "no such
/// object" when reading or deleting.
fn read_error(op: &'static str, key: &str, e: io::Error) -> StorageError {
    match e.raw_os_error() {
        Some(libc::ENOTDIR | libc::EISDIR) => StorageError::NotFound { key: key.to_owned() },
        _ => StorageError::from_io(op, key, e),
    }
}
