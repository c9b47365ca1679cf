//! One signed HTTP exchange with an S3 server, and the mapping of its
//! failures onto [`StorageError`]. rusty-s3 signs (query-string SigV4, any
//! extra header given to the action is signed too); ureq sends.

use std::time::Duration;

use ureq::http::{self, Method, Response};
use ureq::Body;
use url::Url;

use crate::StorageError;

/// Throughput below which a transfer counts as stalled, used to size the
/// body timeouts: `timeout` plus this long per byte.
const SLOWEST_BYTES_PER_SEC: u64 = 256 << 10;

/// What to send: a signed URL, the headers that were signed with it (plus
/// unsigned ones such as `range`) and a body.
pub(super) struct Exchange<'a> {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'a [u8],
    /// Bytes expected back, if known, to size the receive timeout.
    pub expect_bytes: Option<u64>,
}

/// A finished exchange: status, the headers vger reads and the whole body.
pub(super) struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends `exchange`, reads the whole reply. An HTTP error status is not an
/// `Err` here: callers decide what a 404 or 412 means for them.
pub(super) fn send(agent: &ureq::Agent, timeout: Duration, exchange: Exchange<'_>) -> Result<Reply, StorageError> {
    let body_time = |bytes: u64| timeout + Duration::from_secs(bytes / SLOWEST_BYTES_PER_SEC);
    let mut builder = http::Request::builder().method(exchange.method).uri(exchange.url.as_str());
    for (name, value) in &exchange.headers {
        builder = builder.header(*name, value.as_str());
    }
    let request = builder
        .body(exchange.body)
        .map_err(|e| StorageError::Backend { detail: format!("building an S3 request: {e}") })?;
    let request = agent
        .configure_request(request)
        .timeout_send_body(Some(body_time(exchange.body.len() as u64)))
        .timeout_recv_body(Some(body_time(exchange.expect_bytes.unwrap_or(64 << 20).max(64 << 20))))
        .build();
    let response: Response<Body> = agent
        .run(request)
        .map_err(|e| crate::error::from_ureq(e, "S3", "the endpoint's host name in the repository URL"))?;
    let status = response.status().as_u16();
    let (parts, mut body) = response.into_parts();
    let mut data = Vec::with_capacity(exchange.expect_bytes.unwrap_or(0).min(1 << 30) as usize);
    std::io::Read::read_to_end(&mut body.as_reader(), &mut data)
        .map_err(|e| StorageError::Transient { detail: format!("reading an S3 response body: {e}") })?;
    Ok(Reply { status, headers: parts.headers, body: data })
}

/// The `<Code>` and `<Message>` of an S3 error body, if it has them.
pub(super) fn error_code(body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    let field = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        text.split_once(open.as_str())
            .and_then(|(_, rest)| rest.split_once(close.as_str()))
            .map(|(value, _)| value.trim().to_owned())
            .unwrap_or_default()
    };
    (field("Code"), field("Message"))
}

/// Maps an unsuccessful reply for `key` (a repository key, or a
/// description such as `list packs/`) onto the error the engine acts on.
pub(super) fn error_from_reply(reply: &Reply, what: &str, key: &str) -> StorageError {
    let (code, message) = error_code(&reply.body);
    let detail = format!("S3 {what} `{key}`: HTTP {} {code} {message}", reply.status).trim_end().to_owned();
    match (reply.status, code.as_str()) {
        (404, "NoSuchBucket") => StorageError::Backend {
            detail: format!("{detail}; the bucket does not exist: create it or correct the repository URL"),
        },
        (404, _) => StorageError::NotFound { key: key.to_owned() },
        (412, _) => StorageError::AlreadyExists { key: key.to_owned() },
        (403, "RequestTimeTooSkewed") => StorageError::PermissionDenied {
            key: key.to_owned(),
            detail: format!("{detail}; the local clock is wrong, correct it (NTP)"),
        },
        (401 | 403, _) => StorageError::PermissionDenied {
            key: key.to_owned(),
            detail: format!(
                "{detail}; check access_key_id / secret_access_key (or AWS_ACCESS_KEY_ID / \
                 AWS_SECRET_ACCESS_KEY), the region and the bucket policy"
            ),
        },
        (507, _) | (_, "EntityTooLarge" | "QuotaExceeded" | "StorageQuotaExceeded") => {
            StorageError::QuotaExceeded { detail }
        }
        // BadDigest: the body was damaged on the way; RequestTimeout: the
        // server gave up on a slow upload; 409: a conditional write raced
        // another one (retrying yields the definite 412 or success).
        (429 | 409 | 500..=599, _) | (_, "BadDigest" | "RequestTimeout" | "SlowDown" | "InternalError") => {
            StorageError::Transient { detail }
        }
        _ => StorageError::Backend { detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, code: &str) -> Reply {
        let body = format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>msg</Message></Error>");
        Reply { status, headers: http::HeaderMap::new(), body: body.into_bytes() }
    }

    #[test]
    fn status_mapping() {
        let map = |status, code| error_from_reply(&reply(status, code), "get", "packs/ab/x");
        assert!(map(404, "NoSuchKey").is_not_found());
        assert!(matches!(map(404, "NoSuchBucket"), StorageError::Backend { .. }));
        assert!(matches!(map(403, "AccessDenied"), StorageError::PermissionDenied { .. }));
        assert!(map(403, "AccessDenied").to_string().contains("access_key_id"));
        assert!(matches!(map(412, "PreconditionFailed"), StorageError::AlreadyExists { .. }));
        assert!(matches!(map(507, ""), StorageError::QuotaExceeded { .. }));
        assert!(matches!(map(400, "EntityTooLarge"), StorageError::QuotaExceeded { .. }));
        for (status, code) in [(500, "InternalError"), (503, "SlowDown"), (429, ""), (400, "BadDigest"), (409, "")] {
            assert!(map(status, code).is_transient(), "{status} {code}");
        }
        assert!(!map(400, "InvalidArgument").is_transient());
        assert!(!map(403, "AccessDenied").is_transient());
    }
}
