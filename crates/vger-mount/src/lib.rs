//! `vger mount`: a repository's snapshots, read-only, over WebDAV (for file
//! managers and rclone) and as a web UI (for browsers), on one port.
//!
//! | module | what it does |
//! |---|---|
//! | [`store`] | the trait of what the server needs from a repository |
//! | [`engine_store`] | that trait on the engine |
//! | [`layout`] | URL paths: sources, snapshot folders, `latest`, trees |
//! | [`server`] | binding, the loopback rule, start and stop, the dispatcher |
//! | `guard` | Host check (DNS rebinding), token, session token |
//! | `dav` | OPTIONS, PROPFIND depth 0/1, fake LOCK/UNLOCK |
//! | `content`, `ranges`, `body` | GET/HEAD of files: conditionals, ranges, streaming |
//! | `archive` | folders as streamed `.tar.gz` and `.zip` |
//! | `api`, `search`, `restore_jobs`, `ui` | the web UI's JSON, search, restores and page |
//!
//! ```no_run
//! # fn demo(repo: vger_engine::repository::Repository) -> Result<(), vger_mount::MountError> {
//! use std::sync::Arc;
//! use vger_mount::{engine_store::EngineStore, layout::Scope, server::{start, MountOptions}};
//! let store = Arc::new(EngineStore::new(repo)?);
//! let opts = MountOptions {
//!     address: "127.0.0.1:0".into(),
//!     allow_public: false,
//!     token: None,
//!     allowed_hosts: vec![],
//!     scope: Scope::Repository,
//!     title: "backups".into(),
//! };
//! let running = start(store, opts)?;
//! println!("http://{}/", running.address);
//! running.stop();
//! # Ok(()) }
//! ```

mod api;
mod archive;
mod body;
mod content;
mod dav;
pub mod engine_store;
mod error;
mod guard;
pub mod layout;
mod ranges;
mod restore_jobs;
mod search;
pub mod server;
pub mod store;
mod ui;

pub use error::MountError;
