//! The HTTP surface: one dispatcher that routes by the parsed target and
//! method, and a layer around it that logs every request and counts the
//! authenticated ones ([`crate::metrics`]).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::body::{Body, BodyDataStream};
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use vger_protocol::{
    Operation, PackVerification, RepackRequest, VerifyLine, VerifyPacksRequest, MAX_REPACK_BLOBS, MAX_REPACK_TRAILER,
    MAX_VERIFY_PACKS,
};
use vger_storage::keys::validate_key;
use vger_storage::local::walk;

use crate::auth::{authenticate, Caller};
use crate::body::BodyReader;
use crate::error::ApiError;
use crate::listing::{self, json_lines, json_response, push_line};
use crate::log::RequestLine;
use crate::metrics::{MethodLabel, Observation, NO_REPO};
use crate::objects;
use crate::packs;
use crate::quota::Reservation;
use crate::route::{self, RepoAction, Target};
use crate::state::{AppState, Shared};
use crate::upload;
use crate::work::Permits;

/// A refused upload's body is read and thrown away up to this much, so
/// that the client sees the refusal instead of a reset connection.
const DRAIN_LIMIT: u64 = 64 << 20;
/// Largest `verify-packs` body: [`MAX_VERIFY_PACKS`] keys of 73 bytes
/// with quotes and commas.
const VERIFY_BODY_LIMIT: usize = MAX_VERIFY_PACKS * 80 + 1024;
/// Largest repack plan: [`MAX_REPACK_BLOBS`] ranges of at most 128 bytes
/// of JSON each and the largest trailer in base64.
const REPACK_BODY_LIMIT: usize = MAX_REPACK_BLOBS * 128 + MAX_REPACK_TRAILER.div_ceil(3) * 4 + 4096;
/// Longest a JSON body may take to arrive (19 MiB at 64 KiB/s).
const JSON_BODY_TIME: Duration = Duration::from_secs(300);
/// Work-permit name for server-wide jobs (no repository name starts with `/`).
const SERVER_WIDE: &str = "/";

pub fn router(state: AppState) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// What the dispatcher tells the log and metrics layer.
#[derive(Debug, Clone, Default)]
struct RequestInfo {
    repo: Option<String>,
    token: Option<String>,
    authenticated: bool,
    received: u64,
    error: Option<String>,
}

async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut body = body.into_data_stream();
    let mut info = RequestInfo::default();
    let mut response = match handle(&state, &parts, &mut body, &mut info).await {
        Ok(response) => response,
        Err(err) => {
            info.error = Some(err.message.clone());
            // Reading the rest of a refused body lets a client that sends
            // it all before reading the reply see the error; a body
            // announced larger than the drain limit is not worth waiting for.
            let announced = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
            if (parts.method == Method::PUT || parts.method == Method::POST)
                && err.status != StatusCode::REQUEST_TIMEOUT
                && announced.is_none_or(|length: u64| length <= DRAIN_LIMIT)
            {
                drain(&mut body).await;
            }
            err.into_response()
        }
    };
    response.extensions_mut().insert(info);
    response
}

/// Reads and drops up to [`DRAIN_LIMIT`] bytes, no slower than any body.
async fn drain(body: &mut BodyDataStream) {
    let mut reader = BodyReader::new(body);
    while let Some(Ok(_)) = reader.next().await {
        if reader.received() > DRAIN_LIMIT {
            break;
        }
    }
}

