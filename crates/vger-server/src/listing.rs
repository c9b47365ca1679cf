//! Listings and statistics. A listing is streamed as JSON lines from a
//! blocking walker through a bounded channel, a batch of lines at a time,
//! so a million keys never sit in memory at once; the last line says how
//! many objects there were, so a cut-off listing is recognisable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;
use tokio::sync::mpsc;
use vger_protocol::{is_valid_repo_name, ListEntry, ListLine, RepoStats};

use crate::error::ApiError;
use crate::fsutil::{walk, Found};

/// Objects per chunk of the streamed reply.
const LINES_PER_CHUNK: usize = 512;

pub fn list(repo_dir: PathBuf, prefix: String) -> Response {
    json_lines(move |send| {
        let mut batch = Vec::with_capacity(64 << 10);
        let mut count = 0u64;
        let mut in_batch = 0;
        let mut open = true;
        let result = walk(&repo_dir, &prefix, &mut |found: Found| {
            count += 1;
            in_batch += 1;
            let line = ListLine::Object(ListEntry { key: found.key, size: found.size, modified: found.modified });
            push_line(&mut batch, &line);
            if in_batch >= LINES_PER_CHUNK {
                in_batch = 0;
                open = send(std::mem::take(&mut batch));
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
        send(batch);
    })
}

/// A `200` reply whose body `produce` writes from a blocking thread by
/// calling `send` with chunks of JSON lines; `send` returns `false` once
/// the client has gone.
pub fn json_lines(produce: impl FnOnce(&mut dyn FnMut(Vec<u8>) -> bool) + Send + 'static) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    tokio::task::spawn_blocking(move || {
        let mut send = |chunk: Vec<u8>| tx.blocking_send(Bytes::from(chunk)).is_ok();
        produce(&mut send);
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
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

/// Size, counts and the newest snapshot of one repository.
pub fn repo_stats(repo_dir: &Path, quota: Option<u64>) -> std::io::Result<RepoStats> {
    let mut stats = RepoStats { quota, ..RepoStats::default() };
    walk(repo_dir, "", &mut |found| {
        stats.size = stats.size.saturating_add(found.size);
        stats.objects += 1;
        if found.key.starts_with("packs/") {
            stats.packs += 1;
        }
        if found.key.starts_with("snapshots/") {
            stats.last_backup_at = Some(stats.last_backup_at.unwrap_or(0).max(found.modified));
        }
        true
    })?;
    Ok(stats)
}

/// Every repository's statistics (admin).
pub fn server_stats(data_dir: &Path, quota: Option<u64>) -> std::io::Result<BTreeMap<String, RepoStats>> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if entry.file_type()?.is_dir() && is_valid_repo_name(&name) {
            all.insert(name, repo_stats(&entry.path(), quota)?);
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
