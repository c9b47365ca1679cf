//! From a request URI to what it addresses. The raw path is split into
//! the repository segment and the key, each percent-decoded exactly once
//! and then validated (`vger_storage::keys`), so `..`, `%2e%2e`, `%2F`,
//! backslashes and NUL never reach the file system; a key must then be one
//! of a vger repository's ([`crate::layout`]).

use axum::http::Uri;
use percent_encoding::percent_decode_str;
use vger_protocol::{
    is_valid_repo_name, HEALTH_PATH, METRICS_PATH, QUERY_LIST, QUERY_PREFIX, QUERY_REPACK, QUERY_STATS,
    QUERY_VERIFY_PACKS,
};
use vger_storage::keys::{validate_key, validate_prefix};

use crate::error::ApiError;
use crate::layout;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Health,
    Metrics,
    /// `GET /?stats` (admin).
    ServerStats,
    Repo {
        repo: String,
        action: RepoAction,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoAction {
    Object(String),
    List { prefix: String },
    Stats,
    VerifyPacks,
    Repack,
}

/// [`parse`] for a request target as text (`/repo/config?x`), as the
/// fuzz targets and tests have it.
pub fn parse_str(target: &str) -> Result<Target, ApiError> {
    let uri: Uri = target.parse().map_err(|_| ApiError::bad_request("the request target is not a valid URI"))?;
    parse(&uri)
}

/// What a request's URI addresses; `Err` (400) for anything that is not
/// a valid repository name and repository key.
pub fn parse(uri: &Uri) -> Result<Target, ApiError> {
    let path = uri.path();
    let flags: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let has = |flag: &str| flags.iter().any(|(k, _)| k == flag);
    match path {
        HEALTH_PATH => return Ok(Target::Health),
        METRICS_PATH => return Ok(Target::Metrics),
        "/" | "" if has(QUERY_STATS) => return Ok(Target::ServerStats),
        "/" | "" => return Err(ApiError::bad_request("no repository in the path; use /REPOSITORY/KEY")),
        _ => {}
    }
    let path = path.strip_prefix('/').unwrap_or(path);
    let (repo_raw, key_raw) = path.split_once('/').unwrap_or((path, ""));
    let repo = decode(repo_raw)?;
    if !is_valid_repo_name(&repo) {
        return Err(ApiError::invalid_key(format!(
            "invalid repository name {repo:?}: use [A-Za-z0-9._-], not starting with `.`"
        )));
    }
    let action = if key_raw.is_empty() {
        if has(QUERY_LIST) {
            let prefix = flags.iter().find(|(k, _)| k == QUERY_PREFIX).map(|(_, v)| v.clone()).unwrap_or_default();
            validate_prefix(&prefix).map_err(|e| ApiError::invalid_key(e.to_string()))?;
            RepoAction::List { prefix }
        } else if has(QUERY_STATS) {
            RepoAction::Stats
        } else if has(QUERY_VERIFY_PACKS) {
            RepoAction::VerifyPacks
        } else if has(QUERY_REPACK) {
            RepoAction::Repack
        } else {
            return Err(ApiError::bad_request("no key in the path; use /REPOSITORY/KEY or /REPOSITORY/?list"));
        }
    } else {
        let key = decode(key_raw)?;
        validate_key(&key).map_err(|e| ApiError::invalid_key(e.to_string()))?;
        if layout::classify(&key).is_none() {
            return Err(ApiError::invalid_key(format!(
                "`{key}` is not a key of a vger repository (config, keys/ID, packs/XX/ID, index/ID, \
                 snapshots/ID or locks/ID with 64 lower-case hex digits; docs/format.md section 1)"
            )));
        }
        RepoAction::Object(key)
    };
    Ok(Target::Repo { repo, action })
}

fn decode(raw: &str) -> Result<String, ApiError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::invalid_key("the path is not valid UTF-8 after percent-decoding"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Result<Target, ApiError> {
        parse(&uri.parse::<Uri>().unwrap())
    }

    fn object(repo: &str, key: &str) -> Target {
        Target::Repo { repo: repo.into(), action: RepoAction::Object(key.into()) }
    }

    const ID: &str = "cd0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

    #[test]
    fn routes() {
        assert_eq!(target("/health").unwrap(), Target::Health);
        assert_eq!(target("/metrics").unwrap(), Target::Metrics);
        assert_eq!(target("/?stats").unwrap(), Target::ServerStats);
        assert_eq!(target(&format!("/r/packs/cd/{ID}")).unwrap(), object("r", &format!("packs/cd/{ID}")));
        assert_eq!(target(&format!("/r/index%2F{ID}")).unwrap(), object("r", &format!("index/{ID}")));
        assert_eq!(target("/health/config").unwrap(), object("health", "config"));
        assert_eq!(parse_str(&format!("/r/locks/{ID}")).unwrap(), object("r", &format!("locks/{ID}")));
        assert_eq!(
            target("/r/?list&prefix=packs%2Fa").unwrap(),
            Target::Repo { repo: "r".into(), action: RepoAction::List { prefix: "packs/a".into() } }
        );
        assert_eq!(
            target("/r?list").unwrap(),
            Target::Repo { repo: "r".into(), action: RepoAction::List { prefix: "".into() } }
        );
        assert_eq!(target("/r/?stats").unwrap(), Target::Repo { repo: "r".into(), action: RepoAction::Stats });
        assert_eq!(target("/r/?repack").unwrap(), Target::Repo { repo: "r".into(), action: RepoAction::Repack });
    }

    #[test]
    fn hostile_paths_are_refused() {
        for uri in [
            "/",
            "/r/",
            "/../etc/passwd",
            "/r/../config",
            "/r/%2e%2e/config",
            "/r/%2E%2E%2Fconfig",
            "/r/a%2F..%2Fb",
            "/r/a%5Cb",
            "/r/a%00b",
            "/r//etc/passwd",
            "/r/.tmp-1",
            "/%2e%2e/x",
            "/.hidden/x",
            "/a%2Fb/x",
            "/r/%ff",
            "/r/?list&prefix=..%2F",
            "/r/a/",
            "/r/packs/ab/cd",
            "/r/a/a/a/a",
            "/r/snapshots/s1",
        ] {
            assert!(target(uri).is_err(), "{uri}");
        }
    }
}
