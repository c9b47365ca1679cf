//! vger's repository objects, byte for byte as `docs/format.md` describes.
//!
//! This crate knows how objects are laid out and encoded; it does no I/O.
//! The engine (`vger-engine`) decides when to write what; storage backends
//! (`vger-storage`) move the bytes.
//!
//! - [`id`]: the 32-byte identities and their storage keys.
//! - [`compress`]: per-chunk codecs with a hard output cap.
//! - [`change`]: how a backup tells an unchanged file.
//! - [`pack`]: building and parsing pack files.
//! - [`index`], [`snapshot`]: index segments and snapshots.
//! - [`tree`], [`entry`]: a snapshot's file tree, one object per directory,
//!   and the entries in it.
//! - [`repo_config`], [`key_slot`]: the `config` object and key slots.
//! - [`object`]: msgpack + compression + envelope for metadata objects.
//!
//! ```
//! use vger_format::compress::{compress, decompress, Codec};
//! let packed = compress(Codec::Lz4, &[0u8; 10_000]);
//! assert_eq!(decompress(&packed, 10_000).unwrap(), vec![0u8; 10_000]);
//! ```

pub mod change;
pub mod compress;
pub mod entry;
mod error;
pub mod id;
pub mod index;
pub mod key_slot;
pub mod object;
pub mod pack;
pub mod repo_config;
pub mod snapshot;
pub mod tree;

pub use error::FormatError;

/// The repository format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 3;
