//! A repository held in a map, so a fuzz target can plant a hostile object
//! and run the engine's real readers over it tens of thousands of times a
//! second (a directory would cost a file create, an fsync and a rename per
//! run). It keeps the [`Storage`] contract every backend keeps: keys are
//! checked by `vger_storage::keys`, ranges past the end are refused,
//! `put_new` never replaces.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use vger_storage::keys::{validate_key, validate_prefix};
use vger_storage::{ObjectInfo, Storage, StorageError};

#[derive(Debug, Default)]
pub struct MemoryStorage {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStorage {
    fn objects(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panicking target poisons nothing worth keeping: the map is
        // whole between calls.
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every object, for the seed generator.
    pub fn all(&self) -> BTreeMap<String, Vec<u8>> {
        self.objects().clone()
    }
}

impl Storage for MemoryStorage {
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        self.objects().get(key).cloned().ok_or_else(|| StorageError::NotFound { key: key.to_owned() })
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        let objects = self.objects();
        let object = objects.get(key).ok_or_else(|| StorageError::NotFound { key: key.to_owned() })?;
        let size = object.len() as u64;
        let out_of_bounds = || StorageError::RangeOutOfBounds { key: key.to_owned(), offset, len, size };
        let end = offset.checked_add(len).filter(|end| *end <= size).ok_or_else(out_of_bounds)?;
        let range = usize::try_from(offset).ok().zip(usize::try_from(end).ok()).ok_or_else(out_of_bounds)?;
        object.get(range.0..range.1).map(<[u8]>::to_vec).ok_or_else(out_of_bounds)
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        self.objects().insert(key.to_owned(), data.to_vec());
        Ok(())
    }

    fn put_new(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        let mut objects = self.objects();
        if objects.contains_key(key) {
            return Err(StorageError::AlreadyExists { key: key.to_owned() });
        }
        objects.insert(key.to_owned(), data.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        self.objects().remove(key);
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        validate_prefix(prefix)?;
        Ok(self
            .objects()
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, data)| ObjectInfo { key: key.clone(), size: data.len() as u64, modified: None, writer: None })
            .collect())
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        validate_key(key)?;
        Ok(self.objects().get(key).map(|d| d.len() as u64))
    }

    fn describe(&self) -> String {
        "memory:fuzz-fixture".into()
    }

    fn is_local(&self) -> bool {
        true
    }
}
