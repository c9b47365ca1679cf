//! PUT: a body streamed to a temporary file in the object's directory
//! (which records the writing token, [`crate::writer`]), hashed and
//! counted against the quota on the way, fsynced, then renamed (replace)
//! or hard-linked (create-only) into place and the directory fsynced
//! (`vger_storage::local::durable`). An upload that fails or is cut off
//! leaves no object and no temporary file.
//!
//! Create-only applies with `If-None-Match: *`, and always to a token that
//! may not replace the key (append-only): there an existing object is
//! refused with 403, unless it already holds exactly the announced bytes
//! (a retried upload), which is answered 200 without writing anything.

use std::io;
use std::path::Path;

use axum::body::{Body, BodyDataStream};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use tokio::io::{AsyncWriteExt, BufWriter};
use vger_protocol::{ErrorCode, Operation, Permission, BLAKE3_HEADER};
use vger_storage::local::durable::TempFile;

use crate::auth::Caller;
use crate::body::BodyReader;
use crate::error::ApiError;
use crate::quota::{human, Reservation};
use crate::state::Shared;
use crate::writer;

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
    caller.check(Operation::Create { key })?;
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
    let mut body = BodyReader::new(body);
    let request = PutRequest { key, hash, create_only, content_length };
    let result = store(state, caller, repo, &request, &mut body).await;
    *received = body.received();
    result
}

/// What a PUT asks for, from its target and headers.
struct PutRequest<'a> {
    key: &'a str,
    /// The body's BLAKE3, as announced.
    hash: [u8; 32],
    /// `If-None-Match: *`.
    create_only: bool,
    content_length: Option<u64>,
}

async fn store(
    state: &Shared,
    caller: &Caller,
    repo: &str,
    request: &PutRequest<'_>,
    body: &mut BodyReader<'_>,
) -> Result<Response, ApiError> {
    let PutRequest { key, hash, create_only, content_length } = *request;
    let repo_dir = state.repo_dir(repo);
    let path = repo_dir.join(key);
    let existing = existing_size(&path).await;
    let mut mode = match create_only || caller.permission < Permission::Full {
        true => Commit::CreateNew,
        false => Commit::Replace,
    };
    if let Some(old_size) = existing {
        if create_only {
            return Err(exists(key));
        }
        let (check_caller, check_key, check_path) = (caller.clone(), key.to_owned(), path.clone());
        let may_change = blocking_api(move || check_caller.check_change(&check_key, &check_path, false)).await;
        match may_change {
            Ok(()) => mode = Commit::Replace,
            // The permission allows replacing this key, the lock's owner does not.
            Err(e) if caller.permission.allows(Operation::Replace { key }) => return Err(e),
            Err(_) => {
                if content_length.is_some_and(|length| length != old_size) {
                    return Err(ApiError::immutable(key));
                }
                unchanged_or_immutable(state, repo, &path, key, hash).await?;
                // The same bytes are announced: check that they are what was sent.
                return match hash_body(body).await? == hash {
                    true => Ok(status_only(StatusCode::OK)),
                    false => Err(hash_mismatch(key)),
                };
            }
        }
    }
    let mut reservation = Reservation::start(&state.usage, repo, &repo_dir, caller.quota(state.settings.quota))
        .await?
        .replacing(existing);
    if let Some(length) = content_length {
        reservation.grow_to(length)?;
        check_free_space(state.data_dir(), length)?;
    }

    // From the data directory: the repository's own folder may not exist yet.
    let (data_dir, temp_key, name) = (state.data_dir().to_path_buf(), format!("{repo}/{key}"), caller.name.clone());
    let (temp, file) = blocking(move || {
        let (temp, file) = TempFile::create_for(&data_dir, &temp_key)?;
        writer::record(&file, &name)?;
        Ok((temp, file))
    })
    .await
    .map_err(|e| ApiError::io("create temporary file for", key, &e))?;
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file));
    let mut hasher = blake3::Hasher::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        reservation.grow_to(body.received())?;
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

    let target = path.clone();
    let outcome = blocking(move || commit(temp, &target, mode)).await.map_err(|e| ApiError::io("store", key, &e))?;
    let stored = body.received();
    match outcome {
        Committed::Created => {
            reservation.commit(&state.usage, stored, None);
            state.note_repo_exists(repo);
            Ok(status_only(StatusCode::CREATED))
        }
        Committed::Replaced { old_size } => {
            reservation.commit(&state.usage, stored, Some(old_size));
            Ok(status_only(StatusCode::OK))
        }
        Committed::Exists if create_only => Err(exists(key)),
        Committed::Exists => unchanged_or_immutable(state, repo, &path, key, hash).await,
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
async fn hash_body(body: &mut BodyReader<'_>) -> Result<[u8; 32], ApiError> {
    let mut hasher = blake3::Hasher::new();
    while let Some(chunk) = body.next().await {
        hasher.update(&chunk?);
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
/// already is exactly these bytes (a retry), refused otherwise. Hashing a
/// large object is work like any other: under the repository's permits.
async fn unchanged_or_immutable(
    state: &Shared,
    repo: &str,
    path: &Path,
    key: &str,
    hash: [u8; 32],
) -> Result<Response, ApiError> {
    let path = path.to_path_buf();
    let existing = state.work.run(repo, move |cancel| Ok(hash_file(&path, cancel).ok())).await?;
    match existing {
        Some(existing) if existing == hash => Ok(status_only(StatusCode::OK)),
        _ => Err(ApiError::immutable(key)),
    }
}

/// BLAKE3 of a file; stops early (an error) when `cancel` says so.
pub fn hash_file(path: &Path, cancel: &crate::work::Cancel) -> io::Result<[u8; 32]> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        if cancel.cancelled() {
            return Err(io::Error::other("cancelled"));
        }
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(*hasher.finalize().as_bytes());
        }
        hasher.update(buffer.get(..n).unwrap_or_default());
    }
}

/// 507 if the disk cannot take `length` more bytes. The answer does not
/// say how much space is left: that is the server's business, not a
/// tenant's.
pub fn check_free_space(dir: &Path, length: u64) -> Result<(), ApiError> {
    match crate::disk::free_space(dir) {
        Some(free) if free < length => Err(ApiError::coded(
            StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::NoSpace,
            format!("the server has no room for an upload of {}; ask its operator", human(length)),
        )),
        _ => Ok(()),
    }
}

/// Gives `temp` its final name `dest` and fsyncs the directory.
pub fn commit(temp: TempFile, dest: &Path, mode: Commit) -> io::Result<Committed> {
    match mode {
        Commit::Replace => {
            let old_size = std::fs::symlink_metadata(dest).ok().filter(|m| m.is_file()).map(|m| m.len());
            temp.rename_into_place(dest)?;
            Ok(match old_size {
                Some(old_size) => Committed::Replaced { old_size },
                None => Committed::Created,
            })
        }
        Commit::CreateNew => match temp.link_into_place(dest)? {
            true => Ok(Committed::Created),
            false => Ok(Committed::Exists),
        },
    }
}

/// Runs blocking file-system work off the async threads.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(io::Error::other)?
}

/// [`blocking`] for work that answers with an [`ApiError`].
pub async fn blocking_api<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::internal(format!("a server task failed: {e}")))?
}
