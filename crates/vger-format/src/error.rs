use thiserror::Error;

/// Malformed, hostile or too-new repository data.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FormatError {
    #[error(
        "{what} was made by a newer vger (format version {found}, this vger reads up to {supported}); upgrade vger"
    )]
    NewerVersion { what: String, found: u32, supported: u32 },
    #[error(
        "{what} uses format version {found}, which this vger no longer reads (no release wrote it); back up into a new repository"
    )]
    OlderVersion { what: String, found: u32 },
    #[error("{what} is corrupt: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("{what}: {source}")]
    Crypto {
        what: String,
        #[source]
        source: vger_crypto::CryptoError,
    },
    #[error("decompressed size {size} exceeds the limit of {cap} bytes (corrupt or hostile data)")]
    TooLarge { size: u64, cap: u64 },
    #[error("could not encode {what}: {detail}")]
    Encode { what: String, detail: String },
}

impl FormatError {
    pub fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        FormatError::Corrupt { what: what.into(), detail: detail.to_string() }
    }

    pub fn crypto(what: impl Into<String>, source: vger_crypto::CryptoError) -> Self {
        match source {
            vger_crypto::CryptoError::NewerVersion { found } => {
                FormatError::NewerVersion { what: what.into(), found: found.into(), supported: 1 }
            }
            source => FormatError::Crypto { what: what.into(), source },
        }
    }
}
