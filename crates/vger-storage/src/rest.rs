//! The vger-server backend: a repository served by `vger-server` at
//! `http(s)://host[:port][/path]/REPO`, spoken over the protocol in the
//! `vger-protocol` crate.
//!
//! - Every request carries `Authorization: Bearer <token>`; uploads carry
//!   the body's BLAKE3 ([`BLAKE3_HEADER`]), which the server checks while
//!   streaming the body to disk (a mismatch is retried as transient).
//! - `put_new` is `If-None-Match: *` (412: `AlreadyExists`); the server
//!   makes it atomic with a hard link.
//! - Listings are streamed JSON lines read one at a time and must end with
//!   the server's end line, so a cut-off listing is an error, never a
//!   short answer. `modified` is the server's receipt time.
//! - [`RestStorage::repack`] and [`RestStorage::verify_packs`] let
//!   maintenance work on packs without downloading them.
//!
//! Plain `http://` is accepted here as given: the caller ([`open_url`](crate::open_url))
//! decides whether `allow_insecure_http` permits it.

use base64::Engine;
use ureq::http::{Method, Response};
use ureq::Body;
use url::Url;
use vger_protocol::{
    is_valid_repo_name, is_valid_token_name, ErrorCode, ListLine, PackVerification, RepackBlob, RepackRequest,
    RepackResponse, RepoStats, VerifyLine, VerifyPacksRequest, BLAKE3_HEADER, ERROR_HEADER, QUERY_LIST, QUERY_PREFIX,
    QUERY_REPACK, QUERY_STATS, QUERY_VERIFY_PACKS,
};

use crate::http::{clean_text, Client, Exchange, Reply, SMALL_REPLY};
use crate::keys::{max_object_size, validate_key, validate_prefix, MAX_KEY_LEN, MAX_LISTED_OBJECTS};
use crate::{BackendOptions, ObjectInfo, PackService, Storage, StorageError};

/// Longest line of a listing or verify-packs reply: one JSON object with
/// a key of at most [`MAX_KEY_LEN`] bytes, a few numbers and, for a pack
/// that failed verification, a short problem.
const MAX_LINE: usize = MAX_KEY_LEN + (8 << 10);

/// A repository on a vger-server.
pub struct RestStorage {
    client: Client,
    /// `http(s)://host:port/.../REPO/`, always ending with `/`.
    base: String,
    authorization: Option<String>,
}

impl std::fmt::Debug for RestStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestStorage").field("url", &self.base).finish_non_exhaustive()
    }
}

impl RestStorage {
    /// `base_url` is `http(s)://host[:port][/path]/REPO`; the last path
    /// segment names the repository. No request is made until the first
    /// operation.
    pub fn new(base_url: &str, token: Option<String>, opts: &BackendOptions) -> Result<Self, StorageError> {
        let bad = |why: &str| StorageError::Backend { detail: format!("vger-server URL `{base_url}`: {why}") };
        let url = Url::parse(base_url).map_err(|e| bad(&format!("not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the scheme must be https:// (or http:// with allow_insecure_http)"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("put the access token in `access_token`, not in the URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("no query or fragment allowed"));
        }
        let path = url.path().trim_end_matches('/');
        let repo = path.rsplit('/').next().unwrap_or_default();
        if !is_valid_repo_name(repo) {
            return Err(bad("expected https://HOST[:PORT]/REPOSITORY; the repository name is [A-Za-z0-9._-]"));
        }
        let mut base = url.clone();
        base.set_path(&format!("{path}/"));
        if let Some(token) = &token {
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad("the access token must be printable ASCII without spaces"));
            }
        }
        let client = Client::new(opts.timeout, opts.connections, "vger-server", "the host name in the repository URL");
        Ok(RestStorage { client, base: base.to_string(), authorization: token.map(|t| format!("Bearer {t}")) })
    }

    /// A request to `url` with the token; its reply may hold
    /// [`SMALL_REPLY`] bytes and take the body time of `expect_bytes`
    /// (`None`: a streamed reply, no time limit).
    fn request<'a>(
        &self,
        method: Method,
        url: String,
        mut headers: Vec<(&'static str, String)>,
        body: &'a [u8],
        expect_bytes: Option<u64>,
    ) -> Exchange<'a> {
        if let Some(auth) = &self.authorization {
            headers.push(("authorization", auth.clone()));
        }
        Exchange { method, url, headers, body, expect_bytes, max_reply: SMALL_REPLY }
    }

