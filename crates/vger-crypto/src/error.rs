use thiserror::Error;

/// Everything that can go wrong while sealing, opening or unwrapping.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("object is too short to be an envelope ({len} bytes)")]
    Truncated { len: usize },
    #[error("object was written by a newer vger (envelope version {found}); upgrade vger to read it")]
    NewerVersion { found: u8 },
    #[error("object has type {found}, expected {expected}")]
    WrongType { expected: u8, found: u8 },
    #[error("unknown encryption algorithm tag {0}")]
    UnknownAlgorithm(u8),
    #[error("object uses algorithm {found} but the repository uses {expected}")]
    AlgorithmMismatch { expected: &'static str, found: &'static str },
    #[error("authentication failed: the object is corrupt or was tampered with")]
    Authentication,
    #[error("wrong passphrase (or the key slot is damaged)")]
    WrongPassphrase,
    #[error("invalid key derivation parameters: {0}")]
    KdfParams(String),
}
