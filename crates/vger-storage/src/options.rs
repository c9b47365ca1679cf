//! What a remote backend and its layers need to know besides the URL:
//! credentials, addressing, limits and the retry policy. The application
//! layer (`vger-app`) fills this from the repository's configuration.

use std::path::PathBuf;
use std::time::Duration;

/// Settings for [`open_url`](crate::open_url). `Default` gives the values
/// used when the configuration says nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct BackendOptions {
    /// S3 region; `us-east-1` when absent (what most S3-compatible servers expect).
    pub region: Option<String>,
    /// S3 access key; falls back to `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// S3 secret key; falls back to `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// Allows `s3+http://` (credentials and data in clear text).
    pub allow_insecure_http: bool,
    /// `"path"` or `"virtual"`; absent: virtual-host for `*.amazonaws.com`,
    /// path style elsewhere (MinIO, Ceph, Garage and most others).
    pub s3_addressing: Option<String>,
    /// Deleting moves the object under `.trash/` instead (see `s3.rs`).
    pub s3_soft_delete: bool,
    /// Private key for SFTP; default `~/.ssh/id_ed25519`, then `id_ecdsa`, `id_rsa`.
    pub sftp_key: Option<PathBuf>,
    /// Known hosts for SFTP; default `~/.ssh/known_hosts`.
    pub sftp_known_hosts: Option<PathBuf>,
    /// Bearer token for the vger REST server.
    pub access_token: Option<String>,
    /// Requests in flight at once (`limits.connections`); at least 1.
    pub connections: usize,
    /// Upload cap of this repository (all its connections), bytes per second.
    pub upload_bytes_per_sec: Option<u64>,
    /// Download cap of this repository (all its connections), bytes per second.
    pub download_bytes_per_sec: Option<u64>,
    pub retry: RetryPolicy,
    /// Connecting, and waiting for a response to start; transfers of large
    /// bodies get more time in proportion to their size.
    pub timeout: Duration,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            region: None,
            access_key_id: None,
            secret_access_key: None,
            allow_insecure_http: false,
            s3_addressing: None,
            s3_soft_delete: false,
            sftp_key: None,
            sftp_known_hosts: None,
            access_token: None,
            connections: 4,
            upload_bytes_per_sec: None,
            download_bytes_per_sec: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for BackendOptions {
    // By hand, so that secrets never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "<hidden>");
        f.debug_struct("BackendOptions")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("s3_addressing", &self.s3_addressing)
            .field("s3_soft_delete", &self.s3_soft_delete)
            .field("sftp_key", &self.sftp_key)
            .field("sftp_known_hosts", &self.sftp_known_hosts)
            .field("access_token", &hidden(&self.access_token))
            .field("connections", &self.connections)
            .field("upload_bytes_per_sec", &self.upload_bytes_per_sec)
            .field("download_bytes_per_sec", &self.download_bytes_per_sec)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// How transient failures are retried: exponential backoff with full
/// jitter, `delay * 2^attempt` capped at `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first try; 0 disables retrying.
    pub max_retries: u32,
    /// Upper bound of the first wait.
    pub delay: Duration,
    /// Upper bound of any wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 6, delay: Duration::from_millis(500), max_delay: Duration::from_secs(30) }
    }
}
