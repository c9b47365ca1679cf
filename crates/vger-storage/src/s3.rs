//! The S3 backend: any S3-compatible object store (AWS, Backblaze B2,
//! Wasabi, MinIO, Ceph, Garage, Cloudflare R2), one object per key under
//! a prefix of one bucket.
//!
//! - Requests are signed by rusty-s3 (SigV4, sans-IO) and sent by ureq
//!   (blocking), which fits the synchronous [`Storage`] trait: every
//!   calling thread does its own request, the agent pools connections.
//! - Uploads carry `Content-MD5`, so the server refuses a body damaged on
//!   the way (`BadDigest`, retried). Objects above [`MULTIPART_THRESHOLD`]
//!   go up in parts ([`multipart`]); vger's 32 MiB packs take one PUT.
//! - `put_new` is a PUT with `If-None-Match: *` (AWS since 2024, moto,
//!   MinIO). Whether the server honours it is probed once per process; a
//!   server that ignores it gets HEAD-then-PUT, which is racy: two writers
//!   that both see the key absent both succeed, the last one's bytes stay.
//!   Locks are then only as good as that, as with any store without
//!   conditional writes.
//! - With `s3_soft_delete`, `delete` first copies the object (server side)
//!   to `.trash/<key>` below the prefix, then deletes it. Nothing is ever
//!   lost by a prune run with stolen credentials that cannot touch
//!   `.trash/` (bucket policy) or whose `.trash/` copies are protected by
//!   Object Lock retention; a lifecycle rule on `.trash/` frees the space.
//!   Keys under `.trash/` are not valid repository keys, so listings skip
//!   them.

mod multipart;
mod request;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use md5::{Digest, Md5};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use ureq::http::Method;
use url::Url;

use crate::http::{Client, Exchange, Reply, SMALL_REPLY};
use crate::keys::{max_object_size, validate_key, validate_prefix, MAX_LISTED_OBJECTS};
use crate::random::random_u64;
use crate::{BackendOptions, ObjectInfo, Storage, StorageError};
use request::error_from_reply;

/// Objects larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 64 << 20;

/// How long a signed URL stays valid; it only has to outlive the request.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(3600);

/// Cap of one ListObjectsV2 page: at most 1,000 entries (the default and
/// the maximum of `max-keys`) of at most a few hundred bytes each.
const MAX_LIST_PAGE: u64 = 8 << 20;

/// Where a repository lives in S3, as parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// `https://host[:port]` or `http://host[:port]`.
    pub endpoint: Url,
    pub bucket: String,
    /// Below the bucket, without leading or trailing `/`; may be empty.
    pub prefix: String,
}

/// A repository below a prefix of an S3 bucket.
pub struct S3Storage {
    bucket: Bucket,
    credentials: Credentials,
    /// `""` or `"some/prefix/"`: prepended to every key.
    prefix: String,
    client: Client,
    soft_delete: bool,
    /// Whether the server honours `If-None-Match: *`; probed on first use.
    conditional_put: Mutex<Option<bool>>,
    description: String,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage").field("location", &self.description).finish_non_exhaustive()
    }
}

