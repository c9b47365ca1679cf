//! Key slots (docs/format.md, section 3): plaintext msgpack.

use serde::{Deserialize, Serialize};
use vger_crypto::{KdfParams, WrappedKey};

use crate::object::{check_msgpack_version, from_msgpack, to_msgpack};
use crate::FormatError;

pub const KEY_SLOT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlot {
    pub version: u32,
    pub kdf: String,
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    #[serde(with = "serde_bytes")]
    pub salt: Vec<u8>,
    pub algo: String,
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub wrapped: Vec<u8>,
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub label: String,
}

impl KeySlot {
    pub fn from_wrapped(w: &WrappedKey, created: String, hostname: String, username: String, label: String) -> Self {
        KeySlot {
            version: KEY_SLOT_VERSION,
            kdf: "argon2id".into(),
            m_cost_kib: w.params.m_cost_kib,
            t_cost: w.params.t_cost,
            p_cost: w.params.p_cost,
            salt: w.salt.to_vec(),
            algo: "chacha20poly1305".into(),
            nonce: w.nonce.to_vec(),
            wrapped: w.wrapped.clone(),
            created,
            hostname,
            username,
            label,
        }
    }

    pub fn to_wrapped(&self) -> Result<WrappedKey, FormatError> {
        if self.kdf != "argon2id" || self.algo != "chacha20poly1305" {
            return Err(FormatError::corrupt("key slot", format!("unsupported kdf {} / algo {}", self.kdf, self.algo)));
        }
        let salt: [u8; 32] =
            self.salt.as_slice().try_into().map_err(|_| FormatError::corrupt("key slot", "salt is not 32 bytes"))?;
        let nonce: [u8; 12] =
            self.nonce.as_slice().try_into().map_err(|_| FormatError::corrupt("key slot", "nonce is not 12 bytes"))?;
        Ok(WrappedKey {
            params: KdfParams { m_cost_kib: self.m_cost_kib, t_cost: self.t_cost, p_cost: self.p_cost },
            salt,
            nonce,
            wrapped: self.wrapped.clone(),
        })
    }

    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        to_msgpack("key slot", self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        check_msgpack_version("key slot", bytes, KEY_SLOT_VERSION)?;
        from_msgpack("key slot", bytes)
    }
}
