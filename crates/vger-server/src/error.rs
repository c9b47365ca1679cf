//! The error every handler returns: a status, an optional machine-readable
//! code for the client ([`vger_protocol::ERROR_HEADER`]) and a one-line
//! message for the user.

use std::io;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use vger_protocol::{ErrorCode, ERROR_HEADER};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Option<ErrorCode>,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, code: None, message: message.into() }
    }

    pub fn coded(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status, code: Some(code), message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn invalid_key(message: impl Into<String>) -> Self {
        Self::coded(StatusCode::BAD_REQUEST, ErrorCode::InvalidKey, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::coded(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    pub fn immutable(key: &str) -> Self {
        Self::coded(
            StatusCode::FORBIDDEN,
            ErrorCode::Immutable,
            format!("`{key}` exists and this token may only add objects (append-only): it cannot replace or delete it"),
        )
    }

    pub fn not_found(key: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("object `{key}` not found"))
    }

    pub fn quota(message: impl Into<String>) -> Self {
        Self::coded(StatusCode::INSUFFICIENT_STORAGE, ErrorCode::QuotaExceeded, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// An OS error while working on `key`: a full disk is 507, a missing
    /// file 404, a file where a directory should be 409, the rest 500.
    pub fn io(op: &str, key: &str, err: &io::Error) -> Self {
        match err.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => Self::coded(
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorCode::NoSpace,
                format!("no space left on the server's disk while storing `{key}`"),
            ),
            Some(libc::ENOENT) => Self::not_found(key),
            Some(libc::ENOTDIR | libc::EISDIR | libc::EEXIST) => Self::new(
                StatusCode::CONFLICT,
                format!("`{key}` conflicts with another object (a key cannot be both an object and a prefix)"),
            ),
            _ => Self::internal(format!("{op} `{key}` failed on the server: {err}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        if let Some(code) = self.code {
            headers.insert(ERROR_HEADER, HeaderValue::from_static(code.as_str()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"vger-server\""));
        }
        response
    }
}
