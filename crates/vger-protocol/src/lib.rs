//! The vger-server wire protocol, defined once for the client backend
//! (`vger_storage::RestStorage`) and the server (`vger-server`).
//!
//! A server holds repositories, one per first path segment; a repository
//! is the flat key space of `docs/format.md` (`config`, `packs/ab/<id>`, ...).
//! Every request but [`HEALTH_PATH`] carries `Authorization: Bearer <token>`.
//!
//! | request | meaning |
//! |---|---|
//! | `GET /{repo}/{key}` | object (`Range: bytes=a-b` gives 206 or 416) |
//! | `HEAD /{repo}/{key}` | size in `Content-Length` |
//! | `PUT /{repo}/{key}` | store the body atomically; [`BLAKE3_HEADER`] is the body's hash; `If-None-Match: *` = create only (412) |
//! | `DELETE /{repo}/{key}` | remove (absent is fine) |
//! | `GET /{repo}/?list&prefix=P` | JSON lines of [`ListLine`], ending with [`ListLine::End`] |
//! | `GET /{repo}/?stats` | [`RepoStats`] |
//! | `POST /{repo}/?verify-packs` | body [`VerifyPacksRequest`]; JSON lines of [`VerifyLine`] |
//! | `POST /{repo}/?repack` | body [`RepackRequest`]; reply [`RepackResponse`] |
//! | `GET /?stats` | admin: `{repo: RepoStats}` for every repository |
//! | `GET /health` | `ok`, no token needed |
//! | `GET /metrics` | Prometheus text |
//!
//! An error reply has a one-line `text/plain` body meant for the user and,
//! where the client must tell cases apart, an [`ERROR_HEADER`] with an
//! [`ErrorCode`].
//!
//! ```
//! use vger_protocol::{Permission, Operation};
//!
//! assert!(Permission::Append.allows(Operation::Create { key: "snapshots/ab" }));
//! assert!(!Permission::Append.allows(Operation::Create { key: "keys/ab" }));
//! assert!(!Permission::Append.allows(Operation::Replace { key: "snapshots/ab" }));
//! assert!(Permission::Append.allows(Operation::Delete { key: "locks/ab" }));
//! ```

use serde::{Deserialize, Serialize};

mod permission;

pub use permission::{Operation, Permission, APPEND_MUTABLE_PREFIXES, FULL_ONLY_PREFIXES};

/// Hex BLAKE3-256 of a PUT body; the server refuses the upload (400,
/// [`ErrorCode::HashMismatch`]) if the bytes it received differ.
pub const BLAKE3_HEADER: &str = "x-vger-blake3";

/// Machine-readable reason on error replies, one of [`ErrorCode`].
pub const ERROR_HEADER: &str = "x-vger-error";

/// No authentication; answers `ok`.
pub const HEALTH_PATH: &str = "/health";

/// Prometheus text exposition.
pub const METRICS_PATH: &str = "/metrics";

/// Query flags on `/{repo}/`.
pub const QUERY_LIST: &str = "list";
pub const QUERY_PREFIX: &str = "prefix";
pub const QUERY_STATS: &str = "stats";
pub const QUERY_VERIFY_PACKS: &str = "verify-packs";
pub const QUERY_REPACK: &str = "repack";

/// Repository names: `[A-Za-z0-9._-]`, not starting with `.`, at most this long.
pub const MAX_REPO_NAME_LEN: usize = 128;

/// Whether `name` may name a repository (it becomes a directory name).
pub fn is_valid_repo_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_REPO_NAME_LEN
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Token names: `[A-Za-z0-9._@:-]`, 1 to this many bytes. A name is what
/// logs, listings (the writer of an object) and lock ownership know a
/// token by, so it must be unique, short and safe to print.
pub const MAX_TOKEN_NAME_LEN: usize = 64;

/// Whether `name` may name a token.
pub fn is_valid_token_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOKEN_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b':'))
}

/// Values of [`ERROR_HEADER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The body did not match [`BLAKE3_HEADER`]: damaged on the way, retry.
    HashMismatch,
    /// The repository or token quota would be exceeded (507).
    QuotaExceeded,
    /// The server's disk is full (507).
    NoSpace,
    /// The key or repository name is not valid (400).
    InvalidKey,
    /// The object exists and the token may not replace or delete it (403).
    Immutable,
    /// The token lacks the permission or the repository (403).
    Forbidden,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 6] = [
        ErrorCode::HashMismatch,
        ErrorCode::QuotaExceeded,
        ErrorCode::NoSpace,
        ErrorCode::InvalidKey,
        ErrorCode::Immutable,
        ErrorCode::Forbidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::HashMismatch => "hash-mismatch",
            ErrorCode::QuotaExceeded => "quota-exceeded",
            ErrorCode::NoSpace => "no-space",
            ErrorCode::InvalidKey => "invalid-key",
            ErrorCode::Immutable => "immutable",
            ErrorCode::Forbidden => "forbidden",
        }
    }

    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

