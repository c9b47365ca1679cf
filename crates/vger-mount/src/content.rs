//! GET and HEAD of a file: conditional requests (If-Match,
//! If-Unmodified-Since, If-None-Match, If-Modified-Since, If-Range), byte
//! ranges (single, multiple as `multipart/byteranges`, suffix; 416 past
//! the end), streamed from the store's reader without temporary files.

use std::io::{Read, SeekFrom, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use crate::body::streamed;
use crate::ranges::{self, ByteRange, RangeRequest};
use crate::server::Shared;
use crate::store::Node;
use crate::MountError;

/// Scripts never run in a file served from a snapshot, whatever its type:
/// an HTML file of a backup opened in the browser must not act as the UI.
const FILE_POLICY: &str =
    "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'";

/// The validators of a file: its ETag (from its chunk IDs) and mtime.
pub struct Validators {
    pub etag: Option<String>,
    /// Whole seconds, as HTTP dates carry them.
    pub modified: SystemTime,
}

impl Validators {
    pub fn of(node: &Node) -> Self {
        let secs = u64::try_from(node.mtime_ns.div_euclid(1_000_000_000)).unwrap_or(0);
        Self {
            etag: node.content_tag.map(|t| format!("\"{}\"", hex::encode(t))),
            modified: UNIX_EPOCH + Duration::from_secs(secs),
        }
    }

    fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.modified)
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether an If-Match / If-None-Match list names `etag` (`*` names any).
fn etag_listed(list: &str, etag: Option<&str>, weak: bool) -> bool {
    list.split(',').map(str::trim).any(|tag| {
        if tag == "*" {
            return etag.is_some();
        }
        let (is_weak, bare) = match tag.strip_prefix("W/") {
            Some(b) => (true, b),
            None => (false, tag),
        };
        (weak || !is_weak) && Some(bare) == etag
    })
}

fn date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    header_str(headers, name).and_then(|d| httpdate::parse_http_date(d).ok())
}

/// The status a conditional request ends with before any body, if any.
pub fn precondition(v: &Validators, headers: &HeaderMap) -> Option<StatusCode> {
    let etag = v.etag.as_deref();
    if let Some(list) = header_str(headers, header::IF_MATCH) {
        if !etag_listed(list, etag, false) {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    } else if let Some(since) = date(headers, header::IF_UNMODIFIED_SINCE) {
        if v.modified > since {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    }
    if let Some(list) = header_str(headers, header::IF_NONE_MATCH) {
        if etag_listed(list, etag, true) {
            return Some(StatusCode::NOT_MODIFIED);
        }
    } else if let Some(since) = date(headers, header::IF_MODIFIED_SINCE) {
        if v.modified <= since {
            return Some(StatusCode::NOT_MODIFIED);
        }
    }
    None
}

/// The Range header, unless an If-Range says the client's copy is stale.
fn effective_range<'a>(v: &Validators, headers: &'a HeaderMap) -> Option<&'a str> {
    let range = header_str(headers, header::RANGE)?;
    match header_str(headers, header::IF_RANGE) {
        None => Some(range),
        Some(cond) if cond.starts_with('"') || cond.starts_with("W/") => {
            (v.etag.as_deref() == Some(cond.trim())).then_some(range)
        }
        Some(cond) => (httpdate::parse_http_date(cond).ok() == Some(v.modified)).then_some(range),
    }
}

pub async fn serve(
    st: &Shared,
    node: &Node,
    headers: &HeaderMap,
    head: bool,
    download: bool,
) -> Result<Response, MountError> {
    let v = Validators::of(node);
    let content_type = mime_guess::from_path(node.name_lossy()).first_or_octet_stream().essence_str().to_string();
    let mut builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::LAST_MODIFIED, v.last_modified())
        .header(header::CACHE_CONTROL, "private, no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, FILE_POLICY)
        .header(header::CONTENT_DISPOSITION, disposition(node, download));
    if let Some(etag) = &v.etag {
        builder = builder.header(header::ETAG, etag);
    }
    if let Some(status) = precondition(&v, headers) {
        return finish(builder.status(status).body(Body::empty()));
    }
    let size = node.size;
    let parts = match ranges::parse(effective_range(&v, headers), size) {
        RangeRequest::Whole => None,
        RangeRequest::Unsatisfiable => {
            return finish(
                builder
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .body(Body::empty()),
            );
        }
        RangeRequest::Parts(p) => Some(p),
    };
    let (status, length, plan) = match parts.as_deref() {
        None => {
            builder = builder.header(header::CONTENT_TYPE, &content_type);
            let whole = ByteRange { start: 0, end: size.saturating_sub(1) };
            (StatusCode::OK, size, Plan::Single(if size == 0 { None } else { Some(whole) }))
        }
        Some([one]) => {
            builder = builder
                .header(header::CONTENT_TYPE, &content_type)
                .header(header::CONTENT_RANGE, format!("bytes {}-{}/{size}", one.start, one.end));
            (StatusCode::PARTIAL_CONTENT, one.len(), Plan::Single(Some(*one)))
        }
        Some(many) => {
            let boundary =
                hex::encode(&vger_format::id::random_id().map_err(|e| MountError::Other(e.to_string()))?[..12]);
            let multipart = Multipart::new(&boundary, &content_type, size, many);
            builder = builder.header(header::CONTENT_TYPE, format!("multipart/byteranges; boundary={boundary}"));
            (StatusCode::PARTIAL_CONTENT, multipart.length(), Plan::Multi(multipart))
        }
    };
    builder = builder.status(status).header(header::CONTENT_LENGTH, length);
    if head || length == 0 {
        return finish(builder.body(Body::empty()));
    }
    let permit = st.streams.clone().acquire_owned().await.map_err(|_| MountError::Other("stopping".into()))?;
    let store = st.store.clone();
    let node = node.clone();
    let body = streamed(move |out| {
        let _permit = permit;
        let mut file = store.open(&node).map_err(std::io::Error::other)?;
        match plan {
            Plan::Single(None) => Ok(()),
            Plan::Single(Some(r)) => copy_range(&mut file, r, out),
            Plan::Multi(m) => {
                for (head, r) in m.parts {
                    out.write_all(head.as_bytes())?;
                    copy_range(&mut file, r, out)?;
                }
                out.write_all(m.closing.as_bytes())
            }
        }
    });
    finish(builder.body(body))
}

