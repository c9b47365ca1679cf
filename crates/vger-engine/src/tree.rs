//! A snapshot's file tree (docs/format.md, section 8): one tree object
//! per directory, a subdirectory named by its tree ID, large directories
//! split into pages under index nodes ([`vger_format::tree`]).
//!
//! - [`writer`]: [`DirWriter`] stores one directory's objects as its
//!   entries come in (a backup writes directories bottom-up).
//! - [`store`]: [`TreeStore`] fetches, checks and caches tree objects.
//! - [`dir`]: one directory: lookup by name, entries in order.
//! - [`view`]: [`SnapshotTree`], a snapshot by path: stat, read_dir, walk.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vger_engine::repository::Repository;
//! use vger_engine::tree::{SnapshotTree, TreeStore, DEFAULT_CACHE_BYTES};
//!
//! fn list_home(repo: &Repository) -> vger_engine::Result<()> {
//!     let index = Arc::new(vger_engine::index::ChunkIndex::load(repo)?);
//!     let store = TreeStore::new(repo, index, DEFAULT_CACHE_BYTES);
//!     let snapshot = vger_engine::snapshots::find(repo, "latest")?;
//!     let tree = SnapshotTree::open(&store, &snapshot);
//!     for entry in tree.read_dir(b"home/me")? {
//!         println!("{}", entry?.display_name());
//!     }
//!     Ok(())
//! }
//! ```

pub mod dir;
pub mod store;
pub mod view;
pub mod writer;

pub use dir::{DirEntries, EntryRef};
pub use store::{TreeStore, DEFAULT_CACHE_BYTES};
pub use view::{path_components, SnapshotTree, Walk, WalkItem};
pub use writer::DirWriter;
