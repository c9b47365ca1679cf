use std::time::Instant;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};

use crate::CryptoError;

pub const TAG_LEN: usize = 16;
pub const NONCE_LEN: usize = 12;

/// The authenticated encryption used for every object of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// No encryption: objects carry a BLAKE3 checksum instead of a tag.
    /// Detects corruption, not tampering.
    None,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl Algorithm {
    pub fn tag(self) -> u8 {
        match self {
            Algorithm::None => 0,
            Algorithm::Aes256Gcm => 1,
            Algorithm::Chacha20Poly1305 => 2,
        }
    }

    pub fn from_tag(tag: u8) -> Result<Self, CryptoError> {
        match tag {
            0 => Ok(Algorithm::None),
            1 => Ok(Algorithm::Aes256Gcm),
            2 => Ok(Algorithm::Chacha20Poly1305),
            other => Err(CryptoError::UnknownAlgorithm(other)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::None => "none",
            Algorithm::Aes256Gcm => "aes256gcm",
            Algorithm::Chacha20Poly1305 => "chacha20poly1305",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Algorithm::None),
            "aes256gcm" => Some(Algorithm::Aes256Gcm),
            "chacha20poly1305" => Some(Algorithm::Chacha20Poly1305),
            _ => None,
        }
    }

    /// Measures both AEADs on this CPU and returns the faster one. Used by
    /// `init` for encryption mode `auto`; the result is pinned in the config.
    pub fn fastest_on_this_cpu() -> Algorithm {
        let key = [7u8; 32];
        let mut buf = vec![0u8; 1 << 20];
        let mut best = (Algorithm::Aes256Gcm, f64::MAX);
        for algo in [Algorithm::Aes256Gcm, Algorithm::Chacha20Poly1305] {
            let Ok(cipher) = Cipher::new(algo, &key) else {
                continue;
            };
            let mut fastest = f64::MAX;
            for _ in 0..5 {
                let start = Instant::now();
                for _ in 0..4 {
                    // The result is irrelevant; sealing cannot fail for 1 MiB.
                    let _ = cipher.seal(&[0u8; NONCE_LEN], b"", &mut buf);
                    buf.truncate(1 << 20);
                }
                fastest = fastest.min(start.elapsed().as_secs_f64());
            }
            if fastest < best.1 {
                best = (algo, fastest);
            }
        }
        best.0
    }
}

/// A ready-to-use AEAD key.
pub(crate) struct Cipher {
    key: Option<LessSafeKey>,
}

impl Cipher {
    pub(crate) fn none() -> Self {
        Self { key: None }
    }

    pub(crate) fn new(algo: Algorithm, key: &[u8; 32]) -> Result<Self, CryptoError> {
        let ring_algo = match algo {
            Algorithm::None => return Ok(Self { key: None }),
            Algorithm::Aes256Gcm => &AES_256_GCM,
            Algorithm::Chacha20Poly1305 => &CHACHA20_POLY1305,
        };
        let unbound = UnboundKey::new(ring_algo, key).map_err(|_| CryptoError::Authentication)?;
        Ok(Self { key: Some(LessSafeKey::new(unbound)) })
    }

    /// Encrypts `in_out` in place and returns the 16-byte tag (or checksum)
    /// to append: a slice, so the caller encrypts inside a larger buffer
    /// (behind the envelope header) with no copy.
    #[must_use = "the tag must be stored with the ciphertext"]
    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        match &self.key {
            None => Ok(checksum(aad, in_out)),
            Some(key) => {
                let nonce = Nonce::assume_unique_for_key(*nonce);
                let tag = key
                    .seal_in_place_separate_tag(nonce, Aad::from(aad), in_out)
                    .map_err(|_| CryptoError::Authentication)?;
                let mut out = [0u8; TAG_LEN];
                out.copy_from_slice(tag.as_ref());
                Ok(out)
            }
        }
    }

    /// Decrypts `in_out` (ciphertext followed by the tag) in place and
    /// returns the plaintext length.
    pub(crate) fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> Result<usize, CryptoError> {
        if in_out.len() < TAG_LEN {
            return Err(CryptoError::Truncated { len: in_out.len() });
        }
        match &self.key {
            None => {
                let n = in_out.len() - TAG_LEN;
                let (body, tag) = in_out.split_at(n);
                if checksum(aad, body) != tag {
                    return Err(CryptoError::Authentication);
                }
                Ok(n)
            }
            Some(key) => {
                let nonce = Nonce::assume_unique_for_key(*nonce);
                let plain =
                    key.open_in_place(nonce, Aad::from(aad), in_out).map_err(|_| CryptoError::Authentication)?;
                Ok(plain.len())
            }
        }
    }
}

fn checksum(aad: &[u8], body: &[u8]) -> [u8; TAG_LEN] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(aad);
    hasher.update(body);
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..TAG_LEN]);
    out
}