fn finish(r: Result<Response, axum::http::Error>) -> Result<Response, MountError> {
    r.map_err(|e| MountError::Other(format!("cannot build the response: {e}")))
}

/// `inline` (or `attachment` for `?download`) with the file's name.
fn disposition(node: &Node, download: bool) -> HeaderValue {
    let kind = if download { "attachment" } else { "inline" };
    let encoded = crate::layout::encode_segment(&node.name);
    HeaderValue::from_str(&format!("{kind}; filename*=UTF-8''{encoded}")).unwrap_or(HeaderValue::from_static("inline"))
}

enum Plan {
    Single(Option<ByteRange>),
    Multi(Multipart),
}

/// A `multipart/byteranges` body laid out in advance, so its length is known.
struct Multipart {
    parts: Vec<(String, ByteRange)>,
    closing: String,
}

impl Multipart {
    fn new(boundary: &str, content_type: &str, size: u64, ranges: &[ByteRange]) -> Self {
        let parts = ranges
            .iter()
            .map(|r| {
                let head = format!(
                    "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {}-{}/{size}\r\n\r\n",
                    r.start, r.end
                );
                (head, *r)
            })
            .collect();
        Self { parts, closing: format!("\r\n--{boundary}--\r\n") }
    }

    fn length(&self) -> u64 {
        self.parts.iter().map(|(h, r)| h.len() as u64 + r.len()).sum::<u64>() + self.closing.len() as u64
    }
}

/// Copies exactly the bytes of `r` from `file`; a file shorter than its
/// entry says is an error (the client must not take a short copy for whole).
pub fn copy_range(file: &mut dyn crate::store::FileContent, r: ByteRange, out: &mut dyn Write) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(r.start))?;
    let mut limited = file.take(r.len());
    let copied = std::io::copy(&mut limited, out)?;
    if copied != r.len() {
        return Err(std::io::Error::other(format!("the file ended {} bytes early", r.len() - copied)));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.
mod tests {
    use super::*;

    fn v() -> Validators {
        Validators { etag: Some("\"abc\"".into()), modified: UNIX_EPOCH + Duration::from_secs(1_000_000) }
    }

    fn h(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, val) in pairs {
            m.insert(k.clone(), HeaderValue::from_str(val).unwrap_or(HeaderValue::from_static("")));
        }
        m
    }

    #[test]
    fn conditional_requests_follow_the_rfc_order() {
        let late = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(2_000_000));
        let early = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(10));
        assert_eq!(precondition(&v(), &h(&[(header::IF_NONE_MATCH, "\"abc\"")])), Some(StatusCode::NOT_MODIFIED));
        assert_eq!(
            precondition(&v(), &h(&[(header::IF_NONE_MATCH, "W/\"abc\", \"x\"")])),
            Some(StatusCode::NOT_MODIFIED)
        );
        assert_eq!(precondition(&v(), &h(&[(header::IF_NONE_MATCH, "\"other\"")])), None);
        assert_eq!(precondition(&v(), &h(&[(header::IF_MODIFIED_SINCE, &late)])), Some(StatusCode::NOT_MODIFIED));
        assert_eq!(precondition(&v(), &h(&[(header::IF_MODIFIED_SINCE, &early)])), None);
        // If-None-Match wins over If-Modified-Since.
        let both = h(&[(header::IF_NONE_MATCH, "\"other\""), (header::IF_MODIFIED_SINCE, &late)]);
        assert_eq!(precondition(&v(), &both), None);
        assert_eq!(precondition(&v(), &h(&[(header::IF_MATCH, "\"other\"")])), Some(StatusCode::PRECONDITION_FAILED));
        assert_eq!(precondition(&v(), &h(&[(header::IF_MATCH, "W/\"abc\"")])), Some(StatusCode::PRECONDITION_FAILED));
        assert_eq!(precondition(&v(), &h(&[(header::IF_MATCH, "\"abc\"")])), None);
        assert_eq!(
            precondition(&v(), &h(&[(header::IF_UNMODIFIED_SINCE, &early)])),
            Some(StatusCode::PRECONDITION_FAILED)
        );
    }

    #[test]
    fn if_range_keeps_the_range_only_for_the_same_version() {
        let exact = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_000_000));
        let range = (header::RANGE, "bytes=0-1");
        assert_eq!(effective_range(&v(), &h(&[range.clone(), (header::IF_RANGE, "\"abc\"")])), Some("bytes=0-1"));
        assert_eq!(effective_range(&v(), &h(&[range.clone(), (header::IF_RANGE, "\"old\"")])), None);
        assert_eq!(effective_range(&v(), &h(&[range.clone(), (header::IF_RANGE, &exact)])), Some("bytes=0-1"));
        assert_eq!(effective_range(&v(), &h(&[range, (header::IF_RANGE, "Thu, 01 Jan 1970 00:00:00 GMT")])), None);
    }
}