    /// Sends and reads the whole (small) reply.
    fn exchange(
        &self,
        method: Method,
        url: String,
        headers: Vec<(&'static str, String)>,
        body: &[u8],
    ) -> Result<Reply, StorageError> {
        self.client.exchange(&self.request(method, url, headers, body, Some(0)))
    }

    /// Sends a request whose reply is streamed JSON lines; an unsuccessful
    /// reply is read (capped) and mapped.
    fn send_streamed(&self, url: String, body: &[u8], what: &str, key: &str) -> Result<Response<Body>, StorageError> {
        let headers = if body.is_empty() { Vec::new() } else { vec![("content-type", "application/json".to_owned())] };
        let method = if body.is_empty() { Method::GET } else { Method::POST };
        let response = self.client.send(&self.request(method, url, headers, body, None))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_from_reply(&self.client.read_reply(response, SMALL_REPLY, 0)?, what, key))
    }

    /// Reads a JSON-lines reply: `parse` returns `Some(count)` for the end
    /// line, whose count must equal the lines before it; a reply without
    /// it was cut off. At most `max_lines` lines of at most [`MAX_LINE`] bytes.
    fn read_lines(
        &self,
        response: Response<Body>,
        what: &str,
        max_lines: usize,
        mut parse: impl FnMut(&str) -> Result<Option<u64>, StorageError>,
    ) -> Result<(), StorageError> {
        let (_, body) = response.into_parts();
        let mut seen = 0u64;
        let mut end = None;
        self.client.read_lines(body, what, MAX_LINE, max_lines, |line| {
            if end.is_some() {
                return Err(StorageError::Backend { detail: format!("vger-server {what}: lines after the end line") });
            }
            match parse(line)? {
                None => seen += 1,
                Some(count) => end = Some(count),
            }
            Ok(())
        })?;
        match end {
            Some(count) if count == seen => Ok(()),
            Some(count) => Err(StorageError::Backend {
                detail: format!("vger-server {what}: the reply announced {count} entries but sent {seen}"),
            }),
            None => Err(StorageError::Transient {
                detail: format!("vger-server {what} ended without its end line (cut off)"),
            }),
        }
    }

    fn object_url(&self, key: &str) -> String {
        // Valid keys need no escaping: [A-Za-z0-9._-/] only.
        format!("{}{key}", self.base)
    }

    fn query_url(&self, query: &str) -> String {
        format!("{}?{query}", self.base)
    }

    fn head(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let reply = self.exchange(Method::HEAD, self.object_url(key), Vec::new(), &[])?;
        match reply.status {
            404 => Ok(None),
            _ if reply.is_success() => {
                let length = reply.header("content-length").and_then(|v| v.parse().ok());
                length.map(Some).ok_or_else(|| StorageError::Backend {
                    detail: format!("vger-server HEAD `{key}`: reply without a Content-Length"),
                })
            }
            _ => Err(error_from_reply(&reply, "HEAD", key)),
        }
    }

    fn put_object(&self, key: &str, data: &[u8], if_absent: bool) -> Result<(), StorageError> {
        let mut headers = vec![
            (BLAKE3_HEADER, blake3::hash(data).to_hex().to_string()),
            ("content-type", "application/octet-stream".to_owned()),
        ];
        if if_absent {
            headers.push(("if-none-match", "*".to_owned()));
        }
        let reply = self.exchange(Method::PUT, self.object_url(key), headers, data)?;
        if reply.is_success() {
            Ok(())
        } else {
            Err(error_from_reply(&reply, "PUT", key))
        }
    }

    /// Asks the server to build a pack from byte ranges of existing packs
    /// followed by `trailer` (a sealed trailer envelope whose offsets the
    /// caller computed as 16 + the lengths before each blob). Needs an
    /// `append` token or better. Returns the new pack's id and size.
    pub fn repack(&self, blobs: &[RepackBlob], trailer: &[u8]) -> Result<RepackResponse, StorageError> {
        let request =
            RepackRequest { blobs: blobs.to_vec(), trailer: base64::engine::general_purpose::STANDARD.encode(trailer) };
        let body = serde_json::to_vec(&request)
            .map_err(|e| StorageError::Backend { detail: format!("encoding a repack plan: {e}") })?;
        let total: u64 = blobs.iter().map(|b| b.length).sum();
        let headers = vec![("content-type", "application/json".to_owned())];
        // The server copies `total` bytes before it answers.
        let request = self.request(Method::POST, self.query_url(QUERY_REPACK), headers, &body, Some(total));
        let reply = self.client.exchange(&request)?;
        if !reply.is_success() {
            return Err(error_from_reply(&reply, "repack", "packs/"));
        }
        serde_json::from_slice(&reply.body)
            .map_err(|e| StorageError::Backend { detail: format!("vger-server repack: unreadable reply: {e}") })
    }

