//! What every request passes before anything is read: the Host header
//! names this server (a page of another site whose name was pointed at
//! this address, DNS rebinding, is refused), and the token when one is
//! set (HTTP Basic password or Bearer). State-changing requests also carry
//! the session token the UI page holds ([`csrf_ok`]).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::server::{text, AppState};

/// The header the UI sends its session token in.
pub const CSRF_HEADER: &str = "x-vger-session";

pub fn check(st: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !host_ok(st, host) {
        return Err(Box::new(text(
            StatusCode::FORBIDDEN,
            format!(
                "Host `{host}` is not this server's address; use http://{}/ or localhost \
                 (other names are refused against DNS rebinding; vger mount --allow-host NAME adds one)",
                st.bound
            ),
        )));
    }
    if let Some(token) = &st.token {
        if !token_ok(token, headers) {
            let mut r = text(StatusCode::UNAUTHORIZED, "this server needs its token (HTTP Basic password or Bearer)");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"vger mount\", charset=\"UTF-8\""),
            );
            return Err(Box::new(r.into_response()));
        }
    }
    Ok(())
}

/// `host[:port]` names this server: `localhost`, the bound IP (any IP
/// when bound to all addresses: an IP literal cannot be rebound), or an
/// allowed name; and the port, when given, is the bound one.
fn host_ok(st: &AppState, host: &str) -> bool {
    let (name, port) = split_host(host);
    let port_ok = match port {
        Some(p) => p.parse::<u16>().ok() == Some(st.bound.port()),
        None => st.bound.port() == 80,
    };
    if !port_ok || name.is_empty() {
        return false;
    }
    let name = name.to_ascii_lowercase();
    if name == "localhost" || st.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(&name)) {
        return true;
    }
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<std::net::IpAddr>() {
        Ok(ip) => st.bound.ip().is_unspecified() || ip == st.bound.ip(),
        Err(_) => false,
    }
}

/// Splits `name:port`, `[v6]:port`, `name` and `[v6]`.
fn split_host(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        return match host.find("]:") {
            Some(i) => (&host[..=i], Some(&host[i + 2..])),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    }
}

fn token_ok(token: &str, headers: &HeaderMap) -> bool {
    let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()) else { return false };
    let given = if let Some(b) = auth.strip_prefix("Bearer ") {
        b.trim().as_bytes().to_vec()
    } else if let Some(b) = auth.strip_prefix("Basic ") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b.trim()) else { return false };
        // Any user name: the password is the token.
        match decoded.iter().position(|c| *c == b':') {
            Some(i) => decoded[i + 1..].to_vec(),
            None => return false,
        }
    } else {
        return false;
    };
    given.ct_eq(token.as_bytes()).into()
}

/// A state-changing request comes from our own page: it carries the
/// session token (another site cannot read it, and cannot set the header
/// without a CORS preflight we never grant), and its Origin, when sent,
/// is this server.
pub fn csrf_ok(st: &AppState, headers: &HeaderMap) -> bool {
    let token = headers.get(CSRF_HEADER).map(|h| h.as_bytes()).unwrap_or(b"");
    if !bool::from(token.ct_eq(st.csrf.as_bytes())) {
        return false;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        Some(origin) => origin == format!("http://{host}"),
        None => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.
mod tests {
    use super::split_host;

    #[test]
    fn host_headers_split_into_name_and_port() {
        assert_eq!(split_host("127.0.0.1:7576"), ("127.0.0.1", Some("7576")));
        assert_eq!(split_host("[::1]:7576"), ("[::1]", Some("7576")));
        assert_eq!(split_host("[::1]"), ("[::1]", None));
        assert_eq!(split_host("localhost"), ("localhost", None));
    }
}
