//! Reading and deleting objects: GET (whole or one byte range), HEAD, DELETE.

use std::io::SeekFrom;
use std::path::Path;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use vger_protocol::Operation;
use vger_storage::local::durable::sync_dir;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::Shared;

/// Read buffer for streamed bodies.
const READ_CHUNK: usize = 256 << 10;

/// An open object and its size; a directory is no object.
async fn open(path: &Path, key: &str) -> Result<(tokio::fs::File, u64), ApiError> {
    let not_found = |e: std::io::Error| match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::EISDIR) => ApiError::not_found(key),
        _ => ApiError::io("open", key, &e),
    };
    let file = tokio::fs::File::open(path).await.map_err(not_found)?;
    let meta = file.metadata().await.map_err(not_found)?;
    if !meta.is_file() {
        return Err(ApiError::not_found(key));
    }
    Ok((file, meta.len()))
}

/// A byte range `first..=last` asked for by `Range: bytes=...`.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Whole,
    Part { first: u64, last: u64 },
    Unsatisfiable,
}

/// One range, as RFC 9110 says: `a-b` (b clamped to the end), `a-`, `-n`.
/// Several ranges or another unit: the whole object.
fn parse_range(value: Option<&HeaderValue>, size: u64) -> Result<RangeRequest, ApiError> {
    let Some(value) = value else { return Ok(RangeRequest::Whole) };
    let text = value.to_str().map_err(|_| ApiError::bad_request("unreadable Range header"))?;
    let Some(spec) = text.trim().strip_prefix("bytes=") else { return Ok(RangeRequest::Whole) };
    if spec.contains(',') {
        return Ok(RangeRequest::Whole);
    }
    let (a, b) = spec.split_once('-').ok_or_else(|| ApiError::bad_request(format!("malformed Range `{text}`")))?;
    let number =
        |s: &str| s.trim().parse::<u64>().map_err(|_| ApiError::bad_request(format!("malformed Range `{text}`")));
    let (first, last) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (false, false) => (number(a)?, number(b)?),
        (false, true) => (number(a)?, u64::MAX),
        (true, false) => {
            let suffix = number(b)?;
            if suffix == 0 {
                return Ok(RangeRequest::Unsatisfiable);
            }
            (size.saturating_sub(suffix), u64::MAX)
        }
        (true, true) => return Err(ApiError::bad_request(format!("malformed Range `{text}`"))),
    };
    if first > last {
        return Err(ApiError::bad_request(format!("malformed Range `{text}`")));
    }
    if first >= size {
        return Ok(RangeRequest::Unsatisfiable);
    }
    Ok(RangeRequest::Part { first, last: last.min(size - 1) })
}

pub async fn get(state: &Shared, repo: &str, key: &str, headers: &HeaderMap, head: bool) -> Result<Response, ApiError> {
    let path = state.repo_dir(repo).join(key);
    let (mut file, size) = open(&path, key).await?;
    let range = parse_range(headers.get(header::RANGE), size)?;
    let (status, first, len) = match range {
        RangeRequest::Whole => (StatusCode::OK, 0, size),
        RangeRequest::Part { first, last } => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        RangeRequest::Unsatisfiable => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the range is outside `{key}`, which is {size} bytes"),
            )
            .into_response_with_range(size);
            response.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return Ok(response);
        }
    };
    let body = if head {
        Body::empty()
    } else {
        if first > 0 {
            file.seek(SeekFrom::Start(first)).await.map_err(|e| ApiError::io("seek", key, &e))?;
        }
        Body::from_stream(ReaderStream::with_capacity(file.take(len), READ_CHUNK))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        let value = format!("bytes {first}-{}/{size}", first + len - 1);
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response)
}

impl ApiError {
    fn into_response_with_range(self, size: u64) -> Response {
        let mut response = axum::response::IntoResponse::into_response(self);
        if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        response
    }
}

pub async fn delete(state: &Shared, caller: &Caller, repo: &str, key: &str) -> Result<Response, ApiError> {
    // Refused whether or not the object exists: no probing, no races.
    caller.check(Operation::Delete { key })?;
    let dir = state.repo_dir(repo);
    let path = dir.join(key);
    let key_owned = key.to_owned();
    let caller = caller.clone();
    let removed = tokio::task::spawn_blocking(move || -> Result<Option<u64>, ApiError> {
        let size = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => meta.len(),
            Ok(_) => return Ok(None),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => return Ok(None),
            Err(e) => return Err(ApiError::io("stat", &key_owned, &e)),
        };
        caller.check_change(&key_owned, &path, true)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(ApiError::io("delete", &key_owned, &e)),
        }
        if let Some(parent) = path.parent() {
            sync_dir(parent).map_err(|e| ApiError::io("fsync directory of", &key_owned, &e))?;
        }
        Ok(Some(size))
    })
    .await
    .map_err(|e| ApiError::internal(format!("delete task failed: {e}")))??;
    if let Some(size) = removed {
        state.usage.adjust(repo, None, Some(size));
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn range(text: &str, size: u64) -> RangeRequest {
        parse_range(Some(&HeaderValue::from_str(text).unwrap()), size).unwrap()
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-9", 100), RangeRequest::Part { first: 0, last: 9 });
        assert_eq!(range("bytes=90-200", 100), RangeRequest::Part { first: 90, last: 99 });
        assert_eq!(range("bytes=10-", 100), RangeRequest::Part { first: 10, last: 99 });
        assert_eq!(range("bytes=-10", 100), RangeRequest::Part { first: 90, last: 99 });
        assert_eq!(range("bytes=100-100", 100), RangeRequest::Unsatisfiable);
        assert_eq!(range("bytes=0-0", 0), RangeRequest::Unsatisfiable);
        assert_eq!(range("bytes=0-1,4-5", 100), RangeRequest::Whole);
        assert_eq!(range("items=0-1", 100), RangeRequest::Whole);
        for bad in ["bytes=5-1", "bytes=x-1", "bytes=-"] {
            assert!(parse_range(Some(&HeaderValue::from_str(bad).unwrap()), 100).is_err(), "{bad}");
        }
    }
}