    /// Asks the server to verify packs (keys `packs/xx/<id>` or bare ids;
    /// `None` for all): BLAKE3 against the name, header and footer. The
    /// server reads every byte; nothing is downloaded. A long list goes in
    /// requests of at most [`vger_protocol::MAX_VERIFY_PACKS`] packs.
    pub fn verify_packs(&self, packs: Option<&[String]>) -> Result<Vec<PackVerification>, StorageError> {
        let Some(packs) = packs else { return self.verify_batch(None) };
        let mut results = Vec::with_capacity(packs.len());
        for batch in packs.chunks(vger_protocol::MAX_VERIFY_PACKS) {
            results.extend(self.verify_batch(Some(batch))?);
        }
        Ok(results)
    }

    fn verify_batch(&self, packs: Option<&[String]>) -> Result<Vec<PackVerification>, StorageError> {
        let request = VerifyPacksRequest { packs: packs.map(<[String]>::to_vec) };
        let body = serde_json::to_vec(&request)
            .map_err(|e| StorageError::Backend { detail: format!("encoding a verify request: {e}") })?;
        let response = self.send_streamed(self.query_url(QUERY_VERIFY_PACKS), &body, "verify-packs", "packs/")?;
        let mut results = Vec::new();
        // One line per pack asked for (or listed) and the end line.
        let max_lines = packs.map_or(MAX_LISTED_OBJECTS, <[String]>::len).saturating_add(1);
        self.read_lines(response, "verify-packs", max_lines, |line| match serde_json::from_str::<VerifyLine>(line) {
            Ok(VerifyLine::Pack(mut result)) => {
                // Server text, shown to the user.
                result.problem = result.problem.map(|p| clean_text(p.as_bytes()));
                results.push(result);
                Ok(None)
            }
            Ok(VerifyLine::End { count, .. }) => Ok(Some(count)),
            Ok(VerifyLine::Error { error }) => {
                Err(StorageError::Backend { detail: format!("vger-server: {}", clean_text(error.as_bytes())) })
            }
            Err(e) => Err(unreadable("verify-packs", &e)),
        })?;
        Ok(results)
    }

    /// Size, counts, quota and newest snapshot time, as the server sees them.
    pub fn stats(&self) -> Result<RepoStats, StorageError> {
        let reply = self.exchange(Method::GET, self.query_url(QUERY_STATS), Vec::new(), &[])?;
        if !reply.is_success() {
            return Err(error_from_reply(&reply, "stats", ""));
        }
        serde_json::from_slice(&reply.body).map_err(|e| unreadable("stats", &e))
    }
}

fn unreadable(what: &str, e: &serde_json::Error) -> StorageError {
    StorageError::Backend { detail: format!("vger-server {what}: unreadable reply line: {e}") }
}

/// Total size from `Content-Range: bytes a-b/total` or `bytes */total`.
fn total_from_content_range(reply: &Reply) -> Option<u64> {
    reply.header("content-range")?.rsplit_once('/')?.1.trim().parse().ok()
}

