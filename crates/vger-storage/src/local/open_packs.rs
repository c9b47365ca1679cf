//! The few packs a reader is working through, kept open.
//!
//! Reading a snapshot's trees (an unchanged backup walking its parent, a
//! restore, `mount`) asks for thousands of small ranges, most of them in
//! the same few packs. Each read by path cost an `open` (a lookup of every
//! component of `root/packs/xx/<id>`), an `fstat`, an `lseek` and a
//! `close` around the one `read` that mattered; an open pack is read with
//! a single `pread`.
//!
//! Only packs are kept: they are never rewritten under their name (a pack's
//! key is its content's ID, so a name either holds that content or
//! nothing). Every write or delete of a key through this storage forgets it
//! first, so a deleted pack's space is not held by an open descriptor.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, PoisonError};

/// How many packs stay open (per storage and its clones).
const CAPACITY: usize = 8;

/// Keys under this prefix are kept open after a read.
pub(super) const PACKS_PREFIX: &str = "packs/";

/// A pack's key, its open file and its size.
type OpenPack = (String, Arc<File>, u64);

/// Open packs, the most recently used last.
#[derive(Debug, Default, Clone)]
pub(super) struct OpenPacks {
    files: Arc<Mutex<Vec<OpenPack>>>,
}

impl OpenPacks {
    /// The open file and size of `key`, if it is kept.
    pub(super) fn get(&self, key: &str) -> Option<(Arc<File>, u64)> {
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        let at = files.iter().position(|(k, _, _)| k == key)?;
        let entry = files.remove(at);
        let found = (entry.1.clone(), entry.2);
        files.push(entry);
        Some(found)
    }

    /// Keeps `file` open for `key` if it is a pack; the least recently used
    /// pack is closed when there are too many.
    pub(super) fn keep(&self, key: &str, file: Arc<File>, size: u64) {
        if !key.starts_with(PACKS_PREFIX) {
            return;
        }
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        files.retain(|(k, _, _)| k != key);
        if files.len() >= CAPACITY {
            files.remove(0);
        }
        files.push((key.to_owned(), file, size));
    }

    /// Closes `key` if it is open (before it is written or deleted).
    pub(super) fn forget(&self, key: &str) {
        if !key.starts_with(PACKS_PREFIX) {
            return;
        }
        self.files.lock().unwrap_or_else(PoisonError::into_inner).retain(|(k, _, _)| k != key);
    }
}

/// Reads `len` bytes at `offset` of `file` into the spare capacity of
/// `buf` (cleared first) with `pread`: nothing is zeroed first, and the
/// file's offset is not used, so threads share one descriptor. Returns how
/// many bytes were read: fewer than `len` if the file ends first.
pub(super) fn pread_into(file: &File, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    buf.reserve(len);
    while buf.len() < len {
        let at = offset
            .checked_add(buf.len() as u64)
            .and_then(|at| libc::off_t::try_from(at).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))?;
        let left = len - buf.len();
        let spare = &mut buf.spare_capacity_mut()[..left];
        // SAFETY: the descriptor is open for the lifetime of `file`; pread(2)
        // writes at most `spare.len()` bytes into memory the vector owns, and
        // only the bytes it reports written are counted as initialised below.
        let n = unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len(), at) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        // SAFETY: `n` bytes past the old length were just written (n <= spare.len()).
        unsafe { buf.set_len(buf.len() + n as usize) };
    }
    Ok(buf.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail by panicking.

    use crate::{LocalStorage, Storage, StorageError};

    const PACK: &str = "packs/ab/ab01";

    fn storage() -> (tempfile::TempDir, LocalStorage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::create(&dir.path().join("repo")).unwrap();
        (dir, storage)
    }

    #[test]
    fn a_pack_written_or_deleted_through_the_storage_is_read_again() {
        let (_dir, storage) = storage();
        storage.put(PACK, b"first content").unwrap();
        assert_eq!(storage.get_range(PACK, 0, 5).unwrap(), b"first");
        // A clone shares the open packs: its writes close them too.
        storage.clone().put(PACK, b"other bytes!!").unwrap();
        assert_eq!(storage.get_range(PACK, 0, 5).unwrap(), b"other");
        storage.clone().delete(PACK).unwrap();
        assert!(matches!(storage.get_range(PACK, 0, 5), Err(StorageError::NotFound { .. })));
        assert_eq!(storage.open_packs.files.lock().unwrap().len(), 0, "a deleted pack stays open");
    }

    #[test]
    fn only_a_few_packs_and_no_other_objects_stay_open() {
        let (_dir, storage) = storage();
        for i in 0..20 {
            let key = format!("packs/ab/ab{i:02}");
            storage.put(&key, format!("pack {i:02}").as_bytes()).unwrap();
            assert_eq!(storage.get_range(&key, 5, 2).unwrap(), format!("{i:02}").as_bytes());
        }
        let open: Vec<String> = storage.open_packs.files.lock().unwrap().iter().map(|(k, _, _)| k.clone()).collect();
        let newest: Vec<String> = (12..20).map(|i| format!("packs/ab/ab{i:02}")).collect();
        assert_eq!(open, newest);
        storage.put("index/00", b"segment").unwrap();
        assert_eq!(storage.get_range("index/00", 0, 3).unwrap(), b"seg");
        assert!(!storage.open_packs.files.lock().unwrap().iter().any(|(k, _, _)| k == "index/00"));
    }

    /// A hostile or broken host truncates a pack that is open: reads past
    /// its new end fail with an error, not with short or stale data.
    #[test]
    fn a_pack_cut_short_behind_the_storage_fails_the_read() {
        let (dir, storage) = storage();
        storage.put(PACK, &[7u8; 1000]).unwrap();
        assert_eq!(storage.get_range(PACK, 900, 100).unwrap(), vec![7u8; 100]);
        let file = std::fs::OpenOptions::new().write(true).open(dir.path().join("repo").join(PACK)).unwrap();
        file.set_len(950).unwrap();
        assert!(matches!(storage.get_range(PACK, 900, 100), Err(StorageError::RangeOutOfBounds { .. })));
        assert!(matches!(storage.get_range(PACK, 990, 20), Err(StorageError::RangeOutOfBounds { .. })));
        assert_eq!(storage.get_range(PACK, 0, 10).unwrap(), vec![7u8; 10]);
    }
}
