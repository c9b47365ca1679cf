//! The web UI: one HTML page (the same for every folder URL: a browser
//! gets it where a WebDAV client gets XML) and its script, style sheet and
//! icon, built into the binary. The page loads nothing from elsewhere and
//! runs no inline script; its session token rides in a meta tag.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::server::{text, AppState};

const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
const ICON_SVG: &str = include_str!("../assets/icon.svg");

/// Only our own script and style run; nothing is framed or posted away.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
                           media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn shell(st: &AppState) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <meta name=\"vger-session\" content=\"{csrf}\"><meta name=\"vger-title\" content=\"{title}\">\
         <meta name=\"vger-restore\" content=\"{restore}\">\
         <title>{title} · vger</title>\
         <link rel=\"icon\" href=\"/?asset=icon.svg\"><link rel=\"stylesheet\" href=\"/?asset=app.css\"></head>\
         <body><div id=\"app\" aria-live=\"polite\"><noscript>This page needs JavaScript; WebDAV clients \
         (file managers, rclone) work without it.</noscript></div><script src=\"/?asset=app.js\"></script></body></html>\n",
        csrf = escape_attr(&st.csrf),
        title = escape_attr(&st.title),
        restore = st.restore_allowed,
    );
    let mut r = (StatusCode::OK, Body::from(html)).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(PAGE_POLICY));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    h.insert("Referrer-Policy", header::HeaderValue::from_static("no-referrer"));
    r
}

pub fn asset(name: &str) -> Response {
    let (body, content_type) = match name {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "icon.svg" => (ICON_SVG, "image/svg+xml"),
        _ => return text(StatusCode::NOT_FOUND, format!("no asset `{name}`")),
    };
    let mut r = (StatusCode::OK, Body::from(body)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    r.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    r
}
