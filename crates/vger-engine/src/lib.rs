//! The vger engine: everything the `vger` commands do, as a library.
//!
//! The CLI parses arguments and prints; this crate opens repositories and
//! runs backups, restores and queries. Its parts:
//!
//! - [`repository`]: init and open (keys, config), the object envelope.
//! - [`index`]: the in-memory chunk index built from index segments.
//! - [`index_cache`]: its local, authenticated copy per repository.
//! - [`pack_writer`]: assembles sealed chunks into packs, uploads them and
//!   checkpoints index segments.
//! - [`tree`]: writes and reads a snapshot's file-tree stream.
//! - [`backup`], [`restore`]: the two pipelines.
//! - [`snapshots`]: listing and finding snapshots.
//! - [`keys`]: adding, changing and removing passphrases.
//! - [`info`]: repository statistics.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vger_engine::repository::{InitOptions, Repository};
//! use vger_storage::LocalStorage;
//! let storage = Arc::new(LocalStorage::create("/tmp/repo".as_ref()).unwrap());
//! let repo = Repository::init(storage, Some(b"secret".to_vec()), InitOptions::default()).unwrap();
//! ```

pub mod backup;
pub mod blob;
pub mod check;
pub(crate) mod chunk_table;
pub mod compact;
pub mod delete;
pub mod dump;
mod error;
pub mod index;
pub mod index_cache;
pub mod info;
pub mod keys;
pub mod live;
pub mod lock;
pub(crate) mod pack_stream;
pub mod pack_writer;
pub mod packs;
pub(crate) mod parallel;
pub mod progress;
pub mod prune;
pub mod repair;
pub mod repository;
pub mod restore;
pub mod retention;
pub(crate) mod server_side;
pub mod snapshots;
pub mod throttle;
pub mod tree;

pub use error::{EngineError, Result};
