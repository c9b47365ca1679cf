//! PUT: a body streamed to a temporary file in the object's directory,
//! hashed and counted against the quota on the way, fsynced, then renamed
//! (replace) or hard-linked (create-only) into place and the directory
//! fsynced. An upload that fails or is cut off leaves no object and no
//! temporary file.
//!
//! Create-only applies with `If-None-Match: *`, and always to a token that
//! may not replace the key (append-only): there an existing object is
//! refused with 403, unless it already holds exactly the announced bytes
//! (a retried upload), which is answered 200 without writing anything.

use std::io;
use std::path::{Path, PathBuf};

use axum::body::{Body, BodyDataStream};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter};
use vger_protocol::{ErrorCode, Operation, BLAKE3_HEADER};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::fsutil::{create_dirs, free_space, sync_dir, TempPath};
use crate::quota::{human, Reservation};
use crate::state::Shared;

/// Bytes gathered before each write to the temporary file.
const WRITE_BUFFER: usize = 1 << 20;

/// How a finished temporary file takes its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// `rename`: replaces an existing object atomically.
    Replace,
    /// `link`: fails if the object exists.
    CreateNew,
}

/// What committing did.
#[derive(Debug)]
pub enum Committed {
    Created,
    Replaced {
        old_size: u64,
    },
    /// Create-only, and the name was taken.
    Exists,
}

pub async fn put(
    state: &Shared,
    caller: &Caller,
    repo: &str,
    key: &str,
    headers: &HeaderMap,
    body: &mut BodyDataStream,
    received: &mut u64,
) -> Result<Response, ApiError> {
    caller.check(Operation::Create)?;
    let hash = announced_hash(headers)?;
    let create_only = match headers.get(header::IF_NONE_MATCH).map(|v| v.as_bytes()) {
        None => false,
        Some(b"*") => true,
        Some(_) => return Err(ApiError::bad_request("only `If-None-Match: *` is supported")),
    };
    let content_length = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("bad Content-Length"))?,
        ),
    };
    let repo_dir = state.repo_dir(repo);
    let path = repo_dir.join(key);
    let may_replace = caller.permission.allows(Operation::Replace { key });
    let existing = existing_size(&path).await;
    if existing.is_some() {
        if create_only {
            return Err(exists(key));
        }
        if !may_replace {
            unchanged_or_immutable(&path, key, hash).await?;
            // The same bytes are announced: check that they are what was sent.
            return match hash_body(body, received, key).await? == hash {
                true => Ok(status_only(StatusCode::OK)),
                false => Err(hash_mismatch(key)),
            };
        }
    }
    let mut reservation = Reservation::start(&state.usage, repo, &repo_dir, caller.quota(state.settings.quota))
        .await?
        .replacing(existing.unwrap_or(0));
    if let Some(length) = content_length {
        reservation.grow_to(length)?;
        check_free_space(state.data_dir(), length)?;
    }

    let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| repo_dir.clone());
    let (data_dir, dir_for_create) = (state.data_dir().to_path_buf(), dir.clone());
    blocking(move || create_dirs(&data_dir, &dir_for_create))
        .await
        .map_err(|e| ApiError::io("create directory for", key, &e))?;
    let temp = TempPath::new_in(&dir);
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp.path())
        .await
        .map_err(|e| ApiError::io("create temporary file for", key, &e))?;
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut hasher = blake3::Hasher::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("upload of `{key}` interrupted: {e}")))?;
        *received += chunk.len() as u64;
        reservation.grow_to(*received)?;
        hasher.update(&chunk);
        writer.write_all(&chunk).await.map_err(|e| ApiError::io("write", key, &e))?;
    }
    writer.flush().await.map_err(|e| ApiError::io("write", key, &e))?;
    if hasher.finalize().as_bytes() != &hash {
        return Err(hash_mismatch(key));
    }
    let file = writer.into_inner();
    file.sync_all().await.map_err(|e| ApiError::io("fsync", key, &e))?;
    drop(file);

    let mode = if create_only || !may_replace { Commit::CreateNew } else { Commit::Replace };
    let target = path.clone();
    let outcome = blocking(move || commit(temp, &target, mode)).await.map_err(|e| ApiError::io("store", key, &e))?;
    let stored = *received;
    match outcome {
        Committed::Created => {
            reservation.commit(&state.usage, stored, 0);
            Ok(status_only(StatusCode::CREATED))
        }
        Committed::Replaced { old_size } => {
            reservation.commit(&state.usage, stored, old_size);
            Ok(status_only(StatusCode::OK))
        }
        Committed::Exists if create_only => Err(exists(key)),
        Committed::Exists => unchanged_or_immutable(&path, key, hash).await,
    }
}

