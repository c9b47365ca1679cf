//! Identities of stored objects, and the one place their storage keys are made.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::FormatError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            pub fn from_hex(s: &str) -> Result<Self, FormatError> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|e| FormatError::corrupt(concat!(stringify!($name), " ") .to_string() + s, e))?;
                Ok(Self(out))
            }

            pub fn from_slice(b: &[u8]) -> Result<Self, FormatError> {
                let arr: [u8; 32] = b
                    .try_into()
                    .map_err(|_| FormatError::corrupt(stringify!($name), format!("{} bytes instead of 32", b.len())))?;
                Ok(Self(arr))
            }

            /// Eight hex digits, for messages.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let bytes: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
                let arr: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| serde::de::Error::custom(format!("id of {} bytes, expected 32", bytes.len())))?;
                Ok(Self(arr))
            }
        }
    };
}

id_type!(
    /// Keyed BLAKE3 of a chunk's plaintext.
    ChunkId
);
id_type!(
    /// BLAKE3 of a whole pack file.
    PackId
);
id_type!(
    /// Random id of a snapshot object.
    SnapshotId
);
id_type!(
    /// Random id of an index segment.
    SegmentId
);
id_type!(
    /// Random id of a key slot.
    KeySlotId
);

pub const CONFIG_KEY: &str = "config";
pub const PACKS_PREFIX: &str = "packs/";
pub const INDEX_PREFIX: &str = "index/";
pub const SNAPSHOTS_PREFIX: &str = "snapshots/";
pub const KEYS_PREFIX: &str = "keys/";
pub const LOCKS_PREFIX: &str = "locks/";

impl PackId {
    pub fn storage_key(&self) -> String {
        let hex = self.to_hex();
        format!("{PACKS_PREFIX}{}/{hex}", &hex[..2])
    }

    /// Parses `packs/xx/<hex>`; anything else is not a pack.
    pub fn from_storage_key(key: &str) -> Option<Self> {
        let rest = key.strip_prefix(PACKS_PREFIX)?;
        let (shard, hex) = rest.split_once('/')?;
        let id = Self::from_hex(hex).ok()?;
        (shard.len() == 2 && hex.starts_with(shard)).then_some(id)
    }
}

macro_rules! flat_key {
    ($name:ident, $prefix:expr) => {
        impl $name {
            pub fn storage_key(&self) -> String {
                format!("{}{}", $prefix, self.to_hex())
            }

            pub fn from_storage_key(key: &str) -> Option<Self> {
                Self::from_hex(key.strip_prefix($prefix)?).ok()
            }
        }
    };
}

flat_key!(SnapshotId, SNAPSHOTS_PREFIX);
flat_key!(SegmentId, INDEX_PREFIX);
flat_key!(KeySlotId, KEYS_PREFIX);

/// A fresh random id.
pub fn random_id() -> Result<[u8; 32], FormatError> {
    let mut b = [0u8; 32];
    vger_crypto::random_bytes(&mut b).map_err(|e| FormatError::crypto("random id", e))?;
    Ok(b)
}
