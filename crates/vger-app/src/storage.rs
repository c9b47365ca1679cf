//! From a repository's entry in `vger.yaml` to its storage: the one place
//! that turns the config into [`BackendOptions`] and calls
//! [`vger_storage::open_url`], which picks the backend and its layers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vger_config::{Config, RepositoryConfig};
use vger_storage::{BackendOptions, RetryPolicy, Storage};

use crate::AppError;

/// The backend settings of `repo`: its credentials and addressing, and the
/// limits and retry policy that apply to it (repository over top level).
pub fn backend_options(config: &Config, repo: &RepositoryConfig) -> BackendOptions {
    let limits = config.effective_limits(repo);
    let mib = |v: Option<f64>| v.map(|m| (m * 1048576.0) as u64);
    let mut opts = BackendOptions {
        region: repo.region.clone(),
        access_key_id: repo.access_key_id.clone(),
        secret_access_key: repo.secret_access_key.clone(),
        allow_insecure_http: repo.allow_insecure_http,
        s3_addressing: repo.s3_addressing.clone(),
        s3_soft_delete: repo.s3_soft_delete,
        sftp_key: repo.sftp_key.clone(),
        sftp_known_hosts: repo.sftp_known_hosts.clone(),
        access_token: repo.access_token.clone(),
        upload_bytes_per_sec: mib(limits.upload_mib_per_sec),
        download_bytes_per_sec: mib(limits.download_mib_per_sec),
        ..BackendOptions::default()
    };
    if let Some(c) = limits.connections {
        opts.connections = c;
    }
    if let Some(r) = &repo.retry {
        opts.retry = RetryPolicy {
            max_retries: r.max_retries,
            delay: Duration::from_millis(r.retry_delay_ms),
            max_delay: Duration::from_millis(r.retry_max_delay_ms),
        };
    }
    opts
}

/// The storage of `repo`. `create` makes a missing local folder (for
/// init); otherwise a local repository whose folder does not exist is
/// [`AppError::NoRepositoryFolder`], told apart from other failures.
pub fn open_storage(config: &Config, repo: &RepositoryConfig, create: bool) -> Result<Arc<dyn Storage>, AppError> {
    let opts = backend_options(config, repo);
    let url = repo.url.as_str();
    let local = local_path(url)?;
    if let Some(path) = &local {
        if !create && !path.exists() {
            return Err(AppError::NoRepositoryFolder { path: path.clone(), repository: repo.label().to_string() });
        }
    }
    // A relative path is resolved here, once, so that every message names
    // the folder the way it was opened.
    let absolute = local.as_ref().map(|p| p.to_string_lossy().into_owned());
    let url = absolute.as_deref().unwrap_or(url);
    vger_storage::open_url(url, &opts, create)
        .map_err(|source| AppError::Storage { repository: repo.label().to_string(), source })
}

/// The absolute folder of a local repository URL (a path or `file://`),
/// `None` for a remote one.
fn local_path(url: &str) -> Result<Option<PathBuf>, AppError> {
    if url.contains("://") && !url.starts_with("file://") {
        return Ok(None);
    }
    let p = Path::new(url.strip_prefix("file://").unwrap_or(url));
    if p.is_absolute() {
        return Ok(Some(p.to_path_buf()));
    }
    Ok(Some(std::env::current_dir().map_err(AppError::CurrentDir)?.join(p)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn repo(url: &str) -> RepositoryConfig {
        RepositoryConfig { url: url.to_string(), label: Some("r".into()), ..RepositoryConfig::default() }
    }

    #[test]
    fn a_missing_local_folder_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nothing-here");
        let err = open_storage(&Config::default(), &repo(missing.to_str().unwrap()), false).err().unwrap();
        assert!(matches!(err, AppError::NoRepositoryFolder { ref path, .. } if *path == missing), "{err:?}");
        let storage = open_storage(&Config::default(), &repo(missing.to_str().unwrap()), true).unwrap();
        storage.put("config", b"x").unwrap();
        let url = format!("file://{}", missing.display());
        assert_eq!(open_storage(&Config::default(), &repo(&url), false).unwrap().get("config").unwrap(), b"x");
    }

    #[test]
    fn limits_and_credentials_come_from_the_repository_over_the_top_level() {
        let yaml = "repositories:\n  - url: s3://h/b\n    access_key_id: AK\n    limits: { connections: 9 }\n    retry: { max_retries: 2, retry_delay_ms: 5, retry_max_delay_ms: 10 }\nlimits: { upload_mib_per_sec: 2, connections: 3 }\n";
        let env = vger_config::Environment::from_map(Default::default(), "/");
        let config = Config::from_yaml_str_in(yaml, Path::new("/x/vger.yaml"), &env).unwrap();
        let opts = backend_options(&config, &config.repositories[0]);
        assert_eq!(opts.connections, 9);
        assert_eq!(opts.upload_bytes_per_sec, Some(2 << 20));
        assert_eq!(opts.access_key_id.as_deref(), Some("AK"));
        assert_eq!(opts.retry.max_retries, 2);
    }
}