/// One line of a listing. The server writes one [`ListLine::Object`] per
/// object and finally one [`ListLine::End`]; a listing without its end
/// line was cut short and must not be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ListLine {
    Object(ListEntry),
    End { end: bool, count: u64 },
    Error { error: String },
}

/// An object found by a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    pub key: String,
    pub size: u64,
    /// Unix seconds when the server wrote the object (its receipt time);
    /// clients cannot set it.
    pub modified: u64,
    /// The name of the token that wrote it, as the server recorded it;
    /// absent for packs (listed by the hundred thousand, and named by
    /// their content) and for objects written before the server recorded
    /// writers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<String>,
}

/// `GET /{repo}/?stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoStats {
    /// Bytes in all objects.
    pub size: u64,
    pub objects: u64,
    pub packs: u64,
    /// The quota that applies to the asking token, if any, in bytes.
    pub quota: Option<u64>,
    /// Unix seconds of the newest `snapshots/*` object (server receipt time).
    pub last_backup_at: Option<u64>,
}

/// Most packs one `verify-packs` request may name; a client verifies more
/// in several requests. Bounds the body (under 1 MiB) and the work of one
/// request.
pub const MAX_VERIFY_PACKS: usize = 10_000;

/// Most blobs in one repack plan; a client with more starts another pack.
/// 65,536 blobs of 512 bytes already fill a 32 MiB pack; the plan's JSON
/// stays under 8 MiB and its trailer under [`MAX_REPACK_TRAILER`].
pub const MAX_REPACK_BLOBS: usize = 65_536;

/// Largest sealed trailer a repack plan may carry (bytes, before base64).
pub const MAX_REPACK_TRAILER: usize = 8 << 20;

/// Largest pack a repack plan may build: the largest pack target a
/// repository may set (1 GiB) plus room for its last blob and trailer.
pub const MAX_REPACK_PACK_SIZE: u64 = 2 << 30;

/// `POST /{repo}/?verify-packs`: the packs to verify (keys such as
/// `packs/ab/ab12...`), or all of them when `packs` is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyPacksRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packs: Option<Vec<String>>,
}

/// One line of the verify-packs reply: a result per pack, then an end line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VerifyLine {
    Pack(PackVerification),
    End { end: bool, count: u64 },
    Error { error: String },
}

/// The server's verdict on one pack: its BLAKE3 equals the id in its name,
/// and it starts with the pack header and ends with the footer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackVerification {
    pub key: String,
    /// `None` when the pack does not exist.
    pub size: Option<u64>,
    pub ok: bool,
    /// Why it is not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `POST /{repo}/?repack`: build a new pack from byte ranges of existing
/// ones. The server writes the 16-byte pack header, the ranges in order,
/// `trailer`, its length as u32 LE and `VGERPEND`, names the result by its
/// BLAKE3 and stores it create-only. The client computes each blob's new
/// offset (16 + the lengths before it) to seal the trailer beforehand, so
/// the server never needs a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepackRequest {
    pub blobs: Vec<RepackBlob>,
    /// Base64 (standard alphabet, padded) of the sealed trailer envelope.
    pub trailer: String,
}

/// A byte range of an existing pack, copied verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepackBlob {
    /// Hex pack id (64 digits).
    pub pack: String,
    pub offset: u64,
    pub length: u64,
}

/// The pack the server built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepackResponse {
    /// Hex BLAKE3 of the new pack, stored at `packs/<id[..2]>/<id>`.
    pub id: String,
    pub size: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn list_lines_round_trip() {
        let entry = ListLine::Object(ListEntry { key: "config".into(), size: 3, modified: 9, writer: None });
        let text = serde_json::to_string(&entry).unwrap();
        assert_eq!(text, r#"{"key":"config","size":3,"modified":9}"#);
        assert_eq!(serde_json::from_str::<ListLine>(&text).unwrap(), entry);
        let entry =
            ListLine::Object(ListEntry { key: "config".into(), size: 3, modified: 9, writer: Some("laptop".into()) });
        let text = serde_json::to_string(&entry).unwrap();
        assert_eq!(text, r#"{"key":"config","size":3,"modified":9,"writer":"laptop"}"#);
        assert_eq!(serde_json::from_str::<ListLine>(&text).unwrap(), entry);
        let end: ListLine = serde_json::from_str(r#"{"end":true,"count":1}"#).unwrap();
        assert_eq!(end, ListLine::End { end: true, count: 1 });
        let err: ListLine = serde_json::from_str(r#"{"error":"disk"}"#).unwrap();
        assert_eq!(err, ListLine::Error { error: "disk".into() });
    }

    #[test]
    fn repo_names() {
        for ok in ["main", "host-1.backup", "A_b"] {
            assert!(is_valid_repo_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a\\b", "a b", "a\0", "%2e%2e", &"a".repeat(129)] {
            assert!(!is_valid_repo_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn error_codes_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }
}
