//! The parsed `vger.yaml`: the top level, repositories and sources.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::sections::{
    CheckConfig, ChunkerConfig, CommandDump, EncryptionConfig, HooksConfig, LimitsConfig, NotifyConfig,
    RetentionConfig, RetryConfig, ScheduleConfig, XattrsConfig,
};
use vger_format::change::ChangeDetection;
use vger_format::compress::Codec;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where snapshots are stored; at least one.
    pub repositories: Vec<RepositoryConfig>,
    /// What is backed up, normalised from the simple, rich or mixed form;
    /// read it through [`Config::sources`].
    #[serde(default, deserialize_with = "crate::sources::deserialize")]
    pub sources: Vec<SourceConfig>,
    /// Gitignore-style patterns excluded from every source.
    #[serde(default)]
    pub exclude_patterns: Vec<String>,
    /// A folder holding any of these file names is skipped in every source.
    #[serde(default)]
    pub exclude_if_present: Vec<String>,
    #[serde(default)]
    pub encryption: EncryptionConfig,
    pub compression: Option<Codec>,
    pub chunker: Option<ChunkerConfig>,
    pub cache_dir: Option<PathBuf>,
    pub retention: Option<RetentionConfig>,
    pub limits: Option<LimitsConfig>,
    pub hooks: Option<HooksConfig>,
    pub check: Option<CheckConfig>,
    pub schedule: Option<ScheduleConfig>,
    #[serde(default)]
    pub notify: Vec<NotifyConfig>,
    /// `KEY=VALUE` files read before `${VAR}` expansion, resolved against the
    /// config file's folder.
    #[serde(default, deserialize_with = "crate::one_or_many::deserialize")]
    pub env_file: Vec<PathBuf>,
    pub xattrs: Option<XattrsConfig>,
    /// Secret environment variables (`VGER_PASSPHRASE`, `AWS_SECRET_ACCESS_KEY`,
    /// ...) that hooks and command dumps may inherit; none by default.
    #[serde(default)]
    pub pass_secrets: Vec<String>,
}

impl Config {
    /// The sources, one per backup unit.
    pub fn sources(&self) -> &[SourceConfig] {
        &self.sources
    }
}

/// One repository. Sections written here override the top level ones.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// A local path, `s3://`, `s3+http://`, `sftp://`, `rest://` or `http(s)://` URL.
    pub url: String,
    /// Name used on the command line; derived from the URL when not written.
    pub label: Option<String>,
    pub encryption: Option<EncryptionConfig>,
    pub compression: Option<Codec>,
    pub retention: Option<RetentionConfig>,
    pub limits: Option<LimitsConfig>,
    pub hooks: Option<HooksConfig>,
    pub schedule: Option<ScheduleConfig>,
    pub check: Option<CheckConfig>,
    /// Notification targets for this repository; replaces the top-level
    /// `notify` list when written (`notify: []` silences this repository).
    pub notify: Option<Vec<NotifyConfig>>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Bearer token for REST servers.
    pub access_token: Option<String>,
    /// Required for `http://` and `s3+http://` URLs: credentials travel in clear.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Delete by hiding objects (for buckets with object lock / versioning).
    #[serde(default)]
    pub s3_soft_delete: bool,
    /// `path` or `virtual` host addressing for S3.
    #[serde(default, deserialize_with = "s3_addressing")]
    pub s3_addressing: Option<String>,
    pub sftp_key: Option<PathBuf>,
    pub sftp_known_hosts: Option<PathBuf>,
    pub retry: Option<RetryConfig>,
    /// Labels of repositories this one's new snapshots are copied to after
    /// each backup of the default cycle and the daemon (`vger copy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy_to: Vec<String>,
}

impl RepositoryConfig {
    /// The label: as written, else the URL's last path component, else the URL.
    pub fn label(&self) -> &str {
        if let Some(label) = &self.label {
            return label;
        }
        let trimmed = self.url.trim_end_matches('/');
        let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
        match after_scheme.rsplit('/').next() {
            Some(last) if !last.is_empty() => last,
            _ => &self.url,
        }
    }
}

/// One backup source: a set of paths snapshotted together under one label.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub label: Option<String>,
    /// A single path; exclusive with `paths`.
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub exclude_if_present: Vec<String>,
    #[serde(default)]
    pub one_file_system: bool,
    /// Honour `.gitignore` files found in the tree.
    #[serde(default)]
    pub git_ignore: bool,
    pub xattrs: Option<XattrsConfig>,
    /// Repository labels this source goes to; all repositories when empty.
    #[serde(default)]
    pub repos: Vec<String>,
    pub retention: Option<RetentionConfig>,
    pub hooks: Option<HooksConfig>,
    #[serde(default)]
    pub command_dumps: Vec<CommandDump>,
    pub change_detection: Option<ChangeDetection>,
}

impl SourceConfig {
    /// The label: as written, else the folder name of the only path, else `default`.
    pub fn label(&self) -> String {
        if let Some(label) = &self.label {
            return label.clone();
        }
        let paths = self.all_paths();
        match paths.as_slice() {
            [only] => only.file_name().map_or_else(|| "default".to_owned(), |name| name.to_string_lossy().into_owned()),
            _ => "default".to_owned(),
        }
    }

    /// `path` and `paths` together.
    pub fn all_paths(&self) -> Vec<PathBuf> {
        self.path.iter().chain(&self.paths).cloned().collect()
    }

    /// Whether this source is sent to the repository labelled `label`.
    pub fn goes_to(&self, label: &str) -> bool {
        self.repos.is_empty() || self.repos.iter().any(|r| r == label)
    }
}

fn s3_addressing<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(deserializer)?;
    match value.as_deref() {
        None | Some("path") | Some("virtual") => Ok(value),
        Some(other) => {
            Err(serde::de::Error::custom(format!("unknown s3_addressing `{other}`; use `path` or `virtual`")))
        }
    }
}