impl S3Storage {
    /// Prepares the client; no request is made until the first operation.
    pub fn new(location: &S3Location, opts: &BackendOptions) -> Result<Self, StorageError> {
        let config_error = |detail: String| StorageError::Backend { detail };
        let region =
            opts.region.clone().or_else(|| std::env::var("AWS_REGION").ok()).unwrap_or_else(|| "us-east-1".into());
        let host = location.endpoint.host_str().unwrap_or_default();
        let style = match opts.s3_addressing.as_deref() {
            Some("path") => UrlStyle::Path,
            Some("virtual") => UrlStyle::VirtualHost,
            None if host.ends_with("amazonaws.com") => UrlStyle::VirtualHost,
            None => UrlStyle::Path,
            Some(other) => {
                return Err(config_error(format!("s3_addressing is {other:?}; use \"path\" or \"virtual\"")));
            }
        };
        let bucket = Bucket::new(location.endpoint.clone(), style, location.bucket.clone(), region)
            .map_err(|e| config_error(format!("invalid S3 endpoint {}: {e:?}", location.endpoint)))?;
        let key_id = opts.access_key_id.clone().or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok());
        let secret = opts.secret_access_key.clone().or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok());
        let credentials = match (key_id, secret) {
            (Some(id), Some(secret)) => match std::env::var("AWS_SESSION_TOKEN") {
                Ok(token) if opts.access_key_id.is_none() => Credentials::new_with_token(id, secret, token),
                _ => Credentials::new(id, secret),
            },
            _ => {
                return Err(config_error(
                    "no S3 credentials: set access_key_id and secret_access_key in the repository \
                     configuration, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
                        .into(),
                ))
            }
        };
        let client =
            Client::new(opts.timeout, opts.connections, "S3", "the endpoint's host name in the repository URL");
        let prefix = match location.prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let description =
            format!("{}/{}/{}", location.endpoint.as_str().trim_end_matches('/'), location.bucket, prefix);
        Ok(S3Storage {
            bucket,
            credentials,
            prefix,
            client,
            soft_delete: opts.s3_soft_delete,
            conditional_put: Mutex::new(None),
            description: description.trim_end_matches('/').to_owned(),
        })
    }

    fn object(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn send(&self, exchange: Exchange<'_>) -> Result<Reply, StorageError> {
        self.client.exchange(&exchange)
    }

    /// A signed request for `action`, with `headers` signed as well; its
    /// reply may hold [`SMALL_REPLY`] bytes unless the caller raises it.
    fn exchange<'a, 'b>(
        &self,
        mut action: impl S3Action<'a>,
        method: Method,
        headers: Vec<(&'static str, String)>,
        body: &'b [u8],
    ) -> Exchange<'b> {
        for (name, value) in &headers {
            action.headers_mut().insert(*name, value.clone());
        }
        let url = action.sign(SIGNATURE_LIFETIME).to_string();
        // The body timeout of 64 MiB at the slowest rate, as for any reply.
        Exchange { method, url, headers, body, expect_bytes: Some(64 << 20), max_reply: SMALL_REPLY }
    }

    fn head(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let object = self.object(key);
        let action = self.bucket.head_object(Some(&self.credentials), &object);
        let reply = self.send(self.exchange(action, Method::HEAD, Vec::new(), &[]))?;
        match reply.status {
            404 => Ok(None),
            _ if reply.is_success() => {
                let length = reply.header("content-length").and_then(|v| v.parse().ok());
                length.map(Some).ok_or_else(|| StorageError::Backend {
                    detail: format!("S3 HEAD `{key}`: reply without a Content-Length"),
                })
            }
            _ => Err(error_from_reply(&reply, "HEAD", key)),
        }
    }

    /// A single PUT; `if_absent` adds `If-None-Match: *`.
    fn put_object(&self, key: &str, data: &[u8], if_absent: bool) -> Result<(), StorageError> {
        let object = self.object(key);
        let action = self.bucket.put_object(Some(&self.credentials), &object);
        let mut headers = vec![("content-md5", content_md5(data))];
        if if_absent {
            headers.push(("if-none-match", "*".to_owned()));
        }
        let reply = self.send(self.exchange(action, Method::PUT, headers, data))?;
        if reply.is_success() {
            Ok(())
        } else {
            Err(error_from_reply(&reply, "PUT", key))
        }
    }

    /// Whether the server refuses a second `If-None-Match: *` PUT. Probed
    /// once with a dot-named object (never a repository key) and cached.
    fn honours_if_none_match(&self) -> Result<bool, StorageError> {
        let mut known = self.conditional_put.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(answer) = *known {
            return Ok(answer);
        }
        let probe = format!(".vger-probe-{:016x}", random_u64());
        self.put_object(&probe, b"probe", true)?;
        let answer = match self.put_object(&probe, b"probe", true) {
            Err(StorageError::AlreadyExists { .. }) => true,
            Ok(()) => false,
            Err(e) => return Err(e),
        };
        self.delete_object(&probe)?;
        *known = Some(answer);
        Ok(answer)
    }

    fn delete_object(&self, key: &str) -> Result<(), StorageError> {
        let object = self.object(key);
        let action = self.bucket.delete_object(Some(&self.credentials), &object);
        let reply = self.send(self.exchange(action, Method::DELETE, Vec::new(), &[]))?;
        match reply.status {
            404 => Ok(()),
            _ if reply.is_success() => Ok(()),
            _ => Err(error_from_reply(&reply, "DELETE", key)),
        }
    }

    /// Server-side copy of `key` to `.trash/<key>`; `false` if `key` is absent.
    fn copy_to_trash(&self, key: &str) -> Result<bool, StorageError> {
        let target = self.object(&format!(".trash/{key}"));
        let action = self.bucket.put_object(Some(&self.credentials), &target);
        let source = format!("/{}/{}", self.bucket.name(), self.object(key));
        let reply = self.send(self.exchange(action, Method::PUT, vec![("x-amz-copy-source", source)], &[]))?;
        // A copy can fail after a 200 status: the error is then in the body.
        match reply.status {
            404 => Ok(false),
            _ if reply.is_success() && !reply.body.windows(7).any(|w| w == b"<Error>") => Ok(true),
            _ if reply.is_success() => Err(StorageError::Transient {
                detail: format!("S3 copy of `{key}` to .trash/ failed: {}", request::error_code(&reply.body).1),
            }),
            _ => Err(error_from_reply(&reply, "copy to .trash/", key)),
        }
    }

    fn get_object(&self, key: &str, range: Option<(u64, u64)>) -> Result<Reply, StorageError> {
        let object = self.object(key);
        let action = self.bucket.get_object(Some(&self.credentials), &object);
        let mut exchange = self.exchange(action, Method::GET, Vec::new(), &[]);
        // A server that ignores `Range` sends the whole object.
        exchange.max_reply = max_object_size(key);
        if let Some((first, last)) = range {
            // Not signed: a plain header, like `content-length`.
            exchange.headers.push(("range", format!("bytes={first}-{last}")));
            exchange.expect_bytes = Some((last - first + 1).max(64 << 20));
        }
        self.send(exchange)
    }
}