async fn handle(
    state: &Shared,
    parts: &Parts,
    body: &mut BodyDataStream,
    info: &mut RequestInfo,
) -> Result<Response, ApiError> {
    let target = route::parse(&parts.uri);
    let method = &parts.method;
    match target {
        Ok(Target::Health) if method == Method::GET || method == Method::HEAD => return Ok(text("ok\n")),
        Ok(Target::Metrics) if state.settings.metrics_public && method == Method::GET => {
            return Ok(text(&state.metrics.render(true, &|_| true)))
        }
        _ => {}
    }
    let caller = authenticate(state, &parts.headers)?;
    info.authenticated = true;
    info.token = Some(caller.name.clone());
    let not_allowed = || ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not supported here"));
    match target? {
        Target::Health => Err(not_allowed()),
        Target::Metrics if method == Method::GET => {
            Ok(text(&state.metrics.render(caller.covers_all(), &|repo| caller.covers(repo))))
        }
        Target::Metrics => Err(not_allowed()),
        Target::ServerStats if method == Method::GET => {
            caller.check(Operation::ServerStats)?;
            let (dir, quota) = (state.data_dir().to_path_buf(), state.settings.quota);
            let stats = state.work.run(SERVER_WIDE, move |cancel| listing::server_stats(&dir, quota, cancel)).await?;
            json_response(&stats)
        }
        Target::ServerStats => Err(not_allowed()),
        Target::Repo { repo, action } => {
            caller.check_repo(&repo)?;
            info.repo = Some(repo.clone());
            repo_request(state, &caller, &repo, action, parts, body, info).await
        }
    }
}

async fn repo_request(
    state: &Shared,
    caller: &Caller,
    repo: &str,
    action: RepoAction,
    parts: &Parts,
    body: &mut BodyDataStream,
    info: &mut RequestInfo,
) -> Result<Response, ApiError> {
    let method = &parts.method;
    let repo_dir = state.repo_dir(repo);
    match (action, method.clone()) {
        (RepoAction::Object(key), Method::GET) => objects::get(state, repo, &key, &parts.headers, false).await,
        (RepoAction::Object(key), Method::HEAD) => objects::get(state, repo, &key, &parts.headers, true).await,
        (RepoAction::Object(key), Method::PUT) => {
            upload::put(state, caller, repo, &key, &parts.headers, body, &mut info.received).await
        }
        (RepoAction::Object(key), Method::DELETE) => objects::delete(state, caller, repo, &key).await,
        (RepoAction::List { prefix }, Method::GET) => {
            let permits = state.work.permits(repo).await?;
            Ok(listing::list(permits, repo_dir, prefix))
        }
        (RepoAction::Stats, Method::GET) => {
            let quota = caller.quota(state.settings.quota);
            let stats = state.work.run(repo, move |cancel| listing::repo_stats(&repo_dir, quota, cancel)).await?;
            json_response(&stats)
        }
        (RepoAction::VerifyPacks, Method::POST) => {
            let bytes = read_json_body(state, parts, body, VERIFY_BODY_LIMIT, info).await?;
            let request: VerifyPacksRequest = match bytes.is_empty() {
                true => VerifyPacksRequest::default(),
                false => serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::bad_request(format!("verify-packs body is not valid JSON: {e}")))?,
            };
            drop(bytes);
            let keys = pack_keys(request)?;
            let permits = state.work.permits(repo).await?;
            Ok(verify_packs(permits, repo_dir, keys))
        }
        (RepoAction::Repack, Method::POST) => {
            caller.check(Operation::Repack)?;
            let bytes = read_json_body(state, parts, body, REPACK_BODY_LIMIT, info).await?;
            let request: RepackRequest = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("repack body is not valid JSON: {e}")))?;
            drop(bytes);
            let (trailer, size) = packs::validate(&request)?;
            let mut reservation =
                Reservation::start(&state.usage, repo, &repo_dir, caller.quota(state.settings.quota)).await?;
            reservation.grow_to(size)?;
            upload::check_free_space(state.data_dir(), size)?;
            let (data_dir, repo_name, writer) = (state.data_dir().to_path_buf(), repo.to_owned(), caller.name.clone());
            let (response, created) = state
                .work
                .run(repo, move |cancel| {
                    packs::repack(&data_dir, &repo_name, &request.blobs, &trailer, &writer, cancel)
                })
                .await?;
            if created {
                reservation.commit(&state.usage, response.size, None);
                state.note_repo_exists(repo);
            }
            let mut reply = json_response(&response)?;
            *reply.status_mut() = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(reply)
        }
        _ => Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not supported here"))),
    }
}

