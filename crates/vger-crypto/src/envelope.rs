//! The envelope: how every object is sealed (docs/format.md, section 5).

use crate::aead::{Cipher, NONCE_LEN, TAG_LEN};
use crate::random::random_nonce;
use crate::{Algorithm, CryptoError, MasterKey};

pub const ENVELOPE_VERSION: u8 = 1;
/// version, type, algorithm, reserved, nonce.
pub const ENVELOPE_HEADER_LEN: usize = 4 + NONCE_LEN;
/// Bytes an envelope adds to its plaintext.
pub const ENVELOPE_OVERHEAD: usize = ENVELOPE_HEADER_LEN + TAG_LEN;

/// What an envelope holds; part of the authenticated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ObjectType {
    DataChunk = 1,
    TreeChunk = 2,
    PackTrailer = 3,
    IndexSegment = 4,
    Snapshot = 5,
    Lock = 6,
}

impl ObjectType {
    pub fn from_tag(tag: u8) -> Option<Self> {
        Some(match tag {
            1 => ObjectType::DataChunk,
            2 => ObjectType::TreeChunk,
            3 => ObjectType::PackTrailer,
            4 => ObjectType::IndexSegment,
            5 => ObjectType::Snapshot,
            6 => ObjectType::Lock,
            _ => return None,
        })
    }
}

/// Seals and opens envelopes with one repository's key and algorithm.
pub struct Envelope {
    algo: Algorithm,
    cipher: Cipher,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Envelope({})", self.algo.name())
    }
}

impl Envelope {
    /// An envelope sealer for `algo` using the master key's encryption key.
    /// With [`Algorithm::None`] the key is ignored.
    pub fn new(algo: Algorithm, key: &MasterKey) -> Result<Self, CryptoError> {
        Ok(Self { algo, cipher: Cipher::new(algo, key.enc_key())? })
    }

    /// For repositories with encryption `none`.
    pub fn plaintext() -> Self {
        Self { algo: Algorithm::None, cipher: Cipher::none() }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algo
    }

    /// Seals in place. `buf` must hold [`ENVELOPE_HEADER_LEN`] bytes of
    /// space followed by the plaintext; on return it is the whole envelope.
    /// This lets a caller compress straight into the final buffer: no copy.
    pub fn seal_buffer(&self, ty: ObjectType, identity: &[u8], buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        if buf.len() < ENVELOPE_HEADER_LEN {
            return Err(CryptoError::Truncated { len: buf.len() });
        }
        let nonce = if self.algo != Algorithm::None { random_nonce()? } else { [0u8; NONCE_LEN] };
        buf[..4].copy_from_slice(&[ENVELOPE_VERSION, ty as u8, self.algo.tag(), 0]);
        buf[4..ENVELOPE_HEADER_LEN].copy_from_slice(&nonce);
        let aad = aad(&buf[..ENVELOPE_HEADER_LEN], identity);
        let tag = self.cipher.seal(&nonce, &aad, &mut buf[ENVELOPE_HEADER_LEN..])?;
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Seals a copy of `plaintext`.
    pub fn seal(&self, ty: ObjectType, identity: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut buf = Vec::with_capacity(ENVELOPE_OVERHEAD + plaintext.len());
        buf.resize(ENVELOPE_HEADER_LEN, 0);
        buf.extend_from_slice(plaintext);
        self.seal_buffer(ty, identity, &mut buf)?;
        Ok(buf)
    }

    /// Checks and decrypts an envelope, returning its plaintext (the buffer
    /// is reused). Fails on any mismatch of version, type, algorithm,
    /// identity or content.
    pub fn open(&self, ty: ObjectType, identity: &[u8], mut sealed: Vec<u8>) -> Result<Vec<u8>, CryptoError> {
        let n = self.open_in_place(ty, identity, &mut sealed)?.len();
        sealed.copy_within(ENVELOPE_HEADER_LEN..ENVELOPE_HEADER_LEN + n, 0);
        sealed.truncate(n);
        Ok(sealed)
    }

    /// Like [`Envelope::open`], but decrypts inside `sealed` (a slice of a
    /// larger read, for example) and returns the plaintext part of it.
    pub fn open_in_place<'b>(
        &self,
        ty: ObjectType,
        identity: &[u8],
        sealed: &'b mut [u8],
    ) -> Result<&'b [u8], CryptoError> {
        let header = parse_header(sealed)?;
        if header[1] != ty as u8 {
            return Err(CryptoError::WrongType { expected: ty as u8, found: header[1] });
        }
        let algo = Algorithm::from_tag(header[2])?;
        if algo != self.algo {
            // Refuse downgrades: a repository's objects all use one algorithm.
            return Err(CryptoError::AlgorithmMismatch { expected: self.algo.name(), found: algo.name() });
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[4..ENVELOPE_HEADER_LEN]);
        let aad = aad(&sealed[..ENVELOPE_HEADER_LEN], identity);
        let (_, body) = sealed.split_at_mut(ENVELOPE_HEADER_LEN);
        let n = self.cipher.open(&nonce, &aad, body)?;
        Ok(&body[..n])
    }
}

/// Reads and checks the fixed part of an envelope header.
fn parse_header(sealed: &[u8]) -> Result<[u8; 4], CryptoError> {
    if sealed.len() < ENVELOPE_OVERHEAD {
        return Err(CryptoError::Truncated { len: sealed.len() });
    }
    let mut header = [0u8; 4];
    header.copy_from_slice(&sealed[..4]);
    if header[0] > ENVELOPE_VERSION {
        return Err(CryptoError::NewerVersion { found: header[0] });
    }
    if header[0] == 0 {
        return Err(CryptoError::Authentication);
    }
    Ok(header)
}

/// The whole header (nonce included) and the identity are authenticated.
fn aad(header: &[u8], identity: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(4 + ENVELOPE_HEADER_LEN + identity.len());
    aad.extend_from_slice(b"vger");
    aad.extend_from_slice(header);
    aad.extend_from_slice(identity);
    aad
}