fn content_md5(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

/// Seconds since 1970 of a listing's `LastModified` (`2024-05-01T12:00:00.000Z`).
fn unix_seconds(iso: &str) -> Option<u64> {
    let number = |range: std::ops::Range<usize>| iso.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

/// Total size from a `Content-Range: bytes a-b/total` (or `bytes */total`).
fn total_from_content_range(reply: &Reply) -> Option<u64> {
    reply.header("content-range")?.rsplit_once('/')?.1.trim().parse().ok()
}

impl Storage for S3Storage {
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        let reply = self.get_object(key, None)?;
        if reply.is_success() {
            Ok(reply.body)
        } else {
            Err(error_from_reply(&reply, "GET", key))
        }
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        validate_key(key)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let out_of_bounds = |size| StorageError::RangeOutOfBounds { key: key.to_owned(), offset, len, size };
        // No object is larger than i64::MAX; servers reject such a range.
        let Some(last) = offset.checked_add(len - 1).filter(|last| *last <= i64::MAX as u64) else {
            let size = self.head(key)?.ok_or_else(|| StorageError::NotFound { key: key.to_owned() })?;
            return Err(out_of_bounds(size));
        };
        let reply = self.get_object(key, Some((offset, last)))?;
        match reply.status {
            416 => {
                let size = match total_from_content_range(&reply) {
                    Some(size) => size,
                    None => self.head(key)?.ok_or_else(|| StorageError::NotFound { key: key.to_owned() })?,
                };
                Err(out_of_bounds(size))
            }
            206 if reply.body.len() as u64 == len => Ok(reply.body),
            206 => Err(out_of_bounds(total_from_content_range(&reply).unwrap_or(offset + reply.body.len() as u64))),
            // A server that ignores `Range` sends the whole object.
            200 => {
                let size = reply.body.len() as u64;
                let end = usize::try_from(last).ok().and_then(|l| l.checked_add(1));
                match (usize::try_from(offset), end) {
                    (Ok(start), Some(end)) if end as u64 <= size => {
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
        if data.len() > MULTIPART_THRESHOLD {
            multipart::upload(self, key, data)
        } else {
            self.put_object(key, data, false)
        }
    }

    fn put_new(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        validate_key(key)?;
        if self.honours_if_none_match()? {
            return self.put_object(key, data, true);
        }
        if self.head(key)?.is_some() {
            return Err(StorageError::AlreadyExists { key: key.to_owned() });
        }
        self.put_object(key, data, false)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        if self.soft_delete && !self.copy_to_trash(key)? {
            return Ok(());
        }
        self.delete_object(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        validate_prefix(prefix)?;
        let full_prefix = self.object(prefix);
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
            if !full_prefix.is_empty() {
                action.with_prefix(full_prefix.as_str());
            }
            if let Some(token) = &token {
                action.with_continuation_token(token.as_str());
            }
            let mut exchange = self.exchange(action, Method::GET, Vec::new(), &[]);
            exchange.max_reply = MAX_LIST_PAGE;
            let reply = self.send(exchange)?;
            if !reply.is_success() {
                return Err(error_from_reply(&reply, "list", prefix));
            }
            let mut text = String::from_utf8_lossy(&reply.body).into_owned();
            if !text.contains("<ETag>") {
                // Some servers (s3s-fs) list without ETags, which the parser requires.
                text = text.replace("<Contents>", "<Contents><ETag></ETag>");
            }
            let page = rusty_s3::actions::ListObjectsV2::parse_response(&text).map_err(|e| {
                StorageError::Transient { detail: format!("S3 list `{prefix}`: unreadable reply: {e}") }
            })?;
            objects.extend(page.contents.into_iter().filter_map(|entry| {
                let key = entry.key.strip_prefix(self.prefix.as_str())?;
                // Foreign, hostile or bookkeeping (`.trash/`) names are no objects.
                validate_key(key).ok()?;
                Some(ObjectInfo {
                    key: key.to_owned(),
                    size: entry.size,
                    modified: unix_seconds(&entry.last_modified),
                    writer: None,
                })
            }));
            if objects.len() > MAX_LISTED_OBJECTS {
                return Err(StorageError::Backend {
                    detail: format!(
                        "S3 list `{prefix}`: more than {MAX_LISTED_OBJECTS} objects; refused (a broken or hostile server)"
                    ),
                });
            }
            match page.next_continuation_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(objects),
            }
        }
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        validate_key(key)?;
        self.head(key)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::unix_seconds;

    #[test]
    fn listing_times() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(unix_seconds("2024-02-29T12:34:56.789Z"), Some(1_709_210_096));
        assert_eq!(unix_seconds("2001-09-09T01:46:40Z"), Some(1_000_000_000));
        assert_eq!(unix_seconds("garbage"), None);
    }
}