/// A JSON body of at most `limit` bytes (413 above), read within
/// [`JSON_BODY_TIME`] and only once the server's memory budget for JSON
/// bodies has room for it.
async fn read_json_body(
    state: &Shared,
    parts: &Parts,
    body: &mut BodyDataStream,
    limit: usize,
    info: &mut RequestInfo,
) -> Result<Vec<u8>, ApiError> {
    let announced = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let announced = announced
        .ok_or_else(|| ApiError::new(StatusCode::LENGTH_REQUIRED, "a JSON request needs a Content-Length header"))?;
    let length = usize::try_from(announced).ok().filter(|length| *length <= limit).ok_or_else(|| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is {announced} bytes; no valid request of this kind is larger than {limit}"),
        )
    })?;
    let _memory = state.work.json_memory(length).await?;
    let mut reader = BodyReader::new(body);
    let read = tokio::time::timeout(JSON_BODY_TIME, reader.read_to_end(length)).await;
    info.received = reader.received();
    read.map_err(|_| {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, format!("the request body took longer than {JSON_BODY_TIME:?}"))
    })?
}

/// The pack keys to verify (keys or bare ids; each once), or `None` for all.
fn pack_keys(request: VerifyPacksRequest) -> Result<Option<Vec<String>>, ApiError> {
    let Some(list) = request.packs else { return Ok(None) };
    if list.len() > MAX_VERIFY_PACKS {
        return Err(ApiError::bad_request(format!(
            "a verify-packs request may name at most {MAX_VERIFY_PACKS} packs; this one names {}: send several",
            list.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut keys = Vec::with_capacity(list.len());
    for item in list {
        let key = if item.contains('/') { item } else { packs::pack_key(&item) };
        if validate_key(&key).is_err() || crate::layout::classify(&key) != Some(crate::layout::KeyKind::Pack) {
            return Err(ApiError::invalid_key(format!("`{key}` is not a pack key")));
        }
        if seen.insert(key.clone()) {
            keys.push(key);
        }
    }
    Ok(Some(keys))
}

/// Streams one verdict per pack, then an end line.
fn verify_packs(permits: Permits, repo_dir: std::path::PathBuf, keys: Option<Vec<String>>) -> Response {
    json_lines(permits, move |out| {
        let mut count = 0u64;
        let mut open = true;
        let mut report = |result: PackVerification| {
            count += 1;
            let mut line = Vec::new();
            push_line(&mut line, &VerifyLine::Pack(result));
            open = out.send(line);
            open
        };
        let walked = match keys {
            Some(keys) => {
                for key in keys {
                    if !report(packs::verify(&repo_dir, &key, out.cancel())) {
                        break;
                    }
                }
                Ok(())
            }
            None => walk::for_each_object(&repo_dir, "packs/", &mut |found| {
                report(packs::verify(&repo_dir, &found.key, out.cancel()))
            }),
        };
        if !open {
            return;
        }
        let mut line = Vec::new();
        match walked {
            Ok(()) => push_line(&mut line, &VerifyLine::End { end: true, count }),
            Err(e) => push_line(&mut line, &VerifyLine::Error { error: format!("listing packs failed: {e}") }),
        }
        out.send(line);
    })
}

fn text(body: &str) -> Response {
    let mut response = Response::new(Body::from(body.to_owned()));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// Logs every request once it has been answered, and counts it: per
/// repository when authenticated, as one number when not.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let path: String = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("").chars().take(400).collect();
    let response = next.run(request).await;
    let duration = start.elapsed();
    let info = response.extensions().get::<RequestInfo>().cloned().unwrap_or_default();
    let sent = match method {
        Method::HEAD => 0,
        _ => response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    };
    let status = response.status().as_u16();
    if info.authenticated {
        let repo = info.repo.as_deref().filter(|repo| state.repo_exists(repo)).unwrap_or(NO_REPO);
        state.metrics.record(&Observation {
            repo,
            method: MethodLabel::of(&method),
            status,
            received: info.received,
            sent,
            duration,
        });
    } else if status == StatusCode::UNAUTHORIZED.as_u16() {
        state.metrics.record_unauthenticated();
    }
    state.log.request(&RequestLine {
        method: method.as_str(),
        path: &path,
        status,
        received: info.received,
        sent,
        duration_ms: duration.as_secs_f64() * 1000.0,
        repo: info.repo.as_deref(),
        token: info.token.as_deref(),
        error: info.error.as_deref(),
    });
    response
}
