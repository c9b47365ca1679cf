//! The master key and its passphrase-wrapped key slots (docs/format.md, 2-3).

use argon2::{Argon2, Params, Version};

use crate::aead::{Cipher, NONCE_LEN};
use crate::kdf_memory::KdfMemory;
use crate::{random_bytes, Algorithm, ChunkIdKey, CryptoError};

pub const MASTER_KEY_LEN: usize = 96;

/// The repository's secret: encryption key, chunk-ID key and config MAC key.
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; MASTER_KEY_LEN],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        // Best effort: the optimiser may keep copies elsewhere.
        self.bytes.fill(0);
        std::hint::black_box(&self.bytes);
    }
}

impl MasterKey {
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = [0u8; MASTER_KEY_LEN];
        random_bytes(&mut bytes)?;
        Ok(Self { bytes })
    }

    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        Self { bytes }
    }

    pub(crate) fn enc_key(&self) -> &[u8; 32] {
        self.part(0)
    }

    pub fn chunk_id_key(&self) -> ChunkIdKey {
        ChunkIdKey::new(*self.part(1))
    }

    /// BLAKE3-keyed MAC of the config body.
    pub fn config_mac(&self, body: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(self.part(2), body).as_bytes()
    }

    fn part(&self, i: usize) -> &[u8; 32] {
        let (chunks, _) = self.bytes.as_chunks::<32>();
        &chunks[i]
    }
}

/// Argon2id cost parameters, stored with each key slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 32 MiB, 2 passes, 4 lanes: above OWASP's minimum for Argon2id
    /// (19 MiB, t=2). 64 MiB with 3 passes took 0.2 s and 64 MiB of memory
    /// on every command, which dominated short commands (an unchanged
    /// backup, a single-file restore). The lanes are filled in parallel
    /// (argon2's `parallel` feature): the memory and the work, and so an
    /// attacker's cost per guess, are those of one lane, but the wall time
    /// on a 2-core machine is lower when a core is free.
    /// Older slots made with 1 lane keep their stored parameters. Users who
    /// want more can add a slot with stronger parameters.
    fn default() -> Self {
        Self { m_cost_kib: 32 * 1024, t_cost: 2, p_cost: 4 }
    }
}

impl KdfParams {
    /// Cheap parameters for tests only.
    pub fn insecure_fast() -> Self {
        Self { m_cost_kib: 8 * 1024, t_cost: 1, p_cost: 1 }
    }

    /// Refuses parameters that are too weak to protect anything or so large
    /// that a hostile key slot could exhaust memory (more than 4 GiB).
    pub fn validate(&self) -> Result<(), CryptoError> {
        if self.m_cost_kib < 8 * 1024 || self.m_cost_kib > 4 * 1024 * 1024 {
            return Err(CryptoError::KdfParams(format!("memory {} KiB is outside 8 MiB..4 GiB", self.m_cost_kib)));
        }
        if self.t_cost == 0 || self.t_cost > 64 {
            return Err(CryptoError::KdfParams(format!("{} iterations is outside 1..64", self.t_cost)));
        }
        if self.p_cost == 0 || self.p_cost > 64 {
            return Err(CryptoError::KdfParams(format!("{} lanes is outside 1..64", self.p_cost)));
        }
        Ok(())
    }
}

/// The most Argon2 work this client spends on one key slot. Slot
/// parameters are read from storage, and whoever can write there (a
/// storage host, an append-only client) could otherwise make every open
/// take minutes and gigabytes; a slot above the limit is not tried unless
/// the user raises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfLimit {
    pub max_memory_kib: u32,
    pub max_iterations: u32,
}

impl Default for KdfLimit {
    /// 1 GiB and 10 passes: 32 times the memory of the default slot and
    /// five times its passes, a few seconds on a desktop CPU (256 MiB with
    /// 4 passes took 0.64 s here).
    fn default() -> Self {
        Self { max_memory_kib: 1024 * 1024, max_iterations: 10 }
    }
}

impl KdfLimit {
    /// Whether a slot with `params` may be tried.
    pub fn admits(&self, params: &KdfParams) -> bool {
        params.m_cost_kib <= self.max_memory_kib && params.t_cost <= self.max_iterations
    }
}

