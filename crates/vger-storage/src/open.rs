//! `open_url`: from a repository URL and its options to a storage with
//! every layer around it.
//!
//! | URL | backend |
//! |---|---|
//! | `/path`, `relative/path`, `file:///path` | [`LocalStorage`] |
//! | `s3://ENDPOINT/BUCKET/PREFIX` | [`S3Storage`] over HTTPS |
//! | `s3+http://ENDPOINT/BUCKET/PREFIX` | S3 over plain HTTP, only with `allow_insecure_http` |
//! | `sftp://[user@]host[:port]/absolute/path` | [`SftpStorage`] |
//! | `sftp://[user@]host[:port]/~/path` | SFTP, path relative to the login directory |
//! | `https://HOST[:PORT]/REPO` | vger-server; `http://` only with `allow_insecure_http` |

use std::path::Path;
use std::sync::Arc;

use url::Url;

use crate::rest::RestStorage;
use crate::s3::{S3Location, S3Storage};
use crate::sftp::{SftpLocation, SftpStorage};
use crate::{layers, BackendOptions, LocalStorage, Storage, StorageError};

/// Opens the repository at `url`, wrapped in the retry, throttle and
/// connection-limit layers (a local directory only in the retry layer,
/// which logs its requests: its errors are never transient, and limits
/// are for networks). `create` makes a missing local directory; for
/// remote backends the bucket or parent directory must exist (directories
/// below it are made on demand).
pub fn open_url(url: &str, opts: &BackendOptions, create: bool) -> Result<Arc<dyn Storage>, StorageError> {
    let backend: Arc<dyn Storage> = match url.split_once("://") {
        None => return Ok(layers::wrap_local(Arc::new(open_local(Path::new(url), create)?), opts)),
        Some(("file", _)) => {
            let path = parse(url)?.to_file_path().map_err(|()| bad_url(url, "expected file:///absolute/path"))?;
            return Ok(layers::wrap_local(Arc::new(open_local(&path, create)?), opts));
        }
        Some(("s3", _)) => Arc::new(S3Storage::new(&s3_location(url, "https")?, opts)?),
        Some(("s3+http", _)) if opts.allow_insecure_http => Arc::new(S3Storage::new(&s3_location(url, "http")?, opts)?),
        Some(("s3+http", _)) => {
            return Err(bad_url(
                url,
                "plain HTTP sends data and signatures unencrypted; set `allow_insecure_http: true` in the \
                 repository configuration to allow it, or use s3:// (HTTPS)",
            ))
        }
        Some(("sftp", _)) => Arc::new(SftpStorage::connect(&sftp_location(url)?, opts, create)?),
        Some(("https", _)) => Arc::new(RestStorage::new(url, opts.access_token.clone(), opts)?),
        Some(("http", _)) if opts.allow_insecure_http => {
            Arc::new(RestStorage::new(url, opts.access_token.clone(), opts)?)
        }
        Some(("http", _)) => {
            return Err(bad_url(
                url,
                "plain HTTP sends the access token and data unencrypted; set `allow_insecure_http: true` in the \
                 repository configuration to allow it (for a server on this machine), or use https://",
            ))
        }
        Some((scheme, _)) => {
            return Err(bad_url(
                url,
                &format!("unknown scheme `{scheme}`; use a path, file://, s3://, s3+http:// or sftp://"),
            ))
        }
    };
    Ok(layers::wrap(backend, opts))
}

fn open_local(path: &Path, create: bool) -> Result<LocalStorage, StorageError> {
    if create {
        LocalStorage::create(path)
    } else {
        LocalStorage::open(path)
    }
}

fn bad_url(url: &str, why: &str) -> StorageError {
    StorageError::Backend { detail: format!("repository URL `{}`: {why}", without_password(url)) }
}

/// The URL as it may be shown: a password in it is replaced.
fn without_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn parse(url: &str) -> Result<Url, StorageError> {
    Url::parse(url).map_err(|e| bad_url(url, &format!("not a valid URL: {e}")))
}

/// `s3://ENDPOINT/BUCKET/PREFIX` with the scheme the endpoint is reached by.
fn s3_location(url: &str, scheme: &str) -> Result<S3Location, StorageError> {
    let rest = url.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
    let mut parts = rest.splitn(3, '/');
    let host = parts.next().unwrap_or_default();
    let bucket = parts.next().unwrap_or_default();
    let prefix = parts.next().unwrap_or_default().trim_matches('/');
    if host.is_empty() || bucket.is_empty() {
        return Err(bad_url(
            url,
            "expected s3://ENDPOINT/BUCKET[/PREFIX], e.g. s3://s3.us-east-1.amazonaws.com/my-bucket/vger",
        ));
    }
    if host.contains('@') {
        return Err(bad_url(url, "put S3 credentials in access_key_id / secret_access_key, not in the URL"));
    }
    if !prefix.is_empty() {
        crate::keys::validate_key(prefix).map_err(|e| bad_url(url, &format!("the prefix is not usable: {e}")))?;
    }
    let endpoint = parse(&format!("{scheme}://{host}/"))?;
    Ok(S3Location { endpoint, bucket: bucket.to_owned(), prefix: prefix.to_owned() })
}

