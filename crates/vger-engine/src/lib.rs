//! The vger engine: everything the `vger` commands do, as a library.
//!
//! The CLI parses arguments and prints; this crate opens repositories and
//! runs backups, restores and queries. Its parts:
//!
//! - [`repository`]: init and open (keys, config), the object envelope;
//!   [`unlock`] and [`settings_memory`] guard the open against a hostile
//!   storage (costly key slots, a replaced config).
//! - [`index`]: the in-memory chunk index built from index segments.
//! - [`index_cache`]: its local, authenticated copy per repository.
//! - [`pack_writer`]: assembles sealed chunks into packs, uploads them and
//!   checkpoints index segments.
//! - [`tree`]: a snapshot's file tree: one object per directory, read by
//!   path (stat, read_dir, walk) through a shared cache.
//! - [`diff`], [`find`]: what changed between two snapshots; where paths
//!   are across snapshots, with their history.
//! - [`backup`], [`restore`]: the two pipelines; [`copy`]: snapshots from
//!   one repository into another.
//! - [`file_reader`]: reading one file of a snapshot at any offset, through
//!   the shared [`chunk_cache`].
//! - [`snapshots`]: listing and finding snapshots.
//! - [`keys`]: adding, changing and removing passphrases.
//! - [`info`]: repository statistics.
//! - [`progress`]: counters a front end polls, and its cancel flag;
//!   [`Notice`]: what an operation reports without failing.
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
pub mod chunk_cache;
pub(crate) mod chunk_table;
pub mod compact;
pub mod copy;
pub mod delete;
pub mod diff;
pub mod dump;
mod error;
pub mod file_reader;
pub mod find;
pub mod index;
pub mod index_cache;
pub mod info;
pub mod keys;
pub mod live;
pub mod lock;
mod notice;
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
pub mod settings_memory;
pub mod snapshots;
pub mod throttle;
pub mod tree;
pub mod unlock;

pub use error::{EngineError, Result};
pub use notice::Notice;