/// A master key wrapped by one passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub params: KdfParams,
    pub salt: [u8; 32],
    pub nonce: [u8; NONCE_LEN],
    /// 96 bytes of ciphertext and a 16-byte tag.
    pub wrapped: Vec<u8>,
}

fn wrap_key(passphrase: &[u8], salt: &[u8; 32], params: KdfParams) -> Result<[u8; 32], CryptoError> {
    params.validate()?;
    let argon_params = Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32))
        .map_err(|e| CryptoError::KdfParams(e.to_string()))?;
    let argon = Argon2::new(argon2::Algorithm::Argon2id, Version::V0x13, argon_params.clone());
    let mut memory = KdfMemory::new(argon_params.block_count())?;
    let mut out = [0u8; 32];
    argon
        .hash_password_into_with_memory(passphrase, salt, &mut out, memory.blocks())
        .map_err(|e| CryptoError::KdfParams(e.to_string()))?;
    Ok(out)
}

fn slot_aad(repository_id: &[u8; 32]) -> Vec<u8> {
    let mut aad = b"vger-key-v1".to_vec();
    aad.extend_from_slice(repository_id);
    aad
}

/// Wraps the master key with a key derived from `passphrase` by Argon2id.
pub fn wrap_master_key(
    key: &MasterKey,
    passphrase: &[u8],
    repository_id: &[u8; 32],
    params: KdfParams,
) -> Result<WrappedKey, CryptoError> {
    let mut salt = [0u8; 32];
    random_bytes(&mut salt)?;
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let kek = wrap_key(passphrase, &salt, params)?;
    let cipher = Cipher::new(Algorithm::Chacha20Poly1305, &kek)?;
    let mut buf = key.bytes.to_vec();
    let tag = cipher.seal(&nonce, &slot_aad(repository_id), &mut buf)?;
    buf.extend_from_slice(&tag);
    Ok(WrappedKey { params, salt, nonce, wrapped: buf })
}

/// Unwraps a key slot; a wrong passphrase gives [`CryptoError::WrongPassphrase`].
pub fn unwrap_master_key(
    slot: &WrappedKey,
    passphrase: &[u8],
    repository_id: &[u8; 32],
) -> Result<MasterKey, CryptoError> {
    let kek = wrap_key(passphrase, &slot.salt, slot.params)?;
    let cipher = Cipher::new(Algorithm::Chacha20Poly1305, &kek)?;
    let mut buf = slot.wrapped.clone();
    let n = cipher.open(&slot.nonce, &slot_aad(repository_id), &mut buf).map_err(|_| CryptoError::WrongPassphrase)?;
    if n != MASTER_KEY_LEN {
        return Err(CryptoError::WrongPassphrase);
    }
    let mut bytes = [0u8; MASTER_KEY_LEN];
    bytes.copy_from_slice(&buf[..MASTER_KEY_LEN]);
    buf.fill(0);
    Ok(MasterKey::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_wrapped_key_opens_with_its_passphrase_only() {
        let key = MasterKey::generate().unwrap();
        let repo = [7u8; 32];
        let slot = wrap_master_key(&key, b"right", &repo, KdfParams::insecure_fast()).unwrap();
        let back = unwrap_master_key(&slot, b"right", &repo).unwrap();
        assert_eq!(back.bytes, key.bytes);
        assert!(matches!(unwrap_master_key(&slot, b"wrong", &repo), Err(CryptoError::WrongPassphrase)));
        assert!(matches!(unwrap_master_key(&slot, b"right", &[8u8; 32]), Err(CryptoError::WrongPassphrase)));
    }

    #[test]
    fn the_limit_admits_the_default_and_refuses_more() {
        let limit = KdfLimit::default();
        assert!(limit.admits(&KdfParams::default()));
        assert!(limit.admits(&KdfParams { m_cost_kib: 1 << 20, t_cost: 10, p_cost: 4 }));
        assert!(!limit.admits(&KdfParams { m_cost_kib: (1 << 20) + 1, t_cost: 1, p_cost: 1 }));
        assert!(!limit.admits(&KdfParams { m_cost_kib: 8 << 10, t_cost: 11, p_cost: 1 }));
    }
}
