//! The HTTP surface: one dispatcher that routes by the parsed target and
//! method, and a layer around it that logs and counts every request.

use std::time::Instant;

use axum::body::{Body, BodyDataStream};
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::StreamExt;
use vger_protocol::{Operation, PackVerification, VerifyLine, VerifyPacksRequest};
use vger_storage::keys::validate_key;

use crate::auth::{authenticate, Caller};
use crate::error::ApiError;
use crate::listing::{self, json_lines, json_response, push_line};
use crate::log::RequestLine;
use crate::metrics::Observation;
use crate::packs;
use crate::quota::Reservation;
use crate::route::{self, RepoAction, Target};
use crate::state::{AppState, Shared};
use crate::upload;
use crate::{fsutil, objects};

/// A refused upload's body is read and thrown away up to this much, so
/// that the client sees the refusal instead of a reset connection.
const DRAIN_LIMIT: u64 = 64 << 20;
/// Largest JSON request body (a repack plan for a large pack).
const JSON_LIMIT: usize = 128 << 20;

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

async fn drain(body: &mut BodyDataStream) {
    let mut seen = 0u64;
    let read = async {
        while let Some(Ok(chunk)) = body.next().await {
            seen += chunk.len() as u64;
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), read).await;
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
            return Ok(text(&state.metrics.render()))
        }
        _ => {}
    }
    let caller = authenticate(state, &parts.headers)?;
    info.token = Some(caller.name.clone());
    let not_allowed = || ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not supported here"));
    match target? {
        Target::Health => Err(not_allowed()),
        Target::Metrics if method == Method::GET => Ok(text(&state.metrics.render())),
        Target::Metrics => Err(not_allowed()),
        Target::ServerStats if method == Method::GET => {
            caller.check(Operation::ServerStats)?;
            let (dir, quota) = (state.data_dir().to_path_buf(), state.settings.quota);
            let stats = upload::blocking(move || listing::server_stats(&dir, quota))
                .await
                .map_err(|e| ApiError::internal(format!("reading statistics: {e}")))?;
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
        (RepoAction::List { prefix }, Method::GET) => Ok(listing::list(repo_dir, prefix)),
        (RepoAction::Stats, Method::GET) => {
            let quota = caller.quota(state.settings.quota);
            let stats = upload::blocking(move || listing::repo_stats(&repo_dir, quota))
                .await
                .map_err(|e| ApiError::internal(format!("reading statistics: {e}")))?;
            json_response(&stats)
        }
        (RepoAction::VerifyPacks, Method::POST) => {
            let bytes = read_body(body, JSON_LIMIT, &mut info.received).await?;
            let request: VerifyPacksRequest = match bytes.is_empty() {
                true => VerifyPacksRequest::default(),
                false => serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::bad_request(format!("verify-packs body is not valid JSON: {e}")))?,
            };
            verify_packs(repo_dir, request)
        }
        (RepoAction::Repack, Method::POST) => {
            caller.check(Operation::Repack)?;
            let bytes = read_body(body, JSON_LIMIT, &mut info.received).await?;
            let request: vger_protocol::RepackRequest = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("repack body is not valid JSON: {e}")))?;
            let (trailer, size) = packs::validate(&request)?;
            let mut reservation =
                Reservation::start(&state.usage, repo, &repo_dir, caller.quota(state.settings.quota)).await?;
            reservation.grow_to(size)?;
            upload::check_free_space(state.data_dir(), size)?;
            let data_dir = state.data_dir().to_path_buf();
            let (response, created) =
                tokio::task::spawn_blocking(move || packs::repack(&data_dir, &repo_dir, &request.blobs, &trailer))
                    .await
                    .map_err(|e| ApiError::internal(format!("repack task failed: {e}")))??;
            if created {
                reservation.commit(&state.usage, response.size, 0);
            }
            let mut reply = json_response(&response)?;
            *reply.status_mut() = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(reply)
        }
        _ => Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not supported here"))),
    }
}

/// Pack keys to verify: the given ones (keys or bare ids), or all.
fn verify_packs(repo_dir: std::path::PathBuf, request: VerifyPacksRequest) -> Result<Response, ApiError> {
    let keys = match request.packs {
        None => None,
        Some(list) => Some(
            list.into_iter()
                .map(|item| {
                    let key = if item.contains('/') { item } else { packs::pack_key(&item) };
                    match validate_key(&key) {
                        Ok(()) if key.starts_with("packs/") => Ok(key),
                        _ => Err(ApiError::invalid_key(format!("`{key}` is not a pack key"))),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(json_lines(move |send| {
        let mut count = 0u64;
        let mut open = true;
        let mut report = |result: PackVerification| {
            count += 1;
            let mut line = Vec::new();
            push_line(&mut line, &VerifyLine::Pack(result));
            open = send(line);
            open
        };
        let walked = match keys {
            Some(keys) => {
                for key in keys {
                    if !report(packs::verify(&repo_dir, &key)) {
                        break;
                    }
                }
                Ok(())
            }
            None => fsutil::walk(&repo_dir, "packs/", &mut |found| report(packs::verify(&repo_dir, &found.key))),
        };
        if !open {
            return;
        }
        let mut line = Vec::new();
        match walked {
            Ok(()) => push_line(&mut line, &VerifyLine::End { end: true, count }),
            Err(e) => push_line(&mut line, &VerifyLine::Error { error: format!("listing packs failed: {e}") }),
        }
        send(line);
    }))
}

async fn read_body(body: &mut BodyDataStream, limit: usize, received: &mut u64) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("request body interrupted: {e}")))?;
        *received += chunk.len() as u64;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body above {limit} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn text(body: &str) -> Response {
    let mut response = Response::new(Body::from(body.to_owned()));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// Logs and counts every request once it has been answered.
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
    state.metrics.record(&Observation {
        repo: info.repo.as_deref().unwrap_or("-"),
        method: method.as_str(),
        status,
        received: info.received,
        sent,
        duration,
    });
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