fn hash_mismatch(key: &str) -> ApiError {
    ApiError::coded(
        StatusCode::BAD_REQUEST,
        ErrorCode::HashMismatch,
        format!("the body of `{key}` does not match its {BLAKE3_HEADER} header (damaged on the way?)"),
    )
}

/// Reads the whole body only to hash it.
async fn hash_body(body: &mut BodyDataStream, received: &mut u64, key: &str) -> Result<[u8; 32], ApiError> {
    let mut hasher = blake3::Hasher::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("upload of `{key}` interrupted: {e}")))?;
        *received += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok(*hasher.finalize().as_bytes())
}

fn exists(key: &str) -> ApiError {
    ApiError::new(StatusCode::PRECONDITION_FAILED, format!("`{key}` already exists"))
}

pub fn status_only(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// The body's BLAKE3 from [`BLAKE3_HEADER`].
fn announced_hash(headers: &HeaderMap) -> Result<[u8; 32], ApiError> {
    let value = headers
        .get(BLAKE3_HEADER)
        .ok_or_else(|| ApiError::bad_request(format!("missing {BLAKE3_HEADER} header (hex BLAKE3 of the body)")))?;
    let bytes = hex::decode(value.as_bytes()).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
    bytes.ok_or_else(|| ApiError::bad_request(format!("{BLAKE3_HEADER} must be 64 hex digits")))
}

async fn existing_size(path: &Path) -> Option<u64> {
    tokio::fs::metadata(path).await.ok().filter(|m| m.is_file()).map(|m| m.len())
}

/// An append-only token wrote to an existing key: fine if the object
/// already is exactly these bytes (a retry), refused otherwise.
async fn unchanged_or_immutable(path: &Path, key: &str, hash: [u8; 32]) -> Result<Response, ApiError> {
    let path = path.to_path_buf();
    match blocking(move || hash_file(&path)).await {
        Ok(existing) if existing == hash => Ok(status_only(StatusCode::OK)),
        _ => Err(ApiError::immutable(key)),
    }
}

pub fn hash_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(*hasher.finalize().as_bytes())
}

pub fn check_free_space(dir: &Path, length: u64) -> Result<(), ApiError> {
    match free_space(dir) {
        Some(free) if free < length => Err(ApiError::coded(
            StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::NoSpace,
            format!("the server's disk has {} free, the upload is {}", human(free), human(length)),
        )),
        _ => Ok(()),
    }
}

/// Gives `temp` its final name `dest` and fsyncs the directory.
pub fn commit(temp: TempPath, dest: &Path, mode: Commit) -> io::Result<Committed> {
    let dir: PathBuf = dest.parent().map(Path::to_path_buf).unwrap_or_default();
    let outcome = match mode {
        Commit::Replace => {
            let old_size = std::fs::symlink_metadata(dest).ok().filter(|m| m.is_file()).map(|m| m.len());
            std::fs::rename(temp.path(), dest)?;
            temp.keep();
            match old_size {
                Some(old_size) => Committed::Replaced { old_size },
                None => Committed::Created,
            }
        }
        Commit::CreateNew => match std::fs::hard_link(temp.path(), dest) {
            Ok(()) => Committed::Created,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Committed::Exists),
            Err(e) => return Err(e),
        },
    };
    sync_dir(&dir)?;
    Ok(outcome)
}

/// Runs blocking file-system work off the async threads.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(io::Error::other)?
}
