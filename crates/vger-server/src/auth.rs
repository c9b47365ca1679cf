//! Who is asking: the bearer token, its permission (capped by
//! `--append-only`), whether it may use the repository, and whether it
//! may change an existing object (an `append` token only its own locks).

use std::path::Path;

use axum::http::{header, HeaderMap};
use vger_protocol::{Operation, Permission};

use crate::error::ApiError;
use crate::layout::{classify, KeyKind};
use crate::state::Shared;
use crate::writer;

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub permission: Permission,
    repos: Vec<String>,
    token_quota: Option<u64>,
}

impl Caller {
    /// Whether the token covers `repo`.
    pub fn covers(&self, repo: &str) -> bool {
        self.repos.is_empty() || self.repos.iter().any(|r| r == repo)
    }

    /// Whether the token covers every repository.
    pub fn covers_all(&self) -> bool {
        self.repos.is_empty()
    }

    /// `Err(403)` unless the token covers `repo`.
    pub fn check_repo(&self, repo: &str) -> Result<(), ApiError> {
        match self.covers(repo) {
            true => Ok(()),
            false => Err(ApiError::forbidden(format!("this token may not use repository `{repo}`"))),
        }
    }

    /// `Err(403)` unless the token may replace (or delete) the existing
    /// object `key` stored at `path`: its permission allows it, and an
    /// `append` token wrote the lock itself. Reads the writer record, so
    /// call it off the async threads.
    pub fn check_change(&self, key: &str, path: &Path, delete: bool) -> Result<(), ApiError> {
        let op = if delete { Operation::Delete { key } } else { Operation::Replace { key } };
        self.check(op)?;
        if self.permission >= Permission::Full || classify(key) != Some(KeyKind::Lock) {
            return Ok(());
        }
        match writer::read(path) {
            Some(owner) if owner == self.name => Ok(()),
            owner => Err(ApiError::forbidden(format!(
                "lock `{key}` was written by {}; an append token may replace or remove only the locks it wrote \
                 (a full token may remove any)",
                owner.map_or("an unknown token".to_owned(), |o| format!("token `{o}`"))
            ))),
        }
    }

    /// `Err(403)` unless the permission allows `op`.
    pub fn check(&self, op: Operation<'_>) -> Result<(), ApiError> {
        if self.permission.allows(op) {
            return Ok(());
        }
        Err(match op {
            Operation::Replace { key } | Operation::Delete { key } if self.permission == Permission::Append => {
                ApiError::immutable(key)
            }
            _ => ApiError::forbidden(format!("a token with `{}` permission may not do this", self.permission.as_str())),
        })
    }

    /// The cap on a repository's size for this caller: the smaller of
    /// `--quota` and the token's own quota.
    pub fn quota(&self, server_quota: Option<u64>) -> Option<u64> {
        match (server_quota, self.token_quota) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

pub fn authenticate(state: &Shared, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing access token: send `Authorization: Bearer <token>`"))?;
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| ApiError::unauthorized("malformed Authorization header: expected `Bearer <token>`"))?;
    let tokens = state.tokens();
    let token = tokens.find(presented).ok_or_else(|| ApiError::unauthorized("the access token is wrong"))?;
    let permission =
        if state.settings.append_only { token.permission.min(Permission::Append) } else { token.permission };
    Ok(Caller { name: token.name.clone(), permission, repos: token.repos.clone(), token_quota: token.quota })
}
