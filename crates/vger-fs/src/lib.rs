//! The local filesystem side of vger: what a backup reads from disk and
//! what a restore writes back.
//!
//! - [`Walker`] walks the sources of a backup and yields one
//!   [`Entry`](vger_format::entry::Entry) per path, metadata filled in, in
//!   the order of the snapshot tree stream (see [`cmp_paths`]).
//! - [`open_for_backup`] opens a file the walker found for reading its data.
//! - [`RestoreTarget`] recreates entries in a directory, never writing
//!   outside it, whatever the snapshot holds.
//! - [`private`] creates the client's own state files: mode 0600 in 0700
//!   folders, never through a planted symlink.
//!
//! ```no_run
//! use vger_fs::{Walker, WalkOptions, WalkRoot};
//!
//! let roots = vec![WalkRoot { abs: "/home/me/docs".into(), rel: b"home/me/docs".to_vec() }];
//! for item in Walker::new(roots, WalkOptions::default())? {
//!     match item {
//!         Ok(item) => println!("{}", item.entry.display_path()),
//!         Err(e) => eprintln!("skipped: {e}"),
//!     }
//! }
//! # Ok::<(), vger_fs::FsError>(())
//! ```
//!
//! Linux only.

mod error;
mod metadata;
mod owners;
mod path;
pub mod private;
mod read;
mod restore;
mod walk;

pub use error::{FsError, WalkError};
pub use metadata::{entry_from_metadata, kind_of, read_xattrs, XattrSupport};
pub use owners::OwnerNames;
pub use path::{cmp_paths, join_rel, split_last};
pub use read::{append_from, open_for_backup, read_whole, same_file};
pub use restore::{
    is_all_zero, Existing, ExistingFile, FileWriter, NewFile, RestoreOptions, RestoreSummary, RestoreTarget,
    SpecialOutcome, TEMP_PREFIX,
};
pub use walk::{ExcludeFn, WalkItem, WalkOptions, WalkRoot, Walker};
