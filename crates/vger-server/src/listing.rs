//! Listings and statistics. A listing is streamed as JSON lines from a
//! blocking walker through a bounded channel, a batch of lines at a time,
//! so a million keys never sit in memory at once; the last line says how
//! many objects there were, so a cut-off listing is recognisable. The
//! walker stops as soon as the client is gone (the channel closes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;
use tokio::sync::mpsc;
use vger_format::id::PACKS_PREFIX;
use vger_protocol::{is_valid_repo_name, ListEntry, ListLine, RepoStats};
use vger_storage::local::walk::{self, Found};

use crate::error::ApiError;
use crate::quota::charge;
use crate::work::{Cancel, Permits};
use crate::writer;

/// Objects per chunk of the streamed reply.
const LINES_PER_CHUNK: usize = 512;

pub fn list(permits: Permits, repo_dir: PathBuf, prefix: String) -> Response {
    json_lines(permits, move |out| {
        let mut batch = Vec::with_capacity(64 << 10);
        let mut count = 0u64;
        let mut in_batch = 0;
        let mut open = true;
        let result = walk::for_each_object(&repo_dir, &prefix, &mut |found: Found| {
            if out.closed() {
                open = false;
                return false;
            }
            count += 1;
            in_batch += 1;
            // A getxattr costs about as much as the stat: skipped for packs,
            // the bulk of a repository (100k+), named by their content.
            let writer = match found.key.starts_with(PACKS_PREFIX) {
                true => None,
                false => writer::read(&found.path),
            };
            let entry = ListEntry { key: found.key, size: found.size, modified: found.modified.unwrap_or(0), writer };
            push_line(&mut batch, &ListLine::Object(entry));
            if in_batch >= LINES_PER_CHUNK {
                in_batch = 0;
                open = out.send(std::mem::take(&mut batch));
            }
            open
        });
        if !open {
            return;
        }
        match result {
            Ok(()) => push_line(&mut batch, &ListLine::End { end: true, count }),
            Err(e) => push_line(&mut batch, &ListLine::Error { error: format!("listing failed on the server: {e}") }),
        }
        out.send(batch);
    })
}

/// Where a streamed reply's producer sends its chunks.
pub struct LineSink {
    tx: mpsc::Sender<Bytes>,
    cancel: Cancel,
}

impl LineSink {
    /// Sends a chunk (waiting while the client reads); `false` once the
    /// client has gone, and the producer should stop.
    pub fn send(&self, chunk: Vec<u8>) -> bool {
        !self.closed() && self.tx.blocking_send(Bytes::from(chunk)).is_ok()
    }

    /// The client has gone (or the connection was closed on it).
    pub fn closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// For work that checks a [`Cancel`] (pack hashing).
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }
}

/// A `200` reply whose body `produce` writes from a blocking thread (holding
/// `permits` until it ends) by sending chunks of JSON lines.
pub fn json_lines(permits: Permits, produce: impl FnOnce(&LineSink) + Send + 'static) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let (cancel_on_drop, cancel) = crate::work::CancelOnDrop::new();
    tokio::task::spawn_blocking(move || {
        let _permits = permits;
        produce(&LineSink { tx, cancel });
    });
    // The stream owns the cancel guard: dropping the reply body (the client
    // went away) cancels work in progress as well as closing the channel.
    let stream = futures_util::stream::unfold((rx, cancel_on_drop), |(mut rx, guard)| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::io::Error>(chunk), (rx, guard)))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    response
}

pub fn push_line(out: &mut Vec<u8>, value: &impl Serialize) {
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.push(b'\n');
    }
}

/// Size (as charged against a quota), counts and the newest snapshot of
/// one repository.
pub fn repo_stats(repo_dir: &Path, quota: Option<u64>, cancel: &Cancel) -> Result<RepoStats, ApiError> {
    let mut stats = RepoStats { quota, ..RepoStats::default() };
    walk::for_each_object(repo_dir, "", &mut |found| {
        stats.size = stats.size.saturating_add(charge(found.size));
        stats.objects += 1;
        if found.key.starts_with("packs/") {
            stats.packs += 1;
        }
        if found.key.starts_with("snapshots/") {
            let modified = found.modified.unwrap_or(0);
            stats.last_backup_at = Some(stats.last_backup_at.unwrap_or(0).max(modified));
        }
        !cancel.cancelled()
    })
    .map_err(|e| ApiError::internal(format!("reading statistics: {e}")))?;
    Ok(stats)
}

/// Every repository's statistics (admin).
pub fn server_stats(
    data_dir: &Path,
    quota: Option<u64>,
    cancel: &Cancel,
) -> Result<BTreeMap<String, RepoStats>, ApiError> {
    let failed = |e: std::io::Error| ApiError::internal(format!("reading statistics: {e}"));
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(data_dir).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if entry.file_type().map_err(failed)?.is_dir() && is_valid_repo_name(&name) {
            all.insert(name, repo_stats(&entry.path(), quota, cancel)?);
        }
    }
    Ok(all)
}

pub fn json_response(value: &impl Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(format!("encoding a reply: {e}")))?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