impl Storage for RestStorage {
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        let mut request = self.request(Method::GET, self.object_url(key), Vec::new(), &[], Some(64 << 20));
        request.max_reply = max_object_size(key);
        let reply = self.client.exchange(&request)?;
        if !reply.is_success() {
            return Err(error_from_reply(&reply, "GET", key));
        }
        let announced = reply.header("content-length").and_then(|v| v.parse::<u64>().ok());
        match announced {
            Some(len) if len != reply.body.len() as u64 => Err(StorageError::Transient {
                detail: format!("vger-server GET `{key}`: {} of {len} bytes received", reply.body.len()),
            }),
            _ => Ok(reply.body),
        }
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        let out_of_bounds = |size| StorageError::RangeOutOfBounds { key: key.to_owned(), offset, len, size };
        let last = match len.checked_sub(1).and_then(|l| offset.checked_add(l)) {
            Some(last) => last,
            None => {
                // Empty or overflowing range: only the size can tell.
                let size = self.head(key)?.ok_or_else(|| StorageError::NotFound { key: key.to_owned() })?;
                return match offset.checked_add(len) {
                    Some(end) if end <= size => Ok(Vec::new()),
                    _ => Err(out_of_bounds(size)),
                };
            }
        };
        let headers = vec![("range", format!("bytes={offset}-{last}"))];
        let mut request = self.request(Method::GET, self.object_url(key), headers, &[], Some(len));
        // A proxy that drops `Range` sends the whole object.
        request.max_reply = max_object_size(key);
        let reply = self.client.exchange(&request)?;
        match reply.status {
            206 if reply.body.len() as u64 == len => Ok(reply.body),
            // The server clamps a range past the end (RFC 9110).
            206 => Err(out_of_bounds(total_from_content_range(&reply).unwrap_or(offset + reply.body.len() as u64))),
            416 => {
                let size = match total_from_content_range(&reply) {
                    Some(size) => size,
                    None => self.head(key)?.ok_or_else(|| StorageError::NotFound { key: key.to_owned() })?,
                };
                Err(out_of_bounds(size))
            }
            // A proxy that drops `Range` sends the whole object.
            200 => {
                let size = reply.body.len() as u64;
                match (usize::try_from(offset), usize::try_from(last + 1)) {
                    (Ok(start), Ok(end)) if last < size => {
                        Ok(reply.body.get(start..end).map(<[u8]>::to_vec).unwrap_or_default())
                    }
                    _ => Err(out_of_bounds(size)),
                }
            }
            _ => Err(error_from_reply(&reply, "ranged GET", key)),
        }
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        self.put_object(key, data, false)
    }

    fn put_new(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        self.put_object(key, data, true)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        let reply = self.exchange(Method::DELETE, self.object_url(key), Vec::new(), &[])?;
        match reply.status {
            404 => Ok(()),
            _ if reply.is_success() => Ok(()),
            _ => Err(error_from_reply(&reply, "DELETE", key)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        validate_prefix(prefix)?;
        // Valid prefixes need no escaping in a query.
        let url = self.query_url(&format!("{QUERY_LIST}&{QUERY_PREFIX}={prefix}"));
        let response = self.send_streamed(url, &[], "list", prefix)?;
        let mut objects = Vec::new();
        let max_lines = MAX_LISTED_OBJECTS + 1;
        self.read_lines(response, "list", max_lines, |line| match serde_json::from_str::<ListLine>(line) {
            Ok(ListLine::Object(entry)) => {
                // A hostile server's bad names are no objects.
                if validate_key(&entry.key).is_ok() && entry.key.starts_with(prefix) {
                    // A name that is not a token name is dropped, never printed.
                    let writer = entry.writer.filter(|w| is_valid_token_name(w));
                    objects.push(ObjectInfo {
                        key: entry.key,
                        size: entry.size,
                        modified: Some(entry.modified),
                        writer,
                    });
                }
                Ok(None)
            }
            Ok(ListLine::End { count, .. }) => Ok(Some(count)),
            Ok(ListLine::Error { error }) => {
                Err(StorageError::Transient { detail: format!("vger-server list: {}", clean_text(error.as_bytes())) })
            }
            Err(e) => Err(unreadable("list", &e)),
        })?;
        Ok(objects)
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        validate_key(key)?;
        self.head(key)
    }

    fn describe(&self) -> String {
        self.base.trim_end_matches('/').to_owned()
    }

    /// vger-server records when it received each object; clients cannot set it.
    fn receipt_times_trusted(&self) -> bool {
        true
    }

    fn pack_service(&self) -> Option<&dyn PackService> {
        Some(self)
    }
}

impl PackService for RestStorage {
    fn verify_packs(&self, packs: Option<&[String]>) -> Result<Vec<PackVerification>, StorageError> {
        RestStorage::verify_packs(self, packs)
    }

    fn repack(&self, blobs: &[RepackBlob], trailer: &[u8]) -> Result<RepackResponse, StorageError> {
        RestStorage::repack(self, blobs, trailer)
    }
}

/// Maps an unsuccessful reply for `key` onto the error the engine acts on.
fn error_from_reply(reply: &Reply, what: &str, key: &str) -> StorageError {
    let message = reply.text();
    let code = reply.header(ERROR_HEADER).and_then(ErrorCode::parse);
    let detail = format!("vger-server {what} `{key}`: HTTP {} {message}", reply.status).trim_end().to_owned();
    let key = key.to_owned();
    match (reply.status, code) {
        (401, _) => StorageError::PermissionDenied {
            key,
            detail: format!("the access token is missing or wrong ({detail}); check access_token"),
        },
        (403, _) => StorageError::PermissionDenied {
            key,
            detail: format!("the token may not do this (append-only?) ({detail})"),
        },
        (404, _) => StorageError::NotFound { key },
        (412, _) => StorageError::AlreadyExists { key },
        (507, Some(ErrorCode::NoSpace)) => StorageError::NoSpace { key, detail },
        (507, _) => StorageError::QuotaExceeded { detail },
        (400, Some(ErrorCode::HashMismatch)) => StorageError::Transient { detail },
        (400, Some(ErrorCode::InvalidKey)) => StorageError::invalid_key(&key, "refused by vger-server"),
        (408 | 429 | 500..=599, _) => StorageError::Transient { detail },
        _ => StorageError::Backend { detail },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn reply(status: u16, code: Option<ErrorCode>) -> Reply {
        let mut headers = ureq::http::HeaderMap::new();
        if let Some(code) = code {
            headers.insert(ERROR_HEADER, ureq::http::HeaderValue::from_static(code.as_str()));
        }
        Reply { status, headers, body: b"server says no\n".to_vec() }
    }

    #[test]
    fn status_mapping() {
        let map = |status, code| error_from_reply(&reply(status, code), "PUT", "snapshots/ab");
        assert!(map(401, None).to_string().contains("access token is missing or wrong"));
        assert!(map(403, Some(ErrorCode::Immutable)).to_string().contains("append-only"));
        assert!(map(404, None).is_not_found());
        assert!(matches!(map(412, None), StorageError::AlreadyExists { .. }));
        let quota = map(507, Some(ErrorCode::QuotaExceeded));
        assert!(matches!(quota, StorageError::QuotaExceeded { .. }) && quota.to_string().contains("server says no"));
        assert!(matches!(map(507, Some(ErrorCode::NoSpace)), StorageError::NoSpace { .. }));
        for (status, code) in [(500, None), (503, None), (429, None), (400, Some(ErrorCode::HashMismatch))] {
            assert!(map(status, code).is_transient(), "{status}");
        }
        assert!(!map(400, None).is_transient());
    }

    /// Every layer passes the service through; the retry layer retries it.
    #[test]
    #[allow(clippy::panic)] // Tests fail by panicking.
    fn layers_pass_the_pack_service_through() {
        use std::sync::Arc;
        let opts = BackendOptions {
            upload_bytes_per_sec: Some(1 << 20),
            retry: crate::RetryPolicy {
                max_retries: 2,
                delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            },
            ..BackendOptions::default()
        };
        // Nothing listens on port 9 of loopback: connections are refused.
        let Ok(rest) = RestStorage::new("http://127.0.0.1:9/r", None, &opts) else { panic!("valid URL") };
        let layered = crate::layers::wrap(Arc::new(rest), &opts);
        let Some(service) = layered.pack_service() else { panic!("the layers hid the pack service") };
        let err = service.verify_packs(None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("gave up after 2 retries"), "{err}");
        let dir = std::env::temp_dir().join(format!("vger-rest-layers-{}", std::process::id()));
        let Ok(local) = crate::LocalStorage::create(&dir) else { panic!("temp dir") };
        assert!(crate::layers::wrap(Arc::new(local), &opts).pack_service().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn urls() {
        let opts = BackendOptions::default();
        let s = RestStorage::new("https://backup.example:8585/laptop", None, &opts).ok();
        assert_eq!(s.map(|s| s.describe()), Some("https://backup.example:8585/laptop".to_owned()));
        let s = RestStorage::new("https://proxy.example/vger/laptop/", None, &opts).ok();
        assert_eq!(s.map(|s| s.object_url("config")), Some("https://proxy.example/vger/laptop/config".to_owned()));
        for bad in [
            "https://host",
            "https://host/",
            "ftp://host/r",
            "https://u:p@host/r",
            "https://host/r?x",
            "https://host/.r",
        ] {
            assert!(RestStorage::new(bad, None, &opts).is_err(), "{bad}");
        }
    }
}
