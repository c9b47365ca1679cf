//! The one error type every backend returns, and the mapping from OS errors.

use std::io;

/// Why a storage operation failed.
///
/// Backends map their native errors onto these variants so that the engine
/// and the layers (retry, limits) can decide what to do without knowing which
/// backend they talk to. `key` is always the repository key, never a
/// backend path; the backend's own wording goes into `detail`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("object `{key}` not found in the repository")]
    NotFound { key: String },

    #[error("object `{key}` already exists in the repository")]
    AlreadyExists { key: String },

    #[error(
        "cannot read {len} bytes at offset {offset} of `{key}`: the object is only {size} bytes \
         (truncated or damaged; run `vger check`)"
    )]
    RangeOutOfBounds { key: String, offset: u64, len: u64, size: u64 },

    /// `key` is shown escaped and shortened: it may come from hostile data.
    #[error("invalid storage key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },

    #[error("permission denied on `{key}`: {detail}; check the owner and permissions of the repository")]
    PermissionDenied { key: String, detail: String },

    #[error("no space left writing `{key}`: {detail}; the disk or quota is full, free space and retry")]
    NoSpace { key: String, detail: String },

    #[error("storage quota exceeded: {detail}; free space in the repository or raise the quota")]
    QuotaExceeded { detail: String },

    #[error("temporary storage failure: {detail} (retrying may succeed)")]
    Transient { detail: String },

    #[error("{op} `{key}` failed: {source}")]
    Io {
        op: &'static str,
        key: String,
        #[source]
        source: io::Error,
    },

    #[error("storage backend error: {detail}")]
    Backend { detail: String },
}

impl StorageError {
    /// True if the same call may succeed when retried (network faults,
    /// interrupted or timed-out I/O). Retry layers use only this.
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Transient { .. } => true,
            StorageError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }

    /// True if the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    /// An `InvalidKey` error; the key is shortened so that a hostile
    /// megabyte-long key does not flood the log.
    pub fn invalid_key(key: &str, reason: &'static str) -> Self {
        const SHOWN: usize = 80;
        let key = match key.char_indices().nth(SHOWN) {
            Some((cut, _)) => format!("{}...", key.get(..cut).unwrap_or_default()),
            None => key.to_owned(),
        };
        StorageError::InvalidKey { key, reason }
    }

    /// Maps an OS error from operation `op` on `key` to the variant the
    /// engine acts on; anything without a meaning of its own stays `Io`.
    /// This is the only place where errno values are interpreted.
    pub fn from_io(op: &'static str, key: &str, err: io::Error) -> Self {
        let key = key.to_owned();
        let detail = || format!("{op}: {err}");
        match err.raw_os_error() {
            Some(libc::ENOENT) => StorageError::NotFound { key },
            Some(libc::EEXIST) => StorageError::AlreadyExists { key },
            Some(libc::EACCES | libc::EPERM) => StorageError::PermissionDenied { detail: detail(), key },
            Some(libc::ENOSPC | libc::EDQUOT) => StorageError::NoSpace { detail: detail(), key },
            _ => match err.kind() {
                io::ErrorKind::NotFound => StorageError::NotFound { key },
                io::ErrorKind::AlreadyExists => StorageError::AlreadyExists { key },
                io::ErrorKind::PermissionDenied => StorageError::PermissionDenied { detail: detail(), key },
                _ => StorageError::Io { op, key, source: err },
            },
        }
    }
}

/// A failed HTTP exchange of `service` (S3, vger-server) at the network
/// level: most such failures are worth retrying; a bad host name (fix
/// `host_hint`) or a TLS setup error is not.
pub(crate) fn from_ureq(err: ureq::Error, service: &str, host_hint: &str) -> StorageError {
    use std::io::ErrorKind;
    let detail = format!("{service} request failed: {err}");
    match &err {
        ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_)
        | ureq::Error::BodyStalled => StorageError::Transient { detail },
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::ConnectionRefused
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
            | ErrorKind::TimedOut
            | ErrorKind::Interrupted
            | ErrorKind::WouldBlock => StorageError::Transient { detail },
            _ => StorageError::Backend { detail },
        },
        ureq::Error::HostNotFound => StorageError::Backend { detail: format!("{detail}; check {host_hint}") },
        _ => StorageError::Backend { detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        let map = |errno| StorageError::from_io("open", "k", io::Error::from_raw_os_error(errno));
        assert!(map(libc::ENOENT).is_not_found());
        assert!(matches!(map(libc::EEXIST), StorageError::AlreadyExists { .. }));
        assert!(matches!(map(libc::EACCES), StorageError::PermissionDenied { .. }));
        assert!(matches!(map(libc::EPERM), StorageError::PermissionDenied { .. }));
        assert!(matches!(map(libc::ENOSPC), StorageError::NoSpace { .. }));
        assert!(matches!(map(libc::EDQUOT), StorageError::NoSpace { .. }));
        assert!(matches!(map(libc::EIO), StorageError::Io { op: "open", .. }));
        assert!(map(libc::EINTR).is_transient());
        assert!(!map(libc::EIO).is_transient());
    }

    #[test]
    fn messages_are_one_line_and_name_the_key() {
        let err = StorageError::from_io("write", "packs/ab/cd", io::Error::from_raw_os_error(libc::ENOSPC));
        let text = err.to_string();
        assert!(text.contains("packs/ab/cd"), "{text}");
        assert!(text.contains("free space"), "{text}");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn invalid_key_is_shortened_and_escaped() {
        let long = "a\n".repeat(1000);
        let text = StorageError::invalid_key(&long, "too long").to_string();
        assert!(text.len() < 250, "{text}");
        assert!(!text.contains('\n'));
    }
}