/// `sftp://[user@]host[:port]/path`: `/path` is absolute; `/~/path` (or
/// `/~`) is relative to the login directory. The user defaults to `$USER`.
fn sftp_location(url: &str) -> Result<SftpLocation, StorageError> {
    let parsed = parse(url)?;
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad_url(url, "no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    if parsed.password().is_some() {
        return Err(bad_url(url, "passwords are not supported; use key authentication (sftp_key)"));
    }
    let user = match parsed.username() {
        "" => std::env::var("USER").unwrap_or_else(|_| "root".into()),
        user => user.to_owned(),
    };
    let path = match parsed.path() {
        "" => ".".to_owned(),
        path => match path.strip_prefix("/~") {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => match rest.trim_matches('/') {
                "" => ".".to_owned(),
                relative => relative.to_owned(),
            },
            _ => match path.trim_end_matches('/') {
                "" => "/".to_owned(),
                absolute => absolute.to_owned(),
            },
        },
    };
    Ok(SftpLocation { user, host, port: parsed.port().unwrap_or(22), path })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        let loc = s3_location("s3://s3.example.com:9000/bucket/some/prefix/", "https").unwrap();
        assert_eq!(loc.endpoint.as_str(), "https://s3.example.com:9000/");
        assert_eq!((loc.bucket.as_str(), loc.prefix.as_str()), ("bucket", "some/prefix"));
        let loc = s3_location("s3+http://127.0.0.1:5000/b", "http").unwrap();
        assert_eq!(
            (loc.endpoint.as_str(), loc.bucket.as_str(), loc.prefix.as_str()),
            ("http://127.0.0.1:5000/", "b", "")
        );
        assert!(s3_location("s3://host", "https").is_err());
        assert!(s3_location("s3://host/b/../x", "https").is_err());
        assert!(s3_location("s3://key:secret@host/b", "https").is_err());
    }

    #[test]
    fn insecure_http_needs_consent() {
        let err = open_url("s3+http://127.0.0.1:1/b/p", &BackendOptions::default(), false).unwrap_err();
        assert!(err.to_string().contains("allow_insecure_http: true"), "{err}");
    }

    #[test]
    fn rest_and_unknown_schemes_are_refused_clearly() {
        let err = open_url("http://host/repo", &BackendOptions::default(), false).unwrap_err();
        assert!(err.to_string().contains("allow_insecure_http: true"), "{err}");
        let err = open_url("ftp://host/repo", &BackendOptions::default(), false).unwrap_err();
        assert!(err.to_string().contains("unknown scheme"), "{err}");
    }

    #[test]
    fn local_paths() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        assert!(open_url(repo.to_str().unwrap(), &BackendOptions::default(), false).is_err());
        let storage = open_url(&format!("file://{}", repo.display()), &BackendOptions::default(), true).unwrap();
        storage.put("config", b"x").unwrap();
        let again = open_url(repo.to_str().unwrap(), &BackendOptions::default(), false).unwrap();
        assert_eq!(again.get("config").unwrap(), b"x");
    }

    /// Local storage says so through every layer; network backends do not
    /// (callers size their parallelism on it).
    #[test]
    fn local_storage_is_local_through_every_layer() {
        let dir = tempfile::tempdir().unwrap();
        let opened = open_url(dir.path().to_str().unwrap(), &BackendOptions::default(), true).unwrap();
        assert!(opened.is_local());
        let wrapped: Arc<dyn Storage> = Arc::new(layers::ConnectionLimit::new(
            Arc::new(layers::ThrottledStorage::new(opened, Some(layers::Bandwidth::new(1 << 20)), None)),
            2,
        ));
        assert!(wrapped.is_local());
        let insecure = BackendOptions {
            allow_insecure_http: true,
            access_key_id: Some("id".into()),
            secret_access_key: Some("secret".into()),
            ..BackendOptions::default()
        };
        for url in ["s3+http://127.0.0.1:1/bucket/prefix", "http://127.0.0.1:1/repo"] {
            assert!(!open_url(url, &insecure, false).unwrap().is_local(), "{url}");
        }
    }

    #[test]
    fn sftp_urls() {
        let loc = sftp_location("sftp://alice@backup.example:2222/srv/vger/").unwrap();
        assert_eq!(
            loc,
            SftpLocation { user: "alice".into(), host: "backup.example".into(), port: 2222, path: "/srv/vger".into() }
        );
        assert_eq!(sftp_location("sftp://bob@h/~/repo").unwrap().path, "repo");
        assert_eq!(sftp_location("sftp://bob@h/~").unwrap().path, ".");
        assert_eq!(sftp_location("sftp://bob@h/~x/repo").unwrap().path, "/~x/repo");
        assert_eq!(sftp_location("sftp://bob@h").unwrap().path, ".");
        assert_eq!(sftp_location("sftp://bob@h/").unwrap().path, "/");
        assert!(sftp_location("sftp://bob:pw@h/x").is_err());
    }
}
