//! Where vger keeps a repository's objects.
//!
//! A repository is a flat key space (`config`, `keys/<id>`,
//! `packs/<xx>/<id>`, `index/<id>`, `snapshots/<id>`, `locks/<id>`, see
//! `docs/format.md`). This crate defines the small [`Storage`] trait every
//! backend implements, the key rules every backend enforces ([`keys`]), the
//! error type they all return ([`StorageError`]), the local-directory
//! backend ([`LocalStorage`]) and the test suite every backend must pass
//! ([`testsuite`]).
//!
//! The trait is synchronous and `Send + Sync`: the engine drives it from
//! plain threads. Cross-cutting behaviour (retry, bandwidth and connection
//! limits, logging) is written as layers that wrap a `Box<dyn Storage>` and
//! implement [`Storage`] again, so a backend stays small.
//!
//! ```
//! use vger_storage::{LocalStorage, Storage};
//!
//! # fn main() -> Result<(), vger_storage::StorageError> {
//! # let dir = std::env::temp_dir().join(format!("vger-storage-doc-{}", std::process::id()));
//! let storage: Box<dyn Storage> = Box::new(LocalStorage::create(&dir)?);
//! storage.put("snapshots/0123", b"snapshot bytes")?;
//! assert_eq!(storage.get("snapshots/0123")?, b"snapshot bytes");
//! assert_eq!(storage.get_range("snapshots/0123", 9, 5)?, b"bytes");
//! // put_new is create-if-absent: the building block for locks.
//! assert!(storage.put_new("snapshots/0123", b"other").is_err());
//! for object in storage.list("snapshots/")? {
//!     println!("{} ({} bytes)", object.key, object.size);
//! }
//! storage.delete("snapshots/0123")?;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

mod error;
mod http;
pub mod keys;
pub mod layers;
pub mod local;
mod open;
mod options;
mod random;
pub mod rest;
pub mod s3;
pub mod sftp;
pub mod testsuite;

use std::sync::Arc;

pub use error::StorageError;
pub use http::clean_text;
pub use local::LocalStorage;
pub use open::open_url;
pub use options::{BackendOptions, RetryPolicy};
pub use rest::RestStorage;
pub use s3::S3Storage;
pub use sftp::SftpStorage;
pub use vger_protocol::{PackVerification, RepackBlob, RepackResponse, MAX_REPACK_BLOBS};

/// A key-value store of whole objects, shaped like an object store.
///
/// Every method validates its key with [`keys::validate_key`] (or
/// [`keys::validate_prefix`] for `list`) and returns
/// [`StorageError::InvalidKey`] before touching the backend.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The whole object; `NotFound` if absent.
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError>;

    /// `len` bytes from `offset`; `RangeOutOfBounds` if the object is
    /// shorter, `NotFound` if absent.
    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError>;

    /// [`get_range`](Storage::get_range) into `buf`, which is cleared
    /// first and holds exactly the range on success. Backends that can
    /// read into a caller's buffer do so, which lets a hot loop (restore)
    /// reuse one buffer instead of allocating and zeroing one per read.
    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<(), StorageError> {
        *buf = self.get_range(key, offset, len)?;
        Ok(())
    }

    /// Atomic create-or-replace: readers see the old object or the new one,
    /// never a part of it. Durable when it returns.
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError>;

    /// Atomic create-if-absent (`AlreadyExists` otherwise): of several
    /// concurrent callers exactly one succeeds. Used for locks and
    /// immutable objects.
    fn put_new(&self, key: &str, data: &[u8]) -> Result<(), StorageError>;

    /// Removes an object; deleting an absent key is `Ok`.
    fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// Every object whose key starts with `prefix` (`""` for all,
    /// `"packs/"`, or a partial name like `"packs/a"`), recursively, with
    /// sizes. Order unspecified.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError>;

    /// Size of an object in bytes, `None` if absent.
    fn size(&self, key: &str) -> Result<Option<u64>, StorageError>;

    /// Where this is, for messages: a path or a URL (without credentials).
    fn describe(&self) -> String;

    /// Whether requests are served by this machine's own file system, with
    /// no network round trip: callers read with about one thread per core
    /// then, and with more (to keep requests in flight) otherwise. Layers
    /// forward it.
    fn is_local(&self) -> bool {
        false
    }

    /// Whether [`ObjectInfo::modified`] is set by a party the client does
    /// not control (vger-server records when it received each object), so
    /// that it can overrule times written by a possibly compromised client.
    fn receipt_times_trusted(&self) -> bool {
        false
    }

    /// Pack work the storage itself can do (vger-server), so maintenance
    /// need not download packs; `None` for plain storage. Layers forward it.
    fn pack_service(&self) -> Option<&dyn PackService> {
        None
    }

    /// Removes temporary objects left by writers that crashed (a killed
    /// `put` of the local backend leaves a `.tmp-*` file), if their last
    /// change is older than `older_than`; returns how many. Only for
    /// storages with such leftovers; the default does nothing. Pick hours,
    /// not seconds: a temp file of a writer still running must stay.
    fn remove_stale_temp_files(&self, older_than: std::time::Duration) -> Result<usize, StorageError> {
        let _ = older_than;
        Ok(0)
    }

    /// Starts an object written piece by piece and named only once complete
    /// (a pack's name is the hash of its bytes), for storages that take
    /// such writes without holding the object in memory: the local one.
    /// `dir` is the key prefix it will be stored under (`"packs/"`).
    /// `None` means: build the object in memory and [`Storage::put`] it.
    fn stage(&self, dir: &str) -> Result<Option<Box<dyn StagedObject>>, StorageError> {
        let _ = dir;
        Ok(None)
    }
}

