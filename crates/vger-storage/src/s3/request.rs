//! How an S3 server's unsuccessful replies map onto [`StorageError`]. The
//! exchange itself (sending, capped reading) is [`crate::http`]'s.

use crate::http::{clean_text, Reply};
use crate::StorageError;

/// The `<Code>` and `<Message>` of an S3 error body, if it has them.
/// Both are cleaned of control characters (server text, see [`clean_text`]).
pub(super) fn error_code(body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    let field = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        text.split_once(open.as_str())
            .and_then(|(_, rest)| rest.split_once(close.as_str()))
            .map(|(value, _)| clean_text(value.as_bytes()))
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
        Reply { status, headers: ureq::http::HeaderMap::new(), body: body.into_bytes() }
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
        let hostile = error_code(b"<Error><Code>X\x1b[2J</Code><Message>a\r\nb\x1b]0;t\x07</Message></Error>");
        assert!(!format!("{hostile:?}").contains('\u{1b}') && !hostile.1.contains('\n'), "{hostile:?}");
    }
}
