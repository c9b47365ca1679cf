//! The `config` object (docs/format.md, section 4): plaintext msgpack with a
//! MAC that is checked once the master key is known.

use serde::{Deserialize, Serialize};

use crate::object::{check_msgpack_version_range, from_msgpack, to_msgpack};
use crate::{FormatError, FORMAT_VERSION};

const MAGIC: &[u8; 8] = b"VGERCONF";
const MAC_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerSizes {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub version: u32,
    #[serde(with = "serde_bytes")]
    pub id: Vec<u8>,
    pub created: String,
    /// `aes256gcm`, `chacha20poly1305` or `none`.
    pub encryption: String,
    pub chunker: ChunkerSizes,
    /// Default codec for new chunks, e.g. `lz4` or `zstd:3`.
    pub compression: String,
    pub pack_target_size: u64,
}

impl RepoConfig {
    pub fn repository_id(&self) -> Result<[u8; 32], FormatError> {
        self.id.as_slice().try_into().map_err(|_| FormatError::corrupt("repository config", "id is not 32 bytes"))
    }

    /// Serialises with the MAC computed by `mac` over the body.
    pub fn encode(&self, mac: impl Fn(&[u8]) -> [u8; 32]) -> Result<Vec<u8>, FormatError> {
        let body = to_msgpack("repository config", self)?;
        let mut out = Vec::with_capacity(MAGIC.len() + MAC_LEN + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&mac(&body));
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Parses without checking the MAC (the key is not known yet). Returns
    /// the config and the stored MAC; call [`RepoConfig::verify`] later.
    pub fn decode_unverified(bytes: &[u8]) -> Result<(RepoConfig, ConfigMac), FormatError> {
        if bytes.len() < MAGIC.len() + MAC_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err(FormatError::corrupt("repository config", "it does not start with the vger magic bytes"));
        }
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&bytes[MAGIC.len()..MAGIC.len() + MAC_LEN]);
        let body = &bytes[MAGIC.len() + MAC_LEN..];
        // Version 1 stored trees as one stream; no release wrote it.
        check_msgpack_version_range("repository", body, 2, FORMAT_VERSION)?;
        let config: RepoConfig = from_msgpack("repository config", body)?;
        Ok((config, ConfigMac { mac, body: body.to_vec() }))
    }
}

/// The stored MAC and the exact body bytes it covers.
#[derive(Debug, Clone)]
pub struct ConfigMac {
    mac: [u8; MAC_LEN],
    body: Vec<u8>,
}

impl ConfigMac {
    /// Compares the stored MAC with the one computed by `mac` (constant time).
    pub fn verify(&self, mac: impl Fn(&[u8]) -> [u8; 32]) -> Result<(), FormatError> {
        let expected = mac(&self.body);
        let diff = expected.iter().zip(self.mac.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(FormatError::corrupt("repository config", "its MAC does not match: it was altered or damaged"));
        }
        Ok(())
    }
}
