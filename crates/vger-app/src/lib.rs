//! vger's application layer: what every front end does with a loaded
//! `vger.yaml`, written once. The `vger` CLI and its daemon call it; the
//! coming `vger mount` and desktop app are meant to.
//!
//! The engine (`vger-engine`) knows repositories, not configs. This crate
//! turns the config into the engine's inputs and runs what a user asks for:
//!
//! - [`App`]: a loaded config; opens its repositories ([`storage`] builds
//!   each storage in one place) with passphrases from `VGER_PASSPHRASE`,
//!   `passcommand`, the config or the front end's prompt ([`passphrase`]).
//! - [`backup`]: a repository's sources ([`source`], [`excludes`], command
//!   dumps), each in its [`hooks`].
//! - [`retention`] and prune, [`maintenance`] (compact, check), [`restore`].
//! - [`cycle`]: backup, prune, compact and check when due, as `vger` with
//!   no command and the daemon run it.
//! - [`events`]: what a front end implements ([`FrontEnd`]) to follow an
//!   operation (progress with rate and time left, warnings, results) and
//!   to cancel it at a safe point.
//! - [`AppError`]: typed failures a front end words its own way.
//! - [`init`], [`secrets`] (kept from hooks and dumps, masked in what is
//!   shown), [`dirs`] and [`state`] (local folders, per-repository state).
//!
//! A library does not change the process it runs in: allocator tuning,
//! niceness and I/O priority are the binary's ([`events::Event::BackupStarting`]
//! tells it when a backup starts).
//!
//! ```no_run
//! use vger_app::events::Silent;
//! use vger_app::App;
//! let app = App::from_loaded(vger_config::Config::load(None).unwrap());
//! for repo in app.repositories(None).unwrap() {
//!     let summary = app.cycle(repo, &Silent);
//!     println!("{}: {}", summary.repository, summary.outcome());
//! }
//! ```

mod app;
pub mod backup;
pub mod copy;
pub mod cycle;
pub mod dirs;
mod error;
pub mod events;
pub mod excludes;
pub mod hooks;
pub mod init;
pub mod maintenance;
pub mod passphrase;
pub mod restore;
pub mod retention;
pub mod scheduler_lock;
pub mod secrets;
pub mod source;
pub mod state;
pub mod storage;
pub mod text;

pub use app::App;
pub use error::{one_line, AppError, Problem};
pub use events::{Event, FrontEnd};

/// How an operation ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Ok,
    /// Finished, but some files were skipped.
    Partial,
}
