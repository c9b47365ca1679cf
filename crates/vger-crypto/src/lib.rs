//! Keys, authenticated envelopes and keyed chunk IDs for vger repositories.
//!
//! Everything secret in a repository flows through this crate:
//!
//! - [`MasterKey`]: 96 random bytes (encryption key, chunk-ID key, config MAC
//!   key), created once per repository and wrapped by passphrases with
//!   Argon2id ([`wrap_master_key`], [`unwrap_master_key`]).
//! - [`Envelope`]: the byte layout every stored object uses: a 16-byte header
//!   (version, object type, algorithm, nonce), the ciphertext and a 16-byte
//!   tag. The AAD binds the header and the object's identity, so one object
//!   cannot be swapped for another.
//! - [`ChunkIdKey`]: BLAKE3 keyed hashing of chunk plaintext.
//!
//! ```
//! use vger_crypto::{Algorithm, Envelope, MasterKey, ObjectType};
//! let key = MasterKey::generate().unwrap();
//! let sealer = Envelope::new(Algorithm::Aes256Gcm, &key).unwrap();
//! let sealed = sealer.seal(ObjectType::Snapshot, b"snapshots/ab", b"hello").unwrap();
//! let plain = sealer.open(ObjectType::Snapshot, b"snapshots/ab", sealed).unwrap();
//! assert_eq!(plain, b"hello");
//! ```
//!
//! The byte-level format is specified in `docs/format.md`, sections 2-5.

mod aead;
mod chunk_id;
mod envelope;
mod error;
mod kdf_memory;
mod keys;
mod random;

pub use aead::Algorithm;
pub use chunk_id::ChunkIdKey;
pub use envelope::{Envelope, ObjectType, ENVELOPE_HEADER_LEN, ENVELOPE_OVERHEAD, ENVELOPE_VERSION};
pub use error::CryptoError;
pub use keys::{unwrap_master_key, wrap_master_key, KdfLimit, KdfParams, MasterKey, WrappedKey, MASTER_KEY_LEN};
pub use random::random_bytes;
