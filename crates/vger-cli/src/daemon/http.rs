//! The read-only monitoring server: `/` (the status page),
//! `/api/status.json`, `/healthz` and `/metrics`.
//!
//! `tiny_http` on one thread: the daemon is synchronous (a cycle is a
//! blocking call), requests are rare and small, and it needs no async
//! runtime beside the scheduler. Only loopback addresses are accepted
//! unless `--http-allow-public` is given: the page has no authentication.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{anyhow, bail, Context as _, Result};
use tiny_http::{Header, Method, Response, Server};

use super::log::say;
use super::status::StatusBoard;

/// The addresses of `--http-listen`, refusing non-loopback ones unless `allow_public`.
pub fn check_listen(listen: &str, allow_public: bool) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .with_context(|| format!("--http-listen `{listen}` is not an address such as 127.0.0.1:7575"))?
        .collect();
    if addrs.is_empty() {
        bail!("--http-listen `{listen}` resolves to no address");
    }
    if !allow_public {
        if let Some(public) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            bail!(
                "--http-listen {public} is not a loopback address and the status page has no authentication; \
                 use 127.0.0.1:PORT, or add --http-allow-public"
            );
        }
    }
    Ok(addrs)
}

/// Binds `addrs` and serves `board` from a background thread; returns the bound address.
pub fn serve(addrs: &[SocketAddr], board: StatusBoard) -> Result<SocketAddr> {
    let server = Server::http(addrs).map_err(|e| anyhow!("cannot listen on {}: {e}", shown(addrs)))?;
    let bound =
        server.server_addr().to_ip().ok_or_else(|| anyhow!("cannot listen on {}: not an IP address", shown(addrs)))?;
    std::thread::Builder::new()
        .name("vger-http".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                respond(request, &board);
            }
        })
        .context("cannot start the HTTP thread")?;
    Ok(bound)
}

fn shown(addrs: &[SocketAddr]) -> String {
    addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn respond(request: tiny_http::Request, board: &StatusBoard) {
    if !matches!(request.method(), Method::Get | Method::Head) {
        let _ = request.respond(reply(405, "only GET and HEAD are served\n".into(), PLAIN, false));
        return;
    }
    let head = *request.method() == Method::Head;
    let path = request.url().split('?').next().unwrap_or("/").to_string();
    let (status, body, content_type) = match path.as_str() {
        "/" | "/index.html" => (200, super::page::render(&board.snapshot(), chrono::Utc::now()), HTML),
        "/api/status.json" => match serde_json::to_string_pretty(&board.snapshot()) {
            Ok(json) => (200, json, "application/json"),
            Err(e) => (500, format!("{e}\n"), PLAIN),
        },
        "/healthz" => (200, "ok\n".to_string(), PLAIN),
        "/metrics" => (200, super::metrics::render(&board.snapshot()), "text/plain; version=0.0.4; charset=utf-8"),
        _ => (404, "not found\n".to_string(), PLAIN),
    };
    let response = reply(status, if head { String::new() } else { body }, content_type, content_type == HTML);
    if let Err(e) = request.respond(response) {
        say(format!("warning: HTTP response for {path} failed: {e}"));
    }
}

const PLAIN: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
/// The page has no scripts and loads nothing: a strict policy makes sure of it.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; \
                           form-action 'none'; frame-ancestors 'none'";

fn reply(status: u16, body: String, content_type: &str, page: bool) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut response = Response::from_data(body.into_bytes()).with_status_code(status);
    let mut headers =
        vec![("Content-Type", content_type), ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")];
    if page {
        headers.push(("Content-Security-Policy", PAGE_POLICY));
    }
    for (name, value) in headers {
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    response
}