/// An object being written by [`Storage::stage`]. Dropped without
/// [`StagedObject::commit`], it leaves nothing visible behind.
pub trait StagedObject: Send {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError>;

    /// Stores what was written under `key`, with [`Storage::put`]'s promise:
    /// atomic create-or-replace, durable on return.
    fn commit(self: Box<Self>, key: &str) -> Result<(), StorageError>;
}

/// Work on packs that a server holding them can do without a key: the
/// packs are encrypted, but their framing and BLAKE3 names are not.
pub trait PackService: Send + Sync {
    /// Checks packs (keys `packs/xx/<id>` or bare ids; `None` for all):
    /// BLAKE3 against the id in the name, header and footer. One result
    /// per pack asked for.
    fn verify_packs(&self, packs: Option<&[String]>) -> Result<Vec<PackVerification>, StorageError>;

    /// Builds a new pack from byte ranges of existing packs followed by
    /// `trailer` (sealed by the caller, whose blob offsets are 16 plus the
    /// lengths before each blob) and stores it create-only.
    fn repack(&self, blobs: &[RepackBlob], trailer: &[u8]) -> Result<RepackResponse, StorageError>;
}

/// One object found by [`Storage::list`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// When the storage last wrote the object (unix seconds), if it says:
    /// maintenance uses it for grace periods, and vger-server's receipt
    /// time defeats clients that lie about snapshot times.
    pub modified: Option<u64>,
    /// Who wrote it, if the storage records that: vger-server names the
    /// token. Like `modified`, a client cannot set it.
    pub writer: Option<String>,
}

/// Forwards every call, so `Box<dyn Storage>` and `Arc<dyn Storage>` are
/// storages themselves and layers can wrap either.
macro_rules! forward_storage {
    ($($wrapper:ident),*) => {$(
        impl<S: Storage + ?Sized> Storage for $wrapper<S> {
            fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
                (**self).get(key)
            }
            fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
                (**self).get_range(key, offset, len)
            }
            fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<(), StorageError> {
                (**self).get_range_into(key, offset, len, buf)
            }
            fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
                (**self).put(key, data)
            }
            fn put_new(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
                (**self).put_new(key, data)
            }
            fn delete(&self, key: &str) -> Result<(), StorageError> {
                (**self).delete(key)
            }
            fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
                (**self).list(prefix)
            }
            fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
                (**self).size(key)
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
            fn is_local(&self) -> bool {
                (**self).is_local()
            }
            fn receipt_times_trusted(&self) -> bool {
                (**self).receipt_times_trusted()
            }
            fn pack_service(&self) -> Option<&dyn PackService> {
                (**self).pack_service()
            }
            fn remove_stale_temp_files(&self, older_than: std::time::Duration) -> Result<usize, StorageError> {
                (**self).remove_stale_temp_files(older_than)
            }
            fn stage(&self, dir: &str) -> Result<Option<Box<dyn StagedObject>>, StorageError> {
                (**self).stage(dir)
            }
        }
    )*};
}

forward_storage!(Box, Arc);
